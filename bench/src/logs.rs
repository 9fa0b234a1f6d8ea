//! Log throughput: a chatty job's lines into `run_logs` through the guardian, against `COPY` of
//! the same lines into a table of the same shape.

use std::time::Instant;

use sisyphus_client::{db, Client};
use sisyphus_guardian::Executor;

use crate::drain::{bench_job, insert_due, wait_idle, Guardians};
use crate::fresh_database;

pub async fn logs(cluster: &pgembed::Cluster, lines: u64) -> anyhow::Result<()> {
    let url = fresh_database(cluster, "bench_logs").await?;
    let client = Client::connect(&url).await?;
    let count = lines.to_string();
    client
        .apply(
            &[bench_job("chatty", &["/usr/bin/seq", "1", &count])],
            false,
        )
        .await?;
    let pool = client.pool().clone();
    let guardians = Guardians::start(&url, "logs", 1, 1, Executor::Process, |c| {
        c.log_cap.max_lines = lines + 10;
        c.log_cap.max_bytes = u64::MAX;
    })
    .await?;
    let started = Instant::now();
    let ids = insert_due(&pool, "chatty", 1, 0.0).await?;
    wait_idle(&pool).await?;
    let through_guardian = started.elapsed();
    guardians.stop().await;
    let stored = db::bench::stdout_lines(&pool, ids[0]).await?;
    anyhow::ensure!(stored as u64 == lines, "stored {stored} of {lines} lines");

    // The baseline: the same lines, one COPY, into a plain table shaped like run_logs.
    let mut conn = db::bench::connect(&url).await?;
    db::bench::create_copy_table(&mut conn).await?;
    db::bench::key_copy_table(&mut conn).await?;
    let data: String = (1..=lines)
        .map(|i| format!("{}\t{i}\tstdout\t{i}\n", ids[0]))
        .collect();
    let started = Instant::now();
    db::bench::copy_lines(&mut conn, data.as_bytes()).await?;
    let through_copy = started.elapsed();

    let per_second = |d: std::time::Duration| lines as f64 / d.as_secs_f64();
    println!("Logs: {lines} lines from `seq 1 {lines}` (one run, start to outcome recorded) against COPY of the same rows\n");
    println!("| path | seconds | lines/s | ratio |");
    println!("|---|---:|---:|---:|");
    println!(
        "| guardian → run_logs (pipe, batching, local log file, outcome) | {:.2} | {:.0} | {:.0}% |",
        through_guardian.as_secs_f64(),
        per_second(through_guardian),
        100.0 * through_copy.as_secs_f64() / through_guardian.as_secs_f64()
    );
    println!(
        "| COPY into a table of the same shape (baseline) | {:.2} | {:.0} | 100% |",
        through_copy.as_secs_f64(),
        per_second(through_copy)
    );
    Ok(())
}
