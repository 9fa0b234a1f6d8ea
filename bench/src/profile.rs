//! Where a no-op run's database time goes: one drain (as `throughput`'s no-op lines) on a
//! private cluster with pg_stat_statements preloaded (`track = all`, so the statements inside
//! the claim and outcome functions and their triggers are counted too) and auto_explain of
//! statements over 10 ms (copied to `target/profile-server.log`); while it drains, `pg_stat_activity` is sampled
//! every 10 ms for what the active sessions wait on.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sisyphus_client::db;
use sisyphus_client::Client;
use sisyphus_guardian::Executor;

use crate::drain::{bench_job, wait_idle, Guardians};
use crate::fresh_database;

/// The server settings `profile` starts its cluster with.
pub fn settings() -> Vec<(String, String)> {
    [
        (
            "shared_preload_libraries",
            "pg_stat_statements,auto_explain",
        ),
        ("pg_stat_statements.track", "all"),
        ("auto_explain.log_min_duration", "10ms"),
        ("auto_explain.log_nested_statements", "on"),
        ("auto_explain.log_analyze", "on"),
        ("auto_explain.log_buffers", "on"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[derive(clap::Args)]
pub struct Options {
    #[arg(long, default_value_t = 20_000)]
    pub runs: i64,
    #[arg(long, default_value_t = 4)]
    pub guardians: usize,
    #[arg(long, default_value_t = 32)]
    pub capacity: usize,
    /// Statements listed.
    #[arg(long, default_value_t = 25)]
    pub top: i64,
}

pub async fn profile(cluster: &pgembed::Cluster, options: &Options) -> anyhow::Result<()> {
    let Options {
        runs,
        guardians,
        capacity,
        top,
    } = *options;
    let url = fresh_database(cluster, "bench_profile").await?;
    let client = Client::connect(&url).await?;
    client
        .apply(&[bench_job("noop", &["/bin/true"])], false)
        .await?;
    let pool = client.pool().clone();
    db::bench::insert_pending_runs(&pool, runs).await?;
    db::bench::vacuum_analyze(&pool, db::bench::Table::Runs).await?;
    let mut stats = db::bench::connect(&url).await?;
    db::bench::statements_reset(&mut stats).await?;

    let stop = tokio_util::sync::CancellationToken::new();
    let sampler = {
        let (url, stop) = (url.clone(), stop.clone());
        tokio::spawn(async move {
            let mut conn = db::bench::connect(&url).await?;
            let mut seen: HashMap<(String, String), u64> = HashMap::new();
            let mut samples = 0u64;
            while !stop.is_cancelled() {
                for key in db::bench::active_waits(&mut conn).await? {
                    *seen.entry(key).or_default() += 1;
                }
                samples += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            anyhow::Ok((samples, seen))
        })
    };
    let cpu_before = (own_cpu(), postgres_cpu());
    let started = Instant::now();
    let running =
        Guardians::start(&url, "profile", guardians, capacity, Executor::Noop, |_| {}).await?;
    wait_idle(&pool).await?;
    let elapsed = started.elapsed();
    let cpu = (own_cpu() - cpu_before.0, postgres_cpu_since(&cpu_before.1));
    running.stop().await;
    stop.cancel();
    let (samples, seen) = sampler.await??;
    let statements = db::bench::statements_top(&mut stats, top).await?;

    let wall_ms = elapsed.as_secs_f64() * 1000.0;
    println!(
        "Profile: {runs} no-op runs drained by {guardians} guardian(s) of capacity {capacity} in {:.2} s ({:.0} runs/s)\n",
        elapsed.as_secs_f64(),
        runs as f64 / elapsed.as_secs_f64()
    );
    println!(
        "CPU during the drain: this process (guardians, tokio, the sampler) {:.1} s = {:.0} µs per run; all postgres processes {:.1} s = {:.0} µs per run; wall {:.1} s × 2 cores\n",
        cpu.0,
        1e6 * cpu.0 / runs as f64,
        cpu.1,
        1e6 * cpu.1 / runs as f64,
        elapsed.as_secs_f64()
    );
    println!("Statements by execution time (pg_stat_statements, track = all: a function's time includes the statements inside it)\n");
    println!(
        "| calls | total ms | % of wall × 1 core | µs per run | rows | top level | statement |"
    );
    println!("|---:|---:|---:|---:|---:|---|---|");
    for s in &statements {
        println!(
            "| {} | {:.0} | {:.0}% | {:.1} | {} | {} | `{}` |",
            s.calls,
            s.total_ms,
            100.0 * s.total_ms / wall_ms,
            1000.0 * s.total_ms / runs as f64,
            s.rows,
            if s.toplevel { "yes" } else { "nested" },
            s.query.replace('|', "\\|").replace('`', "'"),
        );
    }
    let mut waits: Vec<_> = seen.into_iter().collect();
    waits.sort_by_key(|w| std::cmp::Reverse(w.1));
    println!(
        "\nActive sessions sampled every 10 ms ({samples} samples): average sessions in each state\n"
    );
    println!("| wait | statement | sessions (average) |");
    println!("|---|---|---:|");
    for ((wait, query), n) in waits.into_iter().take(20) {
        println!(
            "| {wait} | `{}` | {:.2} |",
            query.replace('|', "\\|").replace('`', "'"),
            n as f64 / samples.max(1) as f64
        );
    }
    let log = cluster.data_dir().join("server.log");
    let kept = std::env::current_exe()?
        .parent()
        .and_then(std::path::Path::parent)
        .map(|t| t.join("profile-server.log"));
    if let Some(kept) = kept {
        if std::fs::copy(&log, &kept).is_ok() {
            println!(
                "\nThe server's log, with auto_explain's plans of statements over 10 ms: {}",
                kept.display()
            );
        }
    }
    Ok(())
}

/// CPU seconds (user + system) from a `/proc/<pid>/stat` line; 0 when unreadable.
fn stat_cpu(stat: &str) -> f64 {
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name and state.
    (ticks(11) + ticks(12)) / 100.0
}

/// This process's CPU seconds.
fn own_cpu() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .map(|s| stat_cpu(&s))
        .unwrap_or(0.0)
}

/// CPU seconds of each live `postgres` process, by pid.
fn postgres_cpu() -> HashMap<String, f64> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| {
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            stat.contains("(postgres)").then(|| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    stat_cpu(&stat),
                )
            })
        })
        .collect()
}

/// CPU the postgres processes alive at the end used since `before` (backends that ended
/// meanwhile, such as the setup's connections, are not counted; the drain's are pooled and live
/// through it).
fn postgres_cpu_since(before: &HashMap<String, f64>) -> f64 {
    postgres_cpu()
        .iter()
        .map(|(pid, cpu)| cpu - before.get(pid).copied().unwrap_or(0.0))
        .sum()
}
