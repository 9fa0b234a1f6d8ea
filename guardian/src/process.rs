//! Starting a run's process and signalling it.
//!
//! Each run gets its own session (and so its own process group), so every signal goes to the
//! whole group: a grandchild that ignores SIGTERM still gets the SIGKILL that follows. The child
//! asks the kernel to SIGKILL it when the guardian dies (`PR_SET_PDEATHSIG`), so a guardian
//! killed with SIGKILL leaves no run behind to overlap its replacement.
//!
//! The child is made with `clone(CLONE_VM | CLONE_VFORK)`, as `posix_spawn` makes it, not with
//! `fork()`: the guardian's page tables are not copied, and the calling thread waits only until
//! the child has called `execve`. Between the two the child runs on a stack of its own in the
//! guardian's memory and makes only system calls on data prepared before (`Prepared`): its
//! cgroup, its descriptors, its user, its directory, `setsid`, `PR_SET_PDEATHSIG`, then `execve`
//! along the job's `PATH`. std's `Command` would take `posix_spawn` only without these steps, and
//! `fork()` with them (BENCHMARKS.md, "The fork path"). The exit is waited for on a pidfd.

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use nix::libc;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::{Pid, User};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::net::unix::pipe;

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
    /// How the child is made.
    pub how: Spawn,
}

/// How a run's process is made (`sisyphus guardian --spawn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Spawn {
    /// `clone(CLONE_VM | CLONE_VFORK)`: no copy of the guardian's page tables.
    #[default]
    Vfork,
    /// std's `Command` with a `pre_exec`, which makes it `fork()`: what the guardian did until
    /// issue 17, kept to measure against and as a fallback.
    Fork,
}

/// The file descriptor a job finds the protocol pipe on (named in `SISYPHUS_PROTOCOL_FD`).
pub const PROTOCOL_FD: RawFd = 3;

/// Why a run could not start, in words for the run's `error`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);

/// Starts the process in its own session with piped stdout and stderr.
pub fn spawn(launch: &Launch) -> Result<Child, StartError> {
    let Some(program) = launch.argv.first() else {
        return Err(StartError("the command is empty".to_string()));
    };
    if let Some(dir) = &launch.workdir {
        if !std::path::Path::new(dir).is_dir() {
            return Err(StartError(format!(
                "workdir `{dir}` does not exist or is not a directory"
            )));
        }
    }
    let failed = |why: String| StartError(format!("cannot start `{program}`: {why}"));
    let io = |e: std::io::Error| failed(e.to_string());
    if launch.how == Spawn::Fork {
        return spawn_fork(launch).map_err(|e| failed(why(&e)));
    }
    let prepared = Prepared::new(launch).map_err(failed)?;
    let (out_r, out_w) = pipe_cloexec().map_err(io)?;
    let (err_r, err_w) = pipe_cloexec().map_err(io)?;
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(io)?;
    let fds = Fds {
        stdin: null.as_raw_fd(),
        stdout: out_w.as_raw_fd(),
        stderr: err_w.as_raw_fd(),
        protocol: launch.protocol.unwrap_or(-1),
        cgroup: launch.cgroup.unwrap_or(-1),
    };
    let pid = clone_vfork(&prepared, fds).map_err(|e| failed(why(&e)))?;
    // Only the child writes: our copies would keep the pipes open past its end.
    drop((out_w, err_w, null));
    Child::new(pid, out_r, err_r).map_err(io)
}

fn why(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "command not found".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    }
}

/// [`Spawn::Fork`]: std's `Command`, whose `pre_exec` makes it fork.
fn spawn_fork(launch: &Launch) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    let (program, args) = launch
        .argv
        .split_first()
        .ok_or(std::io::ErrorKind::NotFound)?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.env_clear();
    cmd.envs(&launch.env);
    if let Some(dir) = &launch.workdir {
        cmd.current_dir(dir);
    }
    if let Some(user) = &launch.user {
        cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
    }
    let fds = Fds {
        stdin: -1,
        stdout: -1,
        stderr: -1,
        protocol: launch.protocol.unwrap_or(-1),
        cgroup: launch.cgroup.unwrap_or(-1),
    };
    #[allow(unsafe_code)]
    // SAFETY: the closure runs in the forked child before exec and makes only system calls.
    unsafe {
        cmd.pre_exec(move || match run_steps(fds) {
            0 => Ok(()),
            errno => Err(std::io::Error::from_raw_os_error(errno)),
        });
    }
    let mut std_child = cmd.spawn()?;
    let out = std_child.stdout.take().map(OwnedFd::from);
    let err = std_child.stderr.take().map(OwnedFd::from);
    let (Some(out), Some(err)) = (out, err) else {
        return Err(std::io::Error::other("no pipes"));
    };
    // std's `Child` neither waits nor kills on drop: the pidfd takes over.
    Child::new(std_child.id() as i32, out, err)
}

/// A started run's main process: its pid, the read ends of its stdout and stderr, and its exit
/// status once waited for.
#[derive(Debug)]
pub struct Child {
    pid: i32,
    pidfd: Option<AsyncFd<OwnedFd>>,
    status: Option<ExitStatus>,
    pub stdout: Option<pipe::Receiver>,
    pub stderr: Option<pipe::Receiver>,
}

impl Child {
    /// Our unreaped child (its pid cannot be reused before we wait for it) and its pipes.
    fn new(pid: i32, stdout: OwnedFd, stderr: OwnedFd) -> std::io::Result<Child> {
        let mut child = Child {
            pid,
            pidfd: None,
            status: None,
            stdout: None,
            stderr: None,
        };
        // Made first, so that a failure below still reaps the child (Drop).
        let pidfd = pidfd_open(pid)?;
        // SAFETY: the AsyncFd owns the descriptor, which stays open as long as it does.
        #[allow(unsafe_code)]
        let pidfd = unsafe { AsyncFd::register_with_interest(pidfd, Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
        child.pidfd = Some(pidfd);
        child.stdout = Some(pipe::Receiver::from_owned_fd(stdout)?);
        child.stderr = Some(pipe::Receiver::from_owned_fd(stderr)?);
        Ok(child)
    }

    pub fn id(&self) -> u32 {
        self.pid as u32
    }

    /// Waits for the process to end (its pidfd becomes readable) and reaps it.
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        loop {
            if let Some(status) = self.status {
                return Ok(status);
            }
            let Some(pidfd) = &self.pidfd else {
                return Err(std::io::Error::other("the process was not started"));
            };
            let mut ready = pidfd.readable().await?;
            match reap(self.pid)? {
                Some(status) => {
                    self.status = Some(status);
                    self.pidfd = None;
                }
                None => ready.clear_ready(),
            }
        }
    }
}

impl Drop for Child {
    /// A child dropped before it was waited for is reaped in the background (no zombie).
    fn drop(&mut self) {
        let (Some(pidfd), None) = (self.pidfd.take(), self.status) else {
            return;
        };
        let pid = self.pid;
        if let Ok(Some(_)) = reap(pid) {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                while let Ok(mut ready) = pidfd.readable().await {
                    match reap(pid) {
                        Ok(None) => ready.clear_ready(),
                        _ => return,
                    }
                }
            });
        }
    }
}

/// `waitpid(pid, WNOHANG)`: the exit status once the process has ended.
#[allow(unsafe_code)]
fn reap(pid: i32) -> std::io::Result<Option<ExitStatus>> {
    let mut status = 0;
    loop {
        // SAFETY: a plain system call on our own child.
        let done = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        match done {
            0 => return Ok(None),
            p if p == pid => return Ok(Some(ExitStatus::from_raw(status))),
            _ => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

#[allow(unsafe_code)]
fn pidfd_open(pid: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open(2) returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the descriptor is new and ours alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

fn pipe_cloexec() -> std::io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)
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

/// What the child needs between `clone` and `execve`, made before `clone` (the child must not
/// allocate: it shares the guardian's memory and its allocator's locks).
struct Prepared {
    /// Where to look for the program: itself when it names a path, else each directory of the
    /// job's `PATH` (as `execvp` searches, but with the job's `PATH`, not the guardian's).
    candidates: Vec<CString>,
    argv: Vec<CString>,
    env: Vec<CString>,
    workdir: Option<CString>,
    /// `(uid, gid)` to switch to.
    user: Option<(libc::uid_t, libc::gid_t)>,
}

impl Prepared {
    fn new(launch: &Launch) -> Result<Prepared, String> {
        let c = |s: &[u8]| {
            CString::new(s)
                .map_err(|_| "a NUL byte in the command line, environment or workdir".to_string())
        };
        let argv = launch
            .argv
            .iter()
            .map(|a| c(a.as_bytes()))
            .collect::<Result<Vec<_>, _>>()?;
        let env = launch
            .env
            .iter()
            .map(|(k, v)| c(format!("{k}={v}").as_bytes()))
            .collect::<Result<Vec<_>, _>>()?;
        let program = launch.argv.first().map(String::as_str).unwrap_or_default();
        let candidates = if program.contains('/') {
            vec![c(program.as_bytes())?]
        } else {
            let path = launch
                .env
                .get("PATH")
                .map(String::as_str)
                .unwrap_or("/usr/local/bin:/usr/bin:/bin");
            path.split(':')
                .map(|dir| {
                    let dir = if dir.is_empty() { "." } else { dir };
                    let full = std::path::Path::new(dir).join(OsStr::new(program));
                    c(full.as_os_str().as_bytes())
                })
                .collect::<Result<Vec<_>, _>>()?
        };
        let workdir = launch
            .workdir
            .as_ref()
            .map(|d| c(d.as_bytes()))
            .transpose()?;
        let user = launch
            .user
            .as_ref()
            .map(|u| (u.uid.as_raw(), u.gid.as_raw()));
        Ok(Prepared {
            candidates,
            argv,
            env,
            workdir,
            user,
        })
    }
}

/// The descriptors the child arranges (-1: none).
#[derive(Clone, Copy)]
struct Fds {
    stdin: RawFd,
    stdout: RawFd,
    stderr: RawFd,
    protocol: RawFd,
    cgroup: RawFd,
}

/// What `child_main` reads, and the errno it leaves when it cannot exec.
#[repr(C)]
struct ChildArgs {
    candidates: *const *const libc::c_char,
    candidates_len: usize,
    argv: *const *const libc::c_char,
    /// `/bin/sh`, the script, then `argv[1..]`: a file without `#!` that the kernel cannot
    /// execute runs through the shell, as `execvp` does. Slot 1 is set by the child.
    script_argv: *mut *const libc::c_char,
    envp: *const *const libc::c_char,
    workdir: *const libc::c_char,
    user: Option<(libc::uid_t, libc::gid_t)>,
    was_root: bool,
    fds: Fds,
    errno: i32,
}

const CHILD_STACK: usize = 64 * 1024;

/// Starts the child; returns its pid once it has called `execve` (or the errno of the step that
/// failed, after reaping it).
#[allow(unsafe_code)]
fn clone_vfork(prepared: &Prepared, fds: Fds) -> std::io::Result<i32> {
    let pointers = |v: &[CString]| -> Vec<*const libc::c_char> {
        v.iter()
            .map(|s| s.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect()
    };
    let candidates = pointers(&prepared.candidates);
    let argv = pointers(&prepared.argv);
    let envp = pointers(&prepared.env);
    let sh = c"/bin/sh";
    let mut script_argv: Vec<*const libc::c_char> = vec![sh.as_ptr(), std::ptr::null()];
    script_argv.extend(argv.iter().skip(1));
    let mut args = ChildArgs {
        candidates: candidates.as_ptr(),
        candidates_len: prepared.candidates.len(),
        argv: argv.as_ptr(),
        script_argv: script_argv.as_mut_ptr(),
        envp: envp.as_ptr(),
        workdir: prepared
            .workdir
            .as_ref()
            .map_or(std::ptr::null(), |d| d.as_ptr()),
        user: prepared.user,
        // SAFETY: getuid cannot fail.
        was_root: unsafe { libc::getuid() } == 0,
        fds,
        errno: 0,
    };
    let mut stack = vec![0u8; CHILD_STACK];
    // SAFETY: the stack is ours for the whole call (CLONE_VFORK: clone returns only after the
    // child has exec'd or exited); its top is aligned to 16 bytes as the ABI wants.
    let top = unsafe { stack.as_mut_ptr().add(CHILD_STACK) };
    let top = (top as usize & !15) as *mut libc::c_void;
    // Signals are blocked around clone so that no handler of the guardian (tokio's) runs in the
    // child before it has reset them to their defaults; the child unblocks them before exec.
    // SAFETY: sigset_t is plain data; sigfillset/pthread_sigmask only write the given sets.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
    }
    // SAFETY: child_main only reads `args` and writes `args.errno` and the script argv's slot
    // (memory this thread owns and, being suspended by CLONE_VFORK, does not touch meanwhile),
    // and calls only async-signal-safe functions without allocating.
    let pid = unsafe {
        libc::clone(
            child_main,
            top,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (&mut args as *mut ChildArgs).cast(),
        )
    };
    let clone_error = std::io::Error::last_os_error();
    // SAFETY: restores this thread's own mask.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    drop(stack);
    if pid < 0 {
        return Err(clone_error);
    }
    // The child is done with `args` (it exec'd or exited); a volatile read, since it wrote it
    // behind the compiler's back.
    // SAFETY: a plain read of our own variable.
    let errno = unsafe { std::ptr::read_volatile(&args.errno) };
    if errno != 0 {
        let mut status = 0;
        // SAFETY: reaps the child that failed before exec.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        return Err(std::io::Error::from_raw_os_error(errno));
    }
    Ok(pid)
}

/// The child between `clone` and `execve`: in the order std's `Command` uses (descriptors,
/// user, directory), then the run's steps — into its cgroup first, so that nothing it does is
/// outside it; the protocol pipe to [`PROTOCOL_FD`]; `setsid()`; `PR_SET_PDEATHSIG(SIGKILL)`,
/// after the user switch, which would clear it; and the check that the guardian did not die
/// before. System calls only; user switches as raw system calls, since glibc's wrappers would
/// signal the guardian's threads to switch them too.
#[allow(unsafe_code)]
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `ChildArgs` clone_vfork made, alive while this runs.
    let args = unsafe { &mut *arg.cast::<ChildArgs>() };
    // SAFETY: see child_steps; _exit ends this process only (it is not a thread of the guardian).
    unsafe {
        let errno = child_steps(args);
        args.errno = if errno == 0 { libc::EINVAL } else { errno };
        libc::_exit(127)
    }
}

/// The run's own steps, after the descriptors, user and directory (in either kind of child): into
/// its cgroup (unless done already), the protocol pipe to [`PROTOCOL_FD`], a new session, death
/// with the guardian. Returns 0 or the errno of the step that failed.
#[allow(unsafe_code)]
fn run_steps(f: Fds) -> i32 {
    // SAFETY: system calls on descriptors the parent keeps open for the whole spawn.
    unsafe {
        let errno = || *libc::__errno_location();
        if f.cgroup >= 0 && libc::write(f.cgroup, b"0".as_ptr().cast(), 1) < 0 {
            return errno();
        }
        if f.protocol == PROTOCOL_FD {
            if libc::fcntl(f.protocol, libc::F_SETFD, 0) < 0 {
                return errno();
            }
        } else if f.protocol >= 0 && libc::dup2(f.protocol, PROTOCOL_FD) < 0 {
            // (dup2 leaves close-on-exec off on the new descriptor.)
            return errno();
        }
        if libc::setsid() < 0 {
            return errno();
        }
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) < 0 {
            return errno();
        }
        // The guardian may have died between clone and prctl: then nobody will signal us.
        if libc::getppid() == 1 {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
    0
}

/// Returns the errno of the step that failed (the last `execve`'s when none succeeded).
#[allow(unsafe_code)]
unsafe fn child_steps(a: &mut ChildArgs) -> i32 {
    let errno = || *libc::__errno_location();
    macro_rules! check {
        ($e:expr) => {
            if $e < 0 {
                return errno();
            }
        };
    }
    // The guardian's handlers (tokio's) must not run here nor survive exec; SIGPIPE, which Rust
    // ignores, is the default again (as std does); other ignored signals stay ignored.
    for sig in 1..65 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(sig, std::ptr::null(), &mut old) != 0 {
            continue;
        }
        if old.sa_sigaction != libc::SIG_DFL
            && (old.sa_sigaction != libc::SIG_IGN || sig == libc::SIGPIPE)
        {
            let mut dfl: libc::sigaction = std::mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, &dfl, std::ptr::null_mut());
        }
    }
    let f = a.fds;
    // First, so that nothing the child does from here on is outside its cgroup.
    if f.cgroup >= 0 {
        check!(libc::write(f.cgroup, b"0".as_ptr().cast(), 1));
    }
    check!(libc::dup2(f.stdin, 0));
    check!(libc::dup2(f.stdout, 1));
    check!(libc::dup2(f.stderr, 2));
    if let Some((uid, gid)) = a.user {
        if a.was_root {
            check!(libc::syscall(
                libc::SYS_setgroups,
                0,
                std::ptr::null::<libc::gid_t>()
            ));
        }
        check!(libc::syscall(libc::SYS_setgid, gid));
        check!(libc::syscall(libc::SYS_setuid, uid));
    }
    if !a.workdir.is_null() {
        check!(libc::chdir(a.workdir));
    }
    let failed = run_steps(Fds { cgroup: -1, ..f });
    if failed != 0 {
        return failed;
    }
    let mut empty: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut empty);
    libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    // execvp's search: on to the next directory when the file is not there, EACCES if one was
    // found but refused, any other error at once.
    let mut result = libc::ENOENT;
    let mut refused = false;
    for i in 0..a.candidates_len {
        let path = *a.candidates.add(i);
        libc::execve(path, a.argv, a.envp);
        match errno() {
            libc::ENOEXEC => {
                *a.script_argv.add(1) = path;
                libc::execve(*a.script_argv, a.script_argv.cast_const(), a.envp);
                return errno();
            }
            libc::EACCES => refused = true,
            libc::ENOENT | libc::ENOTDIR => {}
            e => {
                result = e;
                break;
            }
        }
    }
    if refused && result == libc::ENOENT {
        libc::EACCES
    } else {
        result
    }
}

/// Sends `signal` to the whole process group led by `pid`. A group that is gone already is fine.
pub fn signal_group(pid: u32, signal: Signal) {
    let _ = killpg(Pid::from_raw(pid as i32), signal);
}
