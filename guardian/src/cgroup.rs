//! Runs in their own cgroup (v2), where the guardian has a writable cgroup directory.
//!
//! A process group is a promise a child can break: `setsid` leaves it, and a daemon started that
//! way outlives maxtime, terminate and its run. A cgroup cannot be left by an unprivileged
//! process, so the guardian puts each run in `<base>/run-<id>` before exec (the child writes
//! `0` to `cgroup.procs` between fork and exec) and then:
//! - terminate and maxtime send SIGTERM to every process in it, and end with `cgroup.kill`;
//! - suspend and resume use `cgroup.freeze`;
//! - when the main process ends, whatever is left in the cgroup is counted, killed and reported.
//!
//! The base is `<root>/sisyphus-<host>-<guardian pid>-<n>`, where `<root>` is `--cgroup-root` or the
//! guardian's own cgroup (from `/proc/self/cgroup` and the cgroup2 mount in
//! `/proc/self/mountinfo`). At start a guardian kills and removes the bases of dead guardians of
//! its host, so a run's escapees do not outlive a guardian killed with SIGKILL past its restart.
//! Without a writable cgroup2 directory the guardian falls back to process groups and says so.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use sisyphus_model::views::Isolation;

/// Where this guardian makes its runs' cgroups.
#[derive(Debug, Clone)]
pub struct Cgroups {
    base: PathBuf,
    /// Controllers enabled for the runs' cgroups (`memory`, `cpu`, `pids`…), as far as delegated.
    controllers: Vec<String>,
}

static BASES: AtomicU64 = AtomicU64::new(0);

/// How processes of runs are held on this host, for `sisyctl hosts`.
pub fn isolation(cgroups: Option<&Cgroups>) -> Isolation {
    if cgroups.is_some() {
        Isolation::Cgroup
    } else {
        Isolation::ProcessGroup
    }
}

impl Cgroups {
    /// The cgroups of this guardian below `root` (or below its own cgroup, detected). With an
    /// explicit root that cannot be used, an error says why; when detection finds nothing
    /// writable, `Ok(None)`: process groups then.
    pub fn open(root: Option<&Path>, host: &str) -> Result<Option<Cgroups>, String> {
        let (root, explicit) = match root {
            Some(r) => (r.to_path_buf(), true),
            None => match own_cgroup() {
                Some(r) => (r, false),
                None => return Ok(None),
            },
        };
        if !root.join("cgroup.procs").is_file() {
            return match explicit {
                true => Err(format!(
                    "--cgroup-root {}: not a cgroup v2 directory (no cgroup.procs)",
                    root.display()
                )),
                false => Ok(None),
            };
        }
        reap_dead_bases(&root, host);
        // Named by the guardian's pid and its start time, so that a reused pid is not taken for
        // the guardian that is gone.
        let me = std::process::id() as i32;
        let base = root.join(format!(
            "sisyphus-{host}-{me}.{}-{}",
            start_time(me).unwrap_or(0),
            BASES.fetch_add(1, Ordering::SeqCst)
        ));
        if let Err(e) = std::fs::create_dir(&base) {
            return match explicit {
                true => Err(format!(
                    "--cgroup-root {}: cannot create {}: {e}",
                    root.display(),
                    base.display()
                )),
                false => {
                    tracing::info!(
                        "no writable cgroup at {} ({e}); runs are held by process groups",
                        root.display()
                    );
                    Ok(None)
                }
            };
        }
        let controllers = enable_controllers(&base);
        Ok(Some(Cgroups { base, controllers }))
    }

    /// The directory this guardian's run cgroups live in.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// Whether a controller (`memory`, `cpu`, `pids`) can be applied to runs.
    pub fn has_controller(&self, name: &str) -> bool {
        self.controllers.iter().any(|c| c == name)
    }

    /// A new cgroup for one run.
    pub fn create(&self, run: i64) -> std::io::Result<RunCgroup> {
        let dir = self.base.join(format!("run-{run}"));
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            // A leftover of an earlier attempt on this guardian: empty it first.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let old = RunCgroup { dir: dir.clone() };
                old.kill();
                old.wait_empty(Duration::from_secs(2));
            }
            Err(e) => return Err(e),
        }
        Ok(RunCgroup { dir })
    }

    /// Removes this guardian's base (its runs' cgroups are gone by then).
    pub fn remove(&self) {
        let _ = std::fs::remove_dir(&self.base);
    }
}

/// One run's cgroup.
#[derive(Debug)]
pub struct RunCgroup {
    dir: PathBuf,
}

impl RunCgroup {
    /// The file a child writes `0` to, between fork and exec, to move itself in.
    pub fn procs_file(&self) -> std::io::Result<OwnedFd> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(self.dir.join("cgroup.procs"))?;
        Ok(OwnedFd::from(file))
    }

    /// The processes in it now, also in cgroups the job made below it.
    pub fn pids(&self) -> Vec<i32> {
        let mut pids = Vec::new();
        for dir in subtree(&self.dir) {
            let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
            pids.extend(procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
        }
        pids
    }

    /// Whether any process is left in it or below it (`cgroup.events`).
    pub fn populated(&self) -> bool {
        std::fs::read_to_string(self.dir.join("cgroup.events"))
            .map(|e| e.lines().any(|l| l.trim() == "populated 1"))
            // Without cgroup.events (it is there since cgroup v2 began): count.
            .unwrap_or_else(|_| !self.pids().is_empty())
    }

    /// A signal to every process in it.
    pub fn signal(&self, signal: Signal) {
        for pid in self.pids() {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), signal);
        }
    }

    /// SIGKILL to everything in it and below it, at once (`cgroup.kill`, Linux 5.14), or one by
    /// one where the kernel has no `cgroup.kill`.
    pub fn kill(&self) {
        if write(&self.dir.join("cgroup.kill"), "1").is_err() {
            // Older kernels: until nothing is left, as processes may fork meanwhile.
            for _ in 0..100 {
                let pids = self.pids();
                if pids.is_empty() {
                    break;
                }
                for pid in pids {
                    let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
            }
        }
    }

    /// Freezes (suspend) or thaws (resume) every process in it. Errors: no `cgroup.freeze`.
    pub fn freeze(&self, frozen: bool) -> std::io::Result<()> {
        write(
            &self.dir.join("cgroup.freeze"),
            if frozen { "1" } else { "0" },
        )
    }

    /// Sets a limit file (`memory.max`, `cpu.weight`, `pids.max`).
    pub fn limit(&self, file: &str, value: &str) -> std::io::Result<()> {
        write(&self.dir.join(file), value)
    }

    /// Waits until no process is left (up to `limit`); whether it is empty.
    pub fn wait_empty(&self, limit: Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if !self.populated() {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Kills what is left, waits for it to be gone and removes the cgroup (the job's own
    /// cgroups below it first, deepest first).
    pub fn remove(self) {
        // A frozen cgroup's killed processes leave only once thawed.
        let _ = self.freeze(false);
        if self.populated() {
            self.kill();
            self.wait_empty(Duration::from_secs(2));
        }
        let mut dirs = subtree(&self.dir);
        dirs.reverse();
        for dir in dirs {
            // An exited process may leave its cgroup a moment after it was reaped: retry briefly.
            let mut removed = false;
            for _ in 0..2000 {
                match std::fs::remove_dir(&dir) {
                    Ok(()) => removed = true,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => removed = true,
                    Err(_) => std::thread::sleep(Duration::from_millis(1)),
                }
                if removed {
                    break;
                }
            }
            if !removed {
                tracing::warn!("cannot remove the run cgroup {}", dir.display());
                return;
            }
        }
    }
}

fn write(path: &Path, value: &str) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)?
        .write_all(value.as_bytes())
}

/// `dir` and every directory below it, parents before children.
fn subtree(dir: &Path) -> Vec<PathBuf> {
    let mut all = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < all.len() {
        let children: Vec<PathBuf> = std::fs::read_dir(&all[i])
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect();
        all.extend(children);
        i += 1;
    }
    all
}

/// A process's start time (clock ticks since boot, `/proc/PID/stat` field 22).
fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    // After the command: state is field 3, so field 22 is the 20th here.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The guardian's own cgroup v2 directory: the cgroup2 mount joined with the `0::` path.
fn own_cgroup() -> Option<PathBuf> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = cgroup.lines().find_map(|l| l.strip_prefix("0::"))?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    // Fields: id parent major:minor root mountpoint options ... - fstype source superoptions
    let mount = mountinfo.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        let fstype = right.split_whitespace().next()?;
        (fstype == "cgroup2").then(|| left.split_whitespace().nth(4).map(PathBuf::from))?
    })?;
    Some(mount.join(path.trim_start_matches('/')))
}

/// Enables in `base` every controller its parent delegates to it, so runs can be limited; returns
/// those enabled. Only possible while `base` holds no process itself, which it never does.
fn enable_controllers(base: &Path) -> Vec<String> {
    let available = std::fs::read_to_string(base.join("cgroup.controllers")).unwrap_or_default();
    let mut enabled = Vec::new();
    for c in available.split_whitespace() {
        if write(&base.join("cgroup.subtree_control"), &format!("+{c}")).is_ok() {
            enabled.push(c.to_string());
        }
    }
    enabled
}

/// Kills and removes the bases that dead guardians of `host` left below `root`.
fn reap_dead_bases(root: &Path, host: &str) {
    let prefix = format!("sisyphus-{host}-");
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(&prefix) else {
            continue;
        };
        // `<pid>.<start time>-<n>`: a base whose guardian is alive is not ours to touch.
        let parts: Vec<&str> = rest.split('-').collect();
        let [who, _n] = parts.as_slice() else {
            continue;
        };
        let Some((pid, started)) = who
            .split_once('.')
            .and_then(|(p, t)| Some((p.parse::<i32>().ok()?, t.parse::<u64>().ok()?)))
        else {
            continue;
        };
        if start_time(pid) == Some(started) {
            continue;
        }
        let base = entry.path();
        let mut left = 0;
        let cg = RunCgroup { dir: base.clone() };
        left += cg.pids().len();
        cg.remove();
        if left > 0 {
            tracing::warn!(
                "killed {left} process(es) that runs of an earlier life of this guardian left in {}",
                base.display()
            );
        }
    }
}
