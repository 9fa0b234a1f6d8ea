//! LISTEN connections: how a daemon (or the bench) hears PostgreSQL's `NOTIFY`, for waking
//! early instead of waiting for its next poll. The guardian listens on `sisyphus_runs` and
//! `sisyphus_control`, the scheduler on `sisyphus_jobs`, the dispatcher on `sisyphus_outbox` (the
//! channels are named in each daemon's module of this crate, beside its statements); what a
//! notification means is decoded there too, e.g. [`crate::guardian::Notice`].
//!
//! A notification is only a hint: one sent while the connection was lost is lost, so every
//! listener polls too.

use sqlx::postgres::{PgListener, PgPoolOptions};

use crate::Result;

/// A connection of its own that LISTENs, made with [`crate::options`] like the pools (so
/// `sslmode` means the same on both, and `pg_stat_activity` shows the program's name), that
/// reconnects by itself after a loss: what sqlx's `PgListener::connect(url)` makes, but through
/// the one way of reading a URL.
pub struct Listener(PgListener);

/// One notification heard: its channel and its payload (`''` when the NOTIFY gave none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub channel: String,
    pub payload: String,
}

impl Listener {
    /// Connects to `url` as `application` and LISTENs on `channels`.
    pub async fn connect(url: &str, application: &str, channels: &[&str]) -> Result<Listener> {
        // A pool of one without timeouts, used only to reconnect.
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_with(crate::options(url, application)?)
            .await?;
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.ignore_pool_close_event(true);
        let mut listener = Listener(listener);
        listener.listen(channels).await?;
        Ok(listener)
    }

    /// LISTENs on `channels` too (all of them in one round trip); after a reconnection they are
    /// listened on again.
    pub async fn listen(&mut self, channels: &[&str]) -> Result<()> {
        Ok(self.0.listen_all(channels.iter().copied()).await?)
    }

    /// Waits for the next notification. An error means the connection was lost: the listener
    /// reconnects by itself on the next call, and what was sent meanwhile is lost.
    pub async fn recv(&mut self) -> Result<Notification> {
        let heard = self.0.recv().await?;
        Ok(Notification {
            channel: heard.channel().to_string(),
            payload: heard.payload().to_string(),
        })
    }
}
