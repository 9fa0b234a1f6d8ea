//! `sisyctl apply`: declarative and idempotent, with --prune.

use crate::harness::{jobs_file, stderr, stdout, TestDb};

const FILE: &str = r#"
[[job]]
project = "ACME.FooBar"
name = "Fetch"
command = ["curl", "-sO", "http://localhost/"]
cron = ["*/5 * * * *", "0 12 * * * 30"]
timezone = "Europe/Amsterdam"
env = { MODE = "fast" }
workdir = "/tmp"
ttl = "10m"
catchup = "latest"
jitter = "30s"
maxtime = "3m"
retries = 2
retry_backoff = "1m"
concurrency = 2
target = "all:batch"
userdata = { seen = 3, tags = ["a", "b"] }

[[job]]
project = "ACME.FooBar"
name = "Report"
command = "echo report | tee /tmp/report"
shell = true
interval = "2h"
start = 2026-01-01T00:00:00
end = "2030-01-01T00:00:00+01:00"
iterations = 10

[[job]]
project = "ACME.Other"
name = "Once"
command = ["true"]
at = "2030-06-01T12:00:00Z"
paused = true
"#;

/// (id, updated_at, next_slot) of every job: what a no-op apply must leave alone.
async fn job_rows(
    db: &TestDb,
) -> Vec<(
    i64,
    chrono::DateTime<chrono::Utc>,
    Option<chrono::DateTime<chrono::Utc>>,
)> {
    sqlx::query_as("SELECT id, updated_at, next_slot FROM sisyphus.jobs ORDER BY id")
        .fetch_all(&db.pool)
        .await
        .expect("job rows")
}

fn changes(out: &std::process::Output) -> Vec<(String, String)> {
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    v.as_array()
        .expect("array")
        .iter()
        .map(|a| {
            (
                a["job"].as_str().unwrap_or("").to_string(),
                a["change"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn applying_twice_changes_nothing() {
    let db = TestDb::new().await;
    let file = jobs_file(FILE);
    let path = file.to_str().expect("path");
    let first = db.sisyctl(&["apply", path, "--json"]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        changes(&first).iter().all(|(_, c)| c == "created"),
        "{:?}",
        changes(&first)
    );
    let snapshot = job_rows(&db).await;
    let second = db.sisyctl(&["apply", path, "--json"]);
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(
        changes(&second).iter().all(|(_, c)| c == "unchanged"),
        "{:?}",
        changes(&second)
    );
    let after = job_rows(&db).await;
    assert_eq!(
        snapshot, after,
        "a second apply of the same file wrote something"
    );

    // The stored definition reads back as written.
    let show = db.sisyctl(&["job", "show", "ACME.FooBar/Fetch", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&show.stdout).expect("json");
    let d = &v["definition"];
    assert_eq!(d["schedule"], "*/5 * * * * | 0 12 * * * 30");
    assert_eq!(d["timezone"], "Europe/Amsterdam");
    assert_eq!(d["catchup"], "latest");
    assert_eq!(d["target"], "all:batch");
    assert_eq!(d["retries"], 2);
    assert_eq!(d["concurrency"], 2);
    assert_eq!(d["userdata"]["tags"][1], "b");
    assert_eq!(d["env"][0], "MODE", "env names are shown");
    assert!(
        !stdout(&show).contains("fast"),
        "env values must not be shown"
    );
    let once = db.sisyctl(&["job", "show", "ACME.Other/Once", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&once.stdout).expect("json");
    assert_eq!(v["paused"], true);
    assert_eq!(v["health"], "paused");
}

#[tokio::test]
async fn a_changed_job_is_updated_and_prune_removes_unlisted_jobs() {
    let db = TestDb::new().await;
    let path = jobs_file(FILE);
    assert!(db
        .sisyctl(&["apply", path.to_str().expect("path")])
        .status
        .success());
    let fewer = FILE.replace("retries = 2", "retries = 3");
    let fewer = &fewer[..fewer
        .find("[[job]]\nproject = \"ACME.FooBar\"\nname = \"Report\"")
        .expect("cut")];
    let path = jobs_file(fewer);
    let out = db.sisyctl(&["apply", path.to_str().expect("path"), "--json"]);
    assert_eq!(
        changes(&out),
        vec![("ACME.FooBar/Fetch".to_string(), "updated".to_string())]
    );
    assert_eq!(
        db.count("jobs").await,
        3,
        "without --prune nothing is removed"
    );
    let out = db.sisyctl(&["apply", path.to_str().expect("path"), "--prune", "--json"]);
    assert_eq!(
        changes(&out),
        vec![
            ("ACME.FooBar/Fetch".to_string(), "unchanged".to_string()),
            ("ACME.FooBar/Report".to_string(), "removed".to_string()),
        ],
        "prune touches only the file's projects (ACME.Other stays)"
    );
    assert_eq!(db.count("jobs").await, 2);
    let retries: i32 = sqlx::query_scalar("SELECT retries FROM sisyphus.jobs WHERE name = 'Fetch'")
        .fetch_one(&db.pool)
        .await
        .expect("retries");
    assert_eq!(retries, 3);
}

#[tokio::test]
async fn a_schedule_change_takes_back_runs_materialised_for_the_old_one() {
    let db = TestDb::new().await;
    let v1 =
        "[[job]]\nproject = \"P\"\nname = \"j\"\ncommand = [\"true\"]\ncron = \"* * * * * */2\"\n";
    assert!(db
        .sisyctl(&["apply", jobs_file(v1).to_str().expect("path")])
        .status
        .success());
    // The scheduler materialises the next few seconds ahead.
    let scheduler = db.service_pool("scheduler", "test").await;
    let mut conn = scheduler.acquire().await.expect("conn");
    sisyphus_scheduler::tick(&mut conn, None, &Default::default(), "test")
        .await
        .expect("tick");
    let ahead = db
        .count("runs WHERE status = 'pending' AND scheduled_for > now()")
        .await;
    assert!(
        ahead >= 1,
        "expected runs materialised ahead, found {ahead}"
    );
    let v2 = v1.replace("*/2\"", "*/3\"");
    let out = db.sisyctl(&["apply", jobs_file(&v2).to_str().expect("path")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        db.count("runs WHERE status = 'pending' AND scheduled_for > now()")
            .await,
        0
    );
}
