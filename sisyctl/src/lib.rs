//! `sisyctl`: the command line over the Sisyphus client library. The binary itself is a
//! one-line `main` in the `sisyphus` package, which calls [`main`].
//!
//! Thin by design: arguments are parsed here, the work is done by `sisyphus_client`, and the
//! `cmd` modules only format results — human tables by default, `--json` for scripts.
//! Exit codes, chosen in one place ([`Failure`]): 0 success, 1 failure (database, unreachable
//! database, missing job or run, refused action, unhealthy job), 2 bad input (bad arguments,
//! a limit out of range, invalid cron expression, invalid jobs file or definition — also when
//! the database refuses a value), 3 from `apply --plan` when applying would change something
//! ([`CHANGES_PLANNED`]; 0 when it would change nothing), 141 when stdout was closed
//! (`sisyctl … | head`), quietly.

mod cmd;
mod output;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sisyphus_client::access::GrantLevel;
use sisyphus_client::{BulkAction, Client, ControlAction, JobRef, RunId, RunStatus};

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
    /// Give up connecting to the database after this long (the cause is reported).
    #[arg(long, global = true, default_value = "2s", value_parser = parse_timeout)]
    connect_timeout: std::time::Duration,
    /// Why: recorded in the audit log with every change this command makes (`sisyctl audit`).
    #[arg(long, env = "SISYPHUS_REASON", global = true)]
    reason: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create or upgrade the database schema.
    Migrate,
    /// Print the next fire times of a cron expression (no database needed); with --explain, the
    /// expression in words, its fire times in local time and UTC, and what each DST transition
    /// in that window does to it and why (the interval rule or the fixed-time rule).
    Cron {
        /// 5 fields (crontab) or 6 (seconds last), quoted: "*/5 * * * *".
        expression: String,
        /// IANA time zone the expression is read in.
        #[arg(long, default_value = "UTC")]
        tz: String,
        /// Start after this instant (RFC 3339); default now.
        #[arg(long)]
        from: Option<String>,
        /// How many (1 to 10,000; default 5, or 10 with --explain).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_COUNT))]
        count: Option<u64>,
        /// Mark the times this calendar excludes, as a job's `skip_on` would (needs the
        /// database); repeat for more.
        #[arg(long = "calendar", value_name = "NAME")]
        calendars: Vec<String>,
        /// Mark the times none of these calendars contains, as a job's `only_on` would.
        #[arg(long = "only-on", value_name = "NAME")]
        only_on: Vec<String>,
        /// Explain the schedule: in words, fire times local and UTC, DST transitions and
        /// calendar exclusions.
        #[arg(long)]
        explain: bool,
    },
    /// Calendars (days and time ranges in a zone) that jobs skip (`skip_on`) or keep to
    /// (`only_on`).
    #[command(subcommand)]
    Calendar(cmd::calendar::CalendarCommand),
    /// Make the database hold the jobs of a TOML file (idempotent).
    ///
    /// With --plan: print what applying would change — per job added, changed (each key old →
    /// new, and the next fire times before and after where the schedule changes), removed (with
    /// --prune) — and write nothing. Exit status of --plan: 0 no changes, 3 changes, 2 a bad
    /// file or arguments, 1 any other failure.
    Apply {
        file: String,
        /// Also remove jobs of the file's projects that the file does not list.
        #[arg(long)]
        prune: bool,
        /// Only show what applying would change; write nothing (exit 3 if anything would).
        #[arg(long)]
        plan: bool,
    },
    /// Inspect and manage jobs.
    #[command(subcommand)]
    Job(JobCommand),
    /// Run a job now, outside its schedule, with parameters the job declares
    /// (`--param date=2026-11-30`; the others take their defaults).
    Run {
        job: JobRef,
        /// NAME=VALUE; repeat for more.
        #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_param)]
        params: Vec<(String, String)>,
    },
    /// Run a run again: a new run of the same job and slot (the slot's next attempt), trigger
    /// `rerun`, linked to the run it repeats; `--reason` goes into the audit log.
    Rerun { run: RunId },
    /// Run a job's past slots: a run (trigger `backfill`) for each slot of its schedule in
    /// [--from, --to) that has no successful or uneventful run and none in progress, oldest
    /// first, made as the job's concurrency has room. Idempotent: says how many slots were new.
    /// Times: RFC 3339, a local time in the job's zone, `now`, or a duration before now (3d).
    /// `--reason` goes into the audit log.
    Backfill {
        job: JobRef,
        #[arg(long, required_unless_present = "cancel")]
        from: Option<String>,
        /// Exclusive: a slot at exactly this time is not backfilled.
        #[arg(long, required_unless_present = "cancel")]
        to: Option<String>,
        /// List the slots and what would be done; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Allow more slots than 10,000 (at most 1,000,000).
        #[arg(long, default_value_t = sisyphus_client::backfill::DEFAULT_MAX_SLOTS,
              value_parser = clap::value_parser!(u32).range(1..=sisyphus_client::backfill::MAX_SLOTS as i64))]
        max: u32,
        /// Take back the job's backfill slots that are not runs yet, instead.
        #[arg(long, conflicts_with_all = ["from", "to", "dry_run"])]
        cancel: bool,
    },
    /// List runs, newest first.
    ///
    /// With --rerun, --kill, --suspend or --resume: acts on every run listed (at most --limit,
    /// default 10,000 then), after printing them and asking — or at once with --yes — in one
    /// transaction, and says per run what happened.
    Runs {
        /// Only this job (PROJECT/NAME).
        #[arg(long)]
        job: Option<JobRef>,
        #[arg(long)]
        status: Option<RunStatus>,
        /// Only runs scheduled within this long (e.g. 1d, 6h).
        #[arg(long, value_parser = parse_duration)]
        since: Option<std::time::Duration>,
        /// At most this many (1 to 10,000; default 50, or 10,000 with an action).
        #[arg(long, value_parser = clap::value_parser!(i64).range(1..=MAX_COUNT as i64))]
        limit: Option<i64>,
        /// Run each listed run again.
        #[arg(long, group = "bulk")]
        rerun: bool,
        /// Terminate each listed run.
        #[arg(long, group = "bulk")]
        kill: bool,
        /// Suspend each listed run.
        #[arg(long, group = "bulk")]
        suspend: bool,
        /// Resume each listed run.
        #[arg(long, group = "bulk")]
        resume: bool,
        /// Act without asking.
        #[arg(long, requires = "bulk")]
        yes: bool,
    },
    /// Terminate a run (SIGTERM to its process group, then SIGKILL); a pending run is cancelled.
    Kill { run: RunId },
    /// Suspend a running run (SIGSTOP to its process group; its maxtime clock stops).
    Suspend { run: RunId },
    /// Resume a suspended run (SIGCONT).
    Resume { run: RunId },
    /// Print a run's log, every line (read from the database page by page); with --follow,
    /// keep printing until the run ends. Control characters are shown escaped (`\x1b`; tabs
    /// stay) unless --raw.
    Logs {
        run: RunId,
        #[arg(long, short)]
        follow: bool,
        /// Only lines with this tag.
        #[arg(long)]
        tag: Option<String>,
        /// Start with the last N lines (of those with the tag, if given).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i32::MAX as i64))]
        tail: Option<u32>,
        /// Print at most N lines.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i32::MAX as i64))]
        limit: Option<u32>,
        /// Print the lines' text as stored, control characters and escape sequences included.
        #[arg(long)]
        raw: bool,
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
        /// At most this many (1 to 10,000).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=MAX_COUNT as i64))]
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
    /// Give a login a level on projects: viewer (read), operator (viewer + run now, backfill, kill,
    /// suspend, resume, pause, retry notifications), editor (operator + apply and remove jobs).
    Grant {
        login: String,
        level: GrantLevel,
        /// A project (ACME.FooBar), a project and everything under it (ACME.*), or * (all).
        #[arg(value_parser = cmd::access::parse_pattern)]
        pattern: String,
    },
    /// Take back a login's grant on a pattern.
    Revoke {
        login: String,
        #[arg(value_parser = cmd::access::parse_pattern)]
        pattern: String,
    },
    /// List grants (all for admins, your own otherwise).
    Grants,
    /// Logins for people.
    #[command(subcommand)]
    User(cmd::access::UserCommand),
    /// Logins for daemons.
    #[command(subcommand)]
    Service(cmd::access::ServiceCommand),
    /// Personal tokens for signing in to the web dashboard (`sisyphus web`).
    #[command(subcommand)]
    Token(cmd::token::TokenCommand),
    /// The audit log, newest first: who changed what, through what, and why.
    Audit {
        /// Only this job's changes and its runs' (PROJECT/NAME).
        #[arg(long)]
        job: Option<JobRef>,
        /// Only changes by this login.
        #[arg(long)]
        actor: Option<String>,
        /// Only changes within this long before now (e.g. 1d, 2h30m).
        #[arg(long, value_parser = parse_duration)]
        since: Option<std::time::Duration>,
        /// At most this many (1 to 10,000).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=MAX_COUNT as i64))]
        limit: i64,
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
    /// Stop scheduling a job (running runs go on). `--reason` says why (shown with the job and in
    /// the audit log); with `--until` the scheduler resumes it then.
    Pause {
        job: JobRef,
        /// When to resume by itself: a time (RFC 3339, e.g. 2026-12-24T06:00:00Z or with an
        /// offset) or a duration from now (e.g. 2h, 3days).
        #[arg(long, value_parser = parse_until)]
        until: Option<chrono::DateTime<chrono::Utc>>,
        /// Filled from the global --reason.
        #[arg(skip)]
        reason: Option<String>,
    },
    /// Schedule a paused job again; missed slots meet its catch-up policy.
    Resume { job: JobRef },
    /// Remove a job and its history.
    Rm { job: JobRef },
    /// Explain a job's schedule: in words, its next fire times in local time and UTC, and what
    /// each DST transition in that window does to it and why.
    Explain {
        job: JobRef,
        /// How many fire times (1 to 10,000).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=MAX_COUNT))]
        count: u64,
    },
    /// Print a job's next fire times.
    Next {
        job: JobRef,
        /// How many (1 to 10,000).
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=MAX_COUNT))]
        count: u64,
    },
}

/// The most lines or times a listing prints (`--count`, `--limit` of tables).
pub const MAX_COUNT: u64 = 10_000;

/// The exit code of a closed stdout: what a shell reports for a process ended by SIGPIPE.
const CLOSED_PIPE: u8 = 141;

/// The exit code of `apply --plan` when applying would change something (0: it would not), for
/// CI — as `terraform plan -detailed-exitcode` returns 2, which is our code for bad input.
pub const CHANGES_PLANNED: u8 = 3;

/// A failure with the exit code it deserves: the one place exit codes are chosen.
pub struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Failure {
        let error = e.into();
        let code = if closed_pipe(&error) {
            CLOSED_PIPE
        } else {
            match error.downcast_ref::<sisyphus_client::Error>() {
                Some(
                    sisyphus_client::Error::Invalid(_)
                    | sisyphus_client::Error::JobsFile { .. }
                    | sisyphus_client::Error::BadInput(_),
                ) => 2,
                _ => 1,
            }
        };
        Failure { code, error }
    }
}

/// Whether the error is stdout's reader having gone away.
fn closed_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

impl Failure {
    pub fn usage(error: anyhow::Error) -> Failure {
        Failure { code: 2, error }
    }

    /// A check that found something wrong (exit 1).
    pub fn unhealthy(error: anyhow::Error) -> Failure {
        Failure { code: 1, error }
    }

    /// `apply --plan` found changes (exit [`CHANGES_PLANNED`], with nothing more printed).
    pub fn changes_planned() -> Failure {
        Failure {
            code: CHANGES_PLANNED,
            error: anyhow::anyhow!("applying would change something"),
        }
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
    let result = runtime
        .block_on(run(cli))
        .and_then(|()| Ok(std::io::stdout().flush()?));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) if f.code == CLOSED_PIPE || f.code == CHANGES_PLANNED => ExitCode::from(f.code),
        Err(f) => {
            // Messages may quote what a job or a file held: control characters are escaped.
            let message = format!("{:#}", f.error);
            let shown: Vec<_> = message
                .lines()
                .map(|l| output::escape(l, true).into_owned())
                .collect();
            let _ = writeln!(std::io::stderr(), "sisyctl: {}", shown.join("\n"));
            ExitCode::from(f.code)
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let json = cli.json;
    let url = Target {
        url: cli.database_url,
        timeout: cli.connect_timeout,
        reason: cli.reason,
    };
    match cli.command {
        Command::Cron {
            expression,
            tz,
            from,
            count,
            calendars,
            only_on,
            explain,
        } => {
            let count = count.unwrap_or(if explain { 10 } else { 5 });
            let args = cmd::cron::Args {
                expression: &expression,
                tz: &tz,
                from: from.as_deref(),
                count: usize::try_from(count).unwrap_or(usize::MAX),
                json,
                explain,
            };
            if calendars.is_empty() && only_on.is_empty() {
                cmd::cron::run(&args)
            } else {
                let client = connect(url).await?;
                cmd::cron::run_with_calendars(&args, &client, &calendars, &only_on).await
            }
        }
        Command::Calendar(c) => cmd::calendar::run(connect(url), c, json).await,
        Command::Migrate => cmd::migrate::run(&need_url(url.url)?, url.timeout, json).await,
        Command::Apply { file, prune, plan } => {
            let checked = cmd::apply::read(&file)?;
            let client = connect(url).await?;
            if plan {
                cmd::apply::plan(&client, &checked, prune, json).await
            } else {
                cmd::apply::run(&client, &checked, prune, json).await
            }
        }
        Command::Job(JobCommand::Pause { job, until, .. }) => {
            let reason = url.reason.clone();
            let command = JobCommand::Pause { job, until, reason };
            cmd::job::run(&connect(url).await?, command, json).await
        }
        Command::Job(c) => cmd::job::run(&connect(url).await?, c, json).await,
        Command::Rerun { run } => cmd::runs::rerun(&connect(url).await?, run, json).await,
        Command::Backfill {
            job,
            from,
            to,
            dry_run,
            max,
            cancel,
        } => match (cancel, from, to) {
            (true, ..) => cmd::backfill::cancel(&connect(url).await?, &job, json).await,
            (false, Some(from), Some(to)) => {
                let args = cmd::backfill::Args {
                    job,
                    from,
                    to,
                    max,
                    dry_run,
                };
                cmd::backfill::run(&connect(url).await?, args, json).await
            }
            _ => Err(Failure::usage(anyhow::anyhow!(
                "backfill needs --from and --to (or --cancel)"
            ))),
        },
        Command::Run { job, params } => {
            let params = cmd::runs::params(params)?;
            cmd::runs::run_now(&connect(url).await?, &job, &params, json).await
        }
        Command::Runs {
            job,
            status,
            since,
            limit,
            rerun,
            kill,
            suspend,
            resume,
            yes,
        } => {
            let action = match (rerun, kill, suspend, resume) {
                (true, ..) => Some(BulkAction::Rerun),
                (_, true, ..) => Some(BulkAction::Control(ControlAction::Terminate)),
                (_, _, true, _) => Some(BulkAction::Control(ControlAction::Suspend)),
                (.., true) => Some(BulkAction::Control(ControlAction::Resume)),
                _ => None,
            };
            let since = since
                .map(|d| {
                    chrono::Duration::from_std(d)
                        .ok()
                        .and_then(|d| chrono::Utc::now().checked_sub_signed(d))
                        .ok_or_else(|| {
                            Failure::usage(anyhow::anyhow!("--since reaches back too far"))
                        })
                })
                .transpose()?;
            let query = cmd::runs::Query {
                job,
                status,
                since,
                limit,
            };
            let client = connect(url).await?;
            match action {
                None => cmd::runs::list(&client, query, json).await,
                Some(action) => cmd::runs::bulk(&client, query, action, yes, json).await,
            }
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
        Command::Logs {
            run,
            follow,
            tag,
            tail,
            limit,
            raw,
        } => {
            let options = cmd::logs::Options {
                follow,
                tag,
                tail,
                limit,
                raw,
                json,
            };
            cmd::logs::run(&connect(url).await?, run, &options).await
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
        Command::Grant {
            login,
            level,
            pattern,
        } => cmd::access::grant(&connect(url).await?, &login, level, &pattern, json).await,
        Command::Revoke { login, pattern } => {
            cmd::access::revoke(&connect(url).await?, &login, &pattern, json).await
        }
        Command::Grants => cmd::access::grants(&connect(url).await?, json).await,
        Command::User(cmd::access::UserCommand::Add {
            name,
            password_stdin,
            admin,
        }) => {
            let password = cmd::access::password(password_stdin)?;
            let client = connect(url).await?;
            cmd::access::user_add(&client, &name, password.as_deref(), admin, json).await
        }
        Command::Service(cmd::access::ServiceCommand::Add {
            kind,
            name,
            hosts,
            password_stdin,
        }) => {
            cmd::access::check_service(kind, &hosts)?;
            let password = cmd::access::password(password_stdin)?;
            let client = connect(url).await?;
            cmd::access::service_add(&client, kind, &name, &hosts, password.as_deref(), json).await
        }
        Command::Token(command) => cmd::token::run(&connect(url).await?, command, json).await,
        Command::Audit {
            job,
            actor,
            since,
            limit,
        } => {
            let args = cmd::access::AuditArgs {
                job,
                actor,
                since,
                limit,
            };
            cmd::access::audit(&connect(url).await?, args, json).await
        }
    }
}

pub(crate) fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    sisyphus_client::spec::parse_duration(s)
}

/// A connect timeout: more than zero, at most an hour.
/// `--param NAME=VALUE`.
fn parse_param(s: &str) -> Result<(String, String), String> {
    sisyphus_client::params::parse_assignment(s)
}

/// `--until`: an RFC 3339 time, or a duration from now (`2h`, `3days`); in the future.
fn parse_until(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    let now = chrono::Utc::now();
    let at = match chrono::DateTime::parse_from_rfc3339(s) {
        Ok(t) => t.with_timezone(&chrono::Utc),
        Err(_) => {
            let d = sisyphus_client::spec::parse_duration(s).map_err(|_| {
                format!("`{s}` is neither a time (2026-12-24T06:00:00Z) nor a duration (2h)")
            })?;
            chrono::Duration::from_std(d)
                .ok()
                .and_then(|d| now.checked_add_signed(d))
                .ok_or_else(|| format!("`{s}` reaches too far"))?
        }
    };
    if at <= now {
        return Err(format!("`{s}` is in the past; a pause ends in the future"));
    }
    Ok(at)
}

fn parse_timeout(s: &str) -> Result<std::time::Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() || d > std::time::Duration::from_secs(3600) {
        return Err(format!("`{s}` must be more than zero and at most 1h"));
    }
    Ok(d)
}

/// Where the database is, how long to try reaching it, and why (`--reason`).
struct Target {
    url: Option<String>,
    timeout: std::time::Duration,
    reason: Option<String>,
}

fn need_url(url: Option<String>) -> Result<String, Failure> {
    url.ok_or_else(|| {
        Failure::usage(anyhow::anyhow!(
            "no database given: set SISYPHUS_DATABASE_URL or pass --database-url"
        ))
    })
}

/// A client named `sisyctl` (the audit log's channel) that gives `--reason` with its changes.
async fn connect(target: Target) -> Result<Client, Failure> {
    let url = need_url(target.url)?;
    Ok(Client::connect_as(&url, target.timeout, "sisyctl", target.reason.as_deref()).await?)
}
