//! Backfill (issue 18, migrations/0016_overlap_backfill.sql): `sisyctl backfill`, the client and
//! `sisyphus.backfill` — one code path — with real processes for the acceptance (three days of
//! an hourly job: 72 runs, each once; again: none), the slot ledger's rules tick by tick, and
//! bad input refused with nothing written.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use sisyphus_client::spec::{Command, CronLines};
use sisyphus_client::JobDefinition;
use sisyphus_scheduler::{tick, PlanSettings};

use crate::harness::{jobs_file, stderr, stdout, temp_dir, wait_for, Daemon, TestDb};

fn hourly(name: &str, script: String, concurrency: i64) -> JobDefinition {
    JobDefinition {
        project: Some("B".into()),
        name: Some(name.into()),
        shell: Some(true),
        command: Some(Command::Line(script)),
        cron: Some(CronLines::One("0 * * * *".into())),
        concurrency: Some(concurrency),
        ..JobDefinition::default()
    }
}

/// The most runs that were inside their `start`…`end` lines at once.
fn most_at_once(witness: &Path) -> usize {
    let text = std::fs::read_to_string(witness).unwrap_or_default();
    let mut events: Vec<(f64, i32)> = text
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let kind = parts.next()?;
            let t: f64 = parts.next()?.parse().ok()?;
            Some((t, if kind == "start" { 1 } else { -1 }))
        })
        .collect();
    events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut inside, mut most) = (0i32, 0i32);
    for (_, step) in events {
        inside += step;
        most = most.max(inside);
    }
    most as usize
}

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339()
}

#[tokio::test]
async fn three_days_of_an_hourly_job_run_once_each_and_again_none() {
    let db = TestDb::new().await;
    let w = temp_dir("backfill").join("w");
    let script = format!(
        "echo \"start $(date +%s.%N) $SISYPHUS_RUN_ID\" >> {w}; sleep 0.3; \
         echo \"end $(date +%s.%N) $SISYPHUS_RUN_ID\" >> {w}; echo slot done",
        w = w.display()
    );
    db.client
        .apply(&[hourly("hourly", script, 4)], false)
        .await
        .expect("apply");
    let to = Utc::now()
        .duration_trunc(TimeDelta::hours(1))
        .expect("an hour");
    let from = to - TimeDelta::hours(72);
    let _s = Daemon::scheduler(&db.url);
    let _g = Daemon::guardian(&db.url, "g1", &["--capacity", "8"]);
    let out = db.sisyctl(&[
        "backfill",
        "B/hourly",
        "--from",
        &rfc(from),
        "--to",
        &rfc(to),
        "--reason",
        "the feed was down",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("72 slot(s)"), "{}", stdout(&out));
    assert!(stdout(&out).contains(": 72 new,"), "{}", stdout(&out));
    wait_for(
        "72 backfill runs to succeed",
        Duration::from_secs(180),
        || async {
            let n = db
                .count("runs WHERE trigger = 'backfill' AND status = 'successful'")
                .await;
            (n == 72).then_some(())
        },
    )
    .await;
    let slots: Vec<(DateTime<Utc>, i32)> = sqlx::query_as(
        "SELECT slot, attempt FROM sisyphus.runs WHERE trigger = 'backfill' ORDER BY slot",
    )
    .fetch_all(&db.pool)
    .await
    .expect("slots");
    let expected: Vec<DateTime<Utc>> = (0..72).map(|h| from + TimeDelta::hours(h)).collect();
    assert_eq!(
        slots.iter().map(|s| s.0).collect::<Vec<_>>(),
        expected,
        "each slot of [from, to) once"
    );
    assert!(slots.iter().all(|s| s.1 == 1), "first attempts: {slots:?}");
    let at_once = most_at_once(&w);
    assert!(
        (1..=4).contains(&at_once),
        "never more than the concurrency: {at_once}"
    );
    // Oldest first: the run ids follow the slots.
    let order: Vec<DateTime<Utc>> =
        sqlx::query_scalar("SELECT slot FROM sisyphus.runs WHERE trigger = 'backfill' ORDER BY id")
            .fetch_all(&db.pool)
            .await
            .expect("order");
    assert_eq!(order, expected);

    let again = db.sisyctl(&[
        "backfill",
        "B/hourly",
        "--from",
        &rfc(from),
        "--to",
        &rfc(to),
    ]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stdout(&again).contains(": 0 new, 0 waiting, 0 active, 72 done"),
        "{}",
        stdout(&again)
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(db.count("runs WHERE trigger = 'backfill'").await, 72);
    let audit: Vec<(String, Option<String>, serde_json::Value)> = sqlx::query_as(
        "SELECT action, reason, diff FROM sisyphus.audit WHERE action LIKE 'run.backfill%'",
    )
    .fetch_all(&db.pool)
    .await
    .expect("audit");
    assert_eq!(
        audit.len(),
        1,
        "one audit row, for the call that queued: {audit:?}"
    );
    assert_eq!(audit[0].1.as_deref(), Some("the feed was down"));
    assert_eq!(audit[0].2["new"], 72);
}

/// Pins the tick's clock (`tick(…, Some(now))`).
async fn tick_now(db: &TestDb) -> sisyphus_scheduler::TickReport {
    let mut conn = db.pool.acquire().await.expect("conn");
    tick(
        &mut conn,
        Some(Utc::now()),
        &PlanSettings::default(),
        "test",
    )
    .await
    .expect("tick")
}

/// What the SQL function says of each slot: (slot, state, run).
async fn backfill_sql(
    db: &TestDb,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    slots: &[DateTime<Utc>],
    dry_run: bool,
) -> Vec<(DateTime<Utc>, String, Option<i64>)> {
    sqlx::query_as(
        "SELECT slot, state, run_id FROM sisyphus.backfill('B', 'ledger', $1, $2, $3, 10000, $4)",
    )
    .bind(from)
    .bind(to)
    .bind(slots)
    .bind(dry_run)
    .fetch_all(&db.pool)
    .await
    .expect("backfill")
}

#[tokio::test]
async fn backfill_fills_what_did_not_succeed_and_duplicates_nothing() {
    let db = TestDb::new().await;
    db.client
        .apply(&[hourly("ledger", "echo ok".into(), 1)], false)
        .await
        .expect("apply");
    let from = DateTime::parse_from_rfc3339("2026-01-05T00:00:00Z")
        .expect("from")
        .with_timezone(&Utc);
    let h = |n: i64| from + TimeDelta::hours(n);
    // Slot 0 was missed, 1 succeeded, 2 failed, 3 waits to run; 4 and 5 never had a run.
    let mut ids = Vec::new();
    for (slot, status) in [
        (0, "missed"),
        (1, "successful"),
        (2, "failed"),
        (3, "pending"),
    ] {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO sisyphus.runs (job_id, slot, scheduled_for, expires_at, status, finished_at)
             SELECT id, $1, now() - interval '1 minute', now() + interval '1 hour',
                    $2::sisyphus.run_status,
                    CASE WHEN $2 <> 'pending' THEN now() END
               FROM sisyphus.jobs WHERE name = 'ledger' RETURNING id",
        )
        .bind(h(slot))
        .bind(status)
        .fetch_one(&db.pool)
        .await
        .expect("run");
        ids.push(id);
    }
    let slots: Vec<DateTime<Utc>> = (0..6).map(h).collect();
    let dry = backfill_sql(&db, h(0), h(6), &slots, true).await;
    let states: Vec<(&str, Option<i64>)> = dry.iter().map(|r| (r.1.as_str(), r.2)).collect();
    assert_eq!(
        states,
        vec![
            ("new", None),
            ("done", Some(ids[1])),
            ("new", None),
            ("active", Some(ids[3])),
            ("new", None),
            ("new", None)
        ]
    );
    assert_eq!(
        db.count("backfill_queue").await,
        0,
        "a dry run writes nothing"
    );
    assert_eq!(db.count("audit WHERE action = 'run.backfill'").await, 0);

    let done = backfill_sql(&db, h(0), h(6), &slots, false).await;
    assert_eq!(done.iter().filter(|r| r.1 == "new").count(), 4);
    let again = backfill_sql(&db, h(0), h(6), &slots, false).await;
    assert_eq!(again.iter().filter(|r| r.1 == "waiting").count(), 4);
    assert_eq!(db.count("backfill_queue").await, 4);

    // Concurrency 1 and the pending run of slot 3 is due: no room, nothing made.
    assert_eq!(tick_now(&db).await.backfilled, 0);
    sqlx::query("UPDATE sisyphus.runs SET status = 'cancelled', finished_at = now() WHERE id = $1")
        .bind(ids[3])
        .execute(&db.pool)
        .await
        .expect("cancel slot 3");
    assert_eq!(tick_now(&db).await.backfilled, 1, "room for one");
    let made: (DateTime<Utc>, i32, String, String, bool) = sqlx::query_as(
        "SELECT slot, attempt, trigger::text, created_by, expires_at > now() + interval '59 minutes'
           FROM sisyphus.runs WHERE trigger = 'backfill'",
    )
    .fetch_one(&db.pool)
    .await
    .expect("the backfill run");
    assert_eq!(
        (made.0, made.1, made.2.as_str(), made.4),
        (h(0), 2, "backfill", true),
        "the missed slot's next attempt, oldest first, a TTL from now"
    );
    assert_eq!(made.3, "backfill by postgres");
    assert_eq!(
        tick_now(&db).await.backfilled,
        0,
        "its run holds the one place"
    );
    assert_eq!(db.count("backfill_queue").await, 3);

    let cancelled = db.sisyctl(&["backfill", "B/ledger", "--cancel"]);
    assert!(cancelled.status.success(), "{}", stderr(&cancelled));
    assert!(stdout(&cancelled).contains("3 waiting backfill slot(s) taken back"));
    assert_eq!(db.count("backfill_queue").await, 0);
    assert_eq!(
        db.count("audit WHERE action = 'run.backfill_cancel'").await,
        1
    );
}

#[tokio::test]
async fn bad_backfills_are_refused_with_exit_2_and_nothing_written() {
    let db = TestDb::new().await;
    let minutely = JobDefinition {
        cron: Some(CronLines::One("* * * * *".into())),
        ..hourly("minutely", "true".into(), 1)
    };
    let interval = JobDefinition {
        cron: None,
        interval: Some("5m".into()),
        ..hourly("interval", "true".into(), 1)
    };
    db.client
        .apply(&[minutely, interval], false)
        .await
        .expect("apply");
    let nothing_written = || async {
        assert_eq!(db.count("backfill_queue").await, 0);
        assert_eq!(db.count("runs").await, 0);
        assert_eq!(db.count("audit WHERE action LIKE 'run.backfill%'").await, 0);
    };
    let cases: [(&[&str], &str); 5] = [
        (
            &[
                "--from",
                "2026-01-02T00:00:00Z",
                "--to",
                "2026-01-01T00:00:00Z",
            ],
            "--from 2026-01-02T00:00:00+00:00 is not before --to",
        ),
        (
            &[
                "--from",
                "2026-01-01T00:00:00Z",
                "--to",
                "2026-01-09T00:00:00Z",
            ],
            "more than 10000 slots of B/minutely",
        ),
        (
            &["--from", "yesterday", "--to", "now"],
            "--from `yesterday` is not a time",
        ),
        (&["--from", "2d", "--to", "now", "--max", "0"], "--max"),
        (
            &[
                "--from",
                "2026-01-01",
                "--to",
                "2026-01-02",
                "--max",
                "2000000",
            ],
            "--max",
        ),
    ];
    for (args, says) in cases {
        let mut all = vec!["backfill", "B/minutely"];
        all.extend_from_slice(args);
        let out = db.sisyctl(&all);
        assert_eq!(out.status.code(), Some(2), "{all:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{all:?}: {}", stderr(&out));
        nothing_written().await;
    }
    let out = db.sisyctl(&["backfill", "B/interval", "--from", "1d", "--to", "now"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("interval"), "{}", stderr(&out));
    // Raised, the range is allowed; a dry run lists it and writes nothing.
    let out = db.sisyctl(&[
        "backfill",
        "B/minutely",
        "--from",
        "2026-01-01T00:00:00Z",
        "--to",
        "2026-01-09T00:00:00Z",
        "--max",
        "20000",
        "--dry-run",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let listed: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(listed["slots"].as_array().map(Vec::len), Some(8 * 24 * 60));
    assert_eq!(listed["dry_run"], true);
    nothing_written().await;
    // The SQL function refuses the same, for psql users: a reversed range, a slot outside it.
    let t = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .expect("t")
            .with_timezone(&Utc)
    };
    for (from, to, slot) in [
        (
            "2026-01-02T00:00:00Z",
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:00:00Z",
        ),
        (
            "2026-01-01T00:00:00Z",
            "2026-01-02T00:00:00Z",
            "2026-01-02T00:00:00Z",
        ),
    ] {
        let refused = sqlx::query(
            "SELECT * FROM sisyphus.backfill('B', 'minutely', $1, $2, ARRAY[$3::timestamptz])",
        )
        .bind(t(from))
        .bind(t(to))
        .bind(t(slot))
        .execute(&db.pool)
        .await
        .expect_err("refused");
        assert!(
            refused.to_string().contains("22023")
                || refused.to_string().contains("outside")
                || refused.to_string().contains("not before"),
            "{refused}"
        );
    }
    nothing_written().await;
}

#[tokio::test]
async fn an_unknown_overlap_policy_is_refused_naming_the_key_and_the_choices() {
    let db = TestDb::new().await;
    let file = jobs_file(
        "[[job]]\nproject = \"B\"\nname = \"x\"\ncommand = [\"true\"]\ncron = \"* * * * *\"\noverlap = \"sometimes\"\n",
    );
    let out = db.sisyctl(&["apply", &file.display().to_string()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("overlap"), "{err}");
    assert!(
        err.contains("queue, skip, buffer_one, replace"),
        "the allowed policies: {err}"
    );
    assert_eq!(db.count("jobs").await, 0);
    // A good one goes through to `job show` and its JSON.
    let file = jobs_file(
        "[[job]]\nproject = \"B\"\nname = \"x\"\ncommand = [\"true\"]\ncron = \"* * * * *\"\noverlap = \"buffer_one\"\n",
    );
    let out = db.sisyctl(&["apply", &file.display().to_string()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = stdout(&db.sisyctl(&["job", "show", "B/x"]));
    assert!(
        shown
            .lines()
            .any(|l| l.trim_start().starts_with("overlap:") && l.ends_with("buffer_one")),
        "{shown}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&db.sisyctl(&["job", "show", "B/x", "--json"])))
            .expect("json");
    assert_eq!(json["definition"]["overlap"], "buffer_one", "{json}");
    let stored: String = sqlx::query_scalar("SELECT overlap FROM sisyphus.jobs")
        .fetch_one(&db.pool)
        .await
        .expect("stored");
    assert_eq!(stored, "buffer_one");
    let audited: i64 = db
        .count("audit WHERE action = 'job.create' AND diff ->> 'overlap' = 'buffer_one'")
        .await;
    assert_eq!(audited, 1);
}

#[tokio::test]
async fn only_operators_of_the_project_may_backfill() {
    let db = TestDb::new().await;
    db.client
        .apply(&[hourly("guarded", "true".into(), 1)], false)
        .await
        .expect("apply");
    let suffix: String = db
        .url
        .rsplit('/')
        .next()
        .unwrap_or("db")
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    let from = "2026-01-01T00:00:00Z";
    let to = "2026-01-01T03:00:00Z";
    let mut seen = BTreeSet::new();
    for level in ["viewer", "operator"] {
        let login = format!("{level}_{suffix}");
        let add = db.sisyctl(&["user", "add", &login]);
        assert!(add.status.success(), "{}", stderr(&add));
        let grant = db.sisyctl(&["grant", &login, level, "B"]);
        assert!(grant.status.success(), "{}", stderr(&grant));
        let url = db
            .url
            .replacen("postgres://postgres@", &format!("postgres://{login}@"), 1);
        let out = crate::harness::sisyctl_with_url(
            Some(&url),
            &["backfill", "B/guarded", "--from", from, "--to", to],
        );
        seen.insert((
            level,
            out.status.code(),
            stderr(&out).contains("needs operator"),
        ));
    }
    assert!(seen.contains(&("viewer", Some(1), true)), "{seen:?}");
    assert!(seen.contains(&("operator", Some(0), false)), "{seen:?}");
    assert_eq!(db.count("backfill_queue").await, 3);
}
