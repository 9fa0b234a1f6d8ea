//! Overlap policies (issue 18, migrations/0016_overlap_backfill.sql): what a slot does when it
//! comes due while its job is at its concurrency.
//!
//! First the decisions themselves, taken by `sisyphus.claim_runs` under the job's lock, on rows
//! written by hand (exact states, no timing); then each policy with real processes: a scheduler,
//! two guardians racing for claims, and a job every second that takes 3 s, whose runs write their
//! own start and end times and pids to a witness file.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sisyphus_client::spec::{Command, CronLines};
use sisyphus_client::{JobDefinition, JobRef};

use crate::harness::{process_gone, temp_dir, wait_for, Daemon, TestDb};

/// A job that never fires by itself (runs are written by hand) with this policy.
async fn quiet_job(db: &TestDb, name: &str, overlap: &str, target: Option<&str>) -> i64 {
    let def = JobDefinition {
        overlap: Some(overlap.into()),
        target: target.map(Into::into),
        concurrency: Some(if target.is_some() { 3 } else { 1 }),
        ..JobDefinition::new("O", name, ["true"]).cron("0 0 1 1 *")
    };
    db.client.apply(&[def], false).await.expect("apply");
    sqlx::query_scalar("SELECT id FROM sisyphus.jobs WHERE project = 'O' AND name = $1")
        .bind(name)
        .fetch_one(&db.pool)
        .await
        .expect("job id")
}

/// A run written by hand: `status` running (on `host`, started 10 s ago) or pending (due
/// `due_ago` seconds ago), of `trigger`, for the slot `slot` seconds after an epoch.
async fn put_run(
    db: &TestDb,
    job: i64,
    slot: i64,
    status: &str,
    trigger: &str,
    host: Option<&str>,
    due_ago: i64,
) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO sisyphus.runs (job_id, slot, scheduled_for, expires_at, status, trigger,
                                    target_host, host, started_at, lease_expires_at)
         VALUES ($1, '2026-01-01'::timestamptz + make_interval(secs => $2),
                 now() - make_interval(secs => $5), now() + interval '1 hour',
                 $3::sisyphus.run_status, $4::sisyphus.run_trigger, $6,
                 CASE WHEN $3 = 'running' THEN coalesce($6, 'h1') END,
                 CASE WHEN $3 = 'running' THEN now() - interval '10 seconds' END,
                 CASE WHEN $3 = 'running' THEN now() + interval '1 hour' END)
         RETURNING id",
    )
    .bind(job)
    .bind(slot as f64)
    .bind(status)
    .bind(trigger)
    .bind(due_ago as f64)
    .bind(host)
    .fetch_one(&db.pool)
    .await
    .expect("insert run")
}

/// `sisyphus.claim_runs` for `host` (owner, as a guardian's checked call would): the ids claimed.
async fn claim(db: &TestDb, host: &str) -> Vec<i64> {
    sqlx::query_scalar(
        "SELECT id FROM sisyphus.claim_runs($1, '{}', 4, interval '1 minute') ORDER BY id",
    )
    .bind(host)
    .fetch_all(&db.pool)
    .await
    .expect("claim")
}

/// (status, yielded_to, requested, error) of a run.
async fn state(db: &TestDb, run: i64) -> (String, Option<i64>, Option<String>, Option<String>) {
    sqlx::query_as(
        "SELECT status::text, yielded_to, requested, error FROM sisyphus.runs WHERE id = $1",
    )
    .bind(run)
    .fetch_one(&db.pool)
    .await
    .expect("run state")
}

async fn finish(db: &TestDb, run: i64, status: &str) {
    let done: bool = sqlx::query_scalar(
        "SELECT sisyphus.finish_run($1, '{running,suspended}', $2::sisyphus.run_status,
                                    NULL, NULL, NULL, 'terminated on request', NULL)",
    )
    .bind(run)
    .bind(status)
    .fetch_one(&db.pool)
    .await
    .expect("finish");
    assert!(done, "run {run} was active");
}

#[tokio::test]
async fn skip_yields_due_slots_to_the_active_run_and_the_next_free_slot_runs() {
    let db = TestDb::new().await;
    let job = quiet_job(&db, "skip", "skip", None).await;
    let a = put_run(&db, job, 0, "running", "schedule", None, 20).await;
    let b = put_run(&db, job, 1, "pending", "schedule", None, 2).await;
    let c = put_run(&db, job, 2, "pending", "schedule", None, 1).await;
    assert_eq!(claim(&db, "h1").await, Vec::<i64>::new());
    for run in [b, c] {
        let (status, yielded, _, error) = state(&db, run).await;
        assert_eq!((status.as_str(), yielded), ("skipped", Some(a)));
        assert!(
            error.as_deref().unwrap_or("").contains("overlap = skip"),
            "{error:?}"
        );
    }
    // A skipped slot is no outcome: the job's last run and health pass over it.
    let (last, health): (Option<String>, Option<String>) = sqlx::query_as(
        "SELECT last_status::text, health_reason FROM sisyphus.job_status WHERE id = $1",
    )
    .bind(job)
    .fetch_one(&db.pool)
    .await
    .expect("job status");
    assert_eq!((last, health.as_deref()), (None, Some("never run")));
    // A run a person asked for is never skipped: it waits.
    let m = put_run(&db, job, 3, "pending", "manual", None, 1).await;
    assert_eq!(claim(&db, "h1").await, Vec::<i64>::new());
    assert_eq!(state(&db, m).await.0, "pending");
    finish(&db, a, "successful").await;
    let d = put_run(&db, job, 4, "pending", "schedule", None, 0).await;
    // The job has room for one: the manual run, older, takes it; the new slot then yields to it.
    assert_eq!(claim(&db, "h1").await, vec![m]);
    assert_eq!(state(&db, d).await.0, "pending", "decided at its next look");
    assert_eq!(claim(&db, "h1").await, Vec::<i64>::new());
    assert_eq!(state(&db, d).await.1, Some(m));
    assert_eq!(
        db.count("runs WHERE status = 'running'").await,
        1,
        "never more than the concurrency"
    );
}

#[tokio::test]
async fn queue_keeps_every_due_slot_waiting() {
    let db = TestDb::new().await;
    let job = quiet_job(&db, "queue", "queue", None).await;
    put_run(&db, job, 0, "running", "schedule", None, 20).await;
    let b = put_run(&db, job, 1, "pending", "schedule", None, 2).await;
    let c = put_run(&db, job, 2, "pending", "schedule", None, 1).await;
    assert_eq!(claim(&db, "h1").await, Vec::<i64>::new());
    assert_eq!(state(&db, b).await.0, "pending");
    assert_eq!(state(&db, c).await.0, "pending");
}

#[tokio::test]
async fn buffer_one_keeps_the_oldest_waiting_and_skips_the_rest() {
    let db = TestDb::new().await;
    let job = quiet_job(&db, "buffer", "buffer_one", None).await;
    let a = put_run(&db, job, 0, "running", "schedule", None, 20).await;
    let b = put_run(&db, job, 1, "pending", "schedule", None, 3).await;
    let c = put_run(&db, job, 2, "pending", "schedule", None, 2).await;
    let d = put_run(&db, job, 3, "pending", "schedule", None, 1).await;
    assert_eq!(claim(&db, "h1").await, Vec::<i64>::new());
    assert_eq!(state(&db, b).await.0, "pending");
    for run in [c, d] {
        let (status, yielded, _, error) = state(&db, run).await;
        assert_eq!((status.as_str(), yielded), ("skipped", Some(b)));
        assert!(error.unwrap_or_default().contains("buffer_one"));
    }
    finish(&db, a, "successful").await;
    assert_eq!(claim(&db, "h1").await, vec![b]);
}

#[tokio::test]
async fn replace_asks_the_running_run_to_terminate_and_starts_the_newest_once_it_ended() {
    let db = TestDb::new().await;
    let job = quiet_job(&db, "replace", "replace", None).await;
    let a = put_run(&db, job, 0, "running", "schedule", None, 20).await;
    let b = put_run(&db, job, 1, "pending", "schedule", None, 2).await;
    let c = put_run(&db, job, 2, "pending", "schedule", None, 1).await;
    assert_eq!(
        claim(&db, "h1").await,
        Vec::<i64>::new(),
        "not while A runs"
    );
    let (status, yielded, requested, _) = state(&db, a).await;
    assert_eq!(
        (status.as_str(), yielded, requested.as_deref()),
        ("running", Some(c), Some("terminate"))
    );
    let (status, yielded, _, error) = state(&db, b).await;
    assert_eq!((status.as_str(), yielded), ("skipped", Some(c)));
    assert!(error.unwrap_or_default().contains("overlap = replace"));
    // Looking again asks nothing more; a newer slot takes over the replacement.
    sqlx::query("UPDATE sisyphus.runs SET requested = NULL WHERE id = $1")
        .bind(a)
        .execute(&db.pool)
        .await
        .expect("carried out");
    let d = put_run(&db, job, 3, "pending", "schedule", None, 0).await;
    assert_eq!(claim(&db, "h1").await, Vec::<i64>::new());
    let (_, yielded, requested, _) = state(&db, a).await;
    assert_eq!((yielded, requested), (Some(d), None), "no second request");
    assert_eq!(state(&db, c).await.1, Some(d));
    // Someone listens for `terminated`: a replaced run is the policy at work and raises none.
    sqlx::query(
        "UPDATE sisyphus.jobs SET notify = '[{\"channel\": \"ops\", \"on\": [\"terminated\"]}]'
          WHERE id = $1",
    )
    .bind(job)
    .execute(&db.pool)
    .await
    .expect("a rule");
    finish(&db, a, "terminated").await;
    assert_eq!(
        db.count("outbox").await,
        0,
        "no notification for a replaced run"
    );
    let (status, yielded, _, error) = state(&db, a).await;
    assert_eq!(status, "terminated");
    assert_eq!(yielded, Some(d));
    assert_eq!(error, Some(format!("replaced by run {d}")));
    assert_eq!(claim(&db, "h1").await, vec![d]);
    // A run terminated by a person still raises it.
    finish(&db, d, "terminated").await;
    assert_eq!(db.count("outbox WHERE event = 'terminated'").await, 1);
}

#[tokio::test]
async fn replace_never_terminates_a_run_a_person_asked_for() {
    let db = TestDb::new().await;
    let job = quiet_job(&db, "replace-manual", "replace", None).await;
    let m = put_run(&db, job, 0, "running", "manual", None, 20).await;
    let b = put_run(&db, job, 1, "pending", "schedule", None, 1).await;
    assert_eq!(claim(&db, "h1").await, Vec::<i64>::new());
    assert_eq!(state(&db, m).await, ("running".into(), None, None, None));
    assert_eq!(
        state(&db, b).await.0,
        "pending",
        "it waits for the manual run"
    );
    // A run that ends by itself while being replaced keeps its outcome and loses the mark.
    let job2 = quiet_job(&db, "replace-ends", "replace", None).await;
    let a = put_run(&db, job2, 0, "running", "schedule", None, 20).await;
    put_run(&db, job2, 1, "pending", "schedule", None, 1).await;
    claim(&db, "h1").await;
    assert!(state(&db, a).await.1.is_some());
    finish(&db, a, "successful").await;
    let (status, yielded, _, _) = state(&db, a).await;
    assert_eq!((status.as_str(), yielded), ("successful", None));
}

#[tokio::test]
async fn an_all_jobs_copies_yield_per_host() {
    let db = TestDb::new().await;
    let job = quiet_job(&db, "all", "skip", Some("all")).await;
    let a = put_run(&db, job, 0, "running", "schedule", Some("h1"), 20).await;
    let on_h1 = put_run(&db, job, 1, "pending", "schedule", Some("h1"), 1).await;
    let on_h2 = put_run(&db, job, 1, "pending", "schedule", Some("h2"), 1).await;
    // h2's claim settles the whole job: h1's copy yields to h1's run, h2's copy runs.
    assert_eq!(claim(&db, "h2").await, vec![on_h2]);
    let (status, yielded, _, _) = state(&db, on_h1).await;
    assert_eq!((status.as_str(), yielded), ("skipped", Some(a)));
}

#[tokio::test]
async fn the_scheduler_settles_due_slots_that_no_guardian_claims() {
    let db = TestDb::new().await;
    let job = quiet_job(&db, "sweep", "replace", None).await;
    let a = put_run(&db, job, 0, "running", "schedule", None, 20).await;
    let b = put_run(&db, job, 1, "pending", "schedule", None, 1).await;
    let scheduler = db.service_pool("scheduler", "test-scheduler").await;
    let (skipped, replaced): (i32, i32) =
        sqlx::query_as("SELECT skipped, replaced FROM sisyphus.settle_due_overlaps(NULL, NULL)")
            .fetch_one(&scheduler)
            .await
            .expect("settle as the scheduler");
    assert_eq!((skipped, replaced), (0, 1));
    assert_eq!(state(&db, a).await.1, Some(b));
    // The body is nobody's to call: only under the locks the callers above take.
    assert!(sqlx::query("SELECT sisyphus.settle_overlap('{1}')")
        .execute(&db.service_pool("scheduler", "test-scheduler").await)
        .await
        .is_err());
}

// With real processes.

/// The witness each run writes: `start <t> <run> <shell pid>`, `child <pid> <run>` (its sleep),
/// `end <t> <run>` — the last only if it was not killed; it prints `done` (so it is `successful`).
fn witnessing(w: &Path, secs: u32) -> String {
    let w = w.display();
    format!(
        "echo \"start $(date +%s.%N) $SISYPHUS_RUN_ID $$\" >> {w}; sleep {secs} & \
         echo \"child $! $SISYPHUS_RUN_ID\" >> {w}; wait; \
         echo \"end $(date +%s.%N) $SISYPHUS_RUN_ID\" >> {w}; echo done"
    )
}

/// What the witness file says per run: (start, end if it ended by itself, pids).
#[derive(Debug, Default, Clone)]
struct Witnessed {
    start: Option<f64>,
    end: Option<f64>,
    pids: Vec<i32>,
}

fn read_witness(w: &Path) -> BTreeMap<i64, Witnessed> {
    let mut runs: BTreeMap<i64, Witnessed> = BTreeMap::new();
    for line in std::fs::read_to_string(w).unwrap_or_default().lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        match parts.as_slice() {
            ["start", t, run, pid] => {
                let e = runs.entry(run.parse().unwrap_or(0)).or_default();
                e.start = t.parse().ok();
                e.pids.extend(pid.parse::<i32>().ok());
            }
            ["child", pid, run] => {
                let e = runs.entry(run.parse().unwrap_or(0)).or_default();
                e.pids.extend(pid.parse::<i32>().ok());
            }
            ["end", t, run] => {
                runs.entry(run.parse().unwrap_or(0)).or_default().end = t.parse().ok()
            }
            _ => {}
        }
    }
    runs
}

/// A run as the database recorded it.
#[derive(Debug, Clone, sqlx::FromRow)]
struct Row {
    id: i64,
    status: String,
    trigger: String,
    scheduled_for: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    yielded_to: Option<i64>,
    error: Option<String>,
}

async fn rows(db: &TestDb) -> Vec<Row> {
    sqlx::query_as(
        "SELECT id, status::text AS status, trigger::text AS trigger, scheduled_for, started_at,
                finished_at, yielded_to, error
           FROM sisyphus.runs ORDER BY id",
    )
    .fetch_all(&db.pool)
    .await
    .expect("runs")
}

fn secs(t: DateTime<Utc>) -> f64 {
    t.timestamp_micros() as f64 / 1e6
}

/// Runs the policy's job (every second, 3 s per run) under a scheduler and two guardians for
/// `seconds`, sampling `pending` runs due for more than 1.5 s; then pauses it and waits until
/// nothing of it is active. Returns the rows, the witness and the largest sample.
async fn exercise(policy: &str, seconds: u64) -> (TestDb, Vec<Row>, BTreeMap<i64, Witnessed>, i64) {
    let db = TestDb::new().await;
    let w = temp_dir(&format!("overlap-{policy}")).join("w");
    let def = JobDefinition {
        project: Some("O".into()),
        name: Some(policy.into()),
        shell: Some(true),
        command: Some(Command::Line(witnessing(&w, 3))),
        cron: Some(CronLines::One("* * * * * *".into())),
        overlap: Some(policy.into()),
        ..JobDefinition::default()
    };
    db.client.apply(&[def], false).await.expect("apply");
    let _s = Daemon::scheduler(&db.url);
    let _g1 = Daemon::guardian(&db.url, "g1", &["--capacity", "4"]);
    let _g2 = Daemon::guardian(&db.url, "g2", &["--capacity", "4"]);
    let mut waiting = 0;
    let until = std::time::Instant::now() + Duration::from_secs(seconds);
    while std::time::Instant::now() < until {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sisyphus.runs
              WHERE status = 'pending' AND scheduled_for < now() - interval '1.5 seconds'",
        )
        .fetch_one(&db.pool)
        .await
        .expect("sample");
        waiting = waiting.max(n);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    db.client
        .pause(&JobRef::new("O", policy))
        .await
        .expect("pause");
    wait_for("the job's runs to end", Duration::from_secs(30), || async {
        let active = db
            .count("runs WHERE status IN ('running', 'suspended')")
            .await;
        (active == 0).then_some(())
    })
    .await;
    let rows = rows(&db).await;
    let witness = read_witness(&w);
    (db, rows, witness, waiting)
}

/// No two runs' lives overlap (concurrency 1): each run's life is from the start it witnessed to
/// the end it witnessed or, when it was killed, the end its guardian recorded.
fn assert_one_at_a_time(rows: &[Row], witness: &BTreeMap<i64, Witnessed>) {
    let mut lives: Vec<(f64, f64, i64)> = witness
        .iter()
        .filter_map(|(id, w)| {
            let row = rows.iter().find(|r| r.id == *id)?;
            let end = w.end.or(row.finished_at.map(secs))?;
            Some((w.start?, end, *id))
        })
        .collect();
    lives.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(lives.len() >= 2, "too few runs witnessed: {lives:?}");
    for pair in lives.windows(2) {
        assert!(
            pair[1].0 >= pair[0].1,
            "run {} started at {} before run {} ended at {}",
            pair[1].2,
            pair[1].0,
            pair[0].2,
            pair[0].1
        );
    }
}

fn count(rows: &[Row], status: &str) -> usize {
    rows.iter().filter(|r| r.status == status).count()
}

#[tokio::test]
async fn queue_runs_every_slot_one_at_a_time_and_lets_them_wait() {
    let (_db, rows, witness, waiting) = exercise("queue", 10).await;
    assert_one_at_a_time(&rows, &witness);
    assert_eq!(count(&rows, "skipped"), 0);
    assert!(waiting >= 2, "slots wait their turn: {waiting}");
    let late = rows
        .iter()
        .filter(|r| r.status == "successful")
        .filter_map(|r| Some(secs(r.started_at?) - secs(r.scheduled_for)))
        .fold(0.0, f64::max);
    assert!(late > 2.0, "a queued slot started late: {late}");
}

#[tokio::test]
async fn skip_runs_a_slot_only_when_the_job_is_free_and_records_the_others() {
    let (_db, rows, witness, waiting) = exercise("skip", 10).await;
    assert_one_at_a_time(&rows, &witness);
    let skipped: Vec<&Row> = rows.iter().filter(|r| r.status == "skipped").collect();
    assert!(skipped.len() >= 4, "{rows:#?}");
    assert!(count(&rows, "successful") >= 2, "{rows:#?}");
    for s in &skipped {
        let to = rows
            .iter()
            .find(|r| Some(r.id) == s.yielded_to)
            .unwrap_or_else(|| panic!("skipped run {} names the run it yielded to", s.id));
        let decided = secs(s.finished_at.expect("skipped at"));
        // Active then (its end is its guardian's clock, taken before the outcome committed), or
        // an older slot that kept the job's one free place and ran.
        let active = to.started_at.is_some_and(|t| secs(t) <= decided)
            && to.finished_at.is_none_or(|t| secs(t) + 0.5 >= decided);
        let kept = to.scheduled_for < s.scheduled_for && to.status == "successful";
        assert!(
            active || kept,
            "run {} was active when run {} was skipped: {to:?} {s:?}",
            to.id,
            s.id
        );
        assert!(s.error.as_deref().unwrap_or("").contains("overlap = skip"));
    }
    assert_eq!(waiting, 0, "nothing waits under skip");
    for r in rows.iter().filter(|r| r.status == "successful") {
        let late = secs(r.started_at.expect("started")) - secs(r.scheduled_for);
        assert!(late < 2.0, "run {} started {late}s late", r.id);
    }
}

#[tokio::test]
async fn buffer_one_keeps_one_slot_waiting_and_skips_the_others() {
    let (_db, rows, witness, waiting) = exercise("buffer_one", 10).await;
    assert_one_at_a_time(&rows, &witness);
    assert!(waiting <= 1, "at most one waits: {waiting}");
    let skipped: Vec<&Row> = rows.iter().filter(|r| r.status == "skipped").collect();
    assert!(skipped.len() >= 2, "{rows:#?}");
    for s in &skipped {
        let to = rows
            .iter()
            .find(|r| Some(r.id) == s.yielded_to)
            .expect("the waiting run");
        let decided = s.finished_at.expect("skipped at");
        assert!(
            to.scheduled_for < s.scheduled_for && to.started_at.is_none_or(|t| t >= decided),
            "run {} was waiting when run {} was skipped: {to:?} {s:?}",
            to.id,
            s.id
        );
    }
    let buffered = rows
        .iter()
        .filter(|r| r.status == "successful")
        .filter(|r| secs(r.started_at.expect("started")) - secs(r.scheduled_for) > 1.5)
        .count();
    assert!(buffered >= 1, "a buffered slot ran after the one before it");
}

#[tokio::test]
async fn replace_terminates_the_running_run_and_its_process_group() {
    let (_db, rows, witness, _) = exercise("replace", 8).await;
    assert_one_at_a_time(&rows, &witness);
    let replaced: Vec<&Row> = rows.iter().filter(|r| r.status == "terminated").collect();
    assert!(replaced.len() >= 2, "{rows:#?}");
    for r in &replaced {
        let by = r.yielded_to.expect("replaced by");
        assert_eq!(r.error, Some(format!("replaced by run {by}")));
        let successor = rows.iter().find(|x| x.id == by).expect("successor");
        assert_eq!(successor.trigger, "schedule");
        if let Some(started) = successor.started_at {
            assert!(
                started >= r.finished_at.expect("ended"),
                "run {by} started before run {} ended",
                r.id
            );
        }
        let seen = witness.get(&r.id).expect("the replaced run witnessed");
        assert!(seen.end.is_none(), "run {} was killed mid-sleep", r.id);
        assert_eq!(seen.pids.len(), 2, "shell and sleep: {seen:?}");
        for pid in &seen.pids {
            assert!(
                process_gone(*pid),
                "pid {pid} of run {} is still alive",
                r.id
            );
        }
    }
}
