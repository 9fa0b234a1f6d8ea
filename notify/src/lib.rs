//! Notifications: what is sent when a run fails, times out, is lost or missed, recovers, runs
//! slow or too fast, or logs lines tagged `email`, `mattermost`, `sentry` or `external` — and
//! the senders that deliver it.
//!
//! - [`notification`]: the payload ([`Notification`]), the same whether it comes from an
//!   outbox row (the dispatcher) or from a standalone job SDK run;
//! - [`channel`]: what a channel is (SMTP server, Mattermost, Sentry, webhook) and its
//!   [`Secret`]s, which never reach the database, the payload or a log line;
//! - [`render`]: how a notification reads on each channel;
//! - [`send`]: the senders.
//!
//! The dispatcher (`dispatcher/`) and the job SDK (`job/`) both send through here: one way to
//! send a notification.

#[cfg(feature = "send")]
pub mod channel;
pub mod notification;
#[cfg(feature = "send")]
pub mod render;
#[cfg(feature = "send")]
pub mod send;

#[cfg(feature = "send")]
pub use channel::{Channel, Secret};
pub use notification::{Event, Line, Notification, RunInfo};
#[cfg(feature = "send")]
pub use send::{Delivered, SendError, Senders};
