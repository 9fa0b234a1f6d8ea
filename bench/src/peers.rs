//! Peers: the same no-op drain done by another PostgreSQL job queue on the same private cluster
//! (a database of its own), in the same run. Today graphile-worker (Node.js), installed with npm
//! at a pinned version into `target/peers/` when `node` and `npm` are on the PATH.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use sisyphus_client::db;
use sisyphus_guardian::Executor;

use crate::drain;

/// The graphile-worker release measured against (pinned: figures are only comparable with the
/// same version).
const GRAPHILE_VERSION: &str = "0.18.0";
/// The Node.js side: inserts the jobs, times one worker pool draining them.
const GRAPHILE_SCRIPT: &str = include_str!("../peers/graphile-drain.mjs");

#[derive(clap::Args)]
pub struct Options {
    /// Jobs (runs) per drain.
    #[arg(long, default_value_t = 20_000)]
    pub runs: i64,
    /// Sisyphus: runs each of the 4 guardians takes at once.
    #[arg(long, default_value_t = 32)]
    pub capacity: usize,
    /// graphile-worker: concurrent jobs of its one worker pool.
    #[arg(long, default_value_t = 24)]
    pub concurrency: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            runs: 20_000,
            capacity: 32,
            concurrency: 24,
        }
    }
}

/// One peer's drain.
struct PeerDrain {
    jobs: i64,
    seconds: f64,
}

pub async fn peers(cluster: &pgembed::Cluster, options: &Options) -> anyhow::Result<()> {
    let Options {
        runs,
        capacity,
        concurrency,
    } = *options;
    let graphile = match graphile_dir() {
        Ok(dir) => Some(dir),
        Err(why) => {
            println!("graphile-worker skipped: {why:#}\n");
            None
        }
    };
    let ours = drain::drain(
        cluster,
        "bench_peer_sisyphus",
        runs,
        4,
        capacity,
        Executor::Noop,
    )
    .await?;
    let mut rows = Vec::new();
    if let Some(dir) = &graphile {
        for mode in ["unbatched", "batched"] {
            let d = graphile_drain(cluster, dir, mode, runs, concurrency).await?;
            rows.push((mode, d));
        }
    }
    println!(
        "Peers: {runs} no-op jobs inserted up front and drained, same private cluster, one database each\n"
    );
    println!("| what | jobs | seconds | jobs/s | Sisyphus / this |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| Sisyphus, no-op executor, 4 guardians × capacity {capacity}, concurrency unlimited | {} | {:.2} | {:.0} | 1.00 |",
        ours.runs,
        ours.elapsed.as_secs_f64(),
        ours.per_second()
    );
    for (mode, d) in rows {
        let per_second = d.jobs as f64 / d.seconds;
        let how = if mode == "batched" {
            "local queue of 500 and batched completions"
        } else {
            "defaults (one fetch and one completion per job)"
        };
        println!(
            "| graphile-worker {GRAPHILE_VERSION}, {concurrency} concurrent, {how} | {} | {:.2} | {per_second:.0} | {:.2} |",
            d.jobs,
            d.seconds,
            ours.per_second() / per_second
        );
    }
    Ok(())
}

/// Where graphile-worker is installed (installing it there first if needed), or why it cannot be.
fn graphile_dir() -> anyhow::Result<PathBuf> {
    for tool in ["node", "npm"] {
        let found = std::process::Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        anyhow::ensure!(
            found,
            "`{tool}` is not on the PATH (install Node.js to compare)"
        );
    }
    let dir = peers_dir()?.join(format!("graphile-worker-{GRAPHILE_VERSION}"));
    let installed = dir.join("node_modules/graphile-worker/package.json");
    if !installed.exists() {
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        eprintln!(
            "installing graphile-worker@{GRAPHILE_VERSION} into {}",
            dir.display()
        );
        let status = std::process::Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
            .arg("--prefix")
            .arg(&dir)
            .arg(format!("graphile-worker@{GRAPHILE_VERSION}"))
            .stdout(Stdio::null())
            .status()
            .context("run npm")?;
        anyhow::ensure!(status.success(), "npm install failed ({status})");
    }
    std::fs::write(dir.join("graphile-drain.mjs"), GRAPHILE_SCRIPT)
        .with_context(|| format!("write the drain script into {}", dir.display()))?;
    Ok(dir)
}

/// `target/peers`, next to the directory this binary was built into (`target/release`).
fn peers_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("find this binary")?;
    let target = exe
        .parent()
        .and_then(Path::parent)
        .context("this binary is not in a target directory")?;
    Ok(target.join("peers"))
}

async fn graphile_drain(
    cluster: &pgembed::Cluster,
    dir: &Path,
    mode: &str,
    jobs: i64,
    concurrency: usize,
) -> anyhow::Result<PeerDrain> {
    let name = format!("bench_peer_graphile_{mode}");
    let mut admin = db::bench::connect(&cluster.url("postgres")).await?;
    db::bench::drop_database(&mut admin, &name).await?;
    db::bench::create_database(&mut admin, &name).await?;
    let child = tokio::process::Command::new("node")
        .current_dir(dir)
        .arg("graphile-drain.mjs")
        .arg(cluster.url(&name))
        .arg(jobs.to_string())
        .arg(concurrency.to_string())
        .arg(mode)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("start node")?;
    let out = tokio::time::timeout(Duration::from_secs(600), child.wait_with_output())
        .await
        .context("graphile-worker's drain took over 10 minutes")??;
    anyhow::ensure!(
        out.status.success(),
        "graphile-worker's drain failed ({})",
        out.status
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or_default();
    let parsed: serde_json::Value =
        serde_json::from_str(line).with_context(|| format!("graphile-worker printed {line:?}"))?;
    let drained = parsed["jobs"].as_i64().unwrap_or(0);
    let seconds = parsed["seconds"].as_f64().unwrap_or(f64::NAN);
    anyhow::ensure!(
        drained == jobs,
        "graphile-worker ran {drained} of {jobs} jobs"
    );
    drop(admin);
    Ok(PeerDrain {
        jobs: drained,
        seconds,
    })
}
