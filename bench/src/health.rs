//! Table health: the drain again while another session holds a REPEATABLE READ snapshot (an
//! old xmin, so vacuum can remove nothing), against the same drain with nothing held; dead
//! tuples in `runs` and `run_logs` at the end, and how long autovacuum takes once released.

use std::time::{Duration, Instant};

use sisyphus_client::db::bench::DeadTuples;
use sisyphus_client::db::{self, PgPool};
use sisyphus_client::Client;
use sisyphus_guardian::Executor;

use crate::drain::{bench_job, insert_due, Guardians};
use crate::fresh_database;

pub async fn health(
    cluster: &pgembed::Cluster,
    clean_secs: u64,
    held_secs: u64,
) -> anyhow::Result<()> {
    let url = fresh_database(cluster, "bench_health").await?;
    let client = Client::connect(&url).await?;
    client
        .apply(&[bench_job("echo", &["/bin/echo", "line"])], false)
        .await?;
    let pool = client.pool().clone();
    let guardians = Guardians::start(&url, "health", 1, 8, Executor::Process, |_| {}).await?;
    let clean = drain_for(&pool, "echo", Duration::from_secs(clean_secs)).await?;
    let clean_dead = dead_tuples(&pool).await?;

    let holder = db::bench::hold_snapshot(&url).await?;
    let held = drain_for(&pool, "echo", Duration::from_secs(held_secs)).await?;
    let held_dead = dead_tuples(&pool).await?;
    holder.release().await?;
    guardians.stop().await;

    // Autovacuum, with the queue settings of migration 0005, once the snapshot is gone.
    let released = Instant::now();
    let mut after = held_dead;
    while released.elapsed() < Duration::from_secs(180) {
        tokio::time::sleep(Duration::from_secs(5)).await;
        after = dead_tuples(&pool).await?;
        if after.runs * 10 < held_dead.runs.max(1) {
            break;
        }
    }
    println!("Table health: /bin/echo runs (one log line each), one guardian of capacity 8\n");
    println!(
        "| phase | runs | runs/s | ratio to clean | dead tuples runs | dead tuples run_logs |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    println!(
        "| clean, {clean_secs} s | {} | {:.0} | 100% | {} | {} |",
        clean.0, clean.1, clean_dead.runs, clean_dead.run_logs
    );
    println!(
        "| REPEATABLE READ snapshot held, {held_secs} s | {} | {:.0} | {:.0}% | {} | {} |",
        held.0,
        held.1,
        100.0 * held.1 / clean.1,
        held_dead.runs,
        held_dead.run_logs
    );
    println!(
        "| {:.0} s after the snapshot was released (autovacuum) | | | | {} | {} |",
        released.elapsed().as_secs_f64(),
        after.runs,
        after.run_logs
    );
    Ok(())
}

/// Inserts batches of 2,000 runs of job `job` and drains them until `length` has passed:
/// (runs, runs/s).
pub async fn drain_for(pool: &PgPool, job: &str, length: Duration) -> anyhow::Result<(i64, f64)> {
    let started = Instant::now();
    let mut runs = 0;
    while started.elapsed() < length {
        let batch = insert_due(pool, job, 2000, 0.0).await?;
        wait_ended(pool, &batch).await?;
        runs += 2000;
    }
    Ok((runs, runs as f64 / started.elapsed().as_secs_f64()))
}

/// Waits until every run of `batch` has ended, looking them up by primary key: the last one
/// first (they are claimed about in id order), then all. Until 2026-12-03 this waited with
/// `wait_idle`, whose probes walk the partial indexes of pending and active runs from their
/// start — under a held snapshot through every dead entry, 50 times a second, so the bench's
/// own waiting was a large part of the load it measured (issue 17, BENCHMARKS.md).
async fn wait_ended(pool: &PgPool, batch: &[sisyphus_client::RunId]) -> anyhow::Result<()> {
    let Some(last) = batch.last() else {
        return Ok(());
    };
    loop {
        if db::bench::unfinished(pool, std::slice::from_ref(last)).await? == 0
            && db::bench::unfinished(pool, batch).await? == 0
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Dead tuples in `runs` and in all of `run_logs`' partitions (statistics, flushed lazily).
pub async fn dead_tuples(pool: &PgPool) -> anyhow::Result<DeadTuples> {
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = db::bench::clear_stats_snapshot(pool).await;
    Ok(db::bench::dead_tuples(pool).await?)
}
