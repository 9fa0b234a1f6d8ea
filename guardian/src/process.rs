//! Starting a run's process and signalling it.
//!
//! Each run gets its own session (and so its own process group), so every signal goes to the
//! whole group: a grandchild that ignores SIGTERM still gets the SIGKILL that follows. The child
//! asks the kernel to SIGKILL it when the guardian dies (`PR_SET_PDEATHSIG`), so a guardian
//! killed with SIGKILL leaves no run behind to overlap its replacement.

use std::collections::BTreeMap;
use std::os::fd::RawFd;
use std::process::Stdio;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::{Pid, User};
use tokio::process::{Child, Command};

/// What to start.
#[derive(Debug, Clone)]
pub struct Launch {
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub workdir: Option<String>,
    pub user: Option<User>,
    /// The write end of the job protocol's pipe, handed to the child as [`PROTOCOL_FD`].
    pub protocol: Option<RawFd>,
    /// The run's `cgroup.procs`, open for writing: the child moves itself in before exec.
    pub cgroup: Option<RawFd>,
}

/// The file descriptor a job finds the protocol pipe on (named in `SISYPHUS_PROTOCOL_FD`).
pub const PROTOCOL_FD: RawFd = 3;

/// Why a run could not start, in words for the run's `error`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);

/// Starts the process in its own session with piped stdout and stderr.
pub fn spawn(launch: &Launch) -> Result<Child, StartError> {
    let Some((program, args)) = launch.argv.split_first() else {
        return Err(StartError("the command is empty".to_string()));
    };
    if let Some(dir) = &launch.workdir {
        if !std::path::Path::new(dir).is_dir() {
            return Err(StartError(format!(
                "workdir `{dir}` does not exist or is not a directory"
            )));
        }
    }
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(false);
    // Nothing of the guardian's own environment (its database password above all) reaches the
    // job: `launch.env` is the whole environment (see `job_environment`).
    cmd.env_clear();
    cmd.envs(&launch.env);
    if let Some(dir) = &launch.workdir {
        cmd.current_dir(dir);
    }
    if let Some(user) = &launch.user {
        cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
    }
    new_session_dying_with_parent(&mut cmd, launch.protocol, launch.cgroup);
    cmd.spawn().map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "command not found".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => e.to_string(),
        };
        StartError(format!("cannot start `{program}`: {why}"))
    })
}

/// What jobs get of the guardian's own environment, read once at start: the few variables every
/// program expects (PATH, LANG, TZ, HOME, USER, LOGNAME) and those the guardian was told to pass
/// (`--pass-env`). Nothing else: a `PGPASSWORD` stays with the guardian.
pub fn base_environment(pass: &[String]) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let own = |k: &str| std::env::var(k).ok();
    env.insert(
        "PATH".to_string(),
        own("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".to_string()),
    );
    let keys = ["LANG", "TZ", "HOME", "USER", "LOGNAME"].into_iter();
    for key in keys.chain(pass.iter().map(String::as_str)) {
        if let Some(v) = own(key) {
            env.insert(key.to_string(), v);
        }
    }
    env
}

/// The environment a job starts with: the guardian's [`base_environment`], HOME, USER and
/// LOGNAME of the user it runs as, then the job's own `env` (the run's variables are added by
/// the caller).
pub fn job_environment(
    base: &BTreeMap<String, String>,
    user: Option<&User>,
    job: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut env = base.clone();
    if let Some(user) = user {
        env.insert("HOME".into(), user.dir.to_string_lossy().into_owned());
        env.insert("USER".into(), user.name.clone());
        env.insert("LOGNAME".into(), user.name.clone());
    }
    env.extend(job.iter().map(|(k, v)| (k.clone(), v.clone())));
    env
}

/// `setsid()` and `PR_SET_PDEATHSIG(SIGKILL)` between fork and exec, the move into the run's
/// cgroup, and the protocol pipe moved to [`PROTOCOL_FD`] (without close-on-exec).
#[allow(unsafe_code)]
fn new_session_dying_with_parent(
    cmd: &mut Command,
    protocol: Option<RawFd>,
    cgroup: Option<RawFd>,
) {
    // SAFETY: the closure runs in the forked child before exec and calls only async-signal-safe
    // system calls (write, setsid, prctl, getppid, kill, dup2, fcntl) without allocating.
    unsafe {
        cmd.pre_exec(move || {
            // First, so that nothing the child does from here on is outside its cgroup.
            if let Some(fd) = cgroup {
                crate::cgroup::join_in_child(fd)?;
            }
            if let Some(fd) = protocol {
                if fd == PROTOCOL_FD {
                    let flags = nix::fcntl::FdFlag::empty();
                    nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFD(flags))
                        .map_err(std::io::Error::from)?;
                } else {
                    // dup2 leaves close-on-exec off on the new descriptor.
                    nix::unistd::dup2(fd, PROTOCOL_FD).map_err(std::io::Error::from)?;
                }
            }
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)?;
            // The guardian may have died between fork and prctl: then nobody will signal us.
            if nix::unistd::getppid() == Pid::from_raw(1) {
                let _ = nix::sys::signal::kill(nix::unistd::getpid(), Signal::SIGKILL);
            }
            Ok(())
        });
    }
}

/// Sends `signal` to the whole process group led by `pid`. A group that is gone already is fine.
pub fn signal_group(pid: u32, signal: Signal) {
    let _ = killpg(Pid::from_raw(pid as i32), signal);
}
