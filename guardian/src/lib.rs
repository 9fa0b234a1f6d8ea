//! The Sisyphus guardian: one per host. Claims runs meant for its host and supervises each as a
//! subprocess until its outcome is recorded.
//!
//! # Layout
//!
//! - [`Guardian`] (this file): registration, the claim loop, control dispatch, shutdown.
//! - `lease`: the heartbeat, which also renews the leases of this host's runs, and self-fencing:
//!   a guardian that cannot renew kills its runs before their lease can expire.
//! - `supervisor`: one run — locks, start, then a `Supervision`: output, maxtime, control.
//! - `start`: what a run starts with (user, command line, environment, protocol pipe, cgroup
//!   and limits), and the signals its processes get.
//! - `users`: which users runs may run as on this host.
//! - `run_log`: one run's log lines — numbered, capped, to the recorder and the local file.
//! - `llsisyphus`: the log lines of an unmodified Python ll.sisyphus job (`format =
//!   "ll.sisyphus"`) read as tagged lines with their task stack, time and result.
//! - `outcome`: how a run ended — classification, and the one way outcomes are written.
//! - `process`: spawning in a new session that dies with the guardian; signals to the group; the
//!   job's clean environment.
//! - `secrets`: a job's `{ secret = "NAME" }` resolved on this host at start (`--secrets-dir`,
//!   `SISYPHUS_SECRET_NAME`), and the mask that replaces the values with `***` in what the run
//!   prints and in its outcome.
//! - `cgroup`: a cgroup v2 per run where the host has one writable: kill, freeze, leftovers.
//! - `output`: bounded line reading from pipes.
//! - `recorder`: every run's lines, pids and outcomes written in batches (group commit).
//! - `metrics`: counters and histograms, served as Prometheus text on `--metrics ADDR`.
//! - local log files (ll.sisyphus' format, links, retention) come from `sisyphus-logfile`,
//!   shared with the job SDK.
//! - `spool`: outcomes and log lines kept on disk while the database is unreachable.
//!
//! The guardian never writes job definitions or creates runs other than through
//! `sisyphus.finish_run` (retries); it never talks to the scheduler except through rows.

pub mod cgroup;
pub mod lease;
pub mod llsisyphus;
pub mod metrics;
pub mod outcome;
pub mod output;
pub mod process;
pub mod recorder;
mod run_log;
pub mod secrets;
pub mod spool;
mod start;
mod supervisor;
mod users;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sisyphus_db::guardian::{self as queries, Claimed, Notice, Registration};
use sisyphus_db::Listener;
use sisyphus_db::PgPool;
use sisyphus_model::RunId;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use run_log::LogCap;
pub use supervisor::{Control, Executor};
pub use users::UserPolicy;

use crate::outcome::Outcome;
use crate::recorder::Recorder;
use crate::spool::Spool;
use crate::supervisor::Context;

/// How a guardian runs.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    /// The host name runs are recorded under (default: the machine's host name).
    pub name: String,
    /// Pools this host serves.
    pub pools: Vec<String>,
    /// Most runs at once on this host.
    pub capacity: usize,
    /// Base directory of the local log files.
    pub log_dir: PathBuf,
    /// Where outcomes and log lines wait while the database is unreachable.
    pub spool_dir: PathBuf,
    /// How long a claim stays valid without renewal.
    pub lease: Duration,
    /// How often the heartbeat renews it.
    pub heartbeat: Duration,
    /// Fallback polling, for notifications lost across reconnects.
    pub poll: Duration,
    /// The longest the safety-net poll stretches to while nothing happens: doubled from `poll`
    /// after each poll that found nothing due with no run in hand, back to `poll` at the next
    /// notification, claim or run's end.
    pub idle_poll: Duration,
    /// Between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// On shutdown, how long running runs may go on before they are interrupted.
    pub drain_timeout: Duration,
    pub users: UserPolicy,
    pub log_cap: LogCap,
    pub executor: Executor,
    /// Where to serve Prometheus metrics (`GET /metrics`); None: nowhere.
    pub metrics: Option<std::net::SocketAddr>,
    /// Put each run in its own cgroup where possible (below `cgroup_root`, or the guardian's own
    /// cgroup when None); false: process groups alone.
    pub cgroups: bool,
    pub cgroup_root: Option<PathBuf>,
    /// Variables of the guardian's environment that jobs get too (beside PATH, HOME, USER,
    /// LOGNAME, LANG, TZ).
    pub pass_env: Vec<String>,
    /// A group that may read the local log files too (else their owner alone; the spool is
    /// always its owner's alone).
    pub log_group: Option<u32>,
    /// Where jobs' secrets are found, one file per name (0600 or 0400, of the guardian's user);
    /// names not found there come from the guardian's `SISYPHUS_SECRET_<NAME>` variables.
    pub secrets_dir: Option<PathBuf>,
    /// One-shot (`--once`): claim what is due for this host once (up to `capacity`), supervise
    /// it to the end with the usual leases and heartbeats, check that every outcome is recorded,
    /// and stop ([`Report`]).
    pub once: bool,
    /// How runs' processes are made (`--spawn`; `fork` only to measure against).
    pub spawn: process::Spawn,
}

impl Config {
    pub fn new(database_url: impl Into<String>) -> Config {
        let name = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".to_string());
        Config {
            database_url: database_url.into(),
            name,
            pools: Vec::new(),
            capacity: 4,
            log_dir: PathBuf::from("sisyphus-logs"),
            spool_dir: PathBuf::from("sisyphus-spool"),
            lease: Duration::from_secs(30),
            heartbeat: Duration::from_secs(5),
            poll: Duration::from_secs(2),
            idle_poll: Duration::from_secs(5),
            grace: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(30),
            users: UserPolicy::default(),
            log_cap: LogCap::default(),
            executor: Executor::Process,
            metrics: None,
            cgroups: true,
            cgroup_root: None,
            pass_env: Vec::new(),
            log_group: None,
            secrets_dir: None,
            once: false,
            spawn: process::Spawn::default(),
        }
    }

    /// Refuses settings that cannot work, naming the flag: a lease shorter than three heartbeats
    /// (the guardian would fence its own runs), zero intervals (busy loops), names and pools that
    /// jobs could not name, a log directory that cannot be written.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |flag: &str, why: String| Err(Error::Config(format!("--{flag}: {why}")));
        if !sisyphus_model::spec::is_simple_name(&self.name) {
            return bad(
                "name",
                format!(
                    "`{}` must be 1 to 200 letters, digits, `_`, `-` or `.`",
                    self.name
                ),
            );
        }
        if let Some(p) = self
            .pools
            .iter()
            .find(|p| !sisyphus_model::spec::is_simple_name(p))
        {
            return bad(
                "pools",
                format!("`{p}` must be 1 to 200 letters, digits, `_`, `-` or `.`"),
            );
        }
        if self.capacity == 0 || self.capacity > 100_000 {
            return bad(
                "capacity",
                format!("{} is not within 1 to 100000", self.capacity),
            );
        }
        let min_beat = Duration::from_millis(100);
        if self.heartbeat < min_beat {
            return bad(
                "heartbeat",
                format!("{:?} is shorter than 100ms", self.heartbeat),
            );
        }
        if self.heartbeat > Duration::from_secs(24 * 3600) {
            return bad(
                "heartbeat",
                format!("{:?} is longer than a day", self.heartbeat),
            );
        }
        if self.lease < self.heartbeat * 3 {
            return bad(
                "lease",
                format!(
                    "{:?} must be at least 3 × the heartbeat ({:?}): a guardian fences its runs after ⅔ of the lease without renewal",
                    self.lease, self.heartbeat
                ),
            );
        }
        if self.lease > Duration::from_secs(7 * 24 * 3600) {
            return bad("lease", format!("{:?} is longer than 7 days", self.lease));
        }
        if self.poll < Duration::from_millis(10) {
            return bad("poll", format!("{:?} is shorter than 10ms", self.poll));
        }
        if self.grace > Duration::from_secs(24 * 3600) {
            return bad("grace", format!("{:?} is longer than a day", self.grace));
        }
        if self.drain_timeout > Duration::from_secs(7 * 24 * 3600) {
            return bad(
                "drain-timeout",
                format!("{:?} is longer than 7 days", self.drain_timeout),
            );
        }
        if let Some(k) = self.pass_env.iter().find(|k| {
            k.is_empty() || k.contains('=') || k.contains('\0') || k.starts_with("SISYPHUS_")
        }) {
            return bad(
                "pass-env",
                format!("`{k}` is not a variable name a job may get"),
            );
        }
        if let Some(dir) = &self.secrets_dir {
            if let Err(why) = secrets::check_dir(dir) {
                return bad("secrets-dir", why);
            }
        }
        let access = sisyphus_logfile::Access {
            group: self.log_group,
        };
        if let Err(e) = writable_dir(access, &self.log_dir) {
            return bad("log-dir", format!("{}: {e}", self.log_dir.display()));
        }
        Ok(())
    }
}

/// Creates `dir` (for its owner alone, or with `access`'s group) and proves it can be written.
fn writable_dir(access: sisyphus_logfile::Access, dir: &std::path::Path) -> std::io::Result<()> {
    access.create_dir(dir)?;
    let probe = dir.join(format!(".sisyphus-probe-{}", std::process::id()));
    access.create_file(&probe)?;
    std::fs::remove_file(&probe)
}

/// What stops a guardian from starting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Connecting, the schema check, registering: anything the database layer failed with.
    #[error(transparent)]
    Client(#[from] sisyphus_client::Error),
    #[error("a live guardian is already registered as host `{0}`; choose another --name, or wait until its heartbeat is older than the lease")]
    NameTaken(String),
    #[error("spool directory {0}: {1}")]
    Spool(PathBuf, std::io::Error),
    #[error("{0}")]
    Config(String),
}

/// What a guardian did, as far as a one-shot guardian (`Config::once`) reports it; a daemon's
/// report is empty.
#[derive(Debug, Default)]
pub struct Report {
    /// The outcomes of the runs it claimed, as it decided them (one-shot only).
    pub outcomes: Vec<Outcome>,
    /// Why not every claimed run is recorded as decided: claiming failed, an outcome waits in the
    /// spool, the database holds another status, a supervisor failed (one-shot only). Empty:
    /// everything claimed was recorded — or nothing was due.
    pub problems: Vec<String>,
}

/// Under a backlog, how long a freed place waits for more to free before it is claimed for.
const BATCH_WAIT: Duration = Duration::from_millis(10);

/// Runs in progress on this host: their control channels.
type Active = Arc<Mutex<HashMap<RunId, mpsc::Sender<Control>>>>;

/// The guardian service.
pub struct Guardian {
    config: Config,
    pool: PgPool,
    instance: String,
    spool: Spool,
    metrics: Arc<metrics::Metrics>,
    cgroups: Option<cgroup::Cgroups>,
    /// The host was drained when it registered (the heartbeat keeps this up to date after).
    drained: bool,
}

impl Guardian {
    /// Connects, checks the schema, registers the host (refusing a name a live guardian holds),
    /// writes what the spool holds from an earlier life, and marks runs a previous life of this
    /// host left active as lost.
    pub async fn start(config: Config) -> Result<Guardian, Error> {
        config.validate()?;
        let cgroups = match config.cgroups {
            true => cgroup::Cgroups::open(config.cgroup_root.as_deref(), &config.name)
                .map_err(Error::Config)?,
            false => None,
        };
        if config.cgroups && cgroups.is_none() {
            tracing::warn!(
                "no writable cgroup v2 directory found; runs are held by process groups alone \
                 (a process that calls setsid can outlive its run)"
            );
        }
        // Give up on an unreachable database after 3 s: outcomes and lines go to the spool then.
        let pool = sisyphus_db::pool_with_timeout(
            &config.database_url,
            "sisyphus guardian",
            (config.capacity as u32).clamp(2, 8) + 3,
            Duration::from_secs(3),
        )
        .await?;
        sisyphus_db::check_schema(&pool).await?;
        let spool = Spool::open(&config.spool_dir)
            .map_err(|e| Error::Spool(config.spool_dir.clone(), e))?;
        let instance = format!(
            "{}-{}",
            std::process::id(),
            Utc::now().timestamp_nanos_opt().unwrap_or(0)
        );
        let registration = Registration {
            name: &config.name,
            pools: &config.pools,
            capacity: config.capacity as i32,
            pid: std::process::id() as i32,
            version: env!("CARGO_PKG_VERSION"),
            instance: &instance,
            lease: config.lease,
            isolation: cgroup::isolation(cgroups.as_ref()),
        };
        let Some(drained) = queries::register(&pool, &registration).await? else {
            return Err(Error::NameTaken(config.name.clone()));
        };
        let metrics = Arc::<metrics::Metrics>::default();
        let replayed = spool.replay(&pool, &metrics, None).await;
        if replayed > 0 {
            tracing::info!("wrote {replayed} spooled entries from before the restart");
        }
        let orphans = queries::mark_orphans_lost(&pool, &config.name).await?;
        if orphans > 0 {
            tracing::warn!("{orphans} run(s) of an earlier life of this guardian marked lost");
        }
        tracing::info!(
            host = %config.name,
            pools = ?config.pools,
            capacity = config.capacity,
            isolation = cgroup::isolation(cgroups.as_ref()).as_str(),
            cgroups = ?cgroups.as_ref().map(|c| c.base().display().to_string()),
            "guardian registered"
        );
        Ok(Guardian {
            config,
            pool,
            instance,
            spool,
            metrics,
            cgroups,
            drained,
        })
    }

    /// Claims and supervises runs until `shutdown`; then stops claiming, lets running runs finish
    /// for up to `drain_timeout`, interrupts the rest, and returns when every outcome is recorded
    /// or spooled and every task it started has ended.
    ///
    /// One-shot (`Config::once`): claims once, supervises what it claimed to its end (or until
    /// `shutdown`, then as above), and reports whether every outcome is recorded as decided.
    pub async fn run(self, shutdown: CancellationToken) -> Report {
        let tasks = TaskTracker::new();
        let (recorder, recording) =
            Recorder::new(self.pool.clone(), self.spool.clone(), self.metrics.clone());
        tasks.spawn(recording);
        let ctx = Arc::new(Context {
            pool: self.pool.clone(),
            recorder,
            host: self.config.name.clone(),
            log_dir: self.config.log_dir.clone(),
            grace: self.config.grace,
            cap: self.config.log_cap,
            users: self.config.users.clone(),
            executor: self.config.executor,
            metrics: self.metrics.clone(),
            cgroups: self.cgroups.clone(),
            base_env: process::base_environment(&self.config.pass_env),
            secrets: secrets::SecretSource::from_environment(self.config.secrets_dir.clone()),
            log_access: sisyphus_logfile::Access {
                group: self.config.log_group,
            },
            tasks: tasks.clone(),
            spawn: self.config.spawn,
        });
        let active: Active = Arc::default();
        let stop_metrics = CancellationToken::new();
        if let Some(addr) = self.config.metrics {
            self.serve_metrics(addr, &ctx, &active, &stop_metrics).await;
        }
        let state = Arc::new(lease::State {
            metrics: ctx.metrics.clone(),
            draining: self.drained.into(),
            ..lease::State::default()
        });
        let stop_lease = CancellationToken::new();
        tasks.spawn(lease::run(
            self.pool.clone(),
            self.config.clone(),
            self.instance.clone(),
            state.clone(),
            active.clone(),
            self.spool.clone(),
            stop_lease.clone(),
        ));
        let mut runs: JoinSet<Outcome> = JoinSet::new();
        let mut report = Report::default();
        if self.config.once {
            self.claim_once(&ctx, &active, &state, &mut runs, &shutdown, &mut report)
                .await;
        } else {
            self.claim_loop(&ctx, &active, &state, &mut runs, &shutdown)
                .await;
        }
        self.drain(&active, &mut runs, &mut report).await;
        stop_lease.cancel();
        stop_metrics.cancel();
        // The recorder ends with the last `Recorder`: its last batch is written before this.
        drop(ctx);
        tasks.close();
        tasks.wait().await;
        if self.config.once && !report.outcomes.is_empty() {
            self.check_recorded(&mut report).await;
        }
        let _ = queries::deregister(&self.pool, &self.config.name, &self.instance).await;
        if let Some(cgroups) = &self.cgroups {
            cgroups.remove();
        }
        tracing::info!(host = %self.config.name, "guardian stopped");
        report
    }

    /// One-shot: claims what is due for this host now (up to its capacity) and supervises it to
    /// its end, carrying out control requests meanwhile; returns early on `shutdown` (the drain
    /// then goes on as a daemon's). Nothing due, or a drained host: returns at once.
    async fn claim_once(
        &self,
        ctx: &Arc<Context>,
        active: &Active,
        state: &Arc<lease::State>,
        runs: &mut JoinSet<Outcome>,
        shutdown: &CancellationToken,
        report: &mut Report,
    ) {
        if !state.may_claim() {
            tracing::info!(host = %self.config.name, "the host is drained: nothing claimed");
            return;
        }
        let mut listener = self.listen().await;
        match self.claim(self.config.capacity).await {
            Ok(claimed) if claimed.is_empty() => {
                tracing::info!(host = %self.config.name, "nothing due");
                return;
            }
            Ok(claimed) => {
                ctx.metrics.claimed(claimed.len());
                tracing::info!(ids = ?claimed.iter().map(|c| c.id.0).collect::<Vec<_>>(), "claimed");
                for run in claimed {
                    self.launch(run, ctx, active, runs);
                }
            }
            Err(e) => {
                report.problems.push(format!("claiming failed: {e}"));
                return;
            }
        }
        while !runs.is_empty() {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                done = runs.join_next() => {
                    if let Some(done) = done {
                        self.ended(active, done, report);
                    }
                }
                note = recv(&mut listener, &self.config.name) => {
                    if note == Some(Notice::Control) {
                        self.dispatch_requests(active).await;
                    }
                }
                _ = tokio::time::sleep(self.config.poll) => self.dispatch_requests(active).await,
            }
        }
    }

    /// A supervisor ended: its run is no longer active; a one-shot guardian keeps its outcome
    /// for the report (a daemon keeps nothing: it runs for months).
    fn ended(
        &self,
        active: &Active,
        done: Result<Outcome, tokio::task::JoinError>,
        report: &mut Report,
    ) {
        match done {
            Ok(outcome) => {
                active_remove(active, outcome.run);
                if self.config.once {
                    report.outcomes.push(outcome);
                }
            }
            Err(e) => {
                tracing::error!("a run's supervisor failed: {e}");
                if self.config.once {
                    report
                        .problems
                        .push(format!("a run's supervisor failed: {e}"));
                }
            }
        }
    }

    /// One-shot, once every outcome went to the recorder and the recorder has stopped: whether
    /// the database holds each as decided. What is not is a problem of the report, with why.
    async fn check_recorded(&self, report: &mut Report) {
        let spooled = self.spool.files_waiting();
        if spooled > 0 {
            report.problems.push(format!(
                "{spooled} spool entr{} in {} could not be written to the database; the next \
                 start of a guardian with this --spool-dir writes them",
                if spooled == 1 { "y" } else { "ies" },
                self.config.spool_dir.display()
            ));
        }
        let ids: Vec<RunId> = report.outcomes.iter().map(|o| o.run).collect();
        let stored = match queries::run_statuses(&self.pool, &ids).await {
            Ok(rows) => rows.into_iter().collect::<HashMap<_, _>>(),
            Err(e) => {
                report
                    .problems
                    .push(format!("cannot check that the outcomes are recorded: {e}"));
                return;
            }
        };
        for o in &report.outcomes {
            match stored.get(&o.run) {
                Some(s) if *s == o.status => {}
                Some(s) => report.problems.push(format!(
                    "run {} ended {} but is recorded as {s}",
                    o.run, o.status
                )),
                None => report
                    .problems
                    .push(format!("run {} ended {} but is gone", o.run, o.status)),
            }
        }
    }

    async fn claim_loop(
        &self,
        ctx: &Arc<Context>,
        active: &Active,
        state: &Arc<lease::State>,
        runs: &mut JoinSet<Outcome>,
        shutdown: &CancellationToken,
    ) {
        let mut listener = self.listen().await;
        let mut next_due: Option<DateTime<Utc>> = None;
        // Under a backlog (the last claim filled every free place) a claim waits for a quarter of
        // the capacity to be free, or BATCH_WAIT after a place first freed: a claim's cost is
        // mostly per statement, so one claim of 8 costs little more than one of 1 (issue 17).
        // Without a backlog every free place is claimed for at once (start latency).
        let floor = (self.config.capacity / 4).max(1);
        let mut backlog = false;
        let mut freed_at: Option<tokio::time::Instant> = None;
        // Woken by the safety-net poll (not by a notification, a due run or a run's end): probe
        // before claiming, so that an idle fleet costs the database microseconds per poll.
        let mut polled = false;
        let mut polls = 0u32;
        // The poll stretches while the guardian is idle (see `Config::idle_poll`): an idle
        // fleet's probes were most of its database load after its beats (issue 17).
        let mut poll = self.config.poll;
        loop {
            let free = self.config.capacity.saturating_sub(runs.len());
            if free == 0 || !state.may_claim() {
                freed_at = None;
                if free == 0 {
                    next_due = None;
                }
            } else {
                let since = *freed_at.get_or_insert_with(tokio::time::Instant::now);
                let hold = backlog && free < floor && since.elapsed() < BATCH_WAIT;
                if !hold {
                    freed_at = None;
                    if !polled || self.due_now().await {
                        match self.claim(free).await {
                            Ok(claimed) => {
                                if !claimed.is_empty() {
                                    poll = self.config.poll;
                                }
                                ctx.metrics.claimed(claimed.len());
                                tracing::debug!(free, ids = ?claimed.iter().map(|c| c.id.0).collect::<Vec<_>>(), "claimed");
                                let full = claimed.len() == free;
                                backlog = full;
                                for run in claimed {
                                    self.launch(run, ctx, active, runs);
                                }
                                next_due = if full { None } else { self.next_due().await };
                            }
                            Err(e) => tracing::warn!("claiming failed: {e}"),
                        }
                    } else if runs.is_empty() {
                        poll = stretch(poll, &self.config);
                    }
                }
            }
            let wait = wait_until(next_due, poll);
            let held_until = freed_at.map(|since| since + BATCH_WAIT);
            polled = false;
            tokio::select! {
                _ = shutdown.cancelled() => return,
                done = runs.join_next(), if !runs.is_empty() => {
                    poll = self.config.poll;
                    let mut nothing = Report::default();
                    if let Some(done) = done {
                        self.ended(active, done, &mut nothing);
                    }
                    // Take every other run that has ended too, then claim for all of them at once.
                    while let Some(done) = runs.try_join_next() {
                        self.ended(active, done, &mut nothing);
                    }
                }
                note = recv(&mut listener, &self.config.name) => {
                    poll = self.config.poll;
                    // None: the listener lost its connection; what was sent meanwhile is lost.
                    if note != Some(Notice::Runs) {
                        self.dispatch_requests(active).await;
                    }
                }
                _ = tokio::time::sleep_until(held_until.unwrap_or_else(tokio::time::Instant::now)), if held_until.is_some() => {}
                _ = tokio::time::sleep(wait) => {
                    polled = wait == poll;
                    // Polling is the safety net: for control requests too, every fifth time
                    // (a request's NOTIFY is lost only with the listener's connection, and then
                    // they are looked for at once, above).
                    polls = (polls + 1) % 5;
                    if !polled || polls == 0 {
                        self.dispatch_requests(active).await;
                    }
                }
            }
        }
    }

    /// Serves the metrics until `stop` (a bind failure is logged, not fatal).
    async fn serve_metrics(
        &self,
        addr: std::net::SocketAddr,
        ctx: &Arc<Context>,
        active: &Active,
        stop: &CancellationToken,
    ) {
        let (metrics, active) = (ctx.metrics.clone(), active.clone());
        let render = move || {
            let in_flight = active.lock().map(|m| m.len()).unwrap_or(0);
            let text = metrics.render(in_flight);
            async move { text }
        };
        match sisyphus_metrics::serve(addr, render, stop.clone(), &ctx.tasks).await {
            Ok(bound) => tracing::info!("metrics on http://{bound}/metrics"),
            Err(e) => tracing::error!("cannot serve metrics on {addr}: {e}"),
        }
    }

    async fn listen(&self) -> Option<Listener> {
        let url = &self.config.database_url;
        Listener::connect(url, "sisyphus guardian (listen)", queries::CHANNELS)
            .await
            .ok()
    }

    async fn claim(&self, free: usize) -> sisyphus_db::Result<Vec<Claimed>> {
        if free == 0 {
            return Ok(Vec::new());
        }
        let config = &self.config;
        let mut conn = self.pool.acquire().await?;
        queries::claim(
            &mut conn,
            &config.name,
            &config.pools,
            free as i32,
            config.lease,
        )
        .await
    }

    /// Whether something is due for this host (an error says yes: the claim will tell).
    async fn due_now(&self) -> bool {
        queries::due_now(&self.pool, &self.config.name, &self.config.pools)
            .await
            .unwrap_or(true)
    }

    async fn next_due(&self) -> Option<DateTime<Utc>> {
        queries::next_due(&self.pool, &self.config.name, &self.config.pools)
            .await
            .ok()
            .flatten()
    }

    fn launch(
        &self,
        run: Claimed,
        ctx: &Arc<Context>,
        active: &Active,
        runs: &mut JoinSet<Outcome>,
    ) {
        let (tx, rx) = mpsc::channel(8);
        if let Ok(mut map) = active.lock() {
            map.insert(run.id, tx);
        }
        tracing::debug!(run = %run.id, job = %format!("{}/{}", run.project, run.name), "starting");
        runs.spawn(
            ctx.tasks
                .track_future(supervisor::supervise(run, ctx.clone(), rx)),
        );
    }

    /// Hands control requests waiting in the database to the runs' supervisors.
    async fn dispatch_requests(&self, active: &Active) {
        let Ok(requests) = queries::requests(&self.pool, &self.config.name).await else {
            return;
        };
        for request in requests {
            let run = request.run;
            match request.action {
                Ok(action) => send(active, run, Control::from(action)).await,
                Err(e) => tracing::warn!(run = %run, "ignoring a control request: {e}"),
            }
        }
    }

    /// Waits for running runs up to the drain timeout, then interrupts them and waits for their
    /// outcomes.
    async fn drain(&self, active: &Active, runs: &mut JoinSet<Outcome>, report: &mut Report) {
        if runs.is_empty() {
            return;
        }
        tracing::info!(
            "waiting up to {:?} for {} run(s) to finish",
            self.config.drain_timeout,
            runs.len()
        );
        let deadline = tokio::time::Instant::now() + self.config.drain_timeout;
        while !runs.is_empty() {
            tokio::select! {
                done = runs.join_next() => {
                    if let Some(done) = done {
                        self.ended(active, done, report);
                    }
                }
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        let ids: Vec<RunId> = active
            .lock()
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default();
        for id in ids {
            send(active, id, Control::Interrupt).await;
        }
        while let Some(done) = runs.join_next().await {
            self.ended(active, done, report);
        }
    }
}

/// Sends a control message to a run's supervisor, if it is ours.
pub(crate) async fn send(active: &Active, run: RunId, control: Control) {
    let tx = active.lock().ok().and_then(|m| m.get(&run).cloned());
    if let Some(tx) = tx {
        let _ = tx.send(control).await;
    }
}

fn active_remove(active: &Active, run: RunId) {
    if let Ok(mut m) = active.lock() {
        m.remove(&run);
    }
}

/// The next safety-net poll of an idle guardian: twice the last, at most `idle_poll` (and
/// never shorter than `poll`).
fn stretch(poll: Duration, config: &Config) -> Duration {
    (poll * 2).min(config.idle_poll).max(config.poll)
}

/// How long to sleep: until the next due run (if sooner than the poll interval).
fn wait_until(next_due: Option<DateTime<Utc>>, poll: Duration) -> Duration {
    let Some(due) = next_due else { return poll };
    let until = (due - Utc::now()).to_std().unwrap_or(Duration::ZERO);
    until.min(poll)
}

/// The meaning of the next notification for `host` (those meant for other guardians are
/// passed over: a fleet is not woken by each run another host is told to take), or None when the
/// listener is gone (then this waits forever and polling takes over) or lost its connection
/// (it reconnects; what was sent meanwhile is looked for by the caller's claim).
async fn recv(listener: &mut Option<Listener>, host: &str) -> Option<Notice> {
    let Some(l) = listener else {
        return std::future::pending().await;
    };
    loop {
        match l.recv().await {
            Ok(heard) => match Notice::for_host(&heard, host) {
                Some(notice) => return Some(notice),
                None => continue,
            },
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(500)).await;
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_guardians_poll_doubles_up_to_idle_poll() {
        let config = Config::new("postgres://unused");
        let mut poll = config.poll;
        let mut seen = Vec::new();
        for _ in 0..4 {
            poll = stretch(poll, &config);
            seen.push(poll.as_secs());
        }
        assert_eq!(seen, [4, 5, 5, 5]);
        // An idle poll set below the poll never makes it shorter.
        let short = Config {
            idle_poll: Duration::from_millis(100),
            ..Config::new("postgres://unused")
        };
        assert_eq!(stretch(short.poll, &short), short.poll);
    }
}
