//! Retention and the partitioned log table (migration 0005), through the scheduler's own
//! housekeeping pass, run under the scheduler's login.

use std::time::Duration;

use sisyphus_client::JobDefinition;
use sisyphus_scheduler::{housekeep, Housekeeping, Retention};
use sqlx::{Connection, PgConnection};

use crate::harness::{service_url, TestDb};

/// Inserts a finished (or pending, when `finished_days_ago` is None) run of job `job`.
async fn run_of(db: &TestDb, job: &str, finished_days_ago: Option<i32>) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO sisyphus.runs (job_id, slot, trigger, status, scheduled_for, finished_at)
         SELECT j.id, now() - make_interval(days => coalesce($2, 0)) - random() * interval '1 hour',
                'manual', CASE WHEN $2 IS NULL THEN 'pending' ELSE 'successful' END::sisyphus.run_status,
                now(), now() - make_interval(days => $2)
           FROM sisyphus.jobs j WHERE j.project = 'K' AND j.name = $1
         RETURNING id",
    )
    .bind(job)
    .bind(finished_days_ago)
    .fetch_one(&db.pool)
    .await
    .expect("insert run")
}

async fn log_line(db: &TestDb, run: i64, seq: i32, at: &str) -> String {
    sqlx::query_scalar(&format!(
        "INSERT INTO sisyphus.run_logs (run_id, seq, at, stream, text)
         VALUES ($1, $2, {at}, 'stdout', 'line') RETURNING tableoid::regclass::text"
    ))
    .bind(run)
    .bind(seq)
    .fetch_one(&db.pool)
    .await
    .expect("insert log line")
}

async fn exists(db: &TestDb, table: &str) -> bool {
    sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(table)
        .fetch_one(&db.pool)
        .await
        .expect("to_regclass")
}

#[tokio::test]
async fn housekeeping_drops_old_log_partitions_and_deletes_old_runs() {
    let db = TestDb::new().await;
    let defs = ["busy", "lonely"].map(|n| JobDefinition::new("K", n, ["true"]));
    db.client.apply(&defs, false).await.expect("apply");
    let old = run_of(&db, "busy", Some(100)).await;
    let recent = run_of(&db, "busy", Some(1)).await;
    let waiting = run_of(&db, "busy", None).await;
    let lonely = run_of(&db, "lonely", Some(100)).await;

    // A partition for a day 40 days ago; a line 35 days ago has none and lands in the default.
    sqlx::query("SELECT sisyphus.ensure_log_partitions((now() - interval '40 days')::date, 1)")
        .execute(&db.pool)
        .await
        .expect("old partition");
    let day40 = log_line(&db, recent, 1, "now() - interval '40 days'").await;
    let day35 = log_line(&db, recent, 2, "now() - interval '35 days'").await;
    let today = log_line(&db, recent, 3, "now()").await;
    log_line(&db, old, 1, "now()").await;
    assert!(day40.starts_with("sisyphus.run_logs_2"), "{day40}");
    assert_eq!(day35, "sisyphus.run_logs_default");
    assert!(today.starts_with("sisyphus.run_logs_2"), "{today}");

    // A line for a day with no partition yet is kept in the default, then moved.
    let ahead = log_line(&db, waiting, 1, "now() + interval '10 days'").await;
    assert_eq!(ahead, "sisyphus.run_logs_default");
    sqlx::query("SELECT sisyphus.ensure_log_partitions((now() + interval '10 days')::date, 1)")
        .execute(&db.pool)
        .await
        .expect("partition ahead");
    let moved: String = sqlx::query_scalar(
        "SELECT tableoid::regclass::text FROM sisyphus.run_logs WHERE run_id = $1",
    )
    .bind(waiting)
    .fetch_one(&db.pool)
    .await
    .expect("moved line");
    assert!(moved.starts_with("sisyphus.run_logs_2"), "{moved}");

    // Settled notifications go with the runs' retention; a pending one stays however old.
    sqlx::query(
        "INSERT INTO sisyphus.outbox (event, channel, payload, state, created_at)
         VALUES ('failed', 'ops', '{}', 'delivered', now() - interval '100 days'),
                ('failed', 'ops', '{}', 'failed', now() - interval '100 days'),
                ('failed', 'ops', '{}', 'pending', now() - interval '100 days'),
                ('failed', 'ops', '{}', 'delivered', now() - interval '1 day')",
    )
    .execute(&db.pool)
    .await
    .expect("notifications");

    // Audit rows: one past the audit retention, one inside it.
    sqlx::query(
        "INSERT INTO sisyphus.audit (at, action, target)
         VALUES (now() - interval '500 days', 'job.pause', 'K/old'),
                (now() - interval '300 days', 'job.pause', 'K/kept')",
    )
    .execute(&db.pool)
    .await
    .expect("audit rows");

    let scheduler = service_url(&db.url, &["scheduler".to_string()]);
    assert_ne!(scheduler, db.url, "the scheduler's own login");
    let mut conn = PgConnection::connect(&scheduler).await.expect("connect");
    let retention = Retention {
        keep_logs: Duration::from_secs(30 * 86_400),
        keep_runs: Duration::from_secs(90 * 86_400),
        keep_audit: Duration::from_secs(400 * 86_400),
        ..Retention::default()
    };
    let done = housekeep(&mut conn, &retention).await.expect("housekeep");
    assert_eq!(
        (
            done.dropped_partitions,
            done.deleted_runs,
            done.deleted_notifications,
            done.deleted_audit
        ),
        (1, 1, 2, 1),
        "{done:?}"
    );
    let audit: Vec<String> = sqlx::query_scalar("SELECT target FROM sisyphus.audit ORDER BY id")
        .fetch_all(&db.pool)
        .await
        .expect("audit");
    assert!(
        audit.contains(&"K/kept".to_string()) && !audit.contains(&"K/old".to_string()),
        "{audit:?}"
    );
    // Retention is the only way: the scheduler's login cannot delete audit rows itself.
    let refused = sqlx::query("DELETE FROM sisyphus.audit")
        .execute(&mut conn)
        .await
        .expect_err("the scheduler deleted audit rows");
    assert!(
        refused.to_string().contains("permission denied"),
        "{refused}"
    );
    let left: Vec<String> =
        sqlx::query_scalar("SELECT state::text FROM sisyphus.outbox ORDER BY id")
            .fetch_all(&db.pool)
            .await
            .expect("outbox");
    assert_eq!(left, ["pending", "delivered"]);
    assert!(
        !exists(&db, &day40).await,
        "the 40-day-old partition is still there"
    );
    let kept: Vec<(i64, i32)> =
        sqlx::query_as("SELECT run_id, seq FROM sisyphus.run_logs ORDER BY run_id, seq")
            .fetch_all(&db.pool)
            .await
            .expect("lines");
    assert_eq!(
        kept,
        vec![(recent, 3), (waiting, 1)],
        "old lines and the deleted run's lines go"
    );
    let runs: Vec<i64> = sqlx::query_scalar("SELECT id FROM sisyphus.runs ORDER BY id")
        .fetch_all(&db.pool)
        .await
        .expect("runs");
    assert_eq!(
        runs,
        vec![recent, waiting, lonely],
        "only the old run that is not its job's latest goes"
    );

    let again = housekeep(&mut conn, &retention)
        .await
        .expect("housekeep again");
    assert_eq!(
        again,
        Housekeeping::default(),
        "a second pass has nothing to do"
    );

    let options: Option<Vec<String>> =
        sqlx::query_scalar("SELECT reloptions FROM pg_class WHERE oid = 'sisyphus.runs'::regclass")
            .fetch_one(&db.pool)
            .await
            .expect("reloptions");
    assert!(
        options
            .unwrap_or_default()
            .iter()
            .any(|o| o == "autovacuum_vacuum_scale_factor=0.02"),
        "runs carries queue autovacuum settings"
    );
}
