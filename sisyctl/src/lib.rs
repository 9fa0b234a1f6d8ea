//! `sisyctl`: the command line over the Sisyphus client library. The binary itself is a
//! one-line `main` in the `sisyphus` package, which calls [`main`].
//!
//! Thin by design: arguments are parsed here, the work is done by `sisyphus_client`, and the
//! `cmd` modules only format results — human tables by default, `--json` for scripts.
//! Exit codes: 0 success, 1 failure (database, missing job, refused action), 2 bad input
//! (bad arguments, invalid cron expression, invalid jobs file).

mod cmd;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sisyphus_client::{Client, ControlAction, JobRef, RunId, RunStatus};

#[derive(Parser)]
#[command(
    name = "sisyctl",
    version,
    about = "Control Sisyphus: jobs, runs and schedules"
)]
struct Cli {
    /// PostgreSQL URL of the Sisyphus database.
    #[arg(
        long,
        env = "SISYPHUS_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    database_url: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create or upgrade the database schema.
    Migrate,
    /// Print the next fire times of a cron expression (no database needed).
    Cron {
        /// 5 fields (crontab) or 6 (seconds last), quoted: "*/5 * * * *".
        expression: String,
        /// IANA time zone the expression is read in.
        #[arg(long, default_value = "UTC")]
        tz: String,
        /// Start after this instant (RFC 3339); default now.
        #[arg(long)]
        from: Option<String>,
        #[arg(long, default_value_t = 5)]
        count: usize,
    },
    /// Make the database hold the jobs of a TOML file (idempotent).
    Apply {
        file: String,
        /// Also remove jobs of the file's projects that the file does not list.
        #[arg(long)]
        prune: bool,
    },
    /// Inspect and manage jobs.
    #[command(subcommand)]
    Job(JobCommand),
    /// Run a job now, outside its schedule.
    Run { job: JobRef },
    /// List runs, newest first.
    Runs {
        /// Only this job (PROJECT/NAME).
        #[arg(long)]
        job: Option<JobRef>,
        #[arg(long)]
        status: Option<RunStatus>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Terminate a run (SIGTERM to its process group, then SIGKILL); a pending run is cancelled.
    Kill { run: RunId },
    /// Suspend a running run (SIGSTOP to its process group; its maxtime clock stops).
    Suspend { run: RunId },
    /// Resume a suspended run (SIGCONT).
    Resume { run: RunId },
    /// Print a run's log; with --follow, keep printing until the run ends.
    Logs {
        run: RunId,
        #[arg(long, short)]
        follow: bool,
        /// Only lines with this tag.
        #[arg(long)]
        tag: Option<String>,
    },
    /// List guardians: pools, heartbeat age, running runs.
    Hosts,
    /// List resources: last writer, age, expiry and current locks.
    Resources {
        /// Only names starting with this.
        #[arg(default_value = "")]
        prefix: String,
    },
    /// Add resources to a running run's locks (a job calls this with $SISYPHUS_RUN_ID before it
    /// starts its work); waits while they are busy.
    Lock {
        #[arg(long)]
        run: RunId,
        #[arg(long = "input")]
        inputs: Vec<String>,
        #[arg(long = "output")]
        outputs: Vec<String>,
        /// How long to wait for busy locks.
        #[arg(long, default_value = "15m", value_parser = parse_duration)]
        wait: std::time::Duration,
    },
    /// Print the lineage graph (input → output, digits folded to `*`) as Graphviz DOT.
    Graph {
        /// Only the edges this job (PROJECT/NAME) wrote.
        #[arg(long)]
        job: Option<JobRef>,
    },
    /// Check a job's health (or every job's with --all): exit 0 when healthy, else 1 and why
    /// (never run, last run failed, last good run older than its max_health_age).
    Health {
        job: Option<JobRef>,
        #[arg(long)]
        all: bool,
    },
    /// List notifications (the outbox), newest first; --retry sends failed ones again.
    Notifications {
        /// Only these: pending, delivered, skipped or failed.
        #[arg(long)]
        state: Option<String>,
        /// Only this job's (PROJECT/NAME).
        #[arg(long)]
        job: Option<JobRef>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Send these failed notifications again (ids).
        #[arg(long, num_args = 1.., value_delimiter = ',')]
        retry: Vec<i64>,
    },
    /// Stop new claims on a host (its running runs go on); --undo restarts them.
    Drain {
        host: String,
        #[arg(long)]
        undo: bool,
    },
}

#[derive(Subcommand)]
enum JobCommand {
    /// List jobs with their state.
    Ls {
        #[arg(long)]
        project: Option<String>,
    },
    /// Show one job's definition and state.
    Show { job: JobRef },
    /// Stop scheduling a job (running runs go on).
    Pause { job: JobRef },
    /// Schedule a paused job again; missed slots meet its catch-up policy.
    Resume { job: JobRef },
    /// Remove a job and its history.
    Rm { job: JobRef },
    /// Print a job's next fire times.
    Next {
        job: JobRef,
        #[arg(long, default_value_t = 5)]
        count: usize,
    },
}

/// A failure with the exit code it deserves.
pub struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Failure {
        let error = e.into();
        let code = match error.downcast_ref::<sisyphus_client::Error>() {
            Some(sisyphus_client::Error::Invalid(_) | sisyphus_client::Error::JobsFile { .. }) => 2,
            _ => 1,
        };
        Failure { code, error }
    }
}

impl Failure {
    pub fn usage(error: anyhow::Error) -> Failure {
        Failure { code: 2, error }
    }

    /// A check that found something wrong (exit 1).
    pub fn unhealthy(error: anyhow::Error) -> Failure {
        Failure { code: 1, error }
    }
}

/// Parses the process's arguments, runs the command, prints any error, and returns the exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sisyctl: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("sisyctl: {:#}", f.error);
            ExitCode::from(f.code)
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let json = cli.json;
    let url = cli.database_url;
    match cli.command {
        Command::Cron {
            expression,
            tz,
            from,
            count,
        } => cmd::cron::run(&expression, &tz, from.as_deref(), count, json),
        Command::Migrate => cmd::migrate::run(&need_url(url)?, json).await,
        Command::Apply { file, prune } => {
            cmd::apply::run(&connect(url).await?, &file, prune, json).await
        }
        Command::Job(c) => cmd::job::run(&connect(url).await?, c, json).await,
        Command::Run { job } => cmd::runs::run_now(&connect(url).await?, &job, json).await,
        Command::Runs { job, status, limit } => {
            cmd::runs::list(&connect(url).await?, job, status, limit, json).await
        }
        Command::Kill { run } => {
            cmd::control::run(&connect(url).await?, run, ControlAction::Terminate, json).await
        }
        Command::Suspend { run } => {
            cmd::control::run(&connect(url).await?, run, ControlAction::Suspend, json).await
        }
        Command::Resume { run } => {
            cmd::control::run(&connect(url).await?, run, ControlAction::Resume, json).await
        }
        Command::Logs { run, follow, tag } => {
            cmd::logs::run(&connect(url).await?, run, follow, tag.as_deref(), json).await
        }
        Command::Hosts => cmd::control::hosts(&connect(url).await?, json).await,
        Command::Resources { prefix } => {
            cmd::resources::list(&connect(url).await?, &prefix, json).await
        }
        Command::Lock {
            run,
            inputs,
            outputs,
            wait,
        } => cmd::resources::lock(&connect(url).await?, run, &inputs, &outputs, wait, json).await,
        Command::Graph { job } => cmd::resources::graph(&connect(url).await?, job.as_ref()).await,
        Command::Health { job, all } => {
            cmd::health::run(&connect(url).await?, job, all, json).await
        }
        Command::Notifications {
            state,
            job,
            limit,
            retry,
        } => {
            let client = connect(url).await?;
            if retry.is_empty() {
                cmd::notifications::list(&client, state.as_deref(), job.as_ref(), limit, json).await
            } else {
                cmd::notifications::retry(&client, &retry, json).await
            }
        }
        Command::Drain { host, undo } => {
            cmd::control::drain(&connect(url).await?, &host, !undo, json).await
        }
    }
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    sisyphus_client::spec::parse_duration(s)
}

fn need_url(url: Option<String>) -> Result<String, Failure> {
    url.ok_or_else(|| {
        Failure::usage(anyhow::anyhow!(
            "no database given: set SISYPHUS_DATABASE_URL or pass --database-url"
        ))
    })
}

async fn connect(url: Option<String>) -> Result<Client, Failure> {
    Ok(Client::connect(&need_url(url)?).await?)
}
