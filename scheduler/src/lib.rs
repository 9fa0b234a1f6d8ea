//! The Sisyphus scheduler: turns schedules into pending runs.
//!
//! # Layout
//!
//! - [`plan`]: which runs a due job gets at a given instant — a pure function holding every
//!   scheduling rule (window, iterations, TTL, catch-up, jitter, `all` fan-out).
//! - [`tick`]: one tick in one transaction: lock due jobs (`FOR UPDATE SKIP LOCKED` over the
//!   partial index `jobs_due`), insert their runs in one statement, move their schedules on,
//!   make runs of waiting backfill slots where their jobs have room, expire pending runs whose
//!   TTL passed, wake guardians with NOTIFY; then, in a transaction of its own,
//!   [`settle_overlaps`]: the overlap policies of the scheduled runs that came due.
//! - [`Scheduler`] (this file): leadership and the loop. One instance leads, holding a session
//!   advisory lock on its own connection; any number stand by, trying the lock every second, so
//!   a standby takes over about a second after the leader's session ends (kill -9 included:
//!   PostgreSQL ends the session when the socket closes). The leader wakes on NOTIFY
//!   `sisyphus_jobs` (definitions changed) and at least every `interval`.
//! - [`calendars`]: the calendars jobs' `skip_on`/`only_on` name, kept between ticks and read
//!   again when their version moves.
//! - [`metrics`]: counters served as Prometheus text on `--metrics ADDR`.
//! - [`alerts`]: each tick, the notifications that are about time rather than an outcome —
//!   runs past `warn_after` (slow) and jobs past `max_health_age` (missed, the dead-man's switch).
//! - [`retention`]: the leader's housekeeping about once a minute — daily log partitions ahead
//!   of time, old partitions dropped, old finished runs deleted.
//!
//! Every statement the scheduler runs is a function of `sisyphus_db::scheduler` (the SQL in
//! `sql/scheduler/`); this crate holds no SQL and the planner none of the database.
//!
//! The scheduler never depends on the guardian or the dispatcher; they meet only in rows.

pub mod alerts;
pub mod calendars;
pub mod data;
pub mod metrics;
pub mod plan;
pub mod retention;
pub mod tick;

use std::time::Duration;

use sisyphus_db::scheduler as db;
use sisyphus_db::{Listener, PgConnection};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use alerts::raise_alerts;
pub use plan::PlanSettings;
pub use retention::{housekeep, Housekeeping, Retention};
pub use tick::{settle_overlaps, tick, tick_with, TickReport};

/// The advisory lock key that elects the leader ("SISYPHUS" in ASCII).
pub const LEADER_LOCK: i64 = 0x5349_5359_5048_5553;

/// How a scheduler runs.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    /// This instance's name, recorded in `runs.created_by`.
    pub name: String,
    /// The longest wait between ticks.
    pub interval: Duration,
    /// How often a standby tries to take over.
    pub standby_poll: Duration,
    pub plan: PlanSettings,
    pub retention: Retention,
    /// Where to serve Prometheus metrics; None: nowhere.
    pub metrics: Option<std::net::SocketAddr>,
}

impl Config {
    /// Defaults: tick every second, try for leadership every second, 5 s look-ahead.
    pub fn new(database_url: impl Into<String>) -> Config {
        Config {
            database_url: database_url.into(),
            name: default_name(),
            interval: Duration::from_secs(1),
            standby_poll: Duration::from_secs(1),
            plan: PlanSettings::default(),
            retention: Retention::default(),
            metrics: None,
        }
    }

    /// Refuses settings that cannot work, naming the flag: zero or absurd intervals (a busy loop
    /// or a scheduler that never ticks), a look-ahead past what a run's TTL could bear, retention
    /// shorter than the partitions it drops.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |flag: &str, why: String| Err(Error::Config(format!("--{flag}: {why}")));
        let within = |d: Duration, min: Duration, max: Duration| d >= min && d <= max;
        let (ms, h, day) = (
            Duration::from_millis(1),
            Duration::from_secs(3600),
            Duration::from_secs(86_400),
        );
        if !within(self.interval, 10 * ms, h) {
            return bad(
                "interval",
                format!("{:?} is not within 10ms to 1h", self.interval),
            );
        }
        if !within(self.standby_poll, 10 * ms, h) {
            return bad(
                "standby-poll",
                format!("{:?} is not within 10ms to 1h", self.standby_poll),
            );
        }
        if self.plan.lookahead > h {
            return bad(
                "lookahead",
                format!("{:?} is longer than an hour", self.plan.lookahead),
            );
        }
        if !within(self.retention.keep_logs, day, 100 * 365 * day) {
            return bad(
                "keep-logs",
                format!(
                    "{:?} is not within 1 day (logs go a day's partition at a time) to 100 years",
                    self.retention.keep_logs
                ),
            );
        }
        if !within(self.retention.keep_runs, h, 100 * 365 * day) {
            return bad(
                "keep-runs",
                format!(
                    "{:?} is not within 1h to 100 years",
                    self.retention.keep_runs
                ),
            );
        }
        if !within(self.retention.keep_audit, day, 100 * 365 * day) {
            return bad(
                "keep-audit",
                format!(
                    "{:?} is not within 1 day to 100 years",
                    self.retention.keep_audit
                ),
            );
        }
        if self.name.is_empty() || self.name.len() > 200 || self.name.contains('\0') {
            return bad(
                "name",
                "must be 1 to 200 characters without NUL".to_string(),
            );
        }
        Ok(())
    }
}

/// `scheduler@HOST:PID`.
pub fn default_name() -> String {
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_string());
    format!("scheduler@{host}:{}", std::process::id())
}

/// What ends a scheduler for good (anything else it retries).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database refused, or could not be reached.
    #[error(transparent)]
    Db(#[from] sisyphus_db::Error),
    /// A setting that cannot work, with the flag named.
    #[error("{0}")]
    Config(String),
}

/// The scheduler service.
pub struct Scheduler {
    config: Config,
    metrics: std::sync::Arc<metrics::Metrics>,
}

impl Scheduler {
    /// Checks the configuration and the schema.
    pub async fn new(config: Config) -> Result<Scheduler, Error> {
        config.validate()?;
        let pool = sisyphus_db::pool(&config.database_url, "sisyphus scheduler", 1).await?;
        sisyphus_db::check_schema(&pool).await?;
        pool.close().await;
        Ok(Scheduler {
            config,
            metrics: std::sync::Arc::default(),
        })
    }

    /// Runs until `shutdown` is cancelled: stands by, leads when it can, and goes back to
    /// standing by (after a pause) whenever its connection fails. Returns once the metrics
    /// server (the one task it starts) has stopped too.
    pub async fn run(self, shutdown: CancellationToken) {
        let tasks = TaskTracker::new();
        if let Some(addr) = self.config.metrics {
            self.serve_metrics(addr, &shutdown, &tasks).await;
        }
        while !shutdown.is_cancelled() {
            match self.lead_when_possible(&shutdown).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!("scheduler connection failed: {e}; standing by again");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(self.config.standby_poll) => {}
                    }
                }
            }
        }
        tasks.close();
        tasks.wait().await;
        tracing::info!(name = %self.config.name, "scheduler stopped");
    }

    /// Serves the metrics on `tasks` until `shutdown`; the queue depth is counted at each scrape.
    async fn serve_metrics(
        &self,
        addr: std::net::SocketAddr,
        shutdown: &CancellationToken,
        tasks: &TaskTracker,
    ) {
        let url = &self.config.database_url;
        let pool = match sisyphus_db::pool(url, "sisyphus scheduler metrics", 1).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("metrics: cannot connect: {e}");
                return;
            }
        };
        let metrics = self.metrics.clone();
        let render = move || {
            let (pool, metrics) = (pool.clone(), metrics.clone());
            async move {
                let depth = db::queue_depth(&pool).await.ok();
                let backlog = sisyphus_db::dispatcher::backlog(&pool).await.ok();
                metrics.render(depth, backlog)
            }
        };
        match sisyphus_metrics::serve(addr, render, shutdown.clone(), tasks).await {
            Ok(bound) => tracing::info!("metrics on http://{bound}/metrics"),
            Err(e) => tracing::error!("cannot serve metrics on {addr}: {e}"),
        }
    }

    async fn lead_when_possible(&self, shutdown: &CancellationToken) -> sisyphus_db::Result<()> {
        let mut conn = db::connect(&self.config.database_url, "sisyphus scheduler").await?;
        if !self.wait_for_leadership(&mut conn, shutdown).await? {
            return Ok(());
        }
        tracing::info!(name = %self.config.name, "scheduler is the leader");
        self.metrics.leader.set(1);
        let led = self.lead(&mut conn, shutdown).await;
        self.metrics.leader.set(0);
        led
    }

    /// Ticks while leading, until `shutdown` or a connection error.
    async fn lead(
        &self,
        conn: &mut PgConnection,
        shutdown: &CancellationToken,
    ) -> sisyphus_db::Result<()> {
        let url = &self.config.database_url;
        let mut listener =
            Listener::connect(url, "sisyphus scheduler (listen)", &[db::JOBS_CHANNEL]).await?;
        let mut last_housekeeping: Option<std::time::Instant> = None;
        let mut last_overdue_check: Option<std::time::Instant> = None;
        let mut calendars = calendars::Calendars::default();
        let mut settled = sisyphus_db::scheduler::Settled::default();
        loop {
            let started = std::time::Instant::now();
            // Pauses that have ended first, so that their jobs are planned in this tick (their
            // catch-up policy decides about the slots they missed, as for any resume).
            let resumed = db::resume_ended_pauses(&mut *conn).await?;
            if resumed > 0 {
                tracing::info!(resumed, "pauses ended");
            }
            let report = tick_with(
                conn,
                None,
                &self.config.plan,
                &self.config.name,
                &mut calendars,
            )
            .await?;
            settled = settle_overlaps(conn, settled).await?;
            if settled.skipped + settled.replaced > 0 {
                tracing::debug!(
                    skipped = settled.skipped,
                    replaced = settled.replaced,
                    "overlap policies"
                );
            }
            self.metrics.tick(&report, started.elapsed());
            let overdue = last_overdue_check.is_none_or(|t| t.elapsed() >= alerts::OVERDUE_EVERY);
            if overdue {
                last_overdue_check = Some(std::time::Instant::now());
            }
            let alerts = raise_alerts(conn, overdue).await?;
            self.metrics.alerts(alerts);
            if last_housekeeping.is_none_or(|t| t.elapsed() >= self.config.retention.every) {
                let done = housekeep(conn, &self.config.retention).await?;
                if done != Housekeeping::default() {
                    tracing::info!(?done, "housekeeping");
                }
                last_housekeeping = Some(std::time::Instant::now());
            }
            if report.pending + report.missed + report.skipped + report.expired + report.lost > 0 {
                tracing::debug!(?report, "tick");
            }
            if report.full {
                continue; // more due jobs wait: no pause
            }
            tokio::select! {
                _ = shutdown.cancelled() => {
                    let _ = db::stop_leading(&mut *conn, LEADER_LOCK).await;
                    return Ok(());
                }
                woken = listener.recv() => {
                    if woken.is_err() {
                        // The listener reconnects by itself; meanwhile, poll.
                        tokio::time::sleep(self.config.interval).await;
                    }
                }
                _ = tokio::time::sleep(self.config.interval) => {}
            }
        }
    }

    /// Stands by until the leader lock is ours (true) or shutdown (false).
    async fn wait_for_leadership(
        &self,
        conn: &mut PgConnection,
        shutdown: &CancellationToken,
    ) -> sisyphus_db::Result<bool> {
        loop {
            if db::try_lead(&mut *conn, LEADER_LOCK).await? {
                return Ok(true);
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(false),
                _ = tokio::time::sleep(self.config.standby_poll) => {}
            }
        }
    }
}
