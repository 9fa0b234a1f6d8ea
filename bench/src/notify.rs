//! Notifications: what the outbox costs on the outcome path, and how fast a dispatcher delivers,
//! each next to a baseline measured in the same run.
//!
//! 1. The outcome path: pending runs finished one transaction each (`UPDATE … SET status`, as a
//!    guardian's outcome does), for a job nobody listens to with the notification trigger
//!    disabled (the baseline) and enabled (the common case), and for a job with one rule
//!    listening for `failed` (each outcome then writes an outbox row with its payload).
//! 2. Delivery: notifications for a webhook on a local HTTP endpoint, taken from the outbox and
//!    sent by `deliver_due` in batches of 16 (sent together), against the same notifications sent
//!    one after another by the same senders with no database at all.

use std::time::{Duration, Instant};

use sisyphus_client::db::{self, PgPool};
use sisyphus_client::notifications::{OutboxState, RuleDefinition};
use sisyphus_client::{Client, JobDefinition, RunStatus};
use sisyphus_dispatcher::{deliver_due, Settings};
use sisyphus_notify::Senders;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::drain::{bench_job, insert_due};
use crate::fresh_database;

pub async fn notify(
    cluster: &pgembed::Cluster,
    runs: i64,
    notifications: i64,
) -> anyhow::Result<()> {
    let url = fresh_database(cluster, "bench_notify").await?;
    let client = Client::connect(&url).await?;
    let listened = JobDefinition {
        notify: Some(vec![RuleDefinition {
            channel: "hook".into(),
            on: Some(vec!["failed".into()]),
            to: None,
            lines: None,
        }]),
        ..bench_job("listened", &["true"])
    };
    client
        .apply(&[bench_job("quiet", &["true"]), listened], false)
        .await?;
    let pool = client.pool().clone();

    println!("Notifications: the outcome path ({runs} runs, one transaction each)\n");
    println!("| outcome | per run | runs/s | vs trigger disabled |");
    println!("|---|---:|---:|---:|");
    // The baseline is measured before and after (its mean is the reference), and the table is
    // vacuumed before each phase, so that no phase pays for another's dead tuples.
    let trigger = |on: bool| db::bench::set_outcome_trigger(&pool, on);
    trigger(false).await?;
    let first = finish_each(&pool, "quiet", runs, RunStatus::Successful).await?;
    trigger(true).await?;
    let quiet = finish_each(&pool, "quiet", runs, RunStatus::Successful).await?;
    let listened = finish_each(&pool, "listened", runs, RunStatus::Failed).await?;
    trigger(false).await?;
    let last = finish_each(&pool, "quiet", runs, RunStatus::Successful).await?;
    trigger(true).await?;
    let base = (first + last) / 2;
    for (what, d) in [
        (
            "successful, trigger disabled (baseline, mean of before and after)",
            base,
        ),
        ("successful, nobody listens", quiet),
        ("failed, one rule: an outbox row each", listened),
    ] {
        println!(
            "| {what} | {:.3} ms | {:.0} | {:.2}× |",
            d.as_secs_f64() * 1000.0 / runs as f64,
            runs as f64 / d.as_secs_f64(),
            d.as_secs_f64() / base.as_secs_f64()
        );
    }
    let rows = db::bench::count_outbox(&pool).await?;
    anyhow::ensure!(rows == runs, "expected {runs} outbox rows, found {rows}");
    db::bench::empty_outbox(&pool).await?;

    let port = serve_ok().await?;
    let settings = Settings::parse(&format!(
        "[channels.hook]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{port}/hook\"\nsecret = \"k\"\n"
    ))
    .map_err(anyhow::Error::msg)?;
    let senders = Senders::new(Duration::from_secs(10)).map_err(anyhow::Error::msg)?;
    let ids = insert_due(&pool, "listened", notifications, 0.0).await?;
    db::bench::fail_runs(&pool, &ids).await?;
    let notification = db::bench::any_notification(&pool).await?;
    let channel = &settings.channels["hook"];

    let started = Instant::now();
    for _ in 0..notifications {
        senders
            .send(channel, &notification, 0)
            .await
            .map_err(anyhow::Error::msg)?;
    }
    let raw = started.elapsed();
    let started = Instant::now();
    let mut delivered = 0;
    loop {
        let pass = deliver_due(&pool, &senders, &settings, 16).await?;
        if pass.taken == 0 {
            break;
        }
        delivered += pass
            .settled
            .iter()
            .filter(|s| s.state == OutboxState::Delivered)
            .count();
    }
    let outbox = started.elapsed();
    anyhow::ensure!(
        delivered as i64 == notifications,
        "delivered {delivered} of {notifications}"
    );
    println!(
        "\nNotifications: delivery of {notifications} webhook notifications to a local endpoint\n"
    );
    println!("| path | notifications/s | per notification | share of sending alone |");
    println!("|---|---:|---:|---:|");
    for (what, d) in [
        (
            "senders alone, one after another, no database (baseline)",
            raw,
        ),
        (
            "outbox → dispatcher (claim, send a batch of 16 together, settle)",
            outbox,
        ),
    ] {
        println!(
            "| {what} | {:.0} | {:.3} ms | {:.0}% |",
            notifications as f64 / d.as_secs_f64(),
            d.as_secs_f64() * 1000.0 / notifications as f64,
            100.0 * raw.as_secs_f64() / d.as_secs_f64()
        );
    }
    Ok(())
}

/// Inserts `count` pending runs of job `name`, then gives each its outcome in a transaction
/// of its own; the time of the outcomes.
async fn finish_each(
    pool: &PgPool,
    name: &str,
    count: i64,
    status: RunStatus,
) -> anyhow::Result<Duration> {
    db::bench::delete_finished_runs(pool).await?;
    db::bench::vacuum_analyze(pool, db::bench::Table::Runs).await?;
    let ids = insert_due(pool, name, count, 3_600_000.0).await?;
    let started = Instant::now();
    for id in ids {
        db::bench::finish_run(pool, id, status).await?;
    }
    Ok(started.elapsed())
}

/// A local HTTP endpoint answering 200 to every request; its port.
async fn serve_ok() -> anyhow::Result<u16> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                // Headers, then as much body as Content-Length says.
                loop {
                    let Ok(n) = stream.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + length {
                        break;
                    }
                }
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    Ok(port)
}
