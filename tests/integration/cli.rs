//! `sisyctl` as a script sees it: JSON shapes, tables, exit codes.

use crate::harness::{jobs_file, sisyctl_with_url, stderr, stdout, TestDb};

#[tokio::test]
async fn cron_needs_no_database_and_exits_2_on_a_bad_expression() {
    let out = sisyctl_with_url(
        None,
        &[
            "cron",
            "0 12 L 2 *",
            "--from",
            "2027-06-01T00:00:00Z",
            "--count",
            "2",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let times: Vec<String> = serde_json::from_slice(&out.stdout).expect("a JSON array of strings");
    assert_eq!(
        times,
        vec!["2028-02-29T12:00:00+00:00", "2029-02-28T12:00:00+00:00"]
    );
    let out = sisyctl_with_url(
        None,
        &[
            "cron",
            "0 2 * * *",
            "--tz",
            "Europe/Amsterdam",
            "--from",
            "2026-03-28T12:00:00Z",
            "--count",
            "1",
        ],
    );
    assert_eq!(stdout(&out).trim(), "2026-03-29T03:00:00+02:00");
    let out = sisyctl_with_url(None, &["cron", "0 25 * * *"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("hour field `25`"), "{}", stderr(&out));
    let out = sisyctl_with_url(None, &["cron", "* * * * *", "--tz", "Mars/Base"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown time zone `Mars/Base`"));
    let out = sisyctl_with_url(None, &["job", "ls"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("SISYPHUS_DATABASE_URL"));
}

#[tokio::test]
async fn runs_json_uses_the_column_names() {
    let db = TestDb::new().await;
    let file = jobs_file("[[job]]\nproject = \"ACME\"\nname = \"j\"\ncommand = [\"true\"]\n");
    assert!(db
        .sisyctl(&["apply", file.to_str().expect("path")])
        .status
        .success());
    assert!(db.sisyctl(&["run", "ACME/j"]).status.success());
    let out = db.sisyctl(&["runs", "--job", "ACME/j", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let run = &v[0];
    for key in [
        "id",
        "job",
        "status",
        "summary",
        "attempt",
        "host",
        "exit_code",
        "scheduled_for",
        "started_at",
        "finished_at",
    ] {
        assert!(run.get(key).is_some(), "run JSON lacks `{key}`: {run}");
    }
    assert_eq!(run["job"], "ACME/j");
    assert_eq!(run["status"], "pending");
    let out = db.sisyctl(&["runs", "--status", "failed", "--json"]);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("json"),
        serde_json::json!([])
    );
    let out = db.sisyctl(&["runs", "--status", "exploded"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not a run status"),
        "{}",
        stderr(&out)
    );
    // Tables for people.
    let out = db.sisyctl(&["runs"]);
    let text = stdout(&out);
    assert!(text.starts_with("ID  JOB"), "{text}");
    assert!(
        text.contains("ACME/j") && text.contains("pending"),
        "{text}"
    );
}

#[tokio::test]
async fn job_ls_next_pause_resume() {
    let db = TestDb::new().await;
    let file = jobs_file(
        "[[job]]\nproject = \"ACME\"\nname = \"daily\"\ncommand = [\"true\"]\ncron = \"30 2 * * *\"\ntimezone = \"Europe/Amsterdam\"\niterations = 3\n",
    );
    assert!(db
        .sisyctl(&["apply", file.to_str().expect("path")])
        .status
        .success());
    let out = db.sisyctl(&["job", "ls"]);
    let text = stdout(&out);
    assert!(
        text.contains("ACME/daily") && text.contains("30 2 * * *") && text.contains("never-run"),
        "{text}"
    );
    let out = db.sisyctl(&["job", "next", "ACME/daily", "--count", "5", "--json"]);
    let times: Vec<String> = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        times.len(),
        3,
        "iterations = 3 bounds the next fire times: {times:?}"
    );
    assert!(
        times
            .iter()
            .all(|t| t.contains("T02:30:00+0") || t.contains("T03:00:00+02:00")),
        "{times:?}"
    );
    let out = db.sisyctl(&["job", "pause", "ACME/daily"]);
    assert_eq!(stdout(&out).trim(), "ACME/daily paused");
    let out = db.sisyctl(&["job", "pause", "ACME/daily"]);
    assert_eq!(stdout(&out).trim(), "ACME/daily was paused already");
    let out = db.sisyctl(&["job", "resume", "ACME/daily", "--json"]);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("json")["changed"],
        true
    );
    let out = db.sisyctl(&["job", "show", "ACME/nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("job ACME/nope does not exist"));
}
