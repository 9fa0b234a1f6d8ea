//! Supervising one run, from its claim to its recorded outcome.
//!
//! [`supervise`] takes the run's resource locks, starts it (`start`), and hands it to a
//! [`Supervision`]: the event loop of one started run, which turns its output into log lines
//! (`output`, `run_log`), enforces maxtime on all its processes (SIGTERM, a grace period,
//! SIGKILL; the clock stops while the run is suspended), carries out control requests, and
//! decides the outcome (`outcome`) once the process has ended and its output is read. The outcome
//! goes to the recorder — which spools it when the database is away.

use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sisyphus_client::lock::{self, Waited};
use sisyphus_db::guardian::set_suspended;
use sisyphus_db::resources;
use sisyphus_db::PgPool;
use sisyphus_logfile::{Access, RunLog};
use sisyphus_model::views::Stream;
use sisyphus_model::{ControlAction, RunId, RunStatus};
use tokio::io::AsyncRead;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use sisyphus_model::spec::JobFormat;

use crate::cgroup::Cgroups;
use crate::llsisyphus;
use crate::outcome::{classify, format_maxtime, Outcome, Reason};
use crate::output::{read_lines, Line};
use crate::process::Child;
use crate::recorder::Recorder;
use crate::run_log::{LogCap, RunLogger};
use crate::start::{start, Processes, Started};
use crate::users::UserPolicy;

/// How long output is still read after the main process ended: a grandchild that escaped the
/// group may hold the pipes open.
const OUTPUT_DRAIN: Duration = Duration::from_secs(2);

/// A claimed run with what is needed to start it (`sisyphus_db::guardian::claim`).
pub use sisyphus_db::guardian::Claimed;

/// What a supervisor can be told while its run goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Remote terminate: SIGTERM, grace, SIGKILL; `terminated`.
    Terminate,
    /// SIGSTOP to the group; the maxtime clock stops.
    Suspend,
    /// SIGCONT to the group; the maxtime clock goes on.
    Resume,
    /// The guardian is shutting down and the drain time is over: `interrupted`.
    Interrupt,
    /// The guardian lost its lease: SIGKILL at once (self-fencing); the run is `lost`.
    Fence,
}

impl From<ControlAction> for Control {
    fn from(action: ControlAction) -> Control {
        match action {
            ControlAction::Terminate => Control::Terminate,
            ControlAction::Suspend => Control::Suspend,
            ControlAction::Resume => Control::Resume,
        }
    }
}

/// Everything supervisors share.
pub struct Context {
    pub pool: PgPool,
    pub recorder: Recorder,
    pub host: String,
    pub log_dir: PathBuf,
    pub grace: Duration,
    pub cap: LogCap,
    pub users: UserPolicy,
    pub executor: Executor,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Where runs get their own cgroup; None: process groups alone.
    pub cgroups: Option<Cgroups>,
    /// What jobs get of the guardian's environment (`process::base_environment`).
    pub base_env: std::collections::BTreeMap<String, String>,
    /// Where the values of jobs' secrets come from (`--secrets-dir`, `SISYPHUS_SECRET_*`).
    pub secrets: crate::secrets::SecretSource,
    /// Who may read the local log files.
    pub log_access: Access,
    /// How runs' processes are made.
    pub spawn: crate::process::Spawn,
    /// Where the tasks a run needs (its output readers) are spawned: the guardian waits for all
    /// of them before it stops.
    pub tasks: TaskTracker,
}

/// What a claimed run is handed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Executor {
    /// Fork and supervise the command (the real thing).
    #[default]
    Process,
    /// Record `uneventful` at once without starting anything: measures the database path alone
    /// (benchmarks). Writes no log file and no log lines.
    Noop,
}

/// Supervises one claimed run to its end and records the outcome.
pub async fn supervise(
    run: Claimed,
    ctx: Arc<Context>,
    mut control: mpsc::Receiver<Control>,
) -> Outcome {
    if ctx.executor == Executor::Noop {
        let outcome = Outcome::noop(run.id);
        ctx.recorder.finished(outcome.clone()).await;
        return outcome;
    }
    let started = Utc::now();
    ctx.metrics
        .started((started - run.scheduled_for).to_std().unwrap_or_default());
    let ran = Instant::now();
    let mut log = run_logger(&run, &ctx, started);
    let mut outcome = match prepare(&run, &ctx, &mut log, &mut control, started).await {
        Ok(started) => Supervision::run(&run, &ctx, &mut log, started, control).await,
        Err(outcome) => outcome,
    };
    // Summary and error come from the run's output: no secret of it goes further.
    log.mask_outcome(&mut outcome);
    log.finish(&outcome, run.logs.clone()).await;
    ctx.recorder.finished(outcome.clone()).await;
    ctx.metrics.ended(outcome.status, ran.elapsed());
    outcome
}

/// The run's log, with its local file named by when it started.
fn run_logger(run: &Claimed, ctx: &Context, started: DateTime<Utc>) -> RunLogger {
    let file = RunLog::create_with(
        &ctx.log_dir,
        &run.project,
        &run.name,
        started,
        &ctx.host,
        ctx.log_access,
    );
    RunLogger::new(run.id, file, ctx.cap, ctx.recorder.clone())
}

/// Why a run did not start.
enum Refusal {
    /// It cannot start: the error is its outcome (`failed`).
    Failed(String),
    /// Control ended it before it started (terminated, interrupted, lost).
    Ended(RunStatus),
}

/// Takes the run's resource locks and starts its process; or the outcome of a run that did not
/// start, said in its log.
async fn prepare(
    run: &Claimed,
    ctx: &Context,
    log: &mut RunLogger,
    control: &mut mpsc::Receiver<Control>,
    started_at: DateTime<Utc>,
) -> Result<Started, Outcome> {
    let locked = match run.takes_locks {
        false => Ok(()),
        true => take_locks(run, ctx, log, control).await,
    };
    match locked.and_then(|()| start(run, ctx).map_err(Refusal::Failed)) {
        Ok(started) => {
            // Before the first line of the child is read.
            log.set_mask(started.mask.clone());
            if run.format == JobFormat::LlSisyphus {
                log.read_ll_sisyphus(llsisyphus::Reader::new(started.zone, started_at));
            }
            Ok(started)
        }
        Err(Refusal::Ended(status)) => {
            let outcome = Outcome::ended_before_start(run.id, status);
            let text = format!("{status} while waiting for resource locks");
            log.sisyphus(&["sisyphus", "result"], &text).await;
            Err(outcome)
        }
        Err(Refusal::Failed(error)) => {
            log.sisyphus(&["sisyphus", "result", "fail"], &error).await;
            Err(Outcome::not_started(run.id, error))
        }
    }
}

/// Takes the run's resource locks (migrations/0004), waiting up to the job's `lock_wait` while
/// they are busy. Control requests still work meanwhile.
async fn take_locks(
    run: &Claimed,
    ctx: &Context,
    log: &mut RunLogger,
    control: &mut mpsc::Receiver<Control>,
) -> Result<(), Refusal> {
    let attempt = || resources::lock_run(&ctx.pool, run.id, &[], &[]);
    let waiting = lock::wait_for(run.lock_wait, attempt);
    tokio::pin!(waiting);
    loop {
        tokio::select! {
            waited = &mut waiting => {
                return match waited {
                    Ok(Waited::Granted) => {
                        log.sisyphus(&["sisyphus", "resources"], "resource locks taken").await;
                        Ok(())
                    }
                    Ok(Waited::Refused(reason)) => Err(Refusal::Failed(reason)),
                    Err(e) => Err(Refusal::Failed(format!("taking resource locks failed: {e}"))),
                };
            }
            Some(c) = control.recv() => match c {
                Control::Terminate => return Err(Refusal::Ended(RunStatus::Terminated)),
                Control::Interrupt => return Err(Refusal::Ended(RunStatus::Interrupted)),
                Control::Fence => return Err(Refusal::Ended(RunStatus::Lost)),
                Control::Suspend | Control::Resume => {}
            },
        }
    }
}

fn describe(run: &Claimed) -> String {
    format!("{}/{} run {}", run.project, run.name, run.id)
}

/// One started run under supervision: its processes, its log, the maxtime clock, and why the
/// guardian ended it, if it did.
struct Supervision<'a> {
    run: &'a Claimed,
    ctx: &'a Context,
    procs: Processes,
    log: &'a mut RunLogger,
    clock: Clock,
    /// Why the guardian ended the run (the first reason wins).
    reason: Option<Reason>,
    /// When the grace period after SIGTERM is over (SIGKILL then).
    kill_at: Option<Instant>,
}

impl<'a> Supervision<'a> {
    /// Announces the started run, supervises it until it has ended and its output is read, and
    /// removes its cgroup.
    async fn run(
        run: &'a Claimed,
        ctx: &'a Context,
        log: &'a mut RunLogger,
        started: Started,
        control: mpsc::Receiver<Control>,
    ) -> Outcome {
        let Started {
            mut child,
            protocol,
            procs,
            notes,
            mask: _,
            zone: _,
        } = started;
        for note in notes {
            log.sisyphus(&["sisyphus", "warning"], &note).await;
        }
        let pid = procs.pid;
        let text = format!(
            "{} (attempt {}) as pid {pid} on {}",
            describe(run),
            run.attempt,
            ctx.host
        );
        log.sisyphus(&["sisyphus", "init"], &text).await;
        ctx.recorder.started(run.id, pid).await;
        let (lines, readers) = read_output(&ctx.tasks, run.id, &mut child, protocol);
        let mut supervision = Supervision {
            run,
            ctx,
            procs,
            log,
            clock: Clock::new(run.maxtime),
            reason: None,
            kill_at: None,
        };
        let outcome = supervision.watch(child, lines, readers, control).await;
        supervision.procs.remove_cgroup().await;
        outcome
    }

    /// The event loop: output, the process's end, maxtime, the grace period, control.
    async fn watch(
        &mut self,
        mut child: Child,
        mut lines: mpsc::Receiver<Vec<Line>>,
        readers: usize,
        mut control: mpsc::Receiver<Control>,
    ) -> Outcome {
        let mut exit: Option<ExitStatus> = None;
        let mut output_done = readers == 0;
        let mut control_open = true;
        let mut drain_deadline: Option<Instant> = None;
        while exit.is_none() || !output_done {
            tokio::select! {
                batch = lines.recv(), if !output_done => match batch {
                    Some(batch) => {
                        for line in batch {
                            self.log.child_line(line).await;
                        }
                    }
                    None => output_done = true,
                },
                status = child.wait(), if exit.is_none() => {
                    exit = Some(status.unwrap_or_else(|_| ExitStatus::from_raw(9)));
                    self.kill_leftovers().await;
                    drain_deadline = Some(Instant::now() + OUTPUT_DRAIN);
                }
                _ = sleep_until(self.clock.deadline()), if self.reason.is_none() && exit.is_none() => {
                    self.maxtime_passed().await;
                }
                _ = sleep_until(self.kill_at), if exit.is_none() => self.grace_over().await,
                _ = sleep_until(drain_deadline), if exit.is_some() => {
                    // A grandchild that escaped the group still holds the pipe; stop reading.
                    output_done = true;
                }
                msg = control.recv(), if control_open => match msg {
                    None => control_open = false,
                    Some(c) if exit.is_none() => self.on_control(c).await,
                    Some(_) => {}
                },
            }
        }
        let seen = self.log.seen();
        classify(self.run.id, exit, self.reason, self.clock.maxtime, seen)
    }

    /// What the main process left behind (in its group, and in its cgroup also what left the
    /// group) goes with it, as under systemd: leftovers would run outside maxtime and
    /// concurrency.
    async fn kill_leftovers(&mut self) {
        if let Some(left) = self.procs.kill_leftovers().filter(|n| *n > 0) {
            let s = if left == 1 { "" } else { "es" };
            let text = format!("{left} process{s} left behind, killed");
            self.log.sisyphus(&["sisyphus", "kill"], &text).await;
        }
    }

    async fn maxtime_passed(&mut self) {
        self.reason = Some(Reason::Timeout);
        let text = format!(
            "maxtime {} passed; sending SIGTERM to the process group",
            format_maxtime(self.clock.maxtime)
        );
        self.log.sisyphus(&["sisyphus", "kill"], &text).await;
        self.terminate();
    }

    async fn grace_over(&mut self) {
        let text = "grace period over; sending SIGKILL to the process group";
        self.log.sisyphus(&["sisyphus", "kill"], text).await;
        self.procs.kill();
        self.kill_at = None;
    }

    /// Carries out a control request (one that does not apply now is ignored: a suspend of a
    /// suspended run, a terminate of a run already ending).
    async fn on_control(&mut self, c: Control) {
        match c {
            Control::Suspend if !self.clock.suspended() => self.suspend().await,
            Control::Resume if self.clock.suspended() => self.resume().await,
            Control::Terminate if self.reason.is_none() => {
                self.end(Reason::Terminated, "terminate requested").await;
            }
            Control::Interrupt if self.reason.is_none() => {
                self.end(Reason::Interrupted, "guardian shutting down")
                    .await;
            }
            Control::Fence => self.fence().await,
            _ => {}
        }
    }

    async fn suspend(&mut self) {
        self.procs.suspend().await;
        self.clock.pause();
        self.record_suspended(true).await;
        self.log
            .sisyphus(&["sisyphus", "info"], "suspended (SIGSTOP)")
            .await;
    }

    async fn resume(&mut self) {
        self.procs.resume();
        self.clock.resume();
        self.record_suspended(false).await;
        self.log
            .sisyphus(&["sisyphus", "info"], "resumed (SIGCONT)")
            .await;
    }

    /// Writes `suspended` (or `running`) back; a failure is logged and tried once more.
    async fn record_suspended(&self, suspended: bool) {
        let status = if suspended { "suspended" } else { "running" };
        for attempt in 1..=2 {
            match set_suspended(&self.ctx.pool, self.run.id, suspended).await {
                Ok(()) => return,
                Err(e) if attempt == 1 => {
                    tracing::warn!(run = %self.run.id, "cannot record the run as {status} ({e}); retrying");
                }
                Err(e) => {
                    tracing::error!(run = %self.run.id, "cannot record the run as {status} ({e}); its recorded status is wrong");
                }
            }
        }
    }

    /// Ends the run for `reason`: SIGTERM now, SIGKILL after the grace period.
    async fn end(&mut self, reason: Reason, why: &str) {
        self.reason = Some(reason);
        let text = format!("{why}; sending SIGTERM to the process group");
        self.log.sisyphus(&["sisyphus", "kill"], &text).await;
        self.terminate();
    }

    /// The lease could not be renewed: SIGKILL at once, the run is `lost`.
    async fn fence(&mut self) {
        self.reason = Some(Reason::Fenced);
        self.procs.kill();
        let text = "lease could not be renewed; killed the process group (self-fencing)";
        self.log.sisyphus(&["sisyphus", "kill"], text).await;
    }

    /// SIGTERM to the run's processes (and SIGCONT, so stopped ones can act on it); SIGKILL
    /// once the grace period is over.
    fn terminate(&mut self) {
        self.procs.terminate();
        self.kill_at = Some(Instant::now() + self.ctx.grace);
    }
}

/// Reads the run's protocol pipe, stdout and stderr, each in a task of its own; returns where
/// their lines arrive and how many readers there are.
fn read_output(
    tasks: &TaskTracker,
    run: RunId,
    child: &mut Child,
    protocol: OwnedFd,
) -> (mpsc::Receiver<Vec<Line>>, usize) {
    let (tx, lines) = mpsc::channel::<Vec<Line>>(16);
    let mut readers = 0;
    match tokio::net::unix::pipe::Receiver::from_owned_fd(protocol) {
        Ok(records) => {
            spawn_reader(tasks, records, Stream::Sdk, &tx);
            readers += 1;
        }
        Err(e) => tracing::warn!(run = %run, "cannot read the job protocol pipe: {e}"),
    }
    if let Some(out) = child.stdout.take() {
        spawn_reader(tasks, out, Stream::Stdout, &tx);
        readers += 1;
    }
    if let Some(err) = child.stderr.take() {
        spawn_reader(tasks, err, Stream::Stderr, &tx);
        readers += 1;
    }
    (lines, readers)
}

/// Reads `reader` to its end in a tracked task, which also ends once nobody reads its lines (a
/// pipe an escaped grandchild holds open must not keep the guardian from stopping).
fn spawn_reader<R>(tasks: &TaskTracker, reader: R, stream: Stream, tx: &mpsc::Sender<Vec<Line>>)
where
    R: AsyncRead + Unpin + Send + 'static,
{
    let (tx, unread) = (tx.clone(), tx.clone());
    tasks.spawn(async move {
        tokio::select! {
            () = read_lines(reader, stream, tx) => {}
            () = unread.closed() => {}
        }
    });
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The maxtime clock: counts only time spent running, not suspended.
struct Clock {
    maxtime: Option<Duration>,
    used: Duration,
    since: Option<Instant>,
}

impl Clock {
    fn new(maxtime: Option<Duration>) -> Clock {
        Clock {
            maxtime,
            used: Duration::ZERO,
            since: Some(Instant::now()),
        }
    }

    /// When maxtime is reached if the run keeps running; None while suspended or without one.
    fn deadline(&self) -> Option<Instant> {
        let since = self.since?;
        Some(since + self.maxtime?.saturating_sub(self.used))
    }

    fn suspended(&self) -> bool {
        self.since.is_none()
    }

    fn pause(&mut self) {
        if let Some(since) = self.since.take() {
            self.used += since.elapsed();
        }
    }

    fn resume(&mut self) {
        self.since.get_or_insert_with(Instant::now);
    }
}
