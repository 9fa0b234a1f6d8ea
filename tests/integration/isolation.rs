//! Failure isolation (issue 13, invariant `bad-job-isolated`): one job's bad values never stop scheduling for the
//! others. Jobs are made poisonous behind validation's back (direct SQL) beside a canary; the
//! real `tick` runs against a real database with the clock pinned, as in `scheduler.rs`.

use chrono::{DateTime, Duration, Utc};
use sisyphus_client::notifications::RuleDefinition;
use sisyphus_client::JobDefinition;
use sisyphus_scheduler::{tick, PlanSettings, TickReport};

use crate::harness::{stdout, TestDb};

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .expect("t0")
        .with_timezone(&Utc)
}

fn at(seconds: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(seconds)
}

async fn tick_at(db: &TestDb, seconds: i64) -> TickReport {
    let scheduler = db.service_pool("scheduler", "test").await;
    let mut conn = scheduler.acquire().await.expect("conn");
    tick(
        &mut conn,
        Some(at(seconds)),
        &PlanSettings::default(),
        "test",
    )
    .await
    .expect("the tick survives a poisoned job")
}

/// A job every second that hears about scheduler errors on channel `ops`.
fn every_second(name: &str) -> JobDefinition {
    JobDefinition {
        retries: Some(3),
        notify: Some(vec![RuleDefinition {
            channel: "ops".into(),
            on: Some(vec!["scheduler_error".into(), "lost".into()]),
            to: None,
            lines: None,
        }]),
        ..JobDefinition::new("P", name, ["true"]).cron("* * * * * *")
    }
}

async fn sql(db: &TestDb, statement: &str) {
    sqlx::query(statement)
        .execute(&db.pool)
        .await
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
}

/// Applies the jobs and points their schedules at t0.
async fn jobs(db: &TestDb, names: &[&str]) {
    let defs: Vec<JobDefinition> = names.iter().map(|n| every_second(n)).collect();
    db.client.apply(&defs, false).await.expect("apply");
    sqlx::query("UPDATE sisyphus.jobs SET next_slot = $1")
        .bind(t0())
        .execute(&db.pool)
        .await
        .expect("pin");
}

async fn runs_of(db: &TestDb, name: &str) -> i64 {
    db.count(&format!(
        "runs r WHERE r.job_id = (SELECT id FROM sisyphus.jobs WHERE name = '{name}')"
    ))
    .await
}

async fn scheduler_error(db: &TestDb, name: &str) -> Option<String> {
    sqlx::query_scalar("SELECT scheduler_error FROM sisyphus.jobs WHERE name = $1")
        .bind(name)
        .fetch_one(&db.pool)
        .await
        .expect("scheduler_error")
}

/// A run of job `name` that was running on a guardian which stopped renewing its lease (or, with
/// `lease_left` positive, still renews it).
async fn running_run(db: &TestDb, name: &str, lease_left: i64) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO sisyphus.runs (job_id, slot, scheduled_for, status, host, started_at,
                                    lease_expires_at)
         SELECT id, $2, $2, 'running', 'gone', $2, $3 FROM sisyphus.jobs WHERE name = $1
         RETURNING id",
    )
    .bind(name)
    .bind(at(-100 - lease_left.clamp(-1, 1)))
    .bind(at(lease_left))
    .fetch_one(&db.pool)
    .await
    .expect("running run")
}

#[tokio::test]
async fn one_jobs_bad_values_never_stop_scheduling_for_others() {
    let db = TestDb::new().await;
    let poisons = ["backoff", "ttl", "jitter", "every", "keep_logs"];
    let mut names = vec!["canary"];
    names.extend(poisons);
    jobs(&db, &names).await;
    // Behind validation's back: the values issue 13 found stored (negative, absurd).
    sql(
        &db,
        "UPDATE sisyphus.jobs SET retry_backoff = '-2000000000 hours' WHERE name = 'backoff'",
    )
    .await;
    sql(
        &db,
        "UPDATE sisyphus.jobs SET ttl = '-99999999 hours' WHERE name = 'ttl'",
    )
    .await;
    sql(
        &db,
        "UPDATE sisyphus.jobs SET jitter = '-1 hour' WHERE name = 'jitter'",
    )
    .await;
    sql(
        &db,
        "UPDATE sisyphus.jobs SET cron = NULL, every = '2000000000 hours' WHERE name = 'every'",
    )
    .await;
    sql(
        &db,
        "UPDATE sisyphus.jobs SET keep_logs = '-99999999 hours' WHERE name = 'keep_logs'",
    )
    .await;
    // The poisoned backoff job has a run whose guardian is gone (its retry would overflow), and
    // one still running (to be terminated).
    let lost = running_run(&db, "backoff", -1).await;
    let live = running_run(&db, "backoff", 3600).await;

    for s in 0..10 {
        let report = tick_at(&db, s).await;
        assert!(
            report.pending >= 1,
            "tick {s}: the canary got no run: {report:?}"
        );
    }
    // The canary got every slot up to the look-ahead (0..=14 s), one run each.
    assert_eq!(runs_of(&db, "canary").await, 15);
    for p in poisons {
        let error = scheduler_error(&db, p).await;
        assert!(error.is_some(), "{p} is not marked");
        println!("{p}: {}", error.unwrap_or_default());
    }
    assert_eq!(scheduler_error(&db, "canary").await, None);

    // The lost run was expired, recorded without a retry, saying why.
    let (status, error): (String, Option<String>) =
        sqlx::query_as("SELECT status::text, error FROM sisyphus.runs WHERE id = $1")
            .bind(lost)
            .fetch_one(&db.pool)
            .await
            .expect("lost run");
    assert_eq!(status, "lost");
    let error = error.unwrap_or_default();
    assert!(error.contains("not retried"), "{error}");
    assert!(error.contains("retry_backoff"), "{error}");
    assert_eq!(db.count("runs WHERE trigger = 'retry'").await, 0);

    // Shown everywhere: the view, health, sisyctl, the outbox.
    let (health, healthy, reason): (String, bool, Option<String>) = sqlx::query_as(
        "SELECT health, healthy, health_reason FROM sisyphus.job_status WHERE name = 'backoff'",
    )
    .fetch_one(&db.pool)
    .await
    .expect("job_status");
    assert_eq!(health, "scheduler-error");
    assert!(!healthy);
    assert!(
        reason
            .as_deref()
            .is_some_and(|r| r.starts_with("scheduler error: ")),
        "{reason:?}"
    );
    let events: Vec<String> = sqlx::query_scalar(
        "SELECT o.event::text FROM sisyphus.outbox o JOIN sisyphus.jobs j ON j.id = o.job_id
          WHERE j.name = 'backoff' ORDER BY o.id",
    )
    .fetch_all(&db.pool)
    .await
    .expect("outbox");
    assert_eq!(
        events.iter().filter(|e| *e == "scheduler_error").count(),
        1,
        "one notification when the job became marked, not one per tick: {events:?}"
    );
    assert!(events.contains(&"lost".to_string()), "{events:?}");
    for p in poisons {
        let show = db.sisyctl(&["job", "show", &format!("P/{p}")]);
        let text = stdout(&show);
        assert_eq!(show.status.code(), Some(0), "job show P/{p}: {show:?}");
        assert!(text.contains("scheduler error"), "{text}");
    }
    let show = stdout(&db.sisyctl(&["job", "show", "P/backoff"]));
    assert!(show.contains("unreadable"), "{show}");
    let ls = db.sisyctl(&["job", "ls"]);
    assert_eq!(ls.status.code(), Some(0));
    assert!(stdout(&ls).contains("scheduler-error!"), "{}", stdout(&ls));
    let health = stdout(&db.sisyctl(&["health", "P/backoff"]));
    assert!(health.contains("scheduler error"), "{health}");

    // Terminate and its outcome work for the poisoned job; then it can be removed.
    let kill = db.sisyctl(&["kill", &live.to_string()]);
    assert_eq!(kill.status.code(), Some(0), "{kill:?}");
    let finished: bool = sqlx::query_scalar(
        "SELECT sisyphus.finish_run($1, '{running,suspended}', 'terminated', NULL, 15, NULL, NULL, NULL)",
    )
    .bind(live)
    .fetch_one(&db.pool)
    .await
    .expect("the guardian records the terminated run");
    assert!(finished);
    let rm = db.sisyctl(&["job", "rm", "P/backoff"]);
    assert_eq!(rm.status.code(), Some(0), "{rm:?}");

    // Held back, not tried every tick; a fixed definition is tried at once and unmarked.
    let before = runs_of(&db, "ttl").await;
    tick_at(&db, 10).await;
    assert_eq!(runs_of(&db, "ttl").await, before);
    sql(
        &db,
        "UPDATE sisyphus.jobs SET ttl = '1 hour' WHERE name = 'ttl'",
    )
    .await;
    assert_eq!(
        scheduler_error(&db, "ttl").await,
        None,
        "a change clears the mark"
    );
    tick_at(&db, 11).await;
    assert!(runs_of(&db, "ttl").await > before);
    assert!(scheduler_error(&db, "jitter").await.is_some());
    // Tried again after a minute (still poisoned: still marked, not notified again).
    tick_at(&db, 75).await;
    assert!(scheduler_error(&db, "jitter").await.is_some());
    assert_eq!(
        db.count("outbox o WHERE event = 'scheduler_error' AND job_id = (SELECT id FROM sisyphus.jobs WHERE name = 'jitter')")
            .await,
        1
    );
    assert!(runs_of(&db, "canary").await > 15);
}

/// Values the database itself refuses (a check added behind the scheduler's back stands for any
/// such error): the bulk statement fails, the step is redone job by job and run by run, the
/// refused job is marked and everything else is written.
#[tokio::test]
async fn a_statement_that_fails_for_one_job_is_redone_job_by_job() {
    let db = TestDb::new().await;
    jobs(&db, &["canary", "refused", "unexpirable"]).await;
    // `refused` cannot get runs; `unexpirable`'s runs cannot become missed.
    let id = |name: &'static str| {
        let pool = db.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT id FROM sisyphus.jobs WHERE name = $1")
                .bind(name)
                .fetch_one(&pool)
                .await
                .expect("job id")
        }
    };
    let (refused, unexpirable) = (id("refused").await, id("unexpirable").await);
    sql(
        &db,
        &format!(
            "ALTER TABLE sisyphus.runs ADD CONSTRAINT poison CHECK (
                 job_id <> {refused} AND NOT (job_id = {unexpirable} AND status = 'missed'))"
        ),
    )
    .await;
    let report = tick_at(&db, 0).await;
    assert_eq!(report.isolated, 1, "{report:?}");
    assert!(scheduler_error(&db, "refused")
        .await
        .is_some_and(|e| e.contains("cannot materialise")));
    assert_eq!(runs_of(&db, "refused").await, 0);
    assert_eq!(runs_of(&db, "canary").await, 6);
    assert_eq!(runs_of(&db, "unexpirable").await, 6);
    // An hour later, every pending run is past its TTL: the canary's become missed, the
    // unexpirable job's stay and mark it.
    let report = tick_at(&db, 3700).await;
    assert!(report.expired >= 6, "{report:?}");
    assert!(scheduler_error(&db, "unexpirable")
        .await
        .is_some_and(|e| e.contains("cannot mark run")));
    let canary_pending_expired: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sisyphus.runs r JOIN sisyphus.jobs j ON j.id = r.job_id
          WHERE j.name = 'canary' AND r.status = 'pending' AND r.expires_at <= $1",
    )
    .bind(at(3700))
    .fetch_one(&db.pool)
    .await
    .expect("count");
    assert_eq!(canary_pending_expired, 0);
}
