//! The dispatcher: delivers the notifications in `sisyphus.outbox` (migrations/0007).
//!
//! Rows are written by the database in the same transaction as their event (a run's outcome, a
//! run passing `warn_after`, a job overdue), so the dispatcher never decides what happened; it
//! only carries rows to their channels:
//!
//! 1. wake on `NOTIFY sisyphus_outbox` (or every `poll`, as a safety net);
//! 2. claim up to `batch` due rows (`FOR UPDATE SKIP LOCKED`, so other dispatchers take other
//!    rows) with a lease, and commit;
//! 3. send them all at once through `sisyphus-notify`'s senders, with no transaction open (a
//!    slow channel delays no other row by more than the send timeout);
//! 4. record each result, if the claim still holds: delivered, skipped (nothing for this
//!    channel), pending again after a backoff, or failed after `max_attempts`.
//!
//! A dispatcher that dies mid-batch loses its lease: the rows come due again, so a notification
//! is delivered at least once — and, unless the dispatcher dies between a channel's
//! acknowledgement and step 4, exactly once. No transaction stays open while a channel is slow,
//! so a hanging SMTP server cannot hold back vacuum.

pub mod config;
mod metrics;
mod outbox;

use std::sync::Arc;
use std::time::Duration;

use sisyphus_client::db::{self, Listener, PgPool};
use sisyphus_notify::Senders;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{ConfigError, Settings};
pub use metrics::Metrics;
pub use outbox::{deliver_due, Pass};

/// How a dispatcher runs.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    pub settings: Settings,
    /// Most notifications per transaction.
    pub batch: i64,
    /// The longest wait between passes (retries come due without a NOTIFY).
    pub poll: Duration,
    /// Where to serve Prometheus metrics; None: nowhere.
    pub metrics: Option<std::net::SocketAddr>,
}

impl Config {
    /// Defaults: batches of 16, a pass at least every second.
    pub fn new(database_url: impl Into<String>, settings: Settings) -> Config {
        Config {
            database_url: database_url.into(),
            settings,
            batch: 16,
            poll: Duration::from_secs(1),
            metrics: None,
        }
    }

    /// Refuses settings that cannot work, naming the flag.
    pub fn validate(&self) -> Result<(), Error> {
        if self.poll < Duration::from_millis(10) || self.poll > Duration::from_secs(3600) {
            return Err(Error::Config(format!(
                "--poll: {:?} is not within 10ms to 1h",
                self.poll
            )));
        }
        if !(1..=10_000).contains(&self.batch) {
            return Err(Error::Config(format!(
                "batch: {} is not within 1 to 10000",
                self.batch
            )));
        }
        Ok(())
    }
}

/// Errors that stop a dispatcher from starting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Connecting or checking the schema failed (the client's errors are the database layer's).
    #[error(transparent)]
    Database(#[from] db::Error),
    #[error("{0}")]
    Senders(String),
    /// A setting that cannot work, with the flag named.
    #[error("{0}")]
    Config(String),
}

/// A running dispatcher's parts.
pub struct Dispatcher {
    config: Config,
    pool: PgPool,
    senders: Senders,
    metrics: Arc<Metrics>,
}

impl Dispatcher {
    /// Connects and checks the schema.
    pub async fn start(config: Config) -> Result<Dispatcher, Error> {
        config.validate()?;
        let pool = db::pool(&config.database_url, "sisyphus dispatcher", 2).await?;
        db::check_schema(&pool).await?;
        let senders = Senders::new(config.settings.send_timeout).map_err(Error::Senders)?;
        tracing::info!(
            channels = ?config.settings.channels.keys().collect::<Vec<_>>(),
            "dispatcher started"
        );
        Ok(Dispatcher {
            config,
            pool,
            senders,
            metrics: Arc::default(),
        })
    }

    /// Delivers until `shutdown`; a pass in progress finishes (and commits) first, and the
    /// metrics server (the one task it starts) stops before this returns.
    pub async fn run(self, shutdown: CancellationToken) {
        let tasks = TaskTracker::new();
        if let Some(addr) = self.config.metrics {
            self.serve_metrics(addr, &shutdown, &tasks).await;
        }
        let mut listener = match self.listen().await {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::warn!("cannot LISTEN for new notifications ({e}); polling");
                None
            }
        };
        while !shutdown.is_cancelled() {
            let full = match self.pass().await {
                Ok(pass) => pass.taken as i64 >= self.config.batch,
                Err(e) => {
                    tracing::warn!("dispatcher pass failed: {e}");
                    false
                }
            };
            if full {
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = wait(&mut listener) => {}
                _ = tokio::time::sleep(self.config.poll) => {}
            }
        }
        tasks.close();
        tasks.wait().await;
        tracing::info!("dispatcher stopped");
    }

    async fn listen(&self) -> db::Result<Listener> {
        let url = &self.config.database_url;
        let channels = [db::dispatcher::OUTBOX_CHANNEL];
        Listener::connect(url, "sisyphus dispatcher (listen)", &channels).await
    }

    async fn pass(&self) -> db::Result<Pass> {
        let pass = deliver_due(
            &self.pool,
            &self.senders,
            &self.config.settings,
            self.config.batch,
        )
        .await?;
        self.metrics.record(&pass);
        Ok(pass)
    }

    /// Serves the metrics on `tasks` until `shutdown`; the backlog is counted at each scrape.
    async fn serve_metrics(
        &self,
        addr: std::net::SocketAddr,
        shutdown: &CancellationToken,
        tasks: &TaskTracker,
    ) {
        let (pool, metrics) = (self.pool.clone(), self.metrics.clone());
        let render = move || {
            let (pool, metrics) = (pool.clone(), metrics.clone());
            async move {
                let backlog = db::dispatcher::backlog(&pool).await.ok();
                metrics.render(backlog)
            }
        };
        match sisyphus_metrics::serve(addr, render, shutdown.clone(), tasks).await {
            Ok(bound) => tracing::info!("metrics on http://{bound}/metrics"),
            Err(e) => tracing::error!("cannot serve metrics on {addr}: {e}"),
        }
    }
}

/// Waits for a NOTIFY; without a listener (or when it fails), never returns.
async fn wait(listener: &mut Option<Listener>) {
    match listener {
        Some(l) => {
            if l.recv().await.is_err() {
                // The listener reconnects on the next recv; the poll covers the gap.
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}
