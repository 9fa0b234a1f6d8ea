//! Resources and lineage (jobspy's model): reader/writer locks taken all at once, inputs that
//! must have been written, outputs written only by successful runs, expiry, leases that free the
//! locks of a killed holder, data-triggered pipelines and the lineage graph.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use sisyphus_client::spec::{EnvValue, Text};
use sisyphus_client::{Error, JobDefinition, JobRef, LockRequest};

use crate::harness::{bin, ended, run_now, stdout, temp_dir, wait_for, Daemon, TestDb};

/// Writes `names` as outputs of a client guard (so they can be inputs).
async fn seed(db: &TestDb, names: &[&str]) {
    let lock = db
        .client
        .lock(LockRequest::new("seed").outputs(names.iter().copied()))
        .await
        .expect("seed lock");
    assert_eq!(lock.stop().await.expect("seed stop"), names.len());
}

/// (status, error) once the run has ended.
async fn outcome(db: &TestDb, run: i64) -> (String, Option<String>) {
    let (status, _, error, _) = ended(db, run, Duration::from_secs(60)).await;
    (status, error)
}

/// (written_at, version, writer) of a resource.
async fn written(db: &TestDb, name: &str) -> Option<(chrono::DateTime<chrono::Utc>, i64, String)> {
    sqlx::query_as("SELECT written_at, version, writer FROM sisyphus.resources WHERE name = $1")
        .bind(name)
        .fetch_optional(&db.pool)
        .await
        .expect("resource")
}

/// Successful or uneventful (no output): the two ends that write outputs.
fn done_well(status: &str) -> bool {
    matches!(status, "successful" | "uneventful")
}

fn job(name: &str, argv: &[&str]) -> JobDefinition {
    JobDefinition::new("R", name, argv.iter().copied())
}

/// The witness each run of the concurrency test executes: it registers itself on every key it
/// holds (`KEY.R.PID` / `KEY.W.PID`), records start and end times, and logs any holder it sees
/// that the reader/writer rule forbids.
const WITNESS: &str = r#"
W=$WITNESS; me=$$
for k in $READS; do touch "$W/$k.R.$me"; done
for k in $WRITES; do touch "$W/$k.W.$me"; done
for k in $READS; do for f in "$W/$k".W.*; do
  if [ -e "$f" ]; then echo "$me reads $k while $f" >> "$W/violations"; fi; done; done
for k in $WRITES; do for f in "$W/$k".*; do
  if [ -e "$f" ] && [ "$f" != "$W/$k.W.$me" ]; then echo "$me writes $k while $f" >> "$W/violations"; fi; done; done
t0=$(date +%s%N)
sleep 0.15
t1=$(date +%s%N)
for k in $READS; do echo "$k R $t0 $t1" >> "$W/intervals"; done
for k in $WRITES; do echo "$k W $t0 $t1" >> "$W/intervals"; done
rm -f "$W"/*."$me"
"#;

fn witness_job(name: &str, dir: &Path, reads: &[String], writes: &[String]) -> JobDefinition {
    let env: BTreeMap<String, EnvValue> = [
        ("WITNESS", dir.display().to_string()),
        ("READS", reads.join(" ")),
        ("WRITES", writes.join(" ")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into()))
    .collect();
    JobDefinition {
        command: Some(sisyphus_client::spec::Command::Line(WITNESS.to_string())),
        shell: Some(true),
        env: Some(env),
        inputs: Some(reads.to_vec()),
        outputs: Some(writes.to_vec()),
        lock_lease: Some(Text::from("5s")),
        lock_wait: Some(Text::from("120s")),
        ..JobDefinition::new("W", name, ["unused"])
    }
}

#[tokio::test]
async fn twenty_readers_and_five_writers_never_overlap_and_never_deadlock() {
    let db = TestDb::new().await;
    let keys: Vec<String> = (0..4).map(|i| format!("data.k{i}")).collect();
    seed(&db, &keys.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let dir = temp_dir("witness");
    let mut defs = Vec::new();
    for i in 0..20 {
        let reads = vec![keys[i % 4].clone(), keys[(i + 1) % 4].clone()];
        defs.push(witness_job(&format!("reader{i}"), &dir, &reads, &[]));
    }
    for w in 0..5 {
        // Writers overlap readers and each other; the last one also reads what it does not write.
        let (reads, writes) = match w {
            4 => (
                vec![keys[1].clone()],
                vec![keys[0].clone(), keys[2].clone()],
            ),
            _ => (vec![], vec![keys[w].clone()]),
        };
        defs.push(witness_job(&format!("writer{w}"), &dir, &reads, &writes));
    }
    db.client.apply(&defs, false).await.expect("apply");
    let _g1 = Daemon::guardian(&db.url, "g1", &["--capacity", "16"]);
    let _g2 = Daemon::guardian(&db.url, "g2", &["--capacity", "16"]);
    let started = Instant::now();
    let mut runs = Vec::new();
    for _ in 0..2 {
        for d in &defs {
            let j = JobRef::new("W", d.name.clone().expect("name"));
            runs.push(db.client.run_now(&j).await.expect("run now")[0].0);
        }
    }
    for &run in &runs {
        let (status, error) = outcome(&db, run).await;
        assert!(done_well(&status), "run {run}: {status} {error:?}");
    }
    let took = started.elapsed();
    let violations = std::fs::read_to_string(dir.join("violations")).unwrap_or_default();
    assert!(violations.is_empty(), "witnessed violations:\n{violations}");
    let (max_readers, writer_overlaps, intervals) = analyse(&dir.join("intervals"));
    assert_eq!(intervals, 2 * (20 * 2 + 4 + 3), "every hold recorded");
    assert_eq!(writer_overlaps, 0, "a writer overlapped another holder");
    assert!(
        max_readers >= 2,
        "readers never shared a key: the test saw no concurrency"
    );
    assert_eq!(db.count("resource_locks").await, 0, "locks left behind");
    assert_eq!(db.count("resource_holders").await, 0, "holders left behind");
    // Every writer run wrote its outputs: 4 seeded versions + one per successful write.
    let versions: i64 = sqlx::query_scalar("SELECT sum(version)::bigint FROM sisyphus.resources")
        .fetch_one(&db.pool)
        .await
        .expect("versions");
    assert_eq!(versions, 4 + 2 * (4 + 2));
    println!(
        "readers/writers: {} runs, {intervals} holds, max {max_readers} readers at once, 0 writer \
         overlaps, 0 violations, all done in {:.1}s (wait limit 120 s)",
        runs.len(),
        took.as_secs_f64()
    );
}

/// From the witness intervals: the most readers holding one key at once, the number of writer
/// holds that overlapped any other hold of the same key, and the number of holds.
fn analyse(path: &Path) -> (usize, usize, usize) {
    let text = std::fs::read_to_string(path).expect("intervals");
    let holds: Vec<(String, bool, u128, u128)> = text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((
                f.first()?.to_string(),
                *f.get(1)? == "W",
                f.get(2)?.parse().ok()?,
                f.get(3)?.parse().ok()?,
            ))
        })
        .collect();
    let overlap = |a: &(String, bool, u128, u128), b: &(String, bool, u128, u128)| {
        a.0 == b.0 && a.2 < b.3 && b.2 < a.3
    };
    let mut max_readers = 0;
    let mut writer_overlaps = 0;
    for (i, a) in holds.iter().enumerate() {
        let others = holds
            .iter()
            .enumerate()
            .filter(|(j, b)| *j != i && overlap(a, b));
        if a.1 {
            writer_overlaps += others.count();
        } else {
            max_readers = max_readers.max(1 + others.filter(|(_, b)| !b.1).count());
        }
    }
    (max_readers, writer_overlaps, holds.len())
}

#[tokio::test]
async fn inputs_must_exist_failed_writers_write_nothing_and_outputs_expire() {
    let db = TestDb::new().await;
    let _g = Daemon::guardian(&db.url, "g", &[]);

    // An input nobody wrote: the run fails at once with that reason, and never starts.
    let marker = temp_dir("never").join("started");
    let reader = JobDefinition {
        inputs: Some(vec!["never.written".into()]),
        ..job("reader", &["touch", marker.to_str().expect("path")])
    };
    let (status, error) = outcome(&db, run_now(&db, reader).await).await;
    assert_eq!(status, "failed");
    let error = error.unwrap_or_default();
    assert!(
        error.contains("input never.written has never been written"),
        "{error}"
    );
    assert!(!marker.exists(), "the process started without its input");

    // A successful writer writes; a failed writer leaves version, time and writer untouched.
    let writer = JobDefinition {
        outputs: Some(vec!["out.a".into()]),
        ..job("writer", &["true"])
    };
    assert!(done_well(&outcome(&db, run_now(&db, writer).await).await.0));
    let before = written(&db, "out.a").await.expect("out.a written");
    assert_eq!((before.1, before.2.as_str()), (1, "R/writer"));
    let bad = JobDefinition {
        outputs: Some(vec!["out.a".into()]),
        ..job("badwriter", &["false"])
    };
    assert_eq!(outcome(&db, run_now(&db, bad).await).await.0, "failed");
    assert_eq!(
        written(&db, "out.a").await,
        Some(before),
        "a failed run wrote its output"
    );

    // Outputs that expire count as unwritten afterwards.
    let short = JobDefinition {
        outputs: Some(vec!["out.short".into()]),
        outputs_expire: Some(Text::from("1s")),
        ..job("short", &["true"])
    };
    assert!(done_well(&outcome(&db, run_now(&db, short).await).await.0));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let late = JobDefinition {
        inputs: Some(vec!["out.short".into()]),
        ..job("late", &["true"])
    };
    let (status, error) = outcome(&db, run_now(&db, late).await).await;
    assert_eq!(status, "failed");
    assert!(error.unwrap_or_default().contains("out.short"));
    let listed = stdout(&db.sisyctl(&["resources", "out."]));
    let line = |name: &str| {
        listed
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or("")
            .to_string()
    };
    assert!(line("out.short").contains("expired"), "{listed}");
    assert!(
        line("out.a ").contains("available") && line("out.a ").contains("R/writer"),
        "{listed}"
    );

    // A busy output past the job's lock_wait: the run fails saying who holds it.
    let guard = db
        .client
        .lock(
            LockRequest::new("svc")
                .holder("svc-guard")
                .outputs(["held.x"]),
        )
        .await
        .expect("guard");
    let blocked = JobDefinition {
        outputs: Some(vec!["held.x".into()]),
        lock_wait: Some(Text::from("1s")),
        ..job("blocked", &["true"])
    };
    let t = Instant::now();
    let (status, error) = outcome(&db, run_now(&db, blocked).await).await;
    assert_eq!(status, "failed");
    let error = error.unwrap_or_default();
    assert!(
        error.contains("still busy after waiting 1s")
            && error.contains("held.x is write-locked by svc-guard"),
        "{error}"
    );
    assert!(
        t.elapsed() >= Duration::from_secs(1),
        "failed before its lock_wait"
    );
    guard.fail().await.expect("release guard");

    // A running job adds resources before it starts its work (`sisyctl lock`, its run id).
    let adder = JobDefinition {
        command: Some(sisyphus_client::spec::Command::Line(format!(
            "{} lock --run \"$SISYPHUS_RUN_ID\" --input out.a --output extra.out --wait 5s",
            bin("sisyctl").display()
        ))),
        shell: Some(true),
        env: Some([("SISYPHUS_DATABASE_URL".to_string(), db.url.clone().into())].into()),
        outputs: Some(vec!["base.out".into()]),
        ..job("adder", &["unused"])
    };
    let (status, error) = outcome(&db, run_now(&db, adder).await).await;
    assert!(done_well(&status), "{status} {error:?}");
    assert_eq!(
        written(&db, "extra.out").await.map(|w| w.2),
        Some("R/adder".into())
    );
    assert_eq!(
        written(&db, "base.out").await.map(|w| w.2),
        Some("R/adder".into())
    );
    let graph = stdout(&db.sisyctl(&["graph", "--job", "R/adder"]));
    assert!(
        graph.contains("\"out.a\" -> \"base.out\" [label=\"R/adder\"];"),
        "{graph}"
    );
    assert!(graph.contains("\"out.a\" -> \"extra.out\""), "{graph}");
    assert!(
        !graph.contains("R/writer"),
        "--job shows only that job's edges: {graph}"
    );
}

#[tokio::test]
async fn client_guards_share_inputs_exclude_writers_and_write_only_on_stop() {
    let db = TestDb::new().await;
    seed(&db, &["in.x"]).await;
    let c = &db.client;
    let read = || {
        LockRequest::new("svc")
            .inputs(["in.x"])
            .wait(Duration::ZERO)
    };
    let r1 = c.lock(read()).await.expect("first reader");
    let r2 = c.lock(read()).await.expect("readers share");
    let writer = || {
        LockRequest::new("svc")
            .outputs(["in.x"])
            .wait(Duration::from_millis(300))
    };
    let t = Instant::now();
    match c.lock(writer()).await {
        Err(Error::LockRefused(reason)) => {
            assert!(
                reason.contains("still busy") && reason.contains("in.x is read-locked"),
                "{reason}"
            )
        }
        Err(e) => panic!("writer: {e}"),
        Ok(_) => panic!("a writer got a key two readers hold"),
    }
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "gave up before the wait limit"
    );
    drop(r1);
    r2.fail().await.expect("release reader");
    let w = wait_for("the readers' release", Duration::from_secs(5), || async {
        c.lock(writer()).await.ok()
    })
    .await;
    let before = written(&db, "in.x").await;
    w.fail().await.expect("fail");
    assert_eq!(
        written(&db, "in.x").await,
        before,
        "fail() wrote the output"
    );

    // stop() writes the outputs and the lineage edge.
    let producer = c
        .lock(LockRequest::new("svc").inputs(["in.x"]).outputs(["out.y"]))
        .await
        .expect("producer");
    assert_eq!(producer.stop().await.expect("stop"), 1);
    assert_eq!(written(&db, "out.y").await.map(|w| w.2), Some("svc".into()));
    let dot = c.graph(None).await.expect("graph");
    assert!(
        dot.contains("\"in.x\" -> \"out.y\" [label=\"svc\"];"),
        "{dot}"
    );

    // A guard keeps its lock past the lease by refreshing it in the background.
    let held = c
        .lock(
            LockRequest::new("svc")
                .outputs(["out.y"])
                .lease(Duration::from_secs(1)),
        )
        .await
        .expect("held");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let other = c
        .lock(
            LockRequest::new("other")
                .inputs(["out.y"])
                .wait(Duration::ZERO),
        )
        .await;
    assert!(
        matches!(other, Err(Error::LockRefused(_))),
        "lease lapsed despite refreshes"
    );
    held.refresh().await.expect("still ours");
    held.stop().await.expect("stop after refreshes");

    // Placeholders belong to job definitions; an empty name is refused by name.
    let e = c
        .lock(LockRequest::new("svc").outputs(["x.{date}"]))
        .await
        .err();
    assert!(e.is_some_and(|e| e.to_string().contains("placeholders")));
    let e = c.lock(LockRequest::new("svc").outputs([""])).await.err();
    assert!(e.is_some_and(|e| e.to_string().contains("empty")));
    assert_eq!(
        db.count("resource_holders").await,
        0,
        "a refused request left a holder"
    );
}

#[tokio::test]
async fn a_killed_holder_releases_its_locks_when_its_lease_ends() {
    let db = TestDb::new().await;
    let psql = pgembed::find_bin_dir()
        .expect("postgres binaries")
        .join("psql");
    // A separate process takes a write lock through the SQL procedure, then hangs.
    let mut holder = std::process::Command::new(psql)
        .args([
            &db.url,
            "-c",
            "CALL sisyphus.lock_resources('doomed', 'psql', '{}', '{shared.out}', '2 seconds', '0')",
            "-c",
            "SELECT pg_sleep(600)",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("psql");
    wait_for(
        "the psql holder's lock",
        Duration::from_secs(10),
        || async { (db.count("resource_locks WHERE holder = 'doomed'").await == 1).then_some(()) },
    )
    .await;
    let locked_at = Instant::now();
    holder.kill().expect("kill -9 psql");
    let _ = holder.wait();
    let lock = db
        .client
        .lock(
            LockRequest::new("next")
                .outputs(["shared.out"])
                .wait(Duration::from_secs(10)),
        )
        .await
        .expect("the lock frees when the lease ends");
    let waited = locked_at.elapsed();
    assert!(
        waited >= Duration::from_millis(1500),
        "taken before the lease ended: {waited:?}"
    );
    assert!(waited < Duration::from_secs(6), "took too long: {waited:?}");
    // The dead holder can no longer write: its lock was taken over.
    let (written, reason): (i32, Option<String>) =
        sqlx::query_as("SELECT written, reason FROM sisyphus.release_lock('doomed', true)")
            .fetch_one(&db.pool)
            .await
            .expect("release");
    assert_eq!(written, 0);
    assert!(reason.unwrap_or_default().contains("took over"));
    assert_eq!(lock.stop().await.expect("stop"), 1);
    println!(
        "killed holder: lock free {:.2}s after it was taken (lease 2 s)",
        waited.as_secs_f64()
    );
}

/// (job name, slot's day, trigger, started at, finished at)
type PipelineRun = (
    String,
    String,
    String,
    chrono::DateTime<chrono::Utc>,
    chrono::DateTime<chrono::Utc>,
);

#[tokio::test]
async fn a_three_job_pipeline_runs_in_order_once_per_day_from_the_data_trigger() {
    let db = TestDb::new().await;
    let step = |name: &str, inputs: &[&str], outputs: &[&str]| JobDefinition {
        inputs: Some(inputs.iter().map(|s| s.to_string()).collect()),
        outputs: Some(outputs.iter().map(|s| s.to_string()).collect()),
        on_inputs: Some(!inputs.is_empty()),
        ..JobDefinition::new("P", name, ["true"])
    };
    db.client
        .apply(
            &[
                step("fetch", &[], &["reporting.events.{date}"]),
                step(
                    "aggregate",
                    &["reporting.events.{date}"],
                    &["reporting.daily.{date}"],
                ),
                step(
                    "report",
                    &["reporting.daily.{date}"],
                    &["reporting.report.{date}"],
                ),
            ],
            false,
        )
        .await
        .expect("apply");
    let _s = Daemon::scheduler(&db.url);
    let _g = Daemon::guardian(&db.url, "g", &[]);
    // Day one: a fetch for 2026-11-20; day two: a fetch now.
    sqlx::query(
        "INSERT INTO sisyphus.runs (job_id, slot, scheduled_for, trigger)
         SELECT id, '2026-11-20T06:00:00Z', now(), 'manual' FROM sisyphus.jobs WHERE name = 'fetch'",
    )
    .execute(&db.pool)
    .await
    .expect("day one");
    db.client
        .run_now(&JobRef::new("P", "fetch"))
        .await
        .expect("day two");
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    for day in ["2026-11-20", today.as_str()] {
        let name = format!("reporting.report.{day}");
        wait_for(&name, Duration::from_secs(30), || async {
            written(&db, &name).await
        })
        .await;
    }
    // Fetch today again: the events are rewritten, but the day's pipeline ran already.
    let again = db
        .client
        .run_now(&JobRef::new("P", "fetch"))
        .await
        .expect("again")[0]
        .0;
    assert!(done_well(&outcome(&db, again).await.0));
    tokio::time::sleep(Duration::from_secs(3)).await; // a few scheduler ticks

    let runs: Vec<PipelineRun> = sqlx::query_as(
        "SELECT j.name, to_char(r.slot AT TIME ZONE 'UTC', 'YYYY-MM-DD'), r.trigger::text,
                    r.started_at, r.finished_at
               FROM sisyphus.runs r JOIN sisyphus.jobs j ON j.id = r.job_id
              WHERE r.status IN ('successful', 'uneventful') ORDER BY r.started_at",
    )
    .fetch_all(&db.pool)
    .await
    .expect("runs");
    let count = |name: &str, day: &str| runs.iter().filter(|r| r.0 == name && r.1 == day).count();
    for day in ["2026-11-20", today.as_str()] {
        assert_eq!(
            count("aggregate", day),
            1,
            "aggregate once on {day}: {runs:?}"
        );
        assert_eq!(count("report", day), 1, "report once on {day}: {runs:?}");
        let find = |name: &str| runs.iter().find(|r| r.0 == name && r.1 == day).expect(name);
        let (fetch, agg, report) = (find("fetch"), find("aggregate"), find("report"));
        assert!(
            agg.3 >= fetch.4,
            "aggregate started before fetch ended on {day}"
        );
        assert!(
            report.3 >= agg.4,
            "report started before aggregate ended on {day}"
        );
        assert_eq!((agg.2.as_str(), report.2.as_str()), ("data", "data"));
    }
    assert_eq!(count("fetch", today.as_str()), 2);
    let total = runs.iter().filter(|r| r.2 == "data").count();
    assert_eq!(total, 4, "data-triggered runs: {runs:?}");

    let graph = stdout(&db.sisyctl(&["graph"]));
    assert!(
        graph.contains("\"reporting.events.*\" -> \"reporting.daily.*\" [label=\"P/aggregate\"];"),
        "{graph}"
    );
    assert!(
        graph.contains("\"reporting.daily.*\" -> \"reporting.report.*\" [label=\"P/report\"];"),
        "{graph}"
    );
    let nodes = graph
        .lines()
        .filter(|l| l.trim_end().ends_with("\";"))
        .count();
    assert_eq!(nodes, 3, "three nodes: {graph}");
    assert_eq!(
        graph.matches(" -> ").count(),
        2,
        "a chain of two edges: {graph}"
    );
    println!(
        "pipeline: 2 days, {} runs, {total} data-triggered, graph:\n{graph}",
        runs.len()
    );
}

#[tokio::test]
async fn plain_inputs_trigger_once_per_fresh_set_of_writes() {
    let db = TestDb::new().await;
    let consumer = JobDefinition {
        inputs: Some(vec!["plain.a".into(), "plain.b".into()]),
        on_inputs: Some(true),
        ..job("consumer", &["true"])
    };
    db.client.apply(&[consumer], false).await.expect("apply");
    let _s = Daemon::scheduler(&db.url);
    let _g = Daemon::guardian(&db.url, "g", &[]);
    let data_runs = || async {
        db.count("runs WHERE trigger = 'data' AND status IN ('successful', 'uneventful')")
            .await
    };
    seed(&db, &["plain.a"]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        db.count("runs").await,
        0,
        "ran with one of two inputs written"
    );
    seed(&db, &["plain.b"]).await;
    wait_for("the first data run", Duration::from_secs(20), || async {
        (data_runs().await == 1).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(db.count("runs").await, 1, "ran again without fresh inputs");
    // Only one input rewritten: not every input is newer than the last success.
    seed(&db, &["plain.a"]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(db.count("runs").await, 1, "ran with only one fresh input");
    seed(&db, &["plain.b"]).await;
    wait_for("the second data run", Duration::from_secs(20), || async {
        (data_runs().await == 2).then_some(())
    })
    .await;
}

#[tokio::test]
async fn lineage_names_fold_digit_runs_as_jobspy_does() {
    let db = TestDb::new().await;
    for (name, folded) in [
        ("reporting.events.2026-11-23", "reporting.events.*"),
        ("p7.x-1-2.y", "p*.x-*.y"),
        ("plain", "plain"),
    ] {
        let got: String = sqlx::query_scalar("SELECT sisyphus.lineage_name($1)")
            .bind(name)
            .fetch_one(&db.pool)
            .await
            .expect("lineage_name");
        assert_eq!(got, folded, "{name}");
    }
}

/// The data trigger finds jobs by what was written (sql/scheduler/data_jobs.sql): a job defined
/// after its inputs were written, and one paused while they were written, still run once
/// looked at; a job whose inputs were not written is not looked at at all.
#[tokio::test]
async fn data_triggers_find_late_defined_and_resumed_jobs_and_skip_idle_ones() {
    let owned = TestDb::new().await;
    let db = &owned;
    let consumer = |name: &str, input: &str| JobDefinition {
        inputs: Some(vec![input.into()]),
        on_inputs: Some(true),
        ..job(name, &["true"])
    };
    let scheduler = &db.service_pool("scheduler", "test").await;
    let tick = || async move {
        let mut conn = scheduler.acquire().await.expect("conn");
        sisyphus_scheduler::tick(
            &mut conn,
            None,
            &sisyphus_scheduler::PlanSettings::default(),
            "test",
        )
        .await
        .expect("tick")
    };
    let runs = |name: &'static str| async move {
        db.count(&format!(
            "runs r JOIN sisyphus.jobs j ON j.id = r.job_id WHERE j.name = '{name}' AND r.trigger = 'data'"
        ))
        .await
    };
    db.client
        .apply(
            &[
                consumer("paused", "early.{date}"),
                consumer("idle", "never.{date}"),
            ],
            false,
        )
        .await
        .expect("apply");
    assert_eq!(tick().await.data, 0);
    sqlx::query("UPDATE sisyphus.jobs SET paused = true WHERE name = 'paused'")
        .execute(&db.pool)
        .await
        .expect("pause");
    seed(db, &["early.2026-11-20"]).await;
    assert_eq!(tick().await.data, 0, "a paused job ran");
    // Written before this job existed, and more than the watermark's minute of slack ago.
    sqlx::query("UPDATE sisyphus.resources SET written_at = written_at - interval '1 hour'")
        .execute(&db.pool)
        .await
        .expect("age");
    assert_eq!(tick().await.data, 0);
    db.client
        .apply(&[consumer("late", "early.{date}")], false)
        .await
        .expect("apply late");
    sqlx::query("UPDATE sisyphus.jobs SET paused = false WHERE name = 'paused'")
        .execute(&db.pool)
        .await
        .expect("resume");
    assert_eq!(tick().await.data, 2);
    assert_eq!((runs("late").await, runs("paused").await), (1, 1));
    // Nothing new: nobody is looked at, the idle job's watermark never moved.
    let seen: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT inputs_seen_at FROM sisyphus.jobs WHERE name = 'idle'")
            .fetch_one(&db.pool)
            .await
            .expect("idle");
    assert_eq!(seen, None);
    assert_eq!(tick().await.data, 0);
    assert_eq!(runs("idle").await, 0);
}
