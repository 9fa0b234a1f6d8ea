//! `sisyctl apply --plan` (what applying would change, writing nothing, exit 3 / 0) and
//! `sisyctl job explain` (a stored job's schedule in words, across a DST transition).

use crate::harness::{jobs_file, stderr, stdout, TestDb};

const BEFORE: &str = r#"
[[job]]
project = "ACME"
name = "keep"
command = ["true"]
cron = "0 2 * * *"
timezone = "Europe/Amsterdam"

[[job]]
project = "ACME"
name = "change"
command = ["true"]
cron = "0 2 * * *"
timezone = "Europe/Amsterdam"

[[job]]
project = "ACME"
name = "gone"
command = ["true"]
cron = "*/5 * * * *"
"#;

const AFTER: &str = r#"
[[job]]
project = "ACME"
name = "keep"
command = ["true"]
cron = "0 2 * * *"
timezone = "Europe/Amsterdam"

[[job]]
project = "ACME"
name = "change"
command = ["true"]
cron = "30 3 * * *"
timezone = "Europe/Amsterdam"
retries = 2

[[job]]
project = "ACME"
name = "new"
command = ["true"]
cron = "15 * * * *"
"#;

/// Everything a plan must leave alone: every column of every job, the runs, the audit log and
/// the projects' defaults, as text.
async fn state(db: &TestDb) -> (Vec<String>, i64, Vec<String>, Vec<String>) {
    let jobs = sqlx::query_scalar("SELECT to_jsonb(j)::text FROM sisyphus.jobs j ORDER BY id")
        .fetch_all(&db.pool)
        .await
        .expect("jobs");
    let audit = sqlx::query_scalar("SELECT to_jsonb(a)::text FROM sisyphus.audit a ORDER BY 1")
        .fetch_all(&db.pool)
        .await
        .expect("audit");
    let defaults =
        sqlx::query_scalar("SELECT to_jsonb(d)::text FROM sisyphus.project_defaults d ORDER BY 1")
            .fetch_all(&db.pool)
            .await
            .expect("defaults");
    (jobs, db.count("runs").await, audit, defaults)
}

fn exit(out: &std::process::Output) -> Option<i32> {
    out.status.code()
}

#[tokio::test]
async fn apply_plan_shows_what_would_be_added_changed_and_removed_and_writes_nothing() {
    let db = TestDb::new().await;
    let before = jobs_file(BEFORE);
    let out = db.sisyctl(&["apply", before.to_str().expect("path")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let after = jobs_file(AFTER);
    let after = after.to_str().expect("path");
    let untouched = state(&db).await;

    let out = db.sisyctl(&["apply", after, "--plan", "--prune"]);
    assert_eq!(exit(&out), Some(3), "changes planned: {}", stderr(&out));
    assert!(
        stderr(&out).is_empty(),
        "exit 3 says nothing on stderr: {}",
        stderr(&out)
    );
    let text = stdout(&out);
    for want in [
        "+ ACME/new added",
        "~ ACME/change changed",
        "    schedule: 0 2 * * * → 30 3 * * *",
        "    retries: 0 → 2",
        "- ACME/gone removed (--prune)",
        "plan: 1 to add, 1 to change, 1 to remove, 1 unchanged; nothing was written",
    ] {
        assert!(text.contains(want), "plan lacks `{want}`:\n{text}");
    }
    assert!(
        !text.contains("ACME/keep"),
        "an unchanged job is only counted:\n{text}"
    );
    assert!(
        !text.contains("timezone:"),
        "only changed keys are listed:\n{text}"
    );
    // Where the schedule changes: the next fire times before and after.
    let change_block = text
        .split("~ ACME/change changed")
        .nth(1)
        .and_then(|rest| {
            rest.split("\n+ ")
                .next()
                .and_then(|b| b.split("\n- ").next())
        })
        .expect("the changed job's block");
    assert!(
        change_block.contains("next fire times now:")
            && change_block.contains("next fire times after:"),
        "{text}"
    );
    assert_eq!(state(&db).await, untouched, "a plan writes nothing");

    // Without --prune nothing is removed; as JSON, with the fire times.
    let out = db.sisyctl(&["apply", after, "--plan", "--json"]);
    assert_eq!(exit(&out), Some(3), "{}", stderr(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json plan");
    let jobs = plan["jobs"].as_array().expect("jobs");
    let by_name = |name: &str| {
        jobs.iter()
            .find(|j| j["job"] == name)
            .unwrap_or_else(|| panic!("{name} in {plan}"))
    };
    assert!(jobs.iter().all(|j| j["change"] != "removed"), "{plan}");
    assert_eq!(by_name("ACME/keep")["change"], "unchanged");
    assert_eq!(by_name("ACME/new")["change"], "created");
    let change = by_name("ACME/change");
    assert_eq!(change["change"], "updated");
    assert_eq!(change["schedule_changes"], true);
    let keys: Vec<&str> = change["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["key"].as_str())
        .collect();
    assert_eq!(keys, ["schedule", "retries"]);
    let times = |j: &serde_json::Value, which: &str| -> Vec<String> {
        j[which]
            .as_array()
            .expect("times")
            .iter()
            .map(|t| t.as_str().expect("time").to_string())
            .collect()
    };
    // 02:00 and 03:30 in Amsterdam: before at hour 0 or 1 UTC, minute 0; after at minute 30.
    let before_times = times(change, "fires_before");
    let after_times = times(change, "fires_after");
    assert_eq!(before_times.len(), 5, "{change}");
    assert_eq!(after_times.len(), 5, "{change}");
    assert!(
        before_times.iter().all(|t| t.contains(":00:00")),
        "{before_times:?}"
    );
    assert!(
        after_times.iter().all(|t| t.contains(":30:00")),
        "{after_times:?}"
    );
    assert_eq!(times(by_name("ACME/new"), "fires_after").len(), 5);
    assert_eq!(state(&db).await, untouched, "a plan writes nothing");

    // The apply does what the plan said; afterwards the plan finds nothing to do (exit 0).
    let out = db.sisyctl(&["apply", after, "--prune", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = db.sisyctl(&["job", "next", "ACME/change", "--count", "5", "--json"]);
    let next: Vec<String> = serde_json::from_slice(&out.stdout).expect("json");
    let next_utc: Vec<String> = next
        .iter()
        .map(|t| {
            chrono::DateTime::parse_from_rfc3339(t)
                .expect("time")
                .with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        })
        .collect();
    assert_eq!(
        next_utc, after_times,
        "the plan's fire times are the applied job's"
    );
    let out = db.sisyctl(&["apply", after, "--plan", "--prune"]);
    assert_eq!(exit(&out), Some(0), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("plan: 0 to add, 0 to change, 0 to remove, 3 unchanged"),
        "{}",
        stdout(&out)
    );

    // A bad file is refused before anything is read or written: exit 2, naming the field.
    let bad = jobs_file("[[job]]\nproject = \"ACME\"\nname = \"bad\"\ncommand = [\"true\"]\ncron = \"0 25 * * *\"\n");
    let settled = state(&db).await;
    let out = db.sisyctl(&["apply", bad.to_str().expect("path"), "--plan"]);
    assert_eq!(exit(&out), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("hour"), "{}", stderr(&out));
    assert_eq!(state(&db).await, settled);
}

#[tokio::test]
async fn apply_plan_shows_a_projects_default_rules() {
    let db = TestDb::new().await;
    let file = jobs_file(
        "[projects.ACME]\nnotify = [{ channel = \"ops\", on = [\"failed\"] }]\n\n\
         [[job]]\nproject = \"ACME\"\nname = \"j\"\ncommand = [\"true\"]\n",
    );
    let path = file.to_str().expect("path");
    let out = db.sisyctl(&["apply", path, "--plan"]);
    assert_eq!(exit(&out), Some(3), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("~ project ACME default notify"),
        "{}",
        stdout(&out)
    );
    assert_eq!(db.count("project_defaults").await, 0);
    assert!(db.sisyctl(&["apply", path]).status.success());
    let out = db.sisyctl(&["apply", path, "--plan"]);
    assert_eq!(exit(&out), Some(0), "{}", stdout(&out));
}

#[tokio::test]
async fn job_explain_names_the_dst_transition_and_its_rule() {
    let db = TestDb::new().await;
    // Amsterdam's clocks go back at 2030-10-27 01:00Z and forward at 2030-03-31 01:00Z.
    let file = jobs_file(
        r#"
[[job]]
project = "ACME"
name = "every-half-hour"
command = ["true"]
cron = "*/30 * * * *"
timezone = "Europe/Amsterdam"
start = "2030-10-27T00:00:00Z"

[[job]]
project = "ACME"
name = "nightly"
command = ["true"]
cron = "30 2 * * *"
timezone = "Europe/Amsterdam"
start = "2030-03-30T12:00:00Z"
"#,
    );
    assert!(db
        .sisyctl(&["apply", file.to_str().expect("path")])
        .status
        .success());

    let out = db.sisyctl(&["job", "explain", "ACME/every-half-hour", "--count", "5"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for want in [
        "in words: every 30th minute, every day, Europe/Amsterdam",
        "2030-10-27T01:00:00Z: clocks go back, 2030-10-27 03:00 CEST → 02:00 CET",
        "02:00 and 02:30 happen twice, and it fires in both passes (4 times) — the interval rule",
        "2030-10-27 02:00:00 +01:00 CET   2030-10-27T01:00:00Z  ← second pass of 02:00",
    ] {
        assert!(text.contains(want), "explain lacks `{want}`:\n{text}");
    }
    let out = db.sisyctl(&[
        "job",
        "explain",
        "ACME/every-half-hour",
        "--count",
        "5",
        "--json",
    ]);
    let e: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let fires: Vec<&str> = e["fires"]
        .as_array()
        .expect("fires")
        .iter()
        .filter_map(|f| f["utc"].as_str())
        .collect();
    assert_eq!(
        fires,
        [
            "2030-10-27T00:00:00Z",
            "2030-10-27T00:30:00Z",
            "2030-10-27T01:00:00Z",
            "2030-10-27T01:30:00Z",
            "2030-10-27T02:00:00Z"
        ]
    );
    assert_eq!(e["transitions"][0]["kind"], "fall_back");
    assert_eq!(e["rules"][0]["rule"], "interval");

    let out = db.sisyctl(&["job", "explain", "ACME/nightly", "--count", "2"]);
    let text = stdout(&out);
    for want in [
        "in words: at minute 30 past hour 2, every day, Europe/Amsterdam",
        "2030-03-31T01:00:00Z: clocks go forward, 2030-03-31 02:00 CET → 03:00 CEST",
        "for 02:30, which does not exist on 2030-03-31",
        "fixed-time rule",
        "its window starts at 2030-03-30 13:00 CET",
    ] {
        assert!(text.contains(want), "explain lacks `{want}`:\n{text}");
    }

    // Bad input: exit 2 naming what is wrong; an unknown job: exit 1.
    let out = db.sisyctl(&["job", "explain", "ACME/nightly", "--count", "0"]);
    assert_eq!(exit(&out), Some(2));
    assert!(stderr(&out).contains("--count"), "{}", stderr(&out));
    let out = db.sisyctl(&["job", "explain", "ACME/nope"]);
    assert_eq!(exit(&out), Some(1), "{}", stderr(&out));
}
