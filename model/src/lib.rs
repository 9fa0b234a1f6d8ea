//! The Sisyphus model: the plain types every part shares, with no database underneath.
//!
//! The job SDK, the notification senders and the web dashboard depend on this crate without
//! pulling in sqlx; `sisyphus-db` decodes rows into these types, and `sisyphus-client` is the
//! API over both.
//!
//! # Layout
//!
//! - [`run`]: typed ids, run statuses and triggers, targets, catch-up policies, runs.
//! - [`status`]: the one place a [`RunStatus`] becomes what the job protocol, log files and
//!   notifications call an ending.
//! - [`control`]: the remote actions on a run ([`ControlAction`]).
//! - [`schedule`]: cron expressions, intervals and one-shot times; next fire times in a zone,
//!   DST transitions (`schedule::zone`) and a schedule explained (`schedule::explain`).
//! - [`calendar`]: calendars (days and time ranges in a zone, from `.ics` or TOML) and a job's
//!   `skip_on`/`only_on` set of them, which excludes slots.
//! - [`backfill`]: a job's past slots in a range, and what a backfill found for each.
//! - [`spec`]: job definitions as written ([`JobDefinition`]) and as checked ([`JobSpec`]: the
//!   validator is the only way to make one); [`diff`]: two definitions compared key by key.
//! - [`params`]: the parameters a job declares and a run is given.
//! - [`resources`]: resource name templates and the lineage graph.
//! - [`notifications`]: notification rules and the outbox as people read it; [`event`]: why a
//!   notification exists.
//! - [`views`]: what people read — job states, hosts, log lines.
//! - [`access`]: grants on projects, kinds of logins, the audit log as people read it.

pub mod access;
pub mod backfill;
pub mod calendar;
pub mod control;
pub mod diff;
pub mod event;
pub mod notifications;
pub mod params;
pub mod resources;
pub mod run;
pub mod schedule;
pub mod spec;
pub mod status;
pub mod views;

pub use control::ControlAction;
pub use event::Event;
pub use run::{Catchup, JobId, JobRef, OutboxState, Run, RunId, RunStatus, RunTrigger, Target};
pub use schedule::{CronError, CronExpr, DstRule, Schedule};
pub use spec::{InvalidJob, JobDefinition, JobFormat, JobSpec, Overlap, ResourceSpec};
