//! The claim path of migration 0020 (issue 17: per-job scans that skip rows other guardians
//! hold, a shared per-job lock only where no claims in flight can reach the limit, outcomes as a
//! set) keeps concurrency limits exact fleet-wide: four guardians race for the runs of one job of
//! concurrency 3, and the runs' own witness lines say how many ran at once. Then migration
//! 0022's shortcuts (issue 17, a held snapshot): a claim's window starts where the session's last
//! one found the oldest due run, and a session's bound on a roomy job's active runs stands in for
//! counting them — a run due before that point is still claimed within about a second, and the
//! bound is never below the count.

use std::path::Path;
use std::time::Duration;

use sisyphus_client::spec::Command;
use sisyphus_client::{JobDefinition, JobRef};

use sqlx::pool::PoolConnection;
use sqlx::Postgres;

use crate::harness::{temp_dir, wait_for, Daemon, TestDb};

/// Runs of the job.
const RUNS: usize = 45;
/// Its concurrency.
const LIMIT: usize = 3;

/// (starts beyond `limit` while `limit` runs were inside their `start`…`end` lines, most at
/// once, runs that started more than once) from a witness file of `start <t> <run>` and
/// `end <t> <run>` lines.
fn witnessed(witness: &Path, limit: usize) -> (usize, usize, usize) {
    let text = std::fs::read_to_string(witness).unwrap_or_default();
    let mut events: Vec<(f64, i32)> = Vec::new();
    let mut starts: std::collections::BTreeMap<String, usize> = Default::default();
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(kind), Some(t), Some(run)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let Ok(t) = t.parse::<f64>() else { continue };
        if kind == "start" {
            *starts.entry(run.to_string()).or_default() += 1;
        }
        events.push((t, if kind == "start" { 1 } else { -1 }));
    }
    // At equal times an end comes before a start: touching intervals do not overlap.
    events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut inside, mut most, mut excess) = (0usize, 0usize, 0usize);
    for (_, step) in events {
        if step > 0 {
            if inside >= limit {
                excess += 1;
            }
            inside += 1;
            most = most.max(inside);
        } else {
            inside = inside.saturating_sub(1);
        }
    }
    let twice = starts.values().filter(|n| **n > 1).count();
    (excess, most, twice)
}

#[tokio::test]
async fn four_guardians_racing_for_a_job_of_concurrency_3_never_run_4() {
    let db = TestDb::new().await;
    let w = temp_dir("claims").join("w");
    let script = format!(
        "echo \"start $(date +%s.%N) $SISYPHUS_RUN_ID\" >> {w}; sleep 0.15; \
         echo \"end $(date +%s.%N) $SISYPHUS_RUN_ID\" >> {w}",
        w = w.display()
    );
    db.client
        .apply(
            &[JobDefinition {
                shell: Some(true),
                command: Some(Command::Line(script)),
                concurrency: Some(LIMIT as i64),
                ttl: Some("1h".into()),
                ..JobDefinition::new("C", "racer", Vec::<String>::new())
            }],
            false,
        )
        .await
        .expect("apply");
    // The whole backlog first, then the guardians all at once: every claim races.
    for _ in 0..RUNS {
        db.client
            .run_now(&JobRef::new("C", "racer"))
            .await
            .expect("run now");
    }
    let _g: Vec<Daemon> = (1..=4)
        .map(|i| Daemon::guardian(&db.url, &format!("g{i}"), &["--capacity", "8"]))
        .collect();
    // A run that prints nothing ends `uneventful`.
    let hosts: i64 = wait_for("every run to end", Duration::from_secs(90), || async {
        let (done, hosts): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE status = 'uneventful'), count(DISTINCT host) \
               FROM sisyphus.runs",
        )
        .fetch_one(&db.pool)
        .await
        .expect("count runs");
        (done == RUNS as i64).then_some(hosts)
    })
    .await;
    let (excess, most, twice) = witnessed(&w, LIMIT);
    println!("{RUNS} runs on {hosts} guardians: at most {most} at once, {excess} starts over the limit, {twice} started twice");
    assert_eq!(excess, 0, "starts beyond concurrency {LIMIT}");
    assert!(most <= LIMIT);
    assert_eq!(twice, 0, "runs started more than once");
    assert!(
        hosts >= 2,
        "the runs should be spread over the racing guardians"
    );
    // Every outcome recorded once: as many successful runs as starts witnessed.
    let text = std::fs::read_to_string(&w).unwrap_or_default();
    assert_eq!(
        text.lines().filter(|l| l.starts_with("start ")).count(),
        RUNS
    );
}

/// A job no set of claims can bring near its limit (shared mode, and 0022's bound), with
/// `pending` runs due now written by hand, and hosts `h1` and `h2`: the job's id.
async fn roomy_backlog(db: &TestDb, pending: i64) -> i64 {
    db.client
        .apply(
            &[JobDefinition {
                concurrency: Some(1_000_000),
                ttl: Some("1h".into()),
                ..JobDefinition::new("C", "roomy", ["/bin/true"])
            }],
            false,
        )
        .await
        .expect("apply");
    sqlx::query("INSERT INTO sisyphus.hosts (name) VALUES ('h1'), ('h2')")
        .execute(&db.pool)
        .await
        .expect("hosts");
    sqlx::query_scalar(
        "WITH j AS (SELECT id FROM sisyphus.jobs WHERE name = 'roomy'),
              r AS (INSERT INTO sisyphus.runs (job_id, slot, scheduled_for, trigger)
                    SELECT j.id, now() - interval '1 minute' + g * interval '1 ms', now(), 'manual'
                      FROM j, generate_series(1, $1) g)
         SELECT id FROM j",
    )
    .bind(pending)
    .fetch_one(&db.pool)
    .await
    .expect("backlog")
}

/// One claim of up to `n` runs for `host` on this connection (a guardian's session): the ids.
async fn claim_on(conn: &mut PoolConnection<Postgres>, host: &str, n: i32) -> Vec<i64> {
    sqlx::query_scalar("SELECT id FROM sisyphus.claim_runs($1, '{}', $2, interval '1 hour')")
        .bind(host)
        .bind(n)
        .fetch_all(&mut **conn)
        .await
        .expect("claim")
}

#[tokio::test]
async fn a_run_due_before_the_backlogs_oldest_is_claimed_within_two_seconds() {
    let db = TestDb::new().await;
    let job = roomy_backlog(&db, 200).await;
    let oldest: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM sisyphus.runs WHERE status = 'pending' ORDER BY scheduled_for, id LIMIT 5",
    )
    .fetch_all(&db.pool)
    .await
    .expect("oldest");
    let mut conn = db.pool.acquire().await.expect("connection");
    let mut first = claim_on(&mut conn, "h1", 5).await;
    first.sort();
    assert_eq!(first, oldest, "a claim takes the oldest due runs");
    // Due an hour before every run of the backlog, written after the session's claim looked.
    let late: i64 = sqlx::query_scalar(
        "INSERT INTO sisyphus.runs (job_id, slot, scheduled_for, trigger)
         VALUES ($1, now() - interval '2 hours', now() - interval '1 hour', 'manual') RETURNING id",
    )
    .bind(job)
    .fetch_one(&db.pool)
    .await
    .expect("late run");
    let started = std::time::Instant::now();
    let mut seen = std::collections::BTreeSet::from_iter(first);
    loop {
        let got = claim_on(&mut conn, "h1", 5).await;
        assert!(!got.is_empty(), "the backlog is not empty yet");
        for id in &got {
            assert!(seen.insert(*id), "run {id} claimed twice");
        }
        if got.contains(&late) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_millis(2500),
            "the run due before the backlog was not claimed within 2.5 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("claimed {:?} after its insert", started.elapsed());
}

#[tokio::test]
async fn a_sessions_bound_on_a_roomy_jobs_active_runs_is_never_below_the_count() {
    let db = TestDb::new().await;
    let job = roomy_backlog(&db, 600).await;
    let sequence = "SELECT last_value FROM sisyphus.claimed_runs";
    let drawn_before: i64 = sqlx::query_scalar(sequence)
        .fetch_one(&db.pool)
        .await
        .expect("sequence");
    let mut a = db.pool.acquire().await.expect("connection a");
    let mut b = db.pool.acquire().await.expect("connection b");
    let mut claimed = 0;
    for round in 0..25 {
        claimed += claim_on(&mut a, "h1", 10).await.len();
        let theirs = claim_on(&mut b, "h2", 10).await;
        claimed += theirs.len();
        // Some of them end meanwhile, as a set (the recorder's way).
        let ending: Vec<i64> = theirs.iter().copied().take(round % 7).collect();
        let n = ending.len() as i32;
        sqlx::query(
            "SELECT * FROM sisyphus.finish_runs($1, array_fill('successful'::text, ARRAY[$2]),
                    array_fill(0, ARRAY[$2]), array_fill(NULL::int, ARRAY[$2]),
                    array_fill(NULL::text, ARRAY[$2]), array_fill(NULL::text, ARRAY[$2]),
                    array_fill(NULL::timestamptz, ARRAY[$2]))",
        )
        .bind(&ending)
        .bind(n)
        .execute(&mut *b)
        .await
        .expect("finish");
        let bound: Option<i64> = sqlx::query_scalar(
            "SELECT at_most FROM sisyphus.active_bounds((SELECT last_value FROM sisyphus.claimed_runs))
              WHERE job = $1",
        )
        .bind(job)
        .fetch_optional(&mut *a)
        .await
        .expect("bound");
        let active: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sisyphus.runs WHERE job_id = $1 AND status IN ('running', 'suspended')",
        )
        .bind(job)
        .fetch_one(&db.pool)
        .await
        .expect("count");
        let bound = bound.expect("the session counted the job once and remembers it");
        assert!(
            bound >= active,
            "round {round}: bound {bound} below the {active} active runs"
        );
    }
    assert_eq!(claimed, 500, "every claim took its whole batch");
    let drawn: i64 = sqlx::query_scalar(sequence)
        .fetch_one(&db.pool)
        .await
        .expect("sequence");
    assert_eq!(
        drawn - drawn_before,
        claimed as i64,
        "one number drawn per run marked running"
    );
}
