//! Two real `sisyphus scheduler` processes against one database: one leads, the other stands by;
//! kill -9 the leader and the standby takes over within 10 s, with no slot materialised twice or
//! skipped.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sisyphus_client::JobDefinition;

use crate::harness::{bin, TestDb};

const JOBS: usize = 20;

/// A job's name, first and last slot, number of runs and of distinct slots.
type SlotSpan = (String, DateTime<Utc>, DateTime<Utc>, i64, i64);

fn scheduler(url: &str, name: &str) -> Child {
    Command::new(bin("sisyphus"))
        .args(["scheduler", "--name", name])
        .env("SISYPHUS_DATABASE_URL", url)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start a scheduler")
}

async fn makers(db: &TestDb) -> Vec<(String, i64)> {
    sqlx::query_as("SELECT created_by, count(*) FROM sisyphus.runs GROUP BY 1 ORDER BY 1")
        .fetch_all(&db.pool)
        .await
        .expect("makers")
}

#[tokio::test]
async fn a_standby_takes_over_when_the_leader_is_killed() {
    let db = TestDb::new().await;
    let defs: Vec<JobDefinition> = (0..JOBS)
        .map(|i| JobDefinition::new("F", &format!("j{i:02}"), ["true"]).cron("* * * * * *"))
        .collect();
    db.client.apply(&defs, false).await.expect("apply");
    let mut a = scheduler(&db.url, "A");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut b = scheduler(&db.url, "B");
    tokio::time::sleep(Duration::from_secs(6)).await;

    // Exactly one of them materialises runs.
    let before = makers(&db).await;
    assert_eq!(
        before.len(),
        1,
        "exactly one scheduler should create runs: {before:?}"
    );
    let (leader, standby) = if before[0].0 == "A" {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    let standby_name = if before[0].0 == "A" { "B" } else { "A" };

    // kill -9 the leader.
    let killed_at: DateTime<Utc> = sqlx::query_scalar("SELECT clock_timestamp()")
        .fetch_one(&db.pool)
        .await
        .expect("now");
    leader.kill().expect("kill -9");
    let _ = leader.wait();
    let started = Instant::now();
    let takeover = loop {
        let first: Option<DateTime<Utc>> =
            sqlx::query_scalar("SELECT min(created_at) FROM sisyphus.runs WHERE created_by = $1")
                .bind(standby_name)
                .fetch_one(&db.pool)
                .await
                .expect("first run of the standby");
        if let Some(t) = first {
            break t - killed_at;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the standby did not take over"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!("takeover after kill -9: {} ms", takeover.num_milliseconds());
    assert!(
        takeover < chrono::Duration::seconds(10),
        "takeover took {takeover}"
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    standby.kill().expect("kill the standby");
    let _ = standby.wait();

    // Every job's slots form an unbroken one-second series, each slot exactly once.
    let rows: Vec<SlotSpan> = sqlx::query_as(
        "SELECT j.name, min(r.slot), max(r.slot), count(*), count(DISTINCT r.slot)
           FROM sisyphus.runs r JOIN sisyphus.jobs j ON j.id = r.job_id GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(&db.pool)
    .await
    .expect("slots");
    assert_eq!(rows.len(), JOBS);
    let mut total = 0;
    for (name, first, last, count, distinct) in &rows {
        let span = (*last - *first).num_seconds() + 1;
        assert_eq!(*count, *distinct, "{name}: a slot was materialised twice");
        assert_eq!(
            *count, span,
            "{name}: slots were skipped between {first} and {last}"
        );
        total += count;
    }
    println!("{total} slots over {JOBS} jobs, each once, none skipped");
    assert!(total >= 300, "only {total} slots checked");
    let missed = db.count("runs WHERE status = 'missed'").await;
    assert_eq!(
        missed, 0,
        "no slot inside its TTL may be missed across a failover"
    );
}
