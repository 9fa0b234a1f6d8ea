//! The `sisyphus` package: the two binaries (`sisyphus`, the daemons; `sisyctl`, the command
//! line) and the daemons' command line, which this file holds. Each daemon is a library this file
//! only starts; shutdown is one `CancellationToken` cancelled on SIGINT or SIGTERM.
//!
//! The integration tests (`tests/` at the workspace root) belong to this package, so that they
//! can run both binaries as real processes.

use std::time::Duration;

use anyhow::Context;

mod dev;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(name = "sisyphus", version, about = "Sisyphus daemons")]
struct Cli {
    /// PostgreSQL URL of the Sisyphus database.
    #[arg(
        long,
        env = "SISYPHUS_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The embedded default: a private PostgreSQL (unless a database URL is given), the schema,
    /// the example jobs, and the scheduler, in one process. Ctrl-C stops everything.
    Dev {
        /// Where the private PostgreSQL keeps its data.
        #[arg(long, env = "SISYPHUS_STATE_DIR", default_value = ".sisyphus")]
        state_dir: std::path::PathBuf,
        /// The jobs file to apply at start.
        #[arg(long, default_value = "examples/jobs.toml")]
        jobs: std::path::PathBuf,
        /// The dispatcher's channels (see `sisyphus dispatcher`); default: none.
        #[arg(long)]
        notify_config: Option<std::path::PathBuf>,
        /// Where the dashboard listens.
        #[arg(long, default_value = "127.0.0.1:8080")]
        web: std::net::SocketAddr,
    },
    /// Deliver notifications from the outbox (any number of dispatchers may share it).
    Dispatcher {
        /// The channels and retry policy (TOML; see README.md, "Notifications").
        #[arg(long, env = "SISYPHUS_NOTIFY_CONFIG")]
        config: std::path::PathBuf,
        /// Longest wait between passes (retries come due without a NOTIFY).
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
        poll: Duration,
        /// Serve Prometheus metrics on this address (`GET /metrics`), e.g. 127.0.0.1:9188; a port
        /// alone binds to 127.0.0.1.
        #[arg(long, value_parser = metrics_address)]
        metrics: Option<std::net::SocketAddr>,
    },
    /// Claim and supervise runs on this host.
    Guardian(Box<GuardianArgs>),
    /// Turn schedules into pending runs (one leader, any number of standbys).
    Scheduler {
        /// Name recorded in the runs it creates (default scheduler@HOST:PID).
        #[arg(long)]
        name: Option<String>,
        /// Longest wait between ticks.
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
        interval: Duration,
        /// How far ahead slots are materialised.
        #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
        lookahead: Duration,
        /// Log lines older than this are dropped (a day's partition at a time).
        #[arg(long, default_value = "30days", value_parser = humantime::parse_duration)]
        keep_logs: Duration,
        /// Finished runs older than this are deleted (each job's latest run is kept).
        #[arg(long, default_value = "90days", value_parser = humantime::parse_duration)]
        keep_runs: Duration,
        /// Audit rows older than this are deleted.
        #[arg(long, default_value = "400days", value_parser = humantime::parse_duration)]
        keep_audit: Duration,
        /// Serve Prometheus metrics on this address (`GET /metrics`), e.g. 127.0.0.1:9186; a port
        /// alone binds to 127.0.0.1.
        #[arg(long, value_parser = metrics_address)]
        metrics: Option<std::net::SocketAddr>,
    },
    /// The web dashboard, as a web login (`sisyctl service add web NAME`); people sign in with
    /// a personal token (`sisyctl token create --user NAME`) or through a trusted proxy.
    Web(WebArgs),
}

/// `sisyphus web` options.
#[derive(clap::Args)]
pub struct WebArgs {
    /// Where to listen; loopback by default (put an HTTPS reverse proxy in front for others).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// Show no buttons and refuse every action.
    #[arg(long)]
    read_only: bool,
    /// A reverse proxy whose --proxy-header names the person (repeat for several).
    #[arg(long = "trusted-proxy")]
    trusted_proxies: Vec<std::net::IpAddr>,
    /// The header a trusted proxy names the person's login in (oauth2-proxy:
    /// X-Forwarded-User).
    #[arg(long)]
    proxy_header: Option<String>,
    /// Mark the session cookie Secure (when served over HTTPS).
    #[arg(long)]
    secure_cookies: bool,
}

impl WebArgs {
    fn into_config(self, database_url: String) -> sisyphus_web::Config {
        sisyphus_web::Config {
            listen: self.listen,
            database_url,
            read_only: self.read_only,
            trusted_proxies: self.trusted_proxies,
            proxy_header: self.proxy_header,
            secure_cookies: self.secure_cookies,
        }
    }
}

/// The `sisyphus` binary's main.
#[tokio::main]
pub async fn main() -> anyhow::Result<()> {
    // Log lines are written to stderr by a thread of their own, and dropped when it falls far
    // behind: a stderr that nobody reads any more (a full pipe) never blocks a daemon, its
    // shutdown on SIGTERM included. The guard flushes what is queued when main returns.
    let (stderr, _flush) = tracing_appender::non_blocking(std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn")),
        )
        .with_writer(stderr)
        .init();
    let cli = Cli::parse();
    let shutdown = shutdown_on_signals();
    match cli.command {
        Command::Dev {
            state_dir,
            jobs,
            notify_config,
            web,
        } => {
            dev::run(
                cli.database_url,
                &state_dir,
                &jobs,
                notify_config.as_deref(),
                web,
                shutdown,
            )
            .await
        }
        Command::Dispatcher {
            config,
            poll,
            metrics,
        } => {
            let settings = sisyphus_dispatcher::Settings::load(&config)?;
            let mut config =
                sisyphus_dispatcher::Config::new(database_url(cli.database_url)?, settings);
            config.poll = poll;
            config.metrics = metrics;
            let dispatcher = match sisyphus_dispatcher::Dispatcher::start(config).await {
                Ok(d) => d,
                Err(sisyphus_dispatcher::Error::Config(why)) => refuse("dispatcher", &why),
                Err(e) => return Err(e.into()),
            };
            dispatcher.run(shutdown).await;
            Ok(())
        }
        Command::Guardian(args) => {
            let config = (*args).into_config(database_url(cli.database_url)?)?;
            let once = config.once;
            let guardian = match sisyphus_guardian::Guardian::start(config).await {
                Ok(g) => g,
                Err(sisyphus_guardian::Error::Config(why)) => refuse("guardian", &why),
                Err(e @ sisyphus_guardian::Error::NameTaken(_)) if once => {
                    // Another guardian serves this host (a one-shot one from the previous cron
                    // minute still supervising, say): as the SDK's single-instance lock, 75.
                    eprintln!("sisyphus guardian --once: {e}");
                    std::process::exit(EX_TEMPFAIL)
                }
                Err(e) => return Err(e.into()),
            };
            let report = guardian.run(shutdown).await;
            match once {
                true => once_result(&report),
                false => Ok(()),
            }
        }
        Command::Scheduler {
            name,
            interval,
            lookahead,
            keep_logs,
            keep_runs,
            keep_audit,
            metrics,
        } => {
            let url = database_url(cli.database_url)?;
            let mut config = sisyphus_scheduler::Config::new(url);
            if let Some(name) = name {
                config.name = name;
            }
            config.interval = interval;
            config.plan.lookahead = lookahead;
            config.retention.keep_logs = keep_logs;
            config.retention.keep_runs = keep_runs;
            config.retention.keep_audit = keep_audit;
            config.metrics = metrics;
            let scheduler = match sisyphus_scheduler::Scheduler::new(config).await {
                Ok(s) => s,
                Err(sisyphus_scheduler::Error::Config(why)) => refuse("scheduler", &why),
                Err(e) => return Err(e.into()),
            };
            scheduler.run(shutdown).await;
            Ok(())
        }
        Command::Web(args) => {
            let config = args.into_config(database_url(cli.database_url)?);
            match sisyphus_web::serve(config, shutdown).await {
                Err(sisyphus_web::Error::Config(why)) => refuse("web", &why),
                other => Ok(other?),
            }
        }
    }
}

/// `sisyphus guardian` options.
#[derive(clap::Args)]
pub struct GuardianArgs {
    /// Host name to register as (default: the machine's).
    #[arg(long)]
    name: Option<String>,
    /// Pools this host serves, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pools: Vec<String>,
    /// Most runs at once.
    #[arg(long, default_value_t = 4)]
    capacity: usize,
    /// Base directory of the local log files.
    #[arg(long, default_value = "sisyphus-logs")]
    log_dir: std::path::PathBuf,
    /// Where outcomes wait while the database is unreachable.
    #[arg(long, default_value = "sisyphus-spool")]
    spool_dir: std::path::PathBuf,
    /// How long a claim stays valid without renewal.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    lease: Duration,
    /// Heartbeat (and lease renewal) interval.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    heartbeat: Duration,
    /// Between SIGTERM and SIGKILL.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    grace: Duration,
    /// On SIGTERM, how long running runs may go on before they are interrupted.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    drain_timeout: Duration,
    /// Users jobs may run as (`run_as`) when the guardian is root, comma-separated.
    #[arg(long, value_delimiter = ',')]
    allow_users: Vec<String>,
    /// Allow jobs to run as root.
    #[arg(long)]
    allow_root: bool,
    /// Most log lines stored per run.
    #[arg(long, default_value_t = 100_000)]
    max_log_lines: u64,
    /// Most log bytes stored per run.
    #[arg(long, default_value_t = 16 * 1024 * 1024)]
    max_log_bytes: u64,
    /// Start nothing and record every claimed run as uneventful (for measuring the database path).
    #[arg(long)]
    noop: bool,
    /// Serve Prometheus metrics on this address (`GET /metrics`), e.g. 127.0.0.1:9187; a port
    /// alone binds to 127.0.0.1.
    #[arg(long, value_parser = metrics_address)]
    metrics: Option<std::net::SocketAddr>,
    /// Make the runs' cgroups below this cgroup v2 directory (default: the guardian's own
    /// cgroup, when writable).
    #[arg(long, conflicts_with = "no_cgroups")]
    cgroup_root: Option<std::path::PathBuf>,
    /// Hold runs by process groups alone, even where cgroups could be used.
    #[arg(long)]
    no_cgroups: bool,
    /// Pass this variable of the guardian's environment on to jobs (repeatable; by default jobs
    /// get only PATH, HOME, USER, LOGNAME, LANG, TZ, their own env and the run's variables).
    #[arg(long = "pass-env", value_name = "NAME")]
    pass_env: Vec<String>,
    /// A group (name or gid) that may read the local log files too (default: their owner alone).
    #[arg(long)]
    log_group: Option<String>,
    /// Where jobs' secrets (`{ secret = "NAME" }`) are found: one file per NAME, 0600 or 0400 and
    /// owned by the guardian's user; names not found there come from SISYPHUS_SECRET_<NAME>.
    #[arg(long)]
    secrets_dir: Option<std::path::PathBuf>,
    /// One-shot (for cron, or hosts without daemons): claim what is due for this host now (up to
    /// --capacity), supervise it to its end with the usual leases and heartbeats, and exit: 0
    /// when every claimed run is recorded (and at once when nothing is due), 1 with the reason
    /// when one is not, 75 when a live guardian already serves this --name.
    #[arg(long)]
    once: bool,
    /// How runs' processes are made: `vfork` (clone with CLONE_VM|CLONE_VFORK, the default) or
    /// `fork` (the way before issue 17, kept to measure against).
    #[arg(long, default_value = "vfork", value_parser = ["vfork", "fork"], hide = true)]
    spawn: String,
}

impl GuardianArgs {
    fn into_config(self, url: String) -> anyhow::Result<sisyphus_guardian::Config> {
        let mut c = sisyphus_guardian::Config::new(url);
        if let Some(name) = self.name {
            c.name = name;
        }
        c.pools = self.pools;
        c.capacity = self.capacity;
        c.log_dir = self.log_dir;
        c.spool_dir = self.spool_dir;
        c.lease = self.lease;
        c.heartbeat = self.heartbeat;
        c.grace = self.grace;
        c.drain_timeout = self.drain_timeout;
        c.users = sisyphus_guardian::UserPolicy {
            allowed: self.allow_users,
            allow_root: self.allow_root,
        };
        if self.noop {
            c.executor = sisyphus_guardian::Executor::Noop;
        }
        c.metrics = self.metrics;
        c.log_cap = sisyphus_guardian::LogCap {
            max_lines: self.max_log_lines,
            max_bytes: self.max_log_bytes,
        };
        c.once = self.once;
        if self.spawn == "fork" {
            c.spawn = sisyphus_guardian::process::Spawn::Fork;
        }
        c.cgroups = !self.no_cgroups;
        c.cgroup_root = self.cgroup_root;
        c.pass_env = self.pass_env;
        c.secrets_dir = self.secrets_dir;
        c.log_group = match self.log_group {
            None => None,
            Some(g) => Some(group_id(&g)?),
        };
        Ok(c)
    }
}

/// A group by name or number.
fn group_id(group: &str) -> anyhow::Result<u32> {
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(gid);
    }
    match nix::unistd::Group::from_name(group) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        Ok(None) => anyhow::bail!("--log-group: no group `{group}` on this host"),
        Err(e) => anyhow::bail!("--log-group: cannot look up `{group}`: {e}"),
    }
}

/// A setting that cannot work is the caller's to fix: said with the flag named, exit 2, as for
/// any usage error.
/// A listening address from the command line: `HOST:PORT`, or a port alone, which binds to
/// loopback. Nothing a daemon serves is reachable from other hosts unless an address says so
/// (`0.0.0.0:9187`).
fn metrics_address(s: &str) -> Result<std::net::SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(std::net::SocketAddr::from((
            std::net::Ipv4Addr::LOCALHOST,
            port,
        )));
    }
    s.parse()
        .map_err(|_| format!("`{s}` is neither a port nor an address such as 127.0.0.1:9187"))
}

/// The exit status of a one-shot guardian that found another guardian serving its host name
/// (sysexits' EX_TEMPFAIL, as a second start of an SDK job).
const EX_TEMPFAIL: i32 = 75;

/// A one-shot guardian's exit: 0 when every claimed run is recorded as it ended (or nothing was
/// due), 1 with the reasons otherwise.
fn once_result(report: &sisyphus_guardian::Report) -> anyhow::Result<()> {
    if report.problems.is_empty() {
        let runs: Vec<String> = report
            .outcomes
            .iter()
            .map(|o| format!("run {} {}", o.run, o.status))
            .collect();
        match runs.is_empty() {
            true => tracing::info!("one-shot: nothing was due"),
            false => tracing::info!("one-shot: recorded {}", runs.join(", ")),
        }
        return Ok(());
    }
    anyhow::bail!(
        "guardian --once: not every claimed run is recorded: {}",
        report.problems.join("; ")
    )
}

fn refuse(daemon: &str, why: &str) -> ! {
    eprintln!("sisyphus {daemon}: {why}");
    std::process::exit(2)
}

fn database_url(url: Option<String>) -> anyhow::Result<String> {
    url.context("no database given: set SISYPHUS_DATABASE_URL or pass --database-url")
}

/// A token cancelled on the first SIGINT or SIGTERM.
fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    // Detached on purpose, not on a tracker: it ends only with a signal (a daemon that stops
    // by itself must not wait for one) and holds nothing that needs cleaning up.
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!("cannot listen for SIGTERM: {e}");
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        // Cancel first: nothing (not even a log line) stands between a signal and shutdown.
        cancel.cancel();
        tracing::info!("shutting down");
    });
    token
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Cli, Command};

    /// The `--metrics` address each daemon would serve on.
    fn metrics(args: &[String]) -> Option<std::net::SocketAddr> {
        let cli = Cli::try_parse_from(args).expect("valid arguments");
        match cli.command {
            Command::Guardian(g) => g.metrics,
            Command::Scheduler { metrics, .. } | Command::Dispatcher { metrics, .. } => metrics,
            Command::Dev { .. } | Command::Web(_) => None,
        }
    }

    #[test]
    fn metrics_bind_to_loopback_unless_an_address_is_given() {
        for daemon in [
            &["sisyphus", "guardian"][..],
            &["sisyphus", "scheduler"],
            &["sisyphus", "dispatcher", "--config", "notify.toml"],
        ] {
            let daemon: Vec<String> = daemon.iter().map(|s| s.to_string()).collect();
            // No flag: nothing listens.
            assert_eq!(metrics(&daemon), None, "{daemon:?}");
            let with = |value: &str| [&daemon[..], &["--metrics".into(), value.into()]].concat();
            assert_eq!(
                metrics(&with("9187")),
                Some("127.0.0.1:9187".parse().expect("address")),
                "{daemon:?}: a port alone is loopback"
            );
            assert_eq!(
                metrics(&with("0.0.0.0:9187")),
                Some("0.0.0.0:9187".parse().expect("address")),
                "{daemon:?}: an address is taken as given"
            );
            assert_eq!(
                metrics(&with("[::1]:9187")),
                Some("[::1]:9187".parse().expect("address")),
                "{daemon:?}"
            );
            let refused = Cli::try_parse_from(with("localhost:9187")).err();
            assert!(
                refused.is_some_and(|e| e.to_string().contains("neither a port nor an address")),
                "{daemon:?}"
            );
        }
    }
}
