//! Jobs written with the job SDK (`sisyphus-job`) under a real guardian: tags and tasks arrive in
//! `run_logs`, the summary in the run; garbage on the protocol descriptor never hurts the guardian.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use sisyphus_client::spec::{Command as JobCommand, Text};
use sisyphus_client::JobDefinition;

use crate::harness::{ended, run_now, Daemon, TestDb};

/// The SDK's scriptable example job (built by `cargo test --workspace` with the job crate).
pub fn testjob() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let job = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target dir")
        .join("examples")
        .join("testjob");
    assert!(
        job.exists(),
        "{} is missing: build the job crate's examples (cargo test --workspace does)",
        job.display()
    );
    job
}

fn sdk_job(name: &str, script: &str) -> JobDefinition {
    JobDefinition {
        env: Some(BTreeMap::from([(
            "TESTJOB_SCRIPT".to_string(),
            script.into(),
        )])),
        maxtime: Some(Text::from("30s")),
        ..JobDefinition::new("S", name, [testjob().display().to_string()])
    }
}

type LogRow = (Vec<String>, Option<String>, String);

async fn sdk_lines(db: &TestDb, run: i64) -> Vec<LogRow> {
    sqlx::query_as(
        "SELECT tags, task, text FROM sisyphus.run_logs WHERE run_id = $1 AND stream = 'sdk' ORDER BY seq",
    )
    .bind(run)
    .fetch_all(&db.pool)
    .await
    .expect("lines")
}

fn row(tags: &[&str], task: Option<&str>, text: &str) -> LogRow {
    (
        tags.iter().map(|t| t.to_string()).collect(),
        task.map(str::to_string),
        text.to_string(),
    )
}

#[tokio::test]
async fn tags_tasks_and_the_summary_arrive_from_an_sdk_job() {
    let db = TestDb::new().await;
    let _g = Daemon::guardian(&db.url, "g1", &[]);
    let script = "tagged:xml,warning:can't parse;items:a,b;delay:late detail;userdata:{\"n\":1};done:2 items done";
    let run = run_now(&db, sdk_job("ok", script)).await;
    let (status, summary, error, code) = ended(&db, run, Duration::from_secs(20)).await;
    assert_eq!(
        (status.as_str(), summary.as_deref(), code),
        ("successful", Some("2 items done"), Some(0)),
        "{error:?}"
    );
    assert_eq!(
        sdk_lines(&db, run).await,
        vec![
            row(&["test", "xml", "warning"], None, "can't parse"),
            row(&[], Some("[1/2] item a"), "processing a"),
            row(&[], Some("[2/2] item b"), "processing b"),
            row(&[], None, "late detail"),
            row(&["userdata"], None, "{\"n\":1}"),
        ]
    );

    // A failure: the job's error is the run's error; it logged the error with `exc`.
    let run = run_now(&db, sdk_job("bad", "log:trying;error:bad row;fail:gave up")).await;
    let (status, _, error, code) = ended(&db, run, Duration::from_secs(20)).await;
    assert_eq!(
        (status.as_str(), error.as_deref(), code),
        ("failed", Some("gave up"), Some(1))
    );
    let lines = sdk_lines(&db, run).await;
    assert!(
        lines.contains(&row(&["exc"], None, "bad row: the cause")),
        "{lines:?}"
    );
    assert!(lines.contains(&row(&["exc"], None, "gave up")), "{lines:?}");

    // Uneventful: nothing to report.
    let run = run_now(&db, sdk_job("idle", "delay:checked;nothing")).await;
    let (status, summary, _, _) = ended(&db, run, Duration::from_secs(20)).await;
    assert_eq!((status.as_str(), summary), ("uneventful", None));
}

#[tokio::test]
async fn garbage_on_the_protocol_descriptor_never_hurts_the_guardian() {
    let db = TestDb::new().await;
    let _g = Daemon::guardian(&db.url, "g1", &[]);
    let noisy = JobDefinition {
        shell: Some(true),
        command: Some(JobCommand::Line(
            "echo 'not json' >&3; printf '\\000\\377\\376{{{\\n' >&3; \
             echo '{\"v\":9,\"type\":\"log\",\"text\":\"from the future\"}' >&3; \
             head -c 100000 /dev/urandom >&3; echo; echo fine"
                .into(),
        )),
        ..JobDefinition::new("S", "noisy", ["unused"])
    };
    let run = run_now(&db, noisy).await;
    let (status, summary, error, _) = ended(&db, run, Duration::from_secs(20)).await;
    assert_eq!(
        (status.as_str(), summary.as_deref()),
        ("successful", Some("fine")),
        "{error:?}"
    );
    let reported: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sisyphus.run_logs WHERE run_id = $1 AND 'protocol' = ANY (tags)",
    )
    .bind(run)
    .fetch_one(&db.pool)
    .await
    .expect("count");
    assert!(
        (3..=10).contains(&reported),
        "{reported} protocol complaints (at most 10 are kept)"
    );
    let version: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sisyphus.run_logs WHERE run_id = $1 AND text LIKE '%version 9%'",
    )
    .bind(run)
    .fetch_one(&db.pool)
    .await
    .expect("count");
    assert_eq!(version, 1, "an unknown protocol version is named");
    // The guardian is still there and runs the next job.
    let run = run_now(&db, sdk_job("after", "done:still fine")).await;
    let (status, summary, _, _) = ended(&db, run, Duration::from_secs(20)).await;
    assert_eq!(
        (status.as_str(), summary.as_deref()),
        ("successful", Some("still fine"))
    );
}

#[tokio::test]
async fn the_sdk_examples_run_from_their_jobs_file_under_a_guardian() {
    let db = TestDb::new().await;
    let _g = Daemon::guardian(&db.url, "g1", &[]);
    let examples = testjob()
        .parent()
        .expect("examples dir")
        .display()
        .to_string();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("examples/sdk-jobs.toml")).expect("jobs file");
    // The file's paths start at the repository root; the test's build may live elsewhere.
    let text = text.replace("target/debug/examples", &examples);
    let specs =
        sisyphus_client::jobsfile::parse(&text, "sdk-jobs.toml").expect("the file is valid");
    assert_eq!(specs.len(), 3);
    db.client.apply_specs(&specs, false).await.expect("apply");
    for (job, summary) in [
        ("Tasks", "copied 42 rows from 2 databases"),
        ("Delayed", "imported 3 orders"),
    ] {
        let runs = db
            .client
            .run_now(&sisyphus_client::JobRef::new("ACME.Examples", job))
            .await
            .expect("run now");
        let (status, got, error, _) = ended(&db, runs[0].0, Duration::from_secs(20)).await;
        assert_eq!(
            (status.as_str(), got.as_deref()),
            ("successful", Some(summary)),
            "{job}: {error:?}"
        );
    }
    let tasks: Vec<Option<String>> = sqlx::query_scalar(
        "SELECT l.task FROM sisyphus.run_logs l JOIN sisyphus.runs r ON r.id = l.run_id
           JOIN sisyphus.jobs j ON j.id = r.job_id
          WHERE j.name = 'Tasks' AND l.stream = 'sdk' ORDER BY l.seq",
    )
    .fetch_all(&db.pool)
    .await
    .expect("tasks");
    assert_eq!(tasks.len(), 6);
    assert_eq!(
        tasks[4].as_deref(),
        Some("[2/2] database crm :: [2/3] table orders")
    );
}

#[tokio::test]
async fn an_sdk_job_s_flags_work_under_a_guardian_and_a_mistyped_one_fails_the_run() {
    let db = TestDb::new().await;
    let _g = Daemon::guardian(&db.url, "g1", &[]);
    let with_flags = |name: &str, flags: &[&str]| JobDefinition {
        command: Some(JobCommand::Argv(
            std::iter::once(testjob().display().to_string())
                .chain(flags.iter().map(|f| f.to_string()))
                .collect(),
        )),
        ..sdk_job(name, "done:flags taken")
    };
    let run = run_now(&db, with_flags("flags", &["--maxtime", "20", "-r", "no"])).await;
    let (status, summary, error, code) = ended(&db, run, Duration::from_secs(20)).await;
    assert_eq!(
        (status.as_str(), summary.as_deref(), code),
        ("successful", Some("flags taken"), Some(0)),
        "{error:?}"
    );

    // clap refuses the flag before the job starts: exit 2, its message and suggestion in the
    // run's stderr lines, nothing from the job itself.
    let run = run_now(&db, with_flags("typo", &["--maxtmie", "20"])).await;
    let (status, _, error, code) = ended(&db, run, Duration::from_secs(20)).await;
    assert_eq!((status.as_str(), code), ("failed", Some(2)), "{error:?}");
    let stderr: Vec<String> = sqlx::query_scalar(
        "SELECT text FROM sisyphus.run_logs WHERE run_id = $1 AND stream = 'stderr' ORDER BY seq",
    )
    .bind(run)
    .fetch_all(&db.pool)
    .await
    .expect("stderr");
    assert!(
        stderr.contains(&"error: unexpected argument '--maxtmie' found".to_string())
            && stderr.contains(&"  tip: a similar argument exists: '--maxtime'".to_string()),
        "{stderr:?}"
    );
    assert_eq!(sdk_lines(&db, run).await, vec![]);
}
