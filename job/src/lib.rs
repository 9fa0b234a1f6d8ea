//! `sisyphus-job`: write jobs in Rust the way ll.sisyphus users write them in Python.
//!
//! A job implements [`Job`]; `main` hands it to [`execute_with_args`]. The same program then
//! runs in either of two ways:
//!
//! - **standalone** (from cron, a systemd timer, or a shell): ll.sisyphus' machinery — a single
//!   instance at a time (a lock file per job), the work in a forked child whose whole
//!   process group the parent kills at `maxtime`, log files and links under
//!   `~/ll.sisyphus/<project>/<job>/` exactly as the guardian writes them, `--healthcheck`,
//!   repeat mode with `nextrun`, and the failure e-mail, Mattermost posts and Sentry events,
//!   sent through the dispatcher's own senders (`sisyphus-notify`); see [`standalone`];
//! - **under a guardian** (it sees `SISYPHUS_RUN_ID` and `SISYPHUS_PROTOCOL_FD`): the same calls
//!   become protocol records (`sisyphus-protocol`) — tagged lines with their task stack, the
//!   result, user data — and maxtime, locking and files are the guardian's business.
//!
//! ```no_run
//! use sisyphus_job::{execute_with_args, Context, Error, Job, Options};
//!
//! struct Hello;
//!
//! impl Job for Hello {
//!     fn options(&self) -> Options {
//!         Options::new("ACME.FooBar", "Hello")
//!     }
//!     fn execute(&mut self, ctx: &Context) -> Result<Option<String>, Error> {
//!         ctx.tag("greeting").log("hello");
//!         Ok(Some("greeted".into()))
//!     }
//! }
//!
//! fn main() {
//!     execute_with_args(Hello)
//! }
//! ```

mod context;
mod notify;
mod options;
pub mod standalone;

pub use context::{chain, Context, Sink, Tagged, TaskGuard, Tasks, Writer};
pub use options::{NextRun, OptionError, Options};
pub use sisyphus_protocol::Status;

/// Whatever a job's `execute` may fail with (`?` works on any error type).
pub type Error = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A job: ll.sisyphus' `Job` class as a trait.
pub trait Job {
    /// The job's options (ll.sisyphus' class attributes). Command-line flags override them.
    fn options(&self) -> Options;

    /// One run. `Ok(Some(summary))`: successful, with a one-line summary; `Ok(None)`:
    /// uneventful (nothing to do; its log file is deleted); `Err`: failed.
    fn execute(&mut self, ctx: &Context) -> Result<Option<String>, Error>;

    /// Called after a failed run, before the result is written (ll.sisyphus' `failed()`): undo
    /// what a half-done run left behind.
    fn on_failure(&mut self, _ctx: &Context, _error: &Error) {}

    /// Part of `--healthcheck`: `None` when the job itself sees nothing wrong, else why.
    fn healthcheck(&mut self) -> Option<String> {
        None
    }

    /// In repeat mode, when the next run starts; `None` falls back to the `nextrun` option.
    fn nextrun(&mut self) -> Option<NextRun> {
        None
    }

    /// What the job does, shown first by `--help` (ll.sisyphus' `argdescription`).
    fn description(&self) -> Option<String> {
        None
    }

    /// The job's version, printed by `--version` (say `Some(env!("CARGO_PKG_VERSION").into())`);
    /// `None`: the SDK's (`sisyphus-job 0.1.0`).
    fn version(&self) -> Option<String> {
        None
    }
}

/// Exit codes of a standalone job.
pub mod exit {
    /// Successful or uneventful; healthy.
    pub const OK: i32 = 0;
    /// Failed or timed out; unhealthy.
    pub const FAILED: i32 = 1;
    /// A flag was refused.
    pub const USAGE: i32 = 2;
    /// Another instance of the job is running (try again later).
    pub const BUSY: i32 = 75;
    /// Interrupted (SIGINT), as a shell reports it.
    pub const INTERRUPTED: i32 = 130;
}

/// Runs `job` with the process's command-line flags and exits with its status.
pub fn execute_with_args<J: Job>(job: J) -> ! {
    let code = run(job, std::env::args().skip(1));
    std::process::exit(code)
}

/// Runs `job` with `args` as its flags; returns the exit code. `--help` and `--version` print
/// and return 0; a refused flag or value prints clap's message and returns [`exit::USAGE`].
pub fn run<J: Job>(mut job: J, args: impl IntoIterator<Item = String>) -> i32 {
    let mut options = job.options();
    if let Err(e) = options.command_line(command(&job, &options), args) {
        let _ = e.print();
        return if e.use_stderr() {
            exit::USAGE
        } else {
            exit::OK
        };
    }
    match guardian_fd() {
        Some(fd) => standalone::under_guardian(&mut job, fd),
        None => standalone::run(&mut job, &options),
    }
}

/// The job's command line: its options with the job's values as defaults, named as the program
/// was started, with the job's description and version.
pub fn command<J: Job>(job: &J, options: &Options) -> clap::Command {
    let program = std::env::args_os()
        .next()
        .and_then(|p| {
            std::path::Path::new(&p)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| options.jobname.clone());
    let version = job
        .version()
        .unwrap_or_else(|| concat!("sisyphus-job ", env!("CARGO_PKG_VERSION")).to_string());
    let command = options.command().name(program).version(version);
    match job.description() {
        Some(about) => command.about(about),
        None => command,
    }
}

/// The protocol descriptor, when a guardian supervises this process.
fn guardian_fd() -> Option<i32> {
    std::env::var_os("SISYPHUS_RUN_ID")?;
    std::env::var(sisyphus_protocol::FD_ENV).ok()?.parse().ok()
}
