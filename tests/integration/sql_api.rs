//! SQL is a first-class interface: the functions and views psql users call are the ones the CLI
//! and the client call.

use sisyphus_client::{JobDefinition, JobRef, RunFilter, RunStatus};

use crate::harness::{stderr, stdout, TestDb};

#[tokio::test]
async fn run_now_from_sql_and_from_sisyctl_make_the_same_run() {
    let db = TestDb::new().await;
    let def = JobDefinition {
        ttl: Some("2m".into()),
        ..JobDefinition::new("ACME", "now", ["true"])
    };
    db.client.apply(&[def], false).await.expect("apply");
    let id: i64 = sqlx::query_scalar("SELECT sisyphus.run_now('ACME', 'now')")
        .fetch_one(&db.pool)
        .await
        .expect("sql run_now");
    let out = db.sisyctl(&["run", "ACME/now", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ids: Vec<i64> = serde_json::from_slice(&out.stdout).expect("json ids");
    assert_eq!(ids.len(), 1);
    let runs = db
        .client
        .runs(&RunFilter::for_job(&JobRef::new("ACME", "now")))
        .await
        .expect("runs");
    assert_eq!(runs.len(), 2);
    for r in &runs {
        assert_eq!(r.status, RunStatus::Pending);
        assert_eq!(r.trigger, sisyphus_client::RunTrigger::Manual);
        assert_eq!(r.attempt, 1);
    }
    assert_eq!(runs[1].id.0, id);
    let ttl: f64 = sqlx::query_scalar("SELECT extract(epoch FROM expires_at - scheduled_for)::float8 FROM sisyphus.runs WHERE id = $1")
        .bind(id)
        .fetch_one(&db.pool)
        .await
        .expect("ttl");
    assert_eq!(ttl, 120.0, "a manual run gets the job's TTL too");
}

#[tokio::test]
async fn control_functions_refuse_unknown_jobs_clearly() {
    let db = TestDb::new().await;
    let err = sqlx::query("SELECT sisyphus.pause_job('No', 'such')")
        .execute(&db.pool)
        .await
        .expect_err("refused");
    assert!(
        err.to_string().contains("job No/such does not exist"),
        "{err}"
    );
    let out = db.sisyctl(&["job", "pause", "No/such"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("job No/such does not exist"),
        "{}",
        stderr(&out)
    );
    let out = db.sisyctl(&["run", "nonsense"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a malformed job name is a usage error"
    );
    assert!(stderr(&out).contains("PROJECT/NAME"), "{}", stderr(&out));
}

#[tokio::test]
async fn removing_a_job_with_an_active_run_is_refused() {
    let db = TestDb::new().await;
    db.client
        .apply(&[JobDefinition::new("P", "busy", ["sleep", "9"])], false)
        .await
        .expect("apply");
    let ids = db
        .client
        .run_now(&JobRef::new("P", "busy"))
        .await
        .expect("run");
    sqlx::query("UPDATE sisyphus.runs SET status = 'running', started_at = now() WHERE id = $1")
        .bind(ids[0].0)
        .execute(&db.pool)
        .await
        .expect("claim");
    let out = db.sisyctl(&["job", "rm", "P/busy"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("has 1 active run(s)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(db.count("jobs").await, 1);
    sqlx::query("UPDATE sisyphus.runs SET status = 'successful', finished_at = now()")
        .execute(&db.pool)
        .await
        .expect("end");
    let out = db.sisyctl(&["job", "rm", "P/busy"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("with 1 run(s)"));
    assert_eq!(db.count("jobs").await, 0);
}

#[tokio::test]
async fn job_status_view_reports_health() {
    let db = TestDb::new().await;
    let defs = ["never", "ok", "failing", "missed", "paused"]
        .map(|n| JobDefinition::new("H", n, ["true"]).cron("0 0 1 1 *"));
    db.client.apply(&defs, false).await.expect("apply");
    for (name, status) in [
        ("ok", "failed"),
        ("ok", "successful"),
        ("failing", "timeout"),
        ("missed", "missed"),
        ("paused", "successful"),
    ] {
        sqlx::query(
            "INSERT INTO sisyphus.runs (job_id, slot, scheduled_for, status, finished_at)
             SELECT id, clock_timestamp(), now(), $2::sisyphus.run_status, now() FROM sisyphus.jobs WHERE name = $1",
        )
        .bind(name)
        .bind(status)
        .execute(&db.pool)
        .await
        .expect("run");
    }
    db.client
        .pause(&JobRef::new("H", "paused"))
        .await
        .expect("pause");
    let health: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT name, health, last_status::text FROM sisyphus.job_status ORDER BY name",
    )
    .fetch_all(&db.pool)
    .await
    .expect("view");
    assert_eq!(
        health,
        vec![
            ("failing".into(), "failing".into(), Some("timeout".into())),
            ("missed".into(), "missed".into(), Some("missed".into())),
            ("never".into(), "never-run".into(), None),
            ("ok".into(), "ok".into(), Some("successful".into())),
            ("paused".into(), "paused".into(), Some("successful".into())),
        ]
    );
    let recent: i64 = sqlx::query_scalar("SELECT count(*) FROM sisyphus.recent_runs")
        .fetch_one(&db.pool)
        .await
        .expect("recent");
    assert_eq!(recent, 5);
}
