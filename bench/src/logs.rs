//! Log throughput: a chatty job's lines into `run_logs` through the guardian, against `COPY` of
//! the same lines into a table of the same shape.

use std::time::Instant;

use sisyphus_client::Client;
use sisyphus_guardian::Executor;
use sqlx::{Connection, PgConnection};

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
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sisyphus.run_logs WHERE run_id = $1 AND stream = 'stdout'",
    )
    .bind(ids[0])
    .fetch_one(&pool)
    .await?;
    anyhow::ensure!(stored as u64 == lines, "stored {stored} of {lines} lines");

    // The baseline: the same lines, one COPY, into a plain table shaped like run_logs.
    let mut conn = PgConnection::connect(&url).await?;
    sqlx::query("CREATE TABLE bench_copy (LIKE sisyphus.run_logs INCLUDING DEFAULTS)")
        .execute(&mut conn)
        .await?;
    sqlx::query("ALTER TABLE bench_copy ADD PRIMARY KEY (run_id, seq, at)")
        .execute(&mut conn)
        .await?;
    let data: String = (1..=lines)
        .map(|i| format!("{}\t{i}\tstdout\t{i}\n", ids[0]))
        .collect();
    let started = Instant::now();
    let mut copy = conn
        .copy_in_raw("COPY bench_copy (run_id, seq, stream, text) FROM STDIN")
        .await?;
    copy.send(data.as_bytes()).await?;
    copy.finish().await?;
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
