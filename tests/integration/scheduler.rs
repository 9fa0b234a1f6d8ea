//! The scheduler's rules, tick by tick, with the clock pinned (River's injectable `now`): the
//! real `tick` against a real database, so each rule is checked where it is enforced.

use chrono::{DateTime, Duration, Utc};
use sisyphus_client::JobDefinition;
use sisyphus_scheduler::{tick, PlanSettings, TickReport};

use crate::harness::TestDb;

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .expect("t0")
        .with_timezone(&Utc)
}

fn at(seconds: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(seconds)
}

async fn tick_at(db: &TestDb, seconds: i64) -> TickReport {
    let mut conn = db.pool.acquire().await.expect("conn");
    tick(
        &mut conn,
        Some(at(seconds)),
        &PlanSettings::default(),
        "test",
    )
    .await
    .expect("tick")
}

/// Applies a job and points its schedule at t0 (apply starts schedules from the real now).
async fn job(db: &TestDb, def: JobDefinition) {
    db.client.apply(&[def], false).await.expect("apply");
    sqlx::query("UPDATE sisyphus.jobs SET next_slot = $1")
        .bind(t0())
        .execute(&db.pool)
        .await
        .expect("pin");
}

/// (slot offset in seconds, status) of every run, ordered by slot and host.
async fn runs(db: &TestDb) -> Vec<(i64, String)> {
    let rows: Vec<(DateTime<Utc>, String)> =
        sqlx::query_as("SELECT slot, status::text FROM sisyphus.runs ORDER BY slot, target_host")
            .fetch_all(&db.pool)
            .await
            .expect("runs");
    rows.into_iter()
        .map(|(s, st)| ((s - t0()).num_seconds(), st))
        .collect()
}

fn every_ten(catchup: &str) -> JobDefinition {
    JobDefinition {
        ttl: Some("35s".into()),
        catchup: Some(catchup.into()),
        ..JobDefinition::new("P", "ten", ["true"]).cron("* * * * * */10")
    }
}

/// Runs the scheduler for slots 0..20, "stops" it (no ticks), restarts it at t0+107:
/// slots 30..100 passed while it was down; 80, 90 and 100 are still inside the 35 s TTL.
async fn downtime(catchup: &str) -> Vec<(i64, String)> {
    let db = TestDb::new().await;
    job(&db, every_ten(catchup)).await;
    for s in [-5, 5, 15] {
        tick_at(&db, s).await;
    }
    assert_eq!(
        runs(&db).await,
        vec![
            (0, "pending".into()),
            (10, "pending".into()),
            (20, "pending".into())
        ]
    );
    // Guardians ran them.
    sqlx::query("UPDATE sisyphus.runs SET status = 'successful'")
        .execute(&db.pool)
        .await
        .expect("ran");
    let report = tick_at(&db, 107).await;
    assert_eq!(report.jobs, 1);
    let all = runs(&db).await;
    // Whatever the policy, every slot from 0 to 110 has exactly one row.
    let slots: Vec<i64> = all.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        slots,
        (0..=110).step_by(10).collect::<Vec<_>>(),
        "each slot once, none skipped"
    );
    all.into_iter().filter(|(s, _)| *s >= 30).collect()
}

fn expect(pending: &[i64]) -> Vec<(i64, String)> {
    (30..=110)
        .step_by(10)
        .map(|s| {
            (
                s,
                if pending.contains(&s) {
                    "pending"
                } else {
                    "missed"
                }
                .to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn catchup_all_runs_each_slot_still_inside_its_ttl() {
    assert_eq!(downtime("all").await, expect(&[80, 90, 100, 110]));
}

#[tokio::test]
async fn catchup_latest_runs_only_the_newest_passed_slot() {
    assert_eq!(downtime("latest").await, expect(&[100, 110]));
}

#[tokio::test]
async fn catchup_none_runs_no_passed_slot() {
    assert_eq!(downtime("none").await, expect(&[110]));
}

#[tokio::test]
async fn missed_rows_say_why() {
    let db = TestDb::new().await;
    job(&db, every_ten("latest")).await;
    tick_at(&db, 107).await;
    let reasons: Vec<(i64, Option<String>)> = sqlx::query_as(
        "SELECT extract(epoch FROM slot - $1)::bigint, error FROM sisyphus.runs WHERE status = 'missed' ORDER BY slot",
    )
    .bind(t0())
    .fetch_all(&db.pool)
    .await
    .expect("missed");
    assert!(
        reasons
            .iter()
            .any(|(s, e)| *s == 0 && e.as_deref().is_some_and(|e| e.contains("TTL"))),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|(s, e)| *s == 90 && e.as_deref().is_some_and(|e| e.contains("`latest`"))),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn pending_runs_past_their_ttl_become_missed_and_are_never_started_late() {
    let db = TestDb::new().await;
    job(&db, every_ten("all")).await;
    tick_at(&db, -5).await; // slot 0 pending, expires at 35
    tick_at(&db, 34).await;
    let at34: Vec<(i64, String)> = runs(&db).await;
    assert_eq!(at34[0], (0, "pending".to_string()));
    let report = tick_at(&db, 36).await;
    assert!(report.expired >= 1);
    let rows = runs(&db).await;
    assert_eq!(rows[0], (0, "missed".to_string()));
}

#[tokio::test]
async fn window_and_iterations_bound_the_schedule() {
    // Three slots, then nothing: once through the iteration count, once through the window end.
    let bounded = [
        JobDefinition {
            iterations: Some(3),
            ttl: Some("1h".into()),
            ..every_ten("all")
        },
        JobDefinition {
            end: Some("2026-01-01T00:00:25Z".into()),
            ttl: Some("1h".into()),
            ..every_ten("all")
        },
    ];
    for def in bounded {
        let db = TestDb::new().await;
        job(&db, def).await;
        for s in (0..100).step_by(5) {
            tick_at(&db, s).await;
        }
        assert_eq!(
            runs(&db).await,
            vec![
                (0, "pending".into()),
                (10, "pending".into()),
                (20, "pending".into())
            ]
        );
        let next: Option<DateTime<Utc>> = sqlx::query_scalar("SELECT next_slot FROM sisyphus.jobs")
            .fetch_one(&db.pool)
            .await
            .expect("next");
        assert_eq!(
            next, None,
            "the schedule ends after its iterations or its window"
        );
    }
}

#[tokio::test]
async fn all_jobs_fan_out_to_every_live_host_of_their_pool() {
    let db = TestDb::new().await;
    sqlx::query(
        "INSERT INTO sisyphus.hosts (name, pools, last_heartbeat) VALUES
         ('h1', '{a}', now()), ('h2', '{a,b}', now()), ('h3', '{b}', now() - interval '5 minutes'),
         ('h4', '{a}', now())",
    )
    .execute(&db.pool)
    .await
    .expect("hosts");
    sqlx::query("UPDATE sisyphus.hosts SET draining = true WHERE name = 'h4'")
        .execute(&db.pool)
        .await
        .expect("drain");
    let a = JobDefinition {
        target: Some("all:a".into()),
        ..JobDefinition::new("P", "a", ["true"]).cron("0 0 * * *")
    };
    let b = JobDefinition {
        target: Some("all:b".into()),
        ..JobDefinition::new("P", "b", ["true"]).cron("0 0 * * *")
    };
    let c = JobDefinition {
        target: Some("all:c".into()),
        ..JobDefinition::new("P", "c", ["true"]).cron("0 0 * * *")
    };
    db.client.apply(&[a, b, c], false).await.expect("apply");
    sqlx::query("UPDATE sisyphus.jobs SET next_slot = $1")
        .bind(t0())
        .execute(&db.pool)
        .await
        .expect("pin");
    tick_at(&db, 0).await;
    let rows: Vec<(String, Option<String>, String)> = sqlx::query_as(
        "SELECT j.name, r.target_host, r.status::text FROM sisyphus.runs r JOIN sisyphus.jobs j ON j.id = r.job_id ORDER BY 1, 2",
    )
    .fetch_all(&db.pool)
    .await
    .expect("runs");
    assert_eq!(
        rows,
        vec![
            ("a".into(), Some("h1".into()), "pending".into()),
            ("a".into(), Some("h2".into()), "pending".into()),
            ("b".into(), Some("h2".into()), "pending".into()),
            ("c".into(), None, "missed".into()),
        ],
        "stale and draining hosts get nothing; a pool with no live host records a missed slot"
    );
}

#[tokio::test]
async fn interval_jobs_count_from_the_end_of_the_previous_run() {
    let db = TestDb::new().await;
    job(&db, JobDefinition::new("P", "iv", ["true"]).interval("30s")).await;
    tick_at(&db, 0).await;
    assert_eq!(runs(&db).await, vec![(0, "pending".to_string())]);
    for s in [5, 40, 100] {
        tick_at(&db, s).await; // nothing new while the run has not ended
    }
    assert_eq!(runs(&db).await.len(), 1);
    sqlx::query("UPDATE sisyphus.runs SET status = 'successful', finished_at = $1")
        .bind(at(107))
        .execute(&db.pool)
        .await
        .expect("finish");
    let next: Option<DateTime<Utc>> = sqlx::query_scalar("SELECT next_slot FROM sisyphus.jobs")
        .fetch_one(&db.pool)
        .await
        .expect("next");
    assert_eq!(
        next,
        Some(at(137)),
        "next slot = end of previous run + interval"
    );
    tick_at(&db, 133).await;
    assert_eq!(
        runs(&db).await,
        vec![(0, "successful".to_string()), (137, "pending".to_string())]
    );
}

#[tokio::test]
async fn jitter_delays_each_slot_by_the_same_stable_offset() {
    let db = TestDb::new().await;
    job(
        &db,
        JobDefinition {
            jitter: Some("8s".into()),
            ..every_ten("all")
        },
    )
    .await;
    for s in (0..60).step_by(5) {
        tick_at(&db, s).await;
    }
    let offsets: Vec<f64> = sqlx::query_scalar(
        "SELECT extract(epoch FROM scheduled_for - slot)::float8 FROM sisyphus.runs ORDER BY slot",
    )
    .fetch_all(&db.pool)
    .await
    .expect("offsets");
    assert!(offsets.len() >= 5);
    let expected = sisyphus_client::schedule::jitter_offset(
        "P",
        "ten",
        Some(std::time::Duration::from_secs(8)),
    );
    assert!(
        offsets
            .iter()
            .all(|o| (*o - expected.as_secs_f64()).abs() < 1e-6),
        "{offsets:?} vs {expected:?}"
    );
    assert!(expected.as_secs_f64() < 8.0);
    // Another job name spreads elsewhere (the hash differs).
    let other = sisyphus_client::schedule::jitter_offset(
        "P",
        "eleven",
        Some(std::time::Duration::from_secs(8)),
    );
    assert_ne!(expected, other);
}

#[tokio::test]
async fn concurrent_ticks_never_materialise_a_slot_twice() {
    let db = TestDb::new().await;
    let defs: Vec<JobDefinition> = (0..50)
        .map(|i| JobDefinition::new("P", &format!("j{i}"), ["true"]).cron("* * * * * *"))
        .collect();
    db.client.apply(&defs, false).await.expect("apply");
    sqlx::query("UPDATE sisyphus.jobs SET next_slot = $1")
        .bind(t0())
        .execute(&db.pool)
        .await
        .expect("pin");
    let mut handles = Vec::new();
    for _ in 0..4 {
        let pool = db.pool.clone();
        handles.push(tokio::spawn(async move {
            for s in 0..20 {
                let mut conn = pool.acquire().await.expect("conn");
                tick(&mut conn, Some(at(s)), &PlanSettings::default(), "racer")
                    .await
                    .expect("tick");
            }
        }));
    }
    for h in handles {
        h.await.expect("ticker");
    }
    // 50 jobs × slots 0..=24 (look-ahead 5 s from the last tick at 19).
    assert_eq!(db.count("runs").await, 50 * 25);
    let distinct: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT (job_id, slot)) FROM sisyphus.runs")
            .fetch_one(&db.pool)
            .await
            .expect("distinct");
    assert_eq!(distinct, 50 * 25);
}

#[tokio::test]
async fn pause_takes_back_future_runs_and_resume_catches_up() {
    let db = TestDb::new().await;
    let def = JobDefinition {
        ttl: Some("1h".into()),
        ..JobDefinition::new("P", "p", ["true"]).cron("* * * * * *")
    };
    db.client.apply(&[def], false).await.expect("apply");
    let job = sisyphus_client::JobRef::new("P", "p");
    let mut conn = db.pool.acquire().await.expect("conn");
    tick(&mut conn, None, &PlanSettings::default(), "t")
        .await
        .expect("tick");
    let ahead = db
        .count("runs WHERE status = 'pending' AND scheduled_for > now()")
        .await;
    assert!(ahead >= 3, "look-ahead materialised {ahead}");
    assert!(db.client.pause(&job).await.expect("pause"));
    assert!(
        !db.client.pause(&job).await.expect("pause twice"),
        "pausing twice reports no change"
    );
    assert_eq!(
        db.count("runs WHERE status = 'pending'").await,
        0,
        "no pending run survives a pause"
    );
    let report = tick(&mut conn, None, &PlanSettings::default(), "t")
        .await
        .expect("tick");
    assert_eq!(report.jobs, 0, "a paused job is not scheduled");
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    let before: i64 = db.count("runs").await;
    assert!(db.client.resume(&job).await.expect("resume"));
    tick(&mut conn, None, &PlanSettings::default(), "t")
        .await
        .expect("tick");
    // The slots that passed while paused are caught up (catchup = all, inside the TTL), once each.
    let caught_up = db
        .count("runs WHERE status = 'pending' AND scheduled_for <= now()")
        .await;
    assert!(caught_up >= 2, "caught up {caught_up}");
    assert!(db.count("runs").await > before);
    let dups: i64 = sqlx::query_scalar("SELECT count(*) - count(DISTINCT slot) FROM sisyphus.runs")
        .fetch_one(&db.pool)
        .await
        .expect("dups");
    assert_eq!(dups, 0);
}
