//! The scheduler across DST transitions, with the clock pinned: a slot is a UTC instant, so the
//! two passes of a repeated hour are two slots (interval rule) and a skipped hour has none; a
//! fixed-time job gets one run for its repeated time and one right after the gap for its
//! missing one. Amsterdam's clocks go forward at 2030-03-31 01:00Z and back at 2030-10-27 01:00Z.

use chrono::{DateTime, Utc};
use sisyphus_scheduler::{tick, PlanSettings};

use crate::harness::{jobs_file, stderr, TestDb};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&Utc)
}

/// Applies one job (its schedule starting at `start`) and ticks once at `now`, catching up on
/// every slot before it; returns the slots of its runs, oldest first.
async fn slots_after_one_tick(cron: &str, start: &str, now: &str) -> Vec<DateTime<Utc>> {
    let db = TestDb::new().await;
    let file = jobs_file(&format!(
        "[[job]]\nproject = \"ACME\"\nname = \"j\"\ncommand = [\"true\"]\ncron = \"{cron}\"\n\
         timezone = \"Europe/Amsterdam\"\nstart = \"{start}\"\ncatchup = \"all\"\nttl = \"1d\"\n"
    ));
    let out = db.sisyctl(&["apply", file.to_str().expect("path")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut conn = db.pool.acquire().await.expect("conn");
    tick(&mut conn, Some(t(now)), &PlanSettings::default(), "test")
        .await
        .expect("tick");
    sqlx::query_scalar("SELECT slot FROM sisyphus.runs ORDER BY slot")
        .fetch_all(&db.pool)
        .await
        .expect("runs")
}

#[tokio::test]
async fn an_interval_like_job_runs_in_both_passes_of_a_repeated_hour() {
    let slots = slots_after_one_tick(
        "*/30 * * * *",
        "2030-10-27T00:00:00Z",
        "2030-10-27T02:00:00Z",
    )
    .await;
    let want: Vec<_> = [
        "2030-10-27T00:00:00Z", // 02:00 CEST
        "2030-10-27T00:30:00Z", // 02:30 CEST
        "2030-10-27T01:00:00Z", // 02:00 CET, the second pass
        "2030-10-27T01:30:00Z", // 02:30 CET
        "2030-10-27T02:00:00Z", // 03:00 CET
    ]
    .iter()
    .map(|s| t(s))
    .collect();
    assert_eq!(slots, want);
}

#[tokio::test]
async fn an_interval_like_job_has_no_slot_in_a_skipped_hour() {
    let slots = slots_after_one_tick(
        "*/30 * * * *",
        "2030-03-31T00:00:00Z",
        "2030-03-31T01:30:00Z",
    )
    .await;
    let want: Vec<_> = [
        "2030-03-31T00:00:00Z", // 01:00 CET
        "2030-03-31T00:30:00Z", // 01:30 CET; 02:00 and 02:30 do not exist
        "2030-03-31T01:00:00Z", // 03:00 CEST
        "2030-03-31T01:30:00Z", // 03:30 CEST
    ]
    .iter()
    .map(|s| t(s))
    .collect();
    assert_eq!(slots, want);
}

#[tokio::test]
async fn a_fixed_time_job_runs_once_in_a_repeated_hour_and_once_after_a_gap() {
    let fall =
        slots_after_one_tick("30 2 * * *", "2030-10-26T12:00:00Z", "2030-10-27T02:00:00Z").await;
    assert_eq!(fall, [t("2030-10-27T00:30:00Z")]);
    let spring =
        slots_after_one_tick("30 2 * * *", "2030-03-30T12:00:00Z", "2030-03-31T02:00:00Z").await;
    assert_eq!(spring, [t("2030-03-31T01:00:00Z")]);
}
