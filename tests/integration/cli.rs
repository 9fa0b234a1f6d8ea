//! `sisyctl` as a script sees it: JSON shapes, tables, exit codes.

use std::time::Duration;

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

/// A port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    port
}

#[tokio::test]
async fn an_unreachable_database_fails_fast_with_its_cause() {
    let port = closed_port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/nope");
    let started = std::time::Instant::now();
    let out = sisyctl_with_url(Some(&url), &["job", "ls"]);
    let took = started.elapsed();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("connection refused at 127.0.0.1:{port}")),
        "{err}"
    );
    assert!(took < Duration::from_secs(2), "took {took:?}");
    // A server that accepts but never answers: the connect timeout, with what happened.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/nope");
    let started = std::time::Instant::now();
    let out = sisyctl_with_url(Some(&url), &["--connect-timeout", "500ms", "runs"]);
    let took = started.elapsed();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("no answer within 500ms at 127.0.0.1:{port}")),
        "{err}"
    );
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(2),
        "took {took:?}"
    );
    let out = sisyctl_with_url(Some(&url), &["--connect-timeout", "0s", "runs"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    // migrate connects its own way, with the same timeout and cause.
    let url = format!("postgres://postgres@127.0.0.1:{}/nope", closed_port());
    let out = sisyctl_with_url(Some(&url), &["migrate"]);
    assert!(
        stderr(&out).contains("connection refused"),
        "{}",
        stderr(&out)
    );
}

/// A pending run of a fresh job, with `lines` log lines written straight into the table: line
/// N is `line N`, but for the last two, the guardian's truncation marker and result line.
async fn run_with_log(db: &TestDb, lines: i32) -> i64 {
    let file = jobs_file("[[job]]\nproject = \"ACME\"\nname = \"loud\"\ncommand = [\"true\"]\n");
    let out = db.sisyctl(&["apply", file.to_str().expect("path")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let run: i64 = sqlx::query_scalar("SELECT sisyphus.run_now('ACME', 'loud')")
        .fetch_one(&db.pool)
        .await
        .expect("run now");
    sqlx::query(
        "INSERT INTO sisyphus.run_logs (run_id, seq, stream, text)
         SELECT $1, n, 'stdout', CASE n WHEN $2 - 1 THEN '[truncated: more lines than allowed]'
                                        WHEN $2 THEN 'result: done' ELSE 'line ' || n END
           FROM generate_series(1, $2) AS n",
    )
    .bind(run)
    .bind(lines)
    .execute(&db.pool)
    .await
    .expect("insert lines");
    run
}

fn texts(out: &std::process::Output) -> Vec<String> {
    stdout(out)
        .lines()
        .map(|l| l.split_once(" >> ").map_or(l, |(_, t)| t).to_string())
        .collect()
}

#[tokio::test]
async fn logs_prints_every_line_and_pages_tail_and_limit() {
    let db = TestDb::new().await;
    let run = run_with_log(&db, 100_002).await;
    let id = run.to_string();
    let out = db.sisyctl(&["logs", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let all = texts(&out);
    assert_eq!(all.len(), 100_002);
    assert_eq!(all[0], "line 1");
    assert_eq!(all[10_000], "line 10001");
    assert_eq!(all[100_000], "[truncated: more lines than allowed]");
    assert_eq!(all[100_001], "result: done");
    let out = db.sisyctl(&["logs", &id, "--tail", "3"]);
    assert_eq!(
        texts(&out),
        vec![
            "line 100000",
            "[truncated: more lines than allowed]",
            "result: done"
        ]
    );
    let out = db.sisyctl(&["logs", &id, "--limit", "2"]);
    assert_eq!(texts(&out), vec!["line 1", "line 2"]);
    let out = db.sisyctl(&["logs", &id, "--tail", "10", "--limit", "2"]);
    assert_eq!(texts(&out), vec!["line 99993", "line 99994"]);
    let out = db.sisyctl(&["logs", &id, "--tail", "200000", "--limit", "1"]);
    assert_eq!(texts(&out), vec!["line 1"]);
    let out = db.sisyctl(&["logs", &id, "--limit", "0"]);
    assert_eq!(out.status.code(), Some(2));
    // JSON lines, one object per line, all of them.
    let out = db.sisyctl(&["logs", &id, "--json", "--tail", "2"]);
    let last: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(last.len(), 2);
    assert_eq!(last[1]["text"], "result: done");
    assert_eq!(last[1]["seq"], 100_002);
}

#[tokio::test]
async fn a_closed_pipe_ends_quietly() {
    use std::io::Read;
    let db = TestDb::new().await;
    let run = run_with_log(&db, 100_002).await;
    // `sisyctl logs RUN | head -c 1000`: the reader goes away after a little.
    let mut child = std::process::Command::new(crate::harness::bin("sisyctl"))
        .args(["logs", &run.to_string()])
        .env("SISYPHUS_DATABASE_URL", &db.url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start sisyctl");
    let mut head = [0u8; 1000];
    child
        .stdout
        .take()
        .expect("stdout")
        .read_exact(&mut head)
        .expect("read the head");
    // Dropping our end closed the pipe.
    let out = child.wait_with_output().expect("wait");
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.is_empty(),
        "a closed pipe is not worth a message: {err}"
    );
    assert_eq!(out.status.code(), Some(141), "{err}");
    // Tables too, through a real shell pipe.
    let out = std::process::Command::new("sh")
        .args([
            "-c",
            &format!(
                "'{}' logs {run} | head -n 1",
                crate::harness::bin("sisyctl").display()
            ),
        ])
        .env("SISYPHUS_DATABASE_URL", &db.url)
        .output()
        .expect("sh");
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    assert!(stdout(&out).contains(">> line 1\n"), "{}", stdout(&out));
}

#[tokio::test]
async fn limits_are_bounded_and_exit_2() {
    let db = TestDb::new().await;
    let file = jobs_file(
        "[[job]]\nproject = \"ACME\"\nname = \"often\"\ncommand = [\"true\"]\ncron = \"* * * * * *\"\n",
    );
    assert!(db
        .sisyctl(&["apply", file.to_str().expect("path")])
        .status
        .success());
    let started = std::time::Instant::now();
    let out = db.sisyctl(&["job", "next", "ACME/often", "--count", "10000000"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("10000"), "{}", stderr(&out));
    assert!(started.elapsed() < Duration::from_secs(5));
    let out = db.sisyctl(&["job", "next", "ACME/often", "--count", "10000", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let times: Vec<String> = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(times.len(), 10_000);
    for args in [
        &["cron", "* * * * *", "--count", "10001"][..],
        &["cron", "* * * * *", "--count", "0"],
        &["runs", "--limit", "10001"],
        &["runs", "--limit", "-1"],
        &["notifications", "--limit", "0"],
        &["logs", "1", "--tail", "0"],
    ] {
        let out = db.sisyctl(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
}

#[tokio::test]
async fn apply_refuses_what_is_not_a_small_regular_file() {
    let db = TestDb::new().await;
    let dir = crate::harness::temp_dir("apply");
    let fifo = dir.join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let big = dir.join("big.toml");
    let file = std::fs::File::create(&big).expect("create");
    file.set_len(16 * 1024 * 1024 + 1).expect("grow");
    let cases = [
        ("/dev/zero".to_string(), "is a character device"),
        (dir.display().to_string(), "is a directory"),
        (fifo.display().to_string(), "is a fifo"),
        (big.display().to_string(), "larger than 16 MiB"),
        (
            dir.join("missing.toml").display().to_string(),
            "No such file",
        ),
    ];
    for (path, words) in cases {
        let started = std::time::Instant::now();
        let out = db.sisyctl(&["apply", &path]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{path}: {err}");
        assert!(err.contains(&path) && err.contains(words), "{path}: {err}");
        assert!(started.elapsed() < Duration::from_secs(5), "{path}");
    }
    // A file of exactly 16 MiB is read (and refused for what it holds, not its size).
    let file = std::fs::File::create(&big).expect("create");
    file.set_len(16 * 1024 * 1024).expect("shrink");
    let out = db.sisyctl(&["apply", big.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!stderr(&out).contains("larger than"), "{}", stderr(&out));
    assert_eq!(db.count("jobs").await, 0);
}

#[tokio::test]
async fn control_characters_from_jobs_are_shown_escaped() {
    let db = TestDb::new().await;
    let run = run_with_log(&db, 3).await;
    let nasty = "\u{1b}]0;owned\u{7}\u{1b}[31mred\tcol\r\u{9b}2J";
    sqlx::query("UPDATE sisyphus.run_logs SET text = $2 WHERE run_id = $1 AND seq = 1")
        .bind(run)
        .bind(nasty)
        .execute(&db.pool)
        .await
        .expect("nasty line");
    sqlx::query("UPDATE sisyphus.runs SET summary = $2 WHERE id = $1")
        .bind(run)
        .bind(nasty)
        .execute(&db.pool)
        .await
        .expect("nasty summary");
    let escaped_in_log = "\\x1b]0;owned\\x07\\x1b[31mred\tcol\\r\\u{9b}2J";
    let out = db.sisyctl(&["logs", &run.to_string()]);
    let text = stdout(&out);
    assert!(text.contains(escaped_in_log), "{text:?}");
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{9b}'),
        "{text:?}"
    );
    let out = db.sisyctl(&["logs", &run.to_string(), "--raw"]);
    assert!(
        stdout(&out).contains(nasty),
        "--raw passes the bytes through"
    );
    let out = db.sisyctl(&["runs"]);
    let text = stdout(&out);
    assert!(
        text.contains("\\x1b]0;owned\\x07\\x1b[31mred\\tcol\\r\\u{9b}2J"),
        "{text:?}"
    );
    assert!(!text.contains('\u{1b}') && !text.contains('\t'), "{text:?}");
    // JSON keeps the text exact (serde_json escapes it).
    let out = db.sisyctl(&["runs", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v[0]["summary"], nasty);
}

#[tokio::test]
async fn an_unknown_job_in_a_filter_is_an_error() {
    let db = TestDb::new().await;
    let file = jobs_file("[[job]]\nproject = \"ACME\"\nname = \"j\"\ncommand = [\"true\"]\n");
    assert!(db
        .sisyctl(&["apply", file.to_str().expect("path")])
        .status
        .success());
    for args in [
        &["runs", "--job", "No.Such/job"][..],
        &["notifications", "--job", "No.Such/job"],
        &["graph", "--job", "No.Such/job"],
        &["health", "No.Such/job"],
        &["job", "next", "No.Such/job"],
    ] {
        let out = db.sisyctl(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("job No.Such/job does not exist"),
            "{args:?}: {err}"
        );
    }
    let out = db.sisyctl(&["logs", "424242"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("run 424242 does not exist"));
    // A job that exists but has no runs is an empty table, not an error.
    let out = db.sisyctl(&["runs", "--job", "ACME/j", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "[]");
}
