//! Health for every job (`sisyctl health`, the `job_status` view): the three unhealthy reasons
//! and the healthy case, read from real run rows.

use sisyphus_client::spec::Text;
use sisyphus_client::JobDefinition;

use crate::harness::{stderr, stdout, TestDb};

/// Inserts a finished run of `K/<job>` with `status`, finished `ago` (an SQL interval) ago.
async fn finished(db: &TestDb, job: &str, status: &str, ago: &str, error: Option<&str>) {
    sqlx::query(&format!(
        "INSERT INTO sisyphus.runs (job_id, slot, trigger, status, scheduled_for, started_at,
                                    finished_at, error)
         SELECT j.id, now() - interval '{ago}' - random() * interval '1 s', 'manual',
                $2::sisyphus.run_status, now() - interval '{ago}', now() - interval '{ago}',
                now() - interval '{ago}' + interval '1.5 s', $3
           FROM sisyphus.jobs j WHERE j.project = 'K' AND j.name = $1"
    ))
    .bind(job)
    .bind(status)
    .bind(error)
    .execute(&db.pool)
    .await
    .expect("insert run");
}

#[tokio::test]
async fn health_names_never_run_failed_and_too_old_and_passes_the_healthy() {
    let db = TestDb::new().await;
    let def = |name: &str, max_age: Option<&str>| JobDefinition {
        max_health_age: max_age.map(Text::from),
        ..JobDefinition::new("K", name, ["true"])
    };
    db.client
        .apply(
            &[
                def("never", None),
                def("broken", None),
                def("stale", Some("1h")),
                def("fresh", Some("1h")),
            ],
            false,
        )
        .await
        .expect("apply");
    finished(&db, "broken", "successful", "1 day", None).await;
    finished(
        &db,
        "broken",
        "failed",
        "5 minutes",
        Some("exit code 3: disk full"),
    )
    .await;
    finished(&db, "stale", "successful", "2 hours", None).await;
    finished(&db, "fresh", "failed", "3 hours", Some("old trouble")).await;
    finished(&db, "fresh", "uneventful", "10 minutes", None).await;

    let cases = [
        ("K/never", 1, "K/never: unhealthy: never run"),
        ("K/broken", 1, "K/broken: unhealthy: last run failed at "),
        (
            "K/stale",
            1,
            "K/stale: unhealthy: last good run ended 01:59:5",
        ),
        ("K/fresh", 0, "K/fresh: healthy"),
    ];
    for (job, code, expected) in cases {
        let out = db.sisyctl(&["health", job]);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{job}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        assert!(
            stdout(&out).starts_with(expected),
            "{job}: {}",
            stdout(&out)
        );
    }
    let broken = stdout(&db.sisyctl(&["health", "K/broken"]));
    assert!(
        broken.trim_end().ends_with(": exit code 3: disk full"),
        "{broken}"
    );
    let stale = stdout(&db.sisyctl(&["health", "K/stale"]));
    assert!(
        stale.contains("more than max_health_age 01:00:00"),
        "{stale}"
    );

    let all = db.sisyctl(&["health", "--all"]);
    assert_eq!(all.status.code(), Some(1));
    assert_eq!(stdout(&all).lines().count(), 4, "{}", stdout(&all));
    assert!(
        stderr(&all).contains("3 of 4 job(s) unhealthy"),
        "{}",
        stderr(&all)
    );

    // The same in the view.
    let rows: Vec<(String, bool, Option<String>)> =
        sqlx::query_as("SELECT job, healthy, health_reason FROM sisyphus.job_status ORDER BY job")
            .fetch_all(&db.pool)
            .await
            .expect("view");
    let summary: Vec<(&str, bool, bool)> = rows
        .iter()
        .map(|(j, h, r)| (j.as_str(), *h, r.as_deref().is_some_and(|r| !r.is_empty())))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("K/broken", false, true),
            ("K/fresh", true, false),
            ("K/never", false, true),
            ("K/stale", false, true),
        ]
    );
    assert_eq!(rows[2].2.as_deref(), Some("never run"));

    // Bad use: no job, both, an unknown job, a bad max_health_age.
    assert_eq!(db.sisyctl(&["health"]).status.code(), Some(2));
    assert_eq!(
        db.sisyctl(&["health", "K/never", "--all"]).status.code(),
        Some(2)
    );
    let unknown = db.sisyctl(&["health", "K/nope"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(stderr(&unknown).contains("K/nope"), "{}", stderr(&unknown));
    let bad = db.client.apply(&[def("odd", Some("soon"))], false).await;
    let message = format!("{:?}", bad.expect_err("a bad max_health_age is refused"));
    assert!(message.contains("max_health_age"), "{message}");
}

#[tokio::test]
async fn job_show_prints_the_duration_history() {
    let db = TestDb::new().await;
    db.client
        .apply(&[JobDefinition::new("K", "timed", ["true"])], false)
        .await
        .expect("apply");
    for ago in ["3 minutes", "2 minutes", "1 minute"] {
        finished(&db, "timed", "successful", ago, None).await;
    }
    let out = db.sisyctl(&["job", "show", "K/timed"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("durations: last 3: 1.50s 1.50s 1.50s; p50 1.50s, p95 1.50s"),
        "{text}"
    );
    assert!(text.contains("healthy: yes"), "{text}");
}
