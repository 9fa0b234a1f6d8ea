//! Standalone mode: ll.sisyphus' machinery around [`Job::execute`].
//!
//! One run: the parent creates the log file (`current` link), forks, and watches the clock;
//! the child (its own process group) executes the job and writes the result line; at `maxtime`
//! the parent sends SIGTERM, then SIGKILL, to the child's whole group and writes the `{kill}`
//! result itself. The parent then sets the `last_*` link (or deletes an uneventful run's file),
//! applies log retention and records the run in `health.json` for `--healthcheck`. The whole
//! process holds an exclusive lock on its executable, so a second instance exits at once.
//! Everything here is synchronous: a fork in a process without other threads is well defined.

use std::cell::RefCell;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use nix::sys::signal::{killpg, signal, SigHandler, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, getpid, setpgid, ForkResult, Pid};
use serde::{Deserialize, Serialize};
use sisyphus_logfile::{elapsed, format_line, Ending, LogSettings, RunLog};
use sisyphus_protocol::{tasks_label, Record, Status, Task};

use crate::context::{chain, Notice, ProtocolSink, Sink, Writer};
use crate::{exit, Context, Job, NextRun, Options};

/// Runs the job standalone: healthcheck, or runs (repeated in repeat mode) under the lock.
pub fn run<J: Job>(job: &mut J, options: &Options) -> i32 {
    let base = base_dir(options);
    let dir = base.join(&options.projectname).join(&options.jobname);
    if options.healthcheck {
        return healthcheck(job, options, &dir);
    }
    let _lock = match single_instance(&dir) {
        Ok(lock) => lock,
        Err(why) => {
            eprintln!("{}/{}: {why}", options.projectname, options.jobname);
            return exit::BUSY;
        }
    };
    let mut n = 0;
    loop {
        n += 1;
        let status = run_once(job, options, &base, n);
        let code = exit_code(status);
        let failed = matches!(status, Status::Failed | Status::Timeout);
        if !options.repeat || status == Status::Interrupted || (failed && options.exit_on_error) {
            return code;
        }
        proctitle(options, "sleeping");
        match job.nextrun().or(options.nextrun) {
            Some(NextRun::After(d)) => std::thread::sleep(d),
            Some(NextRun::At(t)) => {
                if let Ok(d) = (t - Utc::now()).to_std() {
                    std::thread::sleep(d);
                }
            }
            None => {}
        }
    }
}

/// Under a guardian: no lock, no fork, no files; lines and the result as protocol records.
#[allow(unsafe_code)]
pub fn under_guardian<J: Job>(job: &mut J, fd: i32) -> i32 {
    // SAFETY: the guardian opened this descriptor for us (SISYPHUS_PROTOCOL_FD) and nothing
    // else in this process owns it.
    let out = unsafe { File::from(OwnedFd::from_raw_fd(fd)) };
    let sink = Rc::new(RefCell::new(ProtocolSink { out }));
    let ctx = Context::new(Box::new(Shared(sink.clone())));
    let report = execute(job, &ctx);
    ctx.result(&[], None);
    sink.borrow_mut().send(&Record::Result {
        status: report.status,
        summary: report.text.clone(),
    });
    exit_code(report.status)
}

/// ll.sisyphus' base directory: `~/ll.sisyphus`, unless `basedir` says otherwise.
fn base_dir(options: &Options) -> PathBuf {
    options.basedir.clone().unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
        home.join("ll.sisyphus")
    })
}

fn exit_code(status: Status) -> i32 {
    match status {
        Status::Successful | Status::Uneventful => exit::OK,
        Status::Interrupted => exit::INTERRUPTED,
        Status::Failed | Status::Timeout => exit::FAILED,
    }
}

/// The exclusive lock on the job's lock file (`<log dir>/.lock`), held as long as the returned
/// file lives. A lock file rather than ll.sisyphus' lock on the script: one binary may hold
/// several jobs, and the lock is released by the kernel however the process ends.
fn single_instance(dir: &Path) -> Result<nix::fcntl::Flock<File>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(
        |(_, errno)| match errno {
            nix::errno::Errno::EWOULDBLOCK => format!(
                "another instance is running (it holds the lock on {}); exiting",
                path.display()
            ),
            e => format!("cannot lock {}: {e}", path.display()),
        },
    )
}

/// What a run ended with.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Report {
    status: Status,
    /// The summary (successful) or the error (failed).
    text: Option<String>,
    /// Whether the child wrote the result line itself.
    written: bool,
    /// Lines routed to notifications (and the aborting error).
    #[serde(default)]
    notices: Vec<Notice>,
}

/// Executes the job once, catching errors and panics.
fn execute<J: Job>(job: &mut J, ctx: &Context) -> Report {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.execute(ctx)));
    match result {
        Ok(Ok(Some(summary))) => Report {
            status: Status::Successful,
            text: Some(summary.lines().next().unwrap_or_default().to_string()),
            written: false,
            notices: Vec::new(),
        },
        Ok(Ok(None)) => Report {
            status: Status::Uneventful,
            text: None,
            written: false,
            notices: Vec::new(),
        },
        Ok(Err(error)) => {
            ctx.log_error(&*error);
            job.on_failure(ctx, &error);
            ctx.notice_failure(&chain(&*error));
            Report {
                status: Status::Failed,
                text: Some(chain(&*error)),
                written: false,
                notices: Vec::new(),
            }
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_string());
            let error: crate::Error = format!("panicked: {what}").into();
            ctx.tag("exc").log(format!("panicked: {what}"));
            job.on_failure(ctx, &error);
            ctx.notice_failure(&format!("panicked: {what}"));
            Report {
                status: Status::Failed,
                text: Some(format!("panicked: {what}")),
                written: false,
                notices: Vec::new(),
            }
        }
    }
}

/// Writes the result line of `report` (ll.sisyphus' tags: ok, errors, fail, kill).
fn write_result(ctx: &Context, report: &Report) {
    let kind = match report.status {
        Status::Successful | Status::Uneventful if ctx.errors_logged() > 0 => "errors",
        Status::Successful | Status::Uneventful => "ok",
        Status::Timeout => "kill",
        Status::Failed | Status::Interrupted => "fail",
    };
    let text = match report.status {
        Status::Uneventful => None,
        Status::Interrupted => Some("interrupted".to_string()),
        _ => report.text.clone(),
    };
    ctx.result(&[kind], text.as_deref());
}

/// One run, from the log file's creation to the health record.
fn run_once<J: Job>(job: &mut J, options: &Options, base: &Path, n: u32) -> Status {
    let start = Utc::now();
    // ll.sisyphus labels lines with the process: `parent 4711`, `child 4712` (`[2] child 4712`
    // in repeat mode); a job that does not fork has no such label.
    let who = if options.fork { "parent" } else { "" }.to_string();
    let file = options
        .log2file
        .then(|| RunLog::create(base, &options.projectname, &options.jobname, start, &who));
    let lines = Rc::new(RefCell::new(Lines {
        file,
        stdout: options.log2stdout,
        stderr: options.log2stderr,
        format: options.formatlogline.clone(),
        start,
        who,
        pid: std::process::id(),
    }));
    let ctx = Context::new(Box::new(Shared(lines.clone())));
    let exe = std::env::current_exe().map_or_else(|_| "?".into(), |p| p.display().to_string());
    ctx.sisyphus(
        &["init"],
        &format!(
            "{exe} (max time {})",
            elapsed(chrono_duration(options.maxtime))
        ),
    );
    ctx.sisyphus(
        &["init"],
        &format!("logging to {}", lines.borrow().targets()),
    );
    proctitle(options, "running");
    let report = if options.fork {
        forked(job, options, &ctx, &lines, n)
    } else {
        solo(job, options, &ctx, &lines)
    };
    if !report.written {
        write_result(&ctx, &report);
    }
    let ending = Ending::from(sisyphus_model::RunStatus::from(report.status));
    let outcome = crate::notify::Outcome {
        status: report.status,
        text: report.text.as_deref(),
        started: start,
        finished: Utc::now(),
        notices: &report.notices,
    };
    for error in crate::notify::send(options, &outcome) {
        ctx.sisyphus(&["report", "errors"], &error);
    }
    let settings = LogSettings {
        keep: options.keepfilelogs,
        compress_after: options.compressfilelogs,
        compression: options.compressmode,
    };
    if let Some(file) = lines.borrow_mut().file.take() {
        file.finish(ending, &settings);
    }
    let dir = base.join(&options.projectname).join(&options.jobname);
    Health::record(&dir, &report);
    report.status
}

/// The fork: the child executes and reports through a pipe; the parent keeps the time.
fn forked<J: Job>(
    job: &mut J,
    options: &Options,
    ctx: &Context,
    lines: &Rc<RefCell<Lines>>,
    n: u32,
) -> Report {
    lines.borrow_mut().flush();
    let (read_end, write_end) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => return failed(format!("cannot create a pipe to the child: {e}")),
    };
    #[allow(unsafe_code)]
    // SAFETY: standalone jobs are single-threaded (the SDK starts no threads before this), so
    // the child may go on running ordinary Rust code.
    let forked = unsafe { fork() };
    match forked {
        Err(e) => failed(format!("cannot fork: {e}")),
        Ok(ForkResult::Child) => {
            drop(read_end);
            let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
            let who = match options.repeat {
                true => format!("[{n}] child"),
                false => "child".to_string(),
            };
            lines
                .borrow_mut()
                .set_writer(&who, getpid().as_raw() as u32);
            proctitle(options, "child");
            ctx.sisyphus(&["init"], "forked worker child");
            let mut report = execute(job, ctx);
            write_result(ctx, &report);
            report.written = true;
            report.notices = ctx.notices();
            lines.borrow_mut().flush();
            let mut pipe = File::from(write_end);
            let _ = pipe.write_all(
                serde_json::to_string(&report)
                    .unwrap_or_default()
                    .as_bytes(),
            );
            drop(pipe);
            std::process::exit(0)
        }
        Ok(ForkResult::Parent { child }) => {
            drop(write_end);
            watch_child(options, ctx, child, read_end)
        }
    }
}

/// The parent's side: wait for the child, killing its group at maxtime.
fn watch_child(options: &Options, ctx: &Context, child: Pid, report: OwnedFd) -> Report {
    // Ctrl-C reaches the whole foreground group: the child dies of it (`interrupted`), the
    // parent stays to write the result.
    let old = signal_ignore_sigint();
    let deadline = Instant::now() + options.maxtime;
    let mut timed_out = false;
    let mut hung_up = false;
    let status = loop {
        match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {
                let now = Instant::now();
                if now >= deadline && !timed_out {
                    timed_out = true;
                    kill_group(child, options.waitchildbreak);
                    continue;
                }
                let left = deadline.saturating_duration_since(now);
                if hung_up {
                    // The child closed its report (it is exiting): reap it soon.
                    std::thread::sleep(Duration::from_millis(1).min(left));
                } else {
                    // Wake when the child closes its end of the report pipe (it wrote its
                    // report, or died), not on a timer: a quick job costs no polling delay.
                    hung_up = wait_for_hangup(&report, left.min(Duration::from_millis(50)));
                }
            }
            Ok(s) => break Some(s),
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => break None,
        }
    };
    restore_sigint(old);
    let mut text = String::new();
    let _ = File::from(report).read_to_string(&mut text);
    if timed_out {
        return Report {
            status: Status::Timeout,
            text: Some(format!(
                "timed out after {} (maxtime)",
                elapsed(chrono_duration(options.maxtime))
            )),
            written: false,
            notices: Vec::new(),
        };
    }
    if let Ok(report) = serde_json::from_str::<Report>(&text) {
        // The child wrote its lines (and the delayed ones, if it got eventful).
        ctx.mark_eventful();
        return report;
    }
    match status {
        Some(WaitStatus::Signaled(_, Signal::SIGINT, _)) => Report {
            status: Status::Interrupted,
            text: Some("interrupted (SIGINT)".into()),
            written: false,
            notices: Vec::new(),
        },
        Some(WaitStatus::Signaled(_, sig, _)) => failed(format!("the child was killed by {sig}")),
        Some(WaitStatus::Exited(_, code)) => failed(format!(
            "the child ended with exit code {code} and no result"
        )),
        _ => failed("the child ended without a result".into()),
    }
}

/// Waits up to `timeout` for the report pipe to become readable or hung up; true if it did.
fn wait_for_hangup(report: &OwnedFd, timeout: Duration) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(report.as_fd(), PollFlags::POLLHUP)];
    let ms = u16::try_from(timeout.as_millis().max(1)).unwrap_or(u16::MAX);
    match poll(&mut fds, PollTimeout::from(ms)) {
        Ok(n) if n > 0 => fds[0]
            .revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR)),
        _ => false,
    }
}

/// SIGTERM to the child's group, SIGKILL after `grace` (ll.sisyphus' `waitchildbreak`).
fn kill_group(child: Pid, grace: Duration) {
    let _ = killpg(child, Signal::SIGTERM);
    let until = Instant::now() + grace;
    while Instant::now() < until {
        if let Ok(WaitStatus::StillAlive) = waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            std::thread::sleep(Duration::from_millis(10));
        } else {
            // Gone (and reaped): what is left of its group still gets the SIGKILL.
            let _ = killpg(child, Signal::SIGKILL);
            return;
        }
    }
    let _ = killpg(child, Signal::SIGKILL);
}

/// Without fork: the process both works and watches; at maxtime a watchdog thread writes the
/// `{kill}` result, sets the links and the health record, and ends the process.
fn solo<J: Job>(
    job: &mut J,
    options: &Options,
    ctx: &Context,
    lines: &Rc<RefCell<Lines>>,
) -> Report {
    let watchdog = Watchdog::arm(options, lines);
    let mut report = execute(job, ctx);
    if let Some(w) = watchdog {
        w.disarm();
    }
    report.notices = ctx.notices();
    report
}

/// What the solo-mode watchdog needs, copied out of the single-threaded context.
struct Watchdog {
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Watchdog {
    fn arm(options: &Options, lines: &Rc<RefCell<Lines>>) -> Option<Watchdog> {
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = done.clone();
        let (maxtime, file) = {
            let l = lines.borrow();
            (
                options.maxtime,
                l.file
                    .as_ref()
                    .map(|f| (f.path(), f.dir().to_path_buf(), f.start(), l.who.clone())),
            )
        };
        let dir = base_dir(options)
            .join(&options.projectname)
            .join(&options.jobname);
        std::thread::Builder::new()
            .name("maxtime".into())
            .spawn(move || {
                std::thread::sleep(maxtime);
                if flag.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                let text = format!(
                    "timed out after {} (maxtime)",
                    elapsed(chrono_duration(maxtime))
                );
                if let Some((path, log_dir, start, who)) = file {
                    let tags = ["sisyphus", "result", "kill"].map(String::from);
                    let line = format_line(
                        Utc::now(),
                        start,
                        &who,
                        std::process::id(),
                        "",
                        &tags,
                        &text,
                    );
                    if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(&path) {
                        let _ = writeln!(f, "{line}");
                    }
                    if let Some(name) = path.file_name() {
                        let _ = sisyphus_logfile::point_link(
                            &log_dir,
                            "last_timeout.sisyphuslog",
                            Path::new(name),
                        );
                    }
                }
                Health::record(
                    &dir,
                    &Report {
                        status: Status::Timeout,
                        text: Some(text),
                        written: true,
                        notices: Vec::new(),
                    },
                );
                std::process::exit(exit::FAILED);
            })
            .ok()?;
        Some(Watchdog { done })
    }

    fn disarm(self) {
        self.done.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

fn failed(text: String) -> Report {
    Report {
        status: Status::Failed,
        text: Some(text),
        written: false,
        notices: Vec::new(),
    }
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

fn signal_ignore_sigint() -> Option<SigHandler> {
    #[allow(unsafe_code)]
    // SAFETY: installs SIG_IGN (no handler code runs).
    unsafe {
        signal(Signal::SIGINT, SigHandler::SigIgn).ok()
    }
}

fn restore_sigint(old: Option<SigHandler>) {
    if let Some(old) = old {
        #[allow(unsafe_code)]
        // SAFETY: puts back the disposition we replaced.
        unsafe {
            let _ = signal(Signal::SIGINT, old);
        }
    }
}

/// The process title (`comm`, 15 bytes) shows the job and the phase.
fn proctitle(options: &Options, phase: &str) {
    if !options.proctitle {
        return;
    }
    let mut title = format!("{}:{phase}", options.jobname);
    while title.len() > 15 {
        title.pop();
    }
    if let Ok(c) = std::ffi::CString::new(title) {
        let _ = nix::sys::prctl::set_name(&c);
    }
}

/// The standalone sink: the log file, stdout and stderr.
struct Lines {
    file: Option<RunLog>,
    stdout: bool,
    stderr: bool,
    format: Option<String>,
    start: DateTime<Utc>,
    who: String,
    pid: u32,
}

impl Lines {
    fn targets(&self) -> String {
        let mut t: Vec<String> = Vec::new();
        if self.stdout {
            t.push("<stdout>".into());
        }
        if self.stderr {
            t.push("<stderr>".into());
        }
        if let Some(f) = &self.file {
            t.push(f.path().display().to_string());
        }
        if t.is_empty() {
            "nowhere".into()
        } else {
            t.join(", ")
        }
    }

    fn set_writer(&mut self, who: &str, pid: u32) {
        self.who = who.to_string();
        self.pid = pid;
    }

    fn flush(&mut self) {
        if let Some(f) = &mut self.file {
            f.flush();
        }
        let _ = std::io::stdout().flush();
    }

    /// One line as `who pid` wrote it: ll.sisyphus' format, or the job's `formatlogline`.
    #[allow(clippy::too_many_arguments)]
    fn render(
        &self,
        who: &str,
        pid: u32,
        at: DateTime<Utc>,
        tasks: &str,
        tags: &[String],
        text: &str,
    ) -> String {
        match &self.format {
            None => format_line(at, self.start, who, pid, tasks, tags, text),
            Some(f) => f
                .replace("{time}", &at.to_rfc3339())
                .replace("{starttime}", &self.start.to_rfc3339())
                .replace(
                    "{tags}",
                    &tags.iter().map(|t| format!("{{{t}}}")).collect::<String>(),
                )
                .replace("{line}", text),
        }
    }
}

impl Sink for Lines {
    fn line(
        &mut self,
        writer: Option<&Writer>,
        at: DateTime<Utc>,
        tasks: &[Task],
        tags: &[String],
        text: &str,
    ) {
        let (who, pid) = writer.map_or((self.who.as_str(), self.pid), |w| (w.who.as_str(), w.pid));
        let rendered = self.render(who, pid, at, &tasks_label(tasks), tags, text);
        if self.stdout {
            println!("{rendered}");
        }
        if self.stderr {
            eprintln!("{rendered}");
        }
        if let Some(f) = &mut self.file {
            f.raw_line(&rendered);
            // Line by line: a forked child and its parent share the file.
            f.flush();
        }
    }

    fn writer(&self) -> Option<Writer> {
        Some(Writer {
            who: self.who.clone(),
            pid: self.pid,
        })
    }
}

/// A sink shared between the context and the run's machinery.
struct Shared<S: Sink>(Rc<RefCell<S>>);

impl<S: Sink> Sink for Shared<S> {
    fn line(
        &mut self,
        writer: Option<&Writer>,
        at: DateTime<Utc>,
        tasks: &[Task],
        tags: &[String],
        text: &str,
    ) {
        self.0.borrow_mut().line(writer, at, tasks, tags, text);
    }

    fn writer(&self) -> Option<Writer> {
        self.0.borrow().writer()
    }

    fn userdata(&mut self, value: &serde_json::Value) {
        self.0.borrow_mut().userdata(value);
    }
}

/// The record `--healthcheck` reads: `<log dir>/health.json`.
#[derive(Debug, Serialize, Deserialize)]
struct Health {
    status: Status,
    ended: DateTime<Utc>,
    text: Option<String>,
    /// When the last successful or uneventful run ended.
    last_good: Option<DateTime<Utc>>,
}

impl Health {
    fn path(dir: &Path) -> PathBuf {
        dir.join("health.json")
    }

    fn read(dir: &Path) -> Option<Health> {
        let text = std::fs::read_to_string(Self::path(dir)).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn record(dir: &Path, report: &Report) {
        let now = Utc::now();
        let good = matches!(report.status, Status::Successful | Status::Uneventful);
        let last_good = if good {
            Some(now)
        } else {
            Self::read(dir).and_then(|h| h.last_good)
        };
        let health = Health {
            status: report.status,
            ended: now,
            text: report.text.clone(),
            last_good,
        };
        let _ = std::fs::create_dir_all(dir);
        let tmp = dir.join(".health.json.tmp");
        if let Ok(json) = serde_json::to_string(&health) {
            if std::fs::write(&tmp, json).is_ok() {
                let _ = std::fs::rename(&tmp, Self::path(dir));
            }
        }
    }
}

/// `--healthcheck`: exit 0 when healthy, else 1 and why on stdout. Takes no lock.
fn healthcheck<J: Job>(job: &mut J, options: &Options, dir: &Path) -> i32 {
    let verdict = match Health::read(dir) {
        None => Some("never run".to_string()),
        Some(h) if !matches!(h.status, Status::Successful | Status::Uneventful) => Some(format!(
            "last run {} at {}: {}",
            h.status.as_str(),
            h.ended.to_rfc3339(),
            h.text.unwrap_or_default()
        )),
        Some(h) => {
            let too_old = options.maxhealthcheckage.and_then(|max| {
                let good = h.last_good?;
                let age = (Utc::now() - good).to_std().unwrap_or_default();
                (age > max).then(|| {
                    format!(
                        "last good run ended {} ago, more than maxhealthcheckage {}",
                        elapsed(chrono_duration(age)),
                        elapsed(chrono_duration(max))
                    )
                })
            });
            too_old.or_else(|| job.healthcheck())
        }
    };
    match verdict {
        None => exit::OK,
        Some(why) => {
            println!(
                "{}/{}: unhealthy: {why}",
                options.projectname, options.jobname
            );
            exit::FAILED
        }
    }
}
