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
    },
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
    },
}

/// The `sisyphus` binary's main.
#[tokio::main]
pub async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let shutdown = shutdown_on_signals();
    match cli.command {
        Command::Dev { state_dir, jobs } => {
            dev::run(cli.database_url, &state_dir, &jobs, shutdown).await
        }
        Command::Scheduler {
            name,
            interval,
            lookahead,
        } => {
            let url = database_url(cli.database_url)?;
            let mut config = sisyphus_scheduler::Config::new(url);
            if let Some(name) = name {
                config.name = name;
            }
            config.interval = interval;
            config.plan.lookahead = lookahead;
            let scheduler = sisyphus_scheduler::Scheduler::new(config).await?;
            scheduler.run(shutdown).await;
            Ok(())
        }
    }
}

fn database_url(url: Option<String>) -> anyhow::Result<String> {
    url.context("no database given: set SISYPHUS_DATABASE_URL or pass --database-url")
}

/// A token cancelled on the first SIGINT or SIGTERM.
fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
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
        tracing::info!("shutting down");
        cancel.cancel();
    });
    token
}
