//! Supervising one run, from its claim to its recorded outcome.
//!
//! The supervisor starts the process (`process`), turns its output into log lines (`output`,
//! the recorder, the local file), enforces maxtime on the whole process group (SIGTERM, a grace
//! period, SIGKILL; the clock stops while the run is suspended), carries out control requests,
//! and records the outcome — or spools it when the database is away.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use nix::sys::signal::Signal;
use sisyphus_client::db::logs::{LogRow, Stream};
use sisyphus_client::db::{interval, jobs, resources};
use sisyphus_client::lock::{self, Waited};
use sisyphus_client::spec::LogSettings;
use sisyphus_client::{JobId, RunId, RunStatus};
use sqlx::postgres::types::PgInterval;
use sqlx::types::Json;
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::cgroup::{Cgroups, RunCgroup};
use crate::output::{read_lines, Line};
use crate::process::{self, Launch};
use crate::recorder::Recorder;
use crate::spool::{Outcome, Spool};
use sisyphus_logfile::{Access, Ending, RunLog};

const SET_SUSPENDED: &str = include_str!("../../sql/guardian/set_suspended.sql");

/// A claimed run with what is needed to start it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub id: RunId,
    pub job_id: JobId,
    pub attempt: i32,
    pub scheduled_for: DateTime<Utc>,
    pub project: String,
    pub name: String,
    pub command: Vec<String>,
    pub shell: bool,
    pub env: Json<BTreeMap<String, String>>,
    pub workdir: Option<String>,
    pub maxtime: Option<PgInterval>,
    pub run_as: Option<String>,
    pub userdata: serde_json::Value,
    pub keep_logs: Option<PgInterval>,
    pub compress_logs: Option<PgInterval>,
    pub compress_mode: String,
    /// The job declares inputs or outputs: the run locks them before it starts.
    pub takes_locks: bool,
    pub lock_wait: PgInterval,
    /// Limits of the run's cgroup (bytes; 1 to 10000).
    pub memory_max: Option<i64>,
    pub cpu_weight: Option<i32>,
}

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

/// Caps on what one run may store (the local file and `run_logs` alike).
#[derive(Debug, Clone, Copy)]
pub struct LogCap {
    pub max_lines: u64,
    pub max_bytes: u64,
}

impl Default for LogCap {
    fn default() -> Self {
        LogCap {
            max_lines: 100_000,
            max_bytes: 16 * 1024 * 1024,
        }
    }
}

/// Which users runs may run as on this host.
#[derive(Debug, Clone, Default)]
pub struct UserPolicy {
    pub allowed: Vec<String>,
    pub allow_root: bool,
}

impl UserPolicy {
    /// The user to switch to, or why not.
    pub fn resolve(
        &self,
        run_as: Option<&str>,
        host: &str,
    ) -> Result<Option<nix::unistd::User>, String> {
        let Some(name) = run_as else { return Ok(None) };
        if !nix::unistd::Uid::effective().is_root() {
            return Err(format!(
                "run_as `{name}` needs a guardian running as root; {host}'s is not"
            ));
        }
        if name == "root" && !self.allow_root {
            return Err(format!("running as root is not allowed on {host}"));
        }
        if name != "root" && !self.allowed.iter().any(|u| u == name) {
            return Err(format!("user `{name}` is not among {host}'s allowed users"));
        }
        match nix::unistd::User::from_name(name) {
            Ok(Some(user)) => Ok(Some(user)),
            _ => Err(format!("run_as user `{name}` does not exist on {host}")),
        }
    }
}

/// Everything supervisors share.
pub struct Context {
    pub pool: PgPool,
    pub recorder: Recorder,
    pub spool: Spool,
    pub host: String,
    pub log_dir: PathBuf,
    pub grace: Duration,
    pub cap: LogCap,
    pub users: UserPolicy,
    pub executor: Executor,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Where runs get their own cgroup; None: process groups alone.
    pub cgroups: Option<Cgroups>,
    /// Variables of the guardian's environment passed on to jobs (`--pass-env`).
    pub pass_env: Vec<String>,
    /// Who may read the local log files.
    pub log_access: Access,
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

/// Why the guardian ended a run itself (the first reason wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    Timeout,
    Terminated,
    Interrupted,
    Fenced,
}

/// Supervises one claimed run to its end and records the outcome.
pub async fn supervise(
    run: Claimed,
    ctx: Arc<Context>,
    mut control: mpsc::Receiver<Control>,
) -> Outcome {
    if ctx.executor == Executor::Noop {
        let outcome = noop_outcome(run.id);
        ctx.recorder.finished(outcome.clone()).await;
        return outcome;
    }
    let started = Utc::now();
    ctx.metrics
        .started((started - run.scheduled_for).to_std().unwrap_or_default());
    let clock = Instant::now();
    let mut log = RunLogger::new(&run, &ctx, started);
    let locked = match run.takes_locks {
        false => Ok(()),
        true => take_locks(&run, &ctx, &mut log, &mut control).await,
    };
    let outcome = match locked.and_then(|()| start(&run, &ctx).map_err(Refusal::Failed)) {
        Err(Refusal::Ended(status)) => {
            let outcome = ended_before_start(run.id, status);
            log.sisyphus(
                &["sisyphus", "result"],
                &format!("{status} while waiting for resource locks"),
            )
            .await;
            outcome
        }
        Err(Refusal::Failed(error)) => {
            log.sisyphus(&["sisyphus", "result", "fail"], &error).await;
            Outcome {
                run: run.id,
                status: RunStatus::Failed,
                exit_code: None,
                signal: None,
                summary: None,
                error: Some(error),
                finished_at: Utc::now(),
            }
        }
        Ok(Started {
            mut child,
            protocol,
            cgroup,
            notes,
        }) => {
            let pid = child.id().unwrap_or(0);
            for note in notes {
                log.sisyphus(&["sisyphus", "warning"], &note).await;
            }
            let procs = Processes { pid, cgroup };
            log.sisyphus(
                &["sisyphus", "init"],
                &format!(
                    "{} (attempt {}) as pid {pid} on {}",
                    describe(&run),
                    run.attempt,
                    ctx.host
                ),
            )
            .await;
            ctx.recorder.started(run.id, pid).await;
            let outcome = watch(&run, &ctx, &mut child, protocol, &procs, &mut log, control).await;
            if let Some(cgroup) = procs.cgroup {
                let _ = tokio::task::spawn_blocking(move || cgroup.remove()).await;
            }
            outcome
        }
    };
    log.result(&outcome).await;
    let settings = log_settings(&run);
    let ending = file_ending(outcome.status);
    let file = log.file;
    let _ = tokio::task::spawn_blocking(move || file.finish(ending, &settings)).await;
    ctx.recorder.finished(outcome.clone()).await;
    ctx.metrics.ended(outcome.status, clock.elapsed());
    outcome
}

/// Why a run did not start.
enum Refusal {
    /// It cannot start: the error is its outcome (`failed`).
    Failed(String),
    /// Control ended it before it started (terminated, interrupted, lost).
    Ended(RunStatus),
}

/// Takes the run's resource locks (migrations/0004), waiting up to the job's `lock_wait` while
/// they are busy. Control requests still work meanwhile.
async fn take_locks(
    run: &Claimed,
    ctx: &Context,
    log: &mut RunLogger,
    control: &mut mpsc::Receiver<Control>,
) -> Result<(), Refusal> {
    let wait = interval::to_duration(&run.lock_wait).unwrap_or_default();
    let attempt = || resources::lock_run(&ctx.pool, run.id, &[], &[]);
    let waiting = lock::wait_for(wait, attempt);
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

fn ended_before_start(run: RunId, status: RunStatus) -> Outcome {
    Outcome {
        run,
        status,
        exit_code: None,
        signal: None,
        summary: None,
        error: Some("ended while waiting for resource locks".into()),
        finished_at: Utc::now(),
    }
}

fn noop_outcome(run: RunId) -> Outcome {
    Outcome {
        run,
        status: RunStatus::Uneventful,
        exit_code: Some(0),
        signal: None,
        summary: None,
        error: None,
        finished_at: Utc::now(),
    }
}

fn describe(run: &Claimed) -> String {
    format!("{}/{} run {}", run.project, run.name, run.id)
}

/// The run's log retention; a value that does not read (changed by hand in SQL) keeps the files.
fn log_settings(run: &Claimed) -> LogSettings {
    jobs::log_settings(
        run.keep_logs.as_ref(),
        run.compress_logs.as_ref(),
        &run.compress_mode,
    )
    .unwrap_or_default()
}

/// A started process with the read end of its protocol pipe and its cgroup.
struct Started {
    child: tokio::process::Child,
    protocol: OwnedFd,
    cgroup: Option<RunCgroup>,
    /// Said in the run's log once it started (limits that could not be applied).
    notes: Vec<String>,
}

/// The processes of one run: its process group, and its cgroup where the host has them (which
/// also holds what left the group with `setsid`).
struct Processes {
    pid: u32,
    cgroup: Option<RunCgroup>,
}

impl Processes {
    /// SIGTERM to all of them (and a thaw, so that stopped processes can act on it).
    fn terminate(&self) {
        process::signal_group(self.pid, Signal::SIGTERM);
        if let Some(cg) = &self.cgroup {
            cg.signal(Signal::SIGTERM);
            let _ = cg.freeze(false);
        }
        process::signal_group(self.pid, Signal::SIGCONT);
    }

    /// SIGKILL to all of them.
    fn kill(&self) {
        process::signal_group(self.pid, Signal::SIGKILL);
        if let Some(cg) = &self.cgroup {
            cg.kill();
        }
    }

    /// SIGSTOP to the group (what ll.sisyphus' users know: the processes show as stopped, and
    /// get SIGCONT on resume), and a freeze of the cgroup, which also holds what left the group.
    async fn suspend(&self) {
        process::signal_group(self.pid, Signal::SIGSTOP);
        if let Some(cg) = &self.cgroup {
            // A signal acts when its process next runs: freezing at once would freeze the group
            // before it stops, and the stop would wait until the thaw. So the group stops first
            // (up to 100 ms), then everything in the cgroup is frozen.
            let deadline = Instant::now() + Duration::from_millis(100);
            while !self.group_stopped(cg) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            if let Err(e) = cg.freeze(true) {
                tracing::warn!("cannot freeze a run's cgroup: {e}");
            }
        }
    }

    /// Whether every process of the run's group in the cgroup shows as stopped.
    fn group_stopped(&self, cg: &RunCgroup) -> bool {
        cg.pids().into_iter().all(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // After the command name: state, ppid, pgrp.
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest.split_whitespace().take(3).collect())
                .unwrap_or_default();
            match fields.as_slice() {
                [state, _, pgrp] => {
                    pgrp != &self.pid.to_string() || matches!(*state, "T" | "t" | "Z")
                }
                _ => true,
            }
        })
    }

    fn resume(&self) {
        if let Some(cg) = &self.cgroup {
            if let Err(e) = cg.freeze(false) {
                tracing::warn!("cannot thaw a run's cgroup: {e}");
            }
        }
        process::signal_group(self.pid, Signal::SIGCONT);
    }

    /// After the main process ended: kills what it left behind and says how many (None when the
    /// host has no cgroups to count them in; then the group is killed all the same).
    fn kill_leftovers(&self) -> Option<usize> {
        process::signal_group(self.pid, Signal::SIGKILL);
        let cg = self.cgroup.as_ref()?;
        let left = cg.pids().len();
        if left > 0 {
            cg.kill();
        }
        Some(left)
    }
}

/// Builds the launch and starts the process.
fn start(run: &Claimed, ctx: &Context) -> Result<Started, String> {
    let user = ctx.users.resolve(run.run_as.as_deref(), &ctx.host)?;
    let argv = if run.shell {
        let mut a = vec!["/bin/sh".to_string(), "-c".to_string()];
        a.extend(run.command.iter().cloned());
        a
    } else {
        run.command.clone()
    };
    let mut env = process::job_environment(&ctx.pass_env, user.as_ref(), &run.env.0);
    env.insert("SISYPHUS_RUN_ID".into(), run.id.to_string());
    env.insert(
        "SISYPHUS_JOB".into(),
        format!("{}/{}", run.project, run.name),
    );
    env.insert("SISYPHUS_ATTEMPT".into(), run.attempt.to_string());
    env.insert("SISYPHUS_USERDATA".into(), run.userdata.to_string());
    env.insert(
        sisyphus_protocol::FD_ENV.into(),
        process::PROTOCOL_FD.to_string(),
    );
    let (protocol, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| format!("cannot create the job protocol pipe: {e}"))?;
    // The cgroup last, so that no error above leaves one behind.
    let (cgroup, procs_file) = match &ctx.cgroups {
        Some(cgroups) => {
            let cg = cgroups
                .create(run.id.0)
                .map_err(|e| format!("cannot create the run's cgroup: {e}"))?;
            match cg.procs_file() {
                Ok(file) => (Some(cg), Some(file)),
                Err(e) => {
                    cg.remove();
                    return Err(format!("cannot open the run's cgroup: {e}"));
                }
            }
        }
        None => (None, None),
    };
    let notes = apply_limits(run, ctx.cgroups.as_ref(), cgroup.as_ref(), &ctx.host);
    let launch = Launch {
        argv,
        env,
        workdir: run.workdir.clone(),
        user,
        protocol: Some(write_end.as_raw_fd()),
        cgroup: procs_file.as_ref().map(|f| f.as_raw_fd()),
    };
    let spawned = process::spawn(&launch).map_err(|e| e.0);
    // Only the child writes; our copy would keep the pipe open past its end.
    drop(write_end);
    drop(procs_file);
    match spawned {
        Ok(child) => Ok(Started {
            child,
            protocol,
            cgroup,
            notes,
        }),
        Err(e) => {
            if let Some(cg) = cgroup {
                cg.remove();
            }
            Err(e)
        }
    }
}

/// Sets the run's `memory_max` and `cpu_weight` on its cgroup, before the process starts; returns
/// what could not be applied, for the run's log (the run goes on without it, as under systemd).
fn apply_limits(
    run: &Claimed,
    cgroups: Option<&Cgroups>,
    cgroup: Option<&RunCgroup>,
    host: &str,
) -> Vec<String> {
    let limits = [
        (
            "memory_max",
            "memory",
            "memory.max",
            run.memory_max.map(|b| b.to_string()),
        ),
        (
            "cpu_weight",
            "cpu",
            "cpu.weight",
            run.cpu_weight.map(|w| w.to_string()),
        ),
    ];
    let mut notes = Vec::new();
    for (key, controller, file, value) in limits {
        let Some(value) = value else { continue };
        let applied = match (cgroups, cgroup) {
            (Some(cgs), Some(cg)) if cgs.has_controller(controller) => cg
                .limit(file, &value)
                .map_err(|e| format!("{key} = {value} not applied: writing {file}: {e}")),
            (Some(_), Some(_)) => Err(format!(
                "{key} = {value} not applied: the {controller} controller is not delegated to {host}'s cgroup"
            )),
            _ => Err(format!(
                "{key} = {value} not applied: {host} holds runs by process groups (no writable cgroup v2)"
            )),
        };
        if let Err(note) = applied {
            notes.push(note);
        }
    }
    notes
}

/// Runs the event loop of a started process until it has ended and its output is read.
async fn watch(
    run: &Claimed,
    ctx: &Context,
    child: &mut tokio::process::Child,
    protocol: OwnedFd,
    procs: &Processes,
    log: &mut RunLogger,
    mut control: mpsc::Receiver<Control>,
) -> Outcome {
    let (line_tx, mut lines) = mpsc::channel::<Vec<Line>>(16);
    let mut readers = 0;
    match tokio::net::unix::pipe::Receiver::from_owned_fd(protocol) {
        Ok(records) => {
            tokio::spawn(read_lines(records, Stream::Sdk, line_tx.clone()));
            readers += 1;
        }
        Err(e) => tracing::warn!(run = %run.id, "cannot read the job protocol pipe: {e}"),
    }
    if let Some(out) = child.stdout.take() {
        tokio::spawn(read_lines(out, Stream::Stdout, line_tx.clone()));
        readers += 1;
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(read_lines(err, Stream::Stderr, line_tx.clone()));
        readers += 1;
    }
    drop(line_tx);
    let maxtime = run
        .maxtime
        .as_ref()
        .and_then(|m| interval::to_duration(m).ok());
    let mut clock = Clock::new(maxtime);
    let mut reason: Option<Reason> = None;
    let mut kill_at: Option<Instant> = None;
    let mut exit: Option<std::process::ExitStatus> = None;
    let mut output_done = readers == 0;
    let mut control_open = true;
    let mut drain_deadline: Option<Instant> = None;
    while exit.is_none() || !output_done {
        tokio::select! {
            batch = lines.recv(), if !output_done => match batch {
                Some(batch) => {
                    for line in batch {
                        log.child_line(line).await;
                    }
                }
                None => output_done = true,
            },
            status = child.wait(), if exit.is_none() => {
                exit = Some(status.unwrap_or_else(|_| std::os::unix::process::ExitStatusExt::from_raw(9)));
                // What the main process left behind (in its group, and in its cgroup also what
                // left the group) goes with it, as under systemd: leftovers would run outside
                // maxtime and concurrency.
                if let Some(left) = procs.kill_leftovers().filter(|n| *n > 0) {
                    let s = if left == 1 { "" } else { "es" };
                    log.sisyphus(&["sisyphus", "kill"], &format!("{left} process{s} left behind, killed")).await;
                }
                drain_deadline = Some(Instant::now() + Duration::from_secs(2));
            }
            _ = sleep_until(clock.deadline()), if reason.is_none() && exit.is_none() => {
                reason = Some(Reason::Timeout);
                log.sisyphus(&["sisyphus", "kill"], &format!("maxtime {} passed; sending SIGTERM to the process group", fmt(clock.maxtime))).await;
                kill_at = Some(terminate(procs, ctx.grace));
            }
            _ = sleep_until(kill_at), if exit.is_none() => {
                log.sisyphus(&["sisyphus", "kill"], "grace period over; sending SIGKILL to the process group").await;
                procs.kill();
                kill_at = None;
            }
            _ = sleep_until(drain_deadline), if exit.is_some() => {
                // A grandchild that escaped the group still holds the pipe; stop reading.
                output_done = true;
            }
            msg = control.recv(), if control_open => match msg {
                None => control_open = false,
                Some(c) if exit.is_none() => {
                    handle_control(c, run, ctx, procs, log, &mut clock, &mut reason, &mut kill_at).await;
                }
                Some(_) => {}
            },
        }
    }
    classify(run.id, exit, reason, clock.maxtime, log)
}

#[allow(clippy::too_many_arguments)]
async fn handle_control(
    c: Control,
    run: &Claimed,
    ctx: &Context,
    procs: &Processes,
    log: &mut RunLogger,
    clock: &mut Clock,
    reason: &mut Option<Reason>,
    kill_at: &mut Option<Instant>,
) {
    match c {
        Control::Suspend if !clock.suspended() => {
            procs.suspend().await;
            clock.pause();
            let _ = sqlx::query(SET_SUSPENDED)
                .bind(run.id)
                .bind(true)
                .execute(&ctx.pool)
                .await;
            log.sisyphus(&["sisyphus", "info"], "suspended (SIGSTOP)")
                .await;
        }
        Control::Resume if clock.suspended() => {
            procs.resume();
            clock.resume();
            let _ = sqlx::query(SET_SUSPENDED)
                .bind(run.id)
                .bind(false)
                .execute(&ctx.pool)
                .await;
            log.sisyphus(&["sisyphus", "info"], "resumed (SIGCONT)")
                .await;
        }
        Control::Terminate | Control::Interrupt if reason.is_none() => {
            *reason = Some(if c == Control::Terminate {
                Reason::Terminated
            } else {
                Reason::Interrupted
            });
            let why = if c == Control::Terminate {
                "terminate requested"
            } else {
                "guardian shutting down"
            };
            log.sisyphus(
                &["sisyphus", "kill"],
                &format!("{why}; sending SIGTERM to the process group"),
            )
            .await;
            *kill_at = Some(terminate(procs, ctx.grace));
        }
        Control::Fence => {
            *reason = Some(Reason::Fenced);
            procs.kill();
            log.sisyphus(
                &["sisyphus", "kill"],
                "lease could not be renewed; killed the process group (self-fencing)",
            )
            .await;
        }
        _ => {}
    }
}

/// SIGTERM to the run's processes (and SIGCONT, so stopped ones can act on it); returns when to
/// SIGKILL.
fn terminate(procs: &Processes, grace: Duration) -> Instant {
    procs.terminate();
    Instant::now() + grace
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn fmt(d: Option<Duration>) -> String {
    d.map_or_else(
        || "-".to_string(),
        sisyphus_client::schedule::format_duration,
    )
}

/// The run's outcome from how it ended and why.
fn classify(
    run: RunId,
    exit: Option<std::process::ExitStatus>,
    reason: Option<Reason>,
    maxtime: Option<Duration>,
    log: &RunLogger,
) -> Outcome {
    use std::os::unix::process::ExitStatusExt;
    let code = exit.and_then(|e| e.code());
    let signal = exit.and_then(|e| e.signal());
    let (status, error) = match (reason, code, signal) {
        (Some(Reason::Timeout), _, _) => (
            RunStatus::Timeout,
            Some(format!("ran longer than maxtime {}", fmt(maxtime))),
        ),
        (Some(Reason::Terminated), _, _) => (
            RunStatus::Terminated,
            Some("terminated on request".to_string()),
        ),
        (Some(Reason::Interrupted), _, _) => (
            RunStatus::Interrupted,
            Some("interrupted: the guardian shut down".to_string()),
        ),
        (Some(Reason::Fenced), _, _) => (
            RunStatus::Lost,
            Some("killed by its guardian, which could not renew its lease".to_string()),
        ),
        (None, Some(0), _) if log.any_output => (RunStatus::Successful, None),
        (None, Some(0), _) => (RunStatus::Uneventful, None),
        (None, Some(c), _) => (
            RunStatus::Failed,
            Some(match &log.last_stderr {
                Some(line) => format!("exit code {c}: {line}"),
                None => format!("exit code {c}"),
            }),
        ),
        (None, None, Some(s)) if s == Signal::SIGINT as i32 => (
            RunStatus::Interrupted,
            Some("interrupted (SIGINT)".to_string()),
        ),
        (None, None, Some(s)) => (
            RunStatus::Failed,
            Some(format!("killed by signal {s} ({})", signal_name(s))),
        ),
        (None, None, None) => (
            RunStatus::Failed,
            Some("ended without an exit status".to_string()),
        ),
    };
    let mut summary = if status == RunStatus::Successful {
        log.last_stdout.clone()
    } else {
        None
    };
    // A job written with the SDK says itself how it went; its exit status still counts when it
    // failed, was killed or timed out.
    let (mut status, mut error) = (status, error);
    if let (None, Some((reported, text))) = (reason, &log.sdk_result) {
        if code == Some(0) || *reported == sisyphus_protocol::Status::Failed {
            status = sdk_status(*reported);
            (summary, error) = match status {
                RunStatus::Successful => (text.clone(), None),
                RunStatus::Uneventful => (None, None),
                _ => (None, text.clone().or(error)),
            };
        }
    }
    Outcome {
        run,
        status,
        exit_code: code,
        signal,
        summary,
        error,
        finished_at: Utc::now(),
    }
}

fn sdk_status(status: sisyphus_protocol::Status) -> RunStatus {
    use sisyphus_protocol::Status;
    match status {
        Status::Successful => RunStatus::Successful,
        Status::Uneventful => RunStatus::Uneventful,
        Status::Failed => RunStatus::Failed,
        Status::Interrupted => RunStatus::Interrupted,
        Status::Timeout => RunStatus::Timeout,
    }
}

fn signal_name(s: i32) -> &'static str {
    Signal::try_from(s).map(|s| s.as_str()).unwrap_or("?")
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

/// Which `last_*` link a run's local log file gets (ll.sisyphus has no `lost` or `terminated`:
/// they count as failed and interrupted).
fn file_ending(status: RunStatus) -> Ending {
    match status {
        RunStatus::Successful => Ending::Successful,
        RunStatus::Uneventful => Ending::Uneventful,
        RunStatus::Failed | RunStatus::Lost => Ending::Failed,
        RunStatus::Interrupted | RunStatus::Terminated => Ending::Interrupted,
        RunStatus::Timeout => Ending::Timeout,
        _ => Ending::Other,
    }
}

/// Numbers, caps and routes one run's log lines: to the recorder (`run_logs`) and the local file.
struct RunLogger {
    run: RunId,
    seq: i32,
    lines: u64,
    bytes: u64,
    cap: LogCap,
    truncated: bool,
    recorder: Recorder,
    file: RunLog,
    last_stdout: Option<String>,
    last_stderr: Option<String>,
    any_output: bool,
    /// What a job written with the SDK reported as its result.
    sdk_result: Option<(sisyphus_protocol::Status, Option<String>)>,
    protocol_errors: u32,
}

impl RunLogger {
    fn new(run: &Claimed, ctx: &Context, started: DateTime<Utc>) -> RunLogger {
        RunLogger {
            run: run.id,
            seq: 0,
            lines: 0,
            bytes: 0,
            cap: ctx.cap,
            truncated: false,
            recorder: ctx.recorder.clone(),
            file: RunLog::create_with(
                &ctx.log_dir,
                &run.project,
                &run.name,
                started,
                &ctx.host,
                ctx.log_access,
            ),
            last_stdout: None,
            last_stderr: None,
            any_output: false,
            sdk_result: None,
            protocol_errors: 0,
        }
    }

    async fn child_line(&mut self, line: Line) {
        if line.stream == Stream::Sdk {
            return self.record(line).await;
        }
        self.any_output = true;
        if !line.text.trim().is_empty() {
            let mut last = line.text.clone();
            if last.len() > 1000 {
                let mut cut = 1000;
                while !last.is_char_boundary(cut) {
                    cut -= 1;
                }
                last.truncate(cut);
            }
            match line.stream {
                Stream::Stdout => self.last_stdout = Some(last),
                _ => self.last_stderr = Some(last),
            }
        }
        if self.truncated {
            return;
        }
        let mut tags = vec![line.stream.as_str().to_string()];
        if line.lossy {
            tags.push("non-utf8".to_string());
        }
        if line.nul {
            tags.push(sisyphus_protocol::text::NUL_TAG.to_string());
        }
        self.store(line.stream, tags, None, line.text).await;
    }

    /// One job protocol record: a tagged line (with its task stack), the result, or user data.
    /// A record that cannot be read is reported (the first ten) and otherwise ignored.
    async fn record(&mut self, line: Line) {
        use sisyphus_protocol::Record;
        match sisyphus_protocol::decode(line.text.as_bytes()) {
            Ok(Record::Log { tags, tasks, text }) => {
                let tasks = sisyphus_protocol::tasks_label(&tasks);
                let task = (!tasks.is_empty()).then_some(tasks);
                self.store(Stream::Sdk, tags, task, text).await;
            }
            Ok(Record::Result { status, summary }) => self.sdk_result = Some((status, summary)),
            Ok(Record::Userdata { value }) => {
                self.store(
                    Stream::Sdk,
                    vec!["userdata".into()],
                    None,
                    value.to_string(),
                )
                .await;
            }
            Err(e) => {
                self.protocol_errors += 1;
                if self.protocol_errors <= 10 {
                    let text = format!("unreadable job protocol record: {e}");
                    self.sisyphus(&["sisyphus", "protocol"], &text).await;
                }
            }
        }
    }

    async fn sisyphus(&mut self, tags: &[&str], text: &str) {
        let tags = tags.iter().map(|t| t.to_string()).collect();
        self.store(Stream::Sisyphus, tags, None, text.to_string())
            .await;
    }

    async fn result(&mut self, outcome: &Outcome) {
        let kind = match outcome.status {
            RunStatus::Successful | RunStatus::Uneventful => "ok",
            RunStatus::Timeout | RunStatus::Terminated | RunStatus::Lost => "kill",
            RunStatus::Interrupted => "interrupted",
            _ => "fail",
        };
        let text = outcome
            .summary
            .clone()
            .or_else(|| outcome.error.clone())
            .unwrap_or_else(|| outcome.status.to_string());
        // The result line is always stored, past the cap too.
        let tags = ["sisyphus", "result", kind]
            .iter()
            .map(|t| t.to_string())
            .collect();
        self.push(
            Stream::Sisyphus,
            tags,
            None,
            format!("{}: {text}", outcome.status),
        )
        .await;
    }

    async fn store(
        &mut self,
        stream: Stream,
        tags: Vec<String>,
        task: Option<String>,
        text: String,
    ) {
        if self.truncated {
            return;
        }
        self.lines += 1;
        self.bytes += text.len() as u64;
        if self.lines > self.cap.max_lines || self.bytes > self.cap.max_bytes {
            self.truncated = true;
            let marker = format!(
                "log truncated: more than {} lines or {} bytes; further output of this run is not stored",
                self.cap.max_lines, self.cap.max_bytes
            );
            self.push(
                Stream::Sisyphus,
                vec!["sisyphus".into(), "truncated".into()],
                None,
                marker,
            )
            .await;
            return;
        }
        self.push(stream, tags, task, text).await;
    }

    async fn push(
        &mut self,
        stream: Stream,
        tags: Vec<String>,
        task: Option<String>,
        text: String,
    ) {
        self.seq += 1;
        let at = Utc::now();
        self.file
            .line(at, task.as_deref().unwrap_or(""), &tags, &text);
        self.recorder
            .line(LogRow {
                run_id: self.run,
                seq: self.seq,
                at,
                stream,
                tags,
                task,
                text,
            })
            .await;
    }
}
