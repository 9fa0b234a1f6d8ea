//! `sisyphus dev`: the embedded default. Starts a private PostgreSQL from the machine's own
//! binaries in a state directory (unless a database URL is given), migrates it, applies a jobs
//! file, and runs the daemons (scheduler, guardian, dispatcher) in this one process until Ctrl-C.

use std::path::Path;

use anyhow::Context;
use sisyphus_client::{jobsfile, Client};
use tokio_util::sync::CancellationToken;

pub async fn run(
    database_url: Option<String>,
    state_dir: &Path,
    jobs: &Path,
    notify_config: Option<&Path>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let settings = match notify_config {
        Some(path) => sisyphus_dispatcher::Settings::load(path)?,
        None => sisyphus_dispatcher::Settings::default(),
    };
    let text = std::fs::read_to_string(jobs)
        .with_context(|| format!("cannot read jobs file {}", jobs.display()))?;
    let checked = jobsfile::parse_all(&text, &jobs.display().to_string())?;
    // Kept until the end of this function: dropping it stops the server.
    let mut cluster = None;
    let url = match database_url {
        Some(url) => url,
        None => {
            let data_dir = std::path::absolute(state_dir.join("pg"))?;
            let options = pgembed::Options {
                data_dir: Some(data_dir.clone()),
                fast_and_unsafe: false,
                ..pgembed::Options::default()
            };
            eprintln!("starting a private PostgreSQL in {}", data_dir.display());
            let started = tokio::task::spawn_blocking(move || pgembed::Cluster::start(options))
                .await?
                .context("starting the private PostgreSQL")?;
            let url = started.url("postgres");
            cluster = Some(started);
            url
        }
    };
    let (from, to) = sisyphus_client::db::migrate(&url).await?;
    if from != to {
        eprintln!("schema migrated from version {from} to {to}");
    }
    let client = Client::connect(&url).await?;
    let applied = client
        .apply_with_defaults(&checked.jobs, &checked.projects, false)
        .await?;
    eprintln!("applied {} job(s) from {}", applied.len(), jobs.display());
    let scheduler =
        sisyphus_scheduler::Scheduler::new(sisyphus_scheduler::Config::new(url.clone())).await?;
    let scheduler = tokio::spawn(scheduler.run(shutdown.clone()));
    let mut config = sisyphus_guardian::Config::new(url.clone());
    config.name = "dev".to_string();
    config.log_dir = std::path::absolute(state_dir.join("logs"))?;
    config.spool_dir = state_dir.join("spool");
    config.drain_timeout = std::time::Duration::from_secs(5);
    let log_dir = config.log_dir.clone();
    let guardian = sisyphus_guardian::Guardian::start(config).await?;
    let guardian = tokio::spawn(guardian.run(shutdown.clone()));
    let dispatcher = sisyphus_dispatcher::Dispatcher::start(sisyphus_dispatcher::Config::new(
        url.clone(),
        settings,
    ))
    .await?;
    let dispatcher = tokio::spawn(dispatcher.run(shutdown.clone()));
    eprintln!(
        "\nSisyphus is running: the scheduler, the dispatcher and guardian `dev`. In another shell:\n\n  \
         export SISYPHUS_DATABASE_URL={url}\n  cargo run -q --bin sisyctl -- runs\n  \
         cargo run -q --bin sisyctl -- job ls\n\nLog files: {}\nCtrl-C stops everything.\n",
        log_dir.display()
    );
    shutdown.cancelled().await;
    scheduler.await?;
    guardian.await?;
    dispatcher.await?;
    if let Some(mut c) = cluster.take() {
        tokio::task::spawn_blocking(move || c.stop()).await?;
    }
    eprintln!("stopped");
    Ok(())
}
