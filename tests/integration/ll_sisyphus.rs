//! Existing Python ll.sisyphus jobs, unmodified, under a real guardian (`format = "ll.sisyphus"`,
//! issue 19): the real package (`ll-xist` from PyPI, in the tests' virtualenv), the Fetch example
//! of its documentation against a local HTTP server, an uneventful job, one that raises and one
//! that passes its own maxtime (`tests/integration/ll_sisyphus_jobs/`). Their log lines arrive in
//! `run_logs` with their tags, tasks and times, their result line decides the run's status and
//! summary, and ll.sisyphus writes no log file of its own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sisyphus_client::spec::Text;
use sisyphus_client::JobDefinition;

use crate::harness::{ended, jobs_file, run_now, stderr, stdout, temp_dir, Daemon, TestDb};
use crate::peers::{python_with_ll_sisyphus, Capture};

/// A job of `tests/integration/ll_sisyphus_jobs/`.
fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../tests/integration/ll_sisyphus_jobs/{name}.py"))
}

/// The job `name.py` as an `ll.sisyphus` job, with a HOME of its own (where ll.sisyphus would
/// put its log files) and `env` added.
fn ll_job(name: &str, home: &Path, env: &[(&str, &str)]) -> JobDefinition {
    let python = python_with_ll_sisyphus().display().to_string();
    let mut vars: BTreeMap<String, _> = env
        .iter()
        .map(|(k, v)| (k.to_string(), (*v).into()))
        .collect();
    vars.insert("HOME".into(), home.display().to_string().into());
    JobDefinition {
        env: Some(vars),
        format: Some("ll.sisyphus".into()),
        maxtime: Some(Text::from("60s")),
        workdir: Some(home.display().to_string()),
        ..JobDefinition::new("Py", name, [python, script(name).display().to_string()])
    }
}

/// A run's `sdk` lines: (task, tags, text, at).
async fn lines(db: &TestDb, run: i64) -> Vec<(Option<String>, Vec<String>, String, DateTime<Utc>)> {
    sqlx::query_as(
        "SELECT task, tags, text, at FROM sisyphus.run_logs WHERE run_id = $1 AND stream = 'sdk' ORDER BY seq",
    )
    .bind(run)
    .fetch_all(&db.pool)
    .await
    .expect("lines")
}

/// Every file under `dir` whose name ends in `suffix`.
fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() && !path.is_symlink() {
                todo.push(path);
            } else if path.to_string_lossy().ends_with(suffix) {
                found.push(path);
            }
        }
    }
    found
}

#[tokio::test]
async fn the_fetch_example_of_ll_sisyphus_runs_unmodified_under_a_guardian() {
    let db = TestDb::new().await;
    let _g = Daemon::guardian(&db.url, "g1", &[]);
    // The example fetches http://www.python.org/; urllib asks the job's http_proxy for it.
    let web = Capture::start().await;
    let home = temp_dir("ll-fetch");
    let python = python_with_ll_sisyphus();
    // Through a jobs file and `sisyctl apply`, as a person would.
    let file = jobs_file(&format!(
        r#"
[[job]]
project = "ACME.FooBar"
name = "Fetch"
command = ["{python}", "{script}"]
format = "ll.sisyphus"
workdir = "{home}"
env = {{ HOME = "{home}", http_proxy = "http://127.0.0.1:{port}" }}
maxtime = "1m"
"#,
        python = python.display(),
        script = script("fetch").display(),
        home = home.display(),
        port = web.port,
    ));
    let out = db.sisyctl(&["apply", &file.display().to_string()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = db.sisyctl(&["job", "show", "ACME.FooBar/Fetch"]);
    assert!(
        stdout(&shown)
            .lines()
            .any(|l| l.trim() == "format: ll.sisyphus"),
        "{}",
        stdout(&shown)
    );
    let shown = db.sisyctl(&["job", "show", "ACME.FooBar/Fetch", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&shown)).expect("JSON");
    assert_eq!(json["definition"]["format"], "ll.sisyphus", "{json}");

    let run = db
        .client
        .run_now(&sisyphus_client::JobRef::new("ACME.FooBar", "Fetch"))
        .await
        .expect("run now")[0]
        .0;
    let (status, summary, error, code) = ended(&db, run, Duration::from_secs(60)).await;
    assert_eq!(
        (status.as_str(), summary.as_deref(), code),
        (
            "successful",
            Some("cached 'http://www.python.org/' as 'Python.html' (2 bytes)"),
            Some(0)
        ),
        "{error:?}"
    );
    // It fetched from our server, and wrote its own file where it runs.
    let asked = web.requests();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].path, "http://www.python.org/");
    assert_eq!(
        std::fs::read_to_string(home.join("Python.html"))
            .ok()
            .as_deref(),
        Some("{}")
    );

    let got = lines(&db, run).await;
    let texts: Vec<&str> = got.iter().map(|l| l.2.as_str()).collect();
    assert_eq!(texts.len(), 8, "{got:#?}");
    // ll.sisyphus' own start-up lines, in its forking parent.
    let (task, tags, text, _) = &got[0];
    assert!(
        task.as_deref().is_some_and(|t| t.starts_with("parent ")),
        "{got:?}"
    );
    assert_eq!(tags, &["sisyphus", "init"]);
    assert!(text.ends_with("fetch.py (max time 0:03:00)"), "{text}");
    // Logging goes to stdout only: no log file.
    assert_eq!(texts[1], "logging to <stdout>");
    // The job's own lines, in the worker child.
    let child = got[3].0.clone().expect("a task");
    assert!(child.starts_with("child "), "{child}");
    // Its file name holds the parent's pid (the job object is made before the fork).
    let pid = got[0]
        .0
        .as_deref()
        .unwrap_or("")
        .trim_start_matches("parent ");
    let job: Vec<(Option<String>, usize, String)> = got[4..7]
        .iter()
        .map(|l| (l.0.clone(), l.1.len(), l.2.clone()))
        .collect();
    let expected = [
        "fetching data from 'http://www.python.org/'".to_string(),
        format!("writing file 'Fetch_Tmp_{pid}.html' (2 bytes)"),
        format!("renaming file 'Fetch_Tmp_{pid}.html' to 'Python.html'"),
    ]
    .map(|text| (Some(child.clone()), 0, text));
    assert_eq!(job, expected);
    assert_eq!(got[7].1, ["sisyphus", "result", "ok"]);
    // Each line keeps the time ll.sisyphus logged it, in order, within the run.
    let (started, finished): (DateTime<Utc>, DateTime<Utc>) =
        sqlx::query_as("SELECT started_at, finished_at FROM sisyphus.runs WHERE id = $1")
            .bind(run)
            .fetch_one(&db.pool)
            .await
            .expect("times");
    let times: Vec<DateTime<Utc>> = got.iter().map(|l| l.3).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert!(
        times[0] >= started - chrono::TimeDelta::seconds(1) && times[7] <= finished,
        "{started} {times:?} {finished}"
    );
    // Microseconds of its own, not the guardian's reading time.
    assert!(times
        .iter()
        .any(|t| t.timestamp_subsec_micros() % 1000 != 0));
    // ll.sisyphus wrote no log file, no `current` or `last_*` link (its health file it always
    // writes: there is no flag against it).
    assert_eq!(files_ending(&home, ".sisyphuslog"), Vec::<PathBuf>::new());
    assert_eq!(
        files_ending(&home, ".sisyphushealth"),
        vec![home.join("ll.sisyphus/ACME.FooBar/Fetch/current.sisyphushealth")]
    );
}

#[tokio::test]
async fn an_uneventful_ll_sisyphus_job_and_one_that_raises_end_as_ll_sisyphus_says() {
    let db = TestDb::new().await;
    let _g = Daemon::guardian(&db.url, "g1", &[]);
    let home = temp_dir("ll-jobs");

    // Only delayed lines and None: ll.sisyphus prints nothing at all.
    let run = run_now(&db, ll_job("uneventful", &home, &[])).await;
    let (status, summary, error, _) = ended(&db, run, Duration::from_secs(60)).await;
    assert_eq!(
        (status.as_str(), summary, error),
        ("uneventful", None, None)
    );
    assert!(lines(&db, run).await.is_empty());

    // Tagged lines in tasks, a delayed line flushed by them, then an exception.
    let run = run_now(&db, ll_job("raises", &home, &[])).await;
    let (status, summary, error, code) = ended(&db, run, Duration::from_secs(60)).await;
    assert_eq!(
        (status.as_str(), summary, error.as_deref()),
        (
            "failed",
            None,
            Some("failed with ValueError: record 42 has no id")
        )
    );
    // Its forking parent exits 0: the result line decided.
    assert_eq!(code, Some(0));
    let got = lines(&db, run).await;
    let child = got[3].0.clone().expect("the worker's task");
    let job: Vec<(Option<String>, Vec<String>, String)> = got[4..7]
        .iter()
        .map(|l| (l.0.clone(), l.1.clone(), l.2.clone()))
        .collect();
    assert_eq!(
        job,
        vec![
            (Some(child.clone()), vec![], "reading the feed".to_string()),
            (
                Some(format!("{child} :: [1/2] feed alpha")),
                vec!["xml".to_string(), "warning".to_string()],
                "can't parse alpha.xml".to_string()
            ),
            (
                Some(format!("{child} :: [2/2] feed beta")),
                vec!["xml".to_string(), "warning".to_string()],
                "can't parse beta.xml".to_string()
            ),
        ]
    );
    let traceback: Vec<&str> = got
        .iter()
        .filter(|l| l.1 == ["sisyphus", "external", "exc"])
        .map(|l| l.2.as_str())
        .collect();
    assert_eq!(
        traceback.first(),
        Some(&"Traceback (most recent call last):")
    );
    assert_eq!(traceback.last(), Some(&"ValueError: record 42 has no id"));
    let result = got.last().expect("a result line");
    assert_eq!(result.1, ["sisyphus", "result", "fail"]);
    // `sisyctl logs --tag` finds the job's own tags.
    let out = db.sisyctl(&["logs", &run.to_string(), "--tag", "xml"]);
    assert_eq!(
        stdout(&out).matches("can't parse").count(),
        2,
        "{}",
        stdout(&out)
    );
    assert!(files_ending(&home, ".sisyphuslog").is_empty());
}

#[tokio::test]
async fn an_ll_sisyphus_job_past_its_own_maxtime_times_out_and_says_its_delayed_lines_once() {
    let db = TestDb::new().await;
    let _g = Daemon::guardian(&db.url, "g1", &[]);
    let home = temp_dir("ll-overtime");
    // ll.sisyphus' maxtime is one second, the guardian's a minute: ll.sisyphus kills its worker.
    let run = run_now(&db, ll_job("overtime", &home, &[])).await;
    let (status, summary, error, code) = ended(&db, run, Duration::from_secs(60)).await;
    let error = error.unwrap_or_default();
    assert_eq!(
        (status.as_str(), summary, code),
        ("timeout", None, Some(0)),
        "{error}"
    );
    assert!(
        error.starts_with("Terminated child ") && error.ends_with(": timed out after 0:00:01"),
        "{error}"
    );
    let got = lines(&db, run).await;
    // The parent prints its delayed start-up lines a second time before its timeout: stored once.
    let once = got.iter().filter(|l| l.2 == "logging to <stdout>").count();
    assert_eq!(once, 1, "{got:#?}");
    assert!(got
        .iter()
        .any(|l| l.1 == ["exc"] && l.2 == "ll.misc.Timeout: timed out after 0:00:01"));
    assert_eq!(
        got.last().map(|l| l.1.clone()),
        Some(vec!["sisyphus".into(), "result".into(), "kill".into()])
    );
    // The run's own guardian lines say nothing of a kill: ll.sisyphus ended it.
    let kills: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sisyphus.run_logs WHERE run_id = $1 AND stream = 'sisyphus' AND 'kill' = ANY (tags)",
    )
    .bind(run)
    .fetch_one(&db.pool)
    .await
    .expect("count");
    assert_eq!(kills, 1, "only the result line, tagged kill for a timeout");
}

/// `format` is checked as every key is: an unknown one, or `ll.sisyphus` on a line of shell, is
/// refused naming the key (exit 2, nothing written); a change of format is audited.
#[tokio::test]
async fn a_bad_format_is_refused_naming_the_key_and_a_change_is_audited() {
    let db = TestDb::new().await;
    for (body, words) in [
        (
            "command = [\"true\"]\nformat = \"cobol\"",
            "`cobol` is not a job format; expected one of: sisyphus, ll.sisyphus",
        ),
        (
            "command = \"python3 job.py\"\nshell = true\nformat = \"ll.sisyphus\"",
            "line of shell",
        ),
    ] {
        let file = jobs_file(&format!(
            "[[job]]\nproject = \"P\"\nname = \"ok\"\ncommand = [\"true\"]\n\n[[job]]\nproject = \"P\"\nname = \"j\"\n{body}\n"
        ));
        let out = db.sisyctl(&["apply", &file.display().to_string()]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("P/j") && err.contains("format") && err.contains(words),
            "{err}"
        );
        assert_eq!(db.count("jobs").await, 0, "nothing written");
    }
    // The default is today's behaviour, named.
    db.client
        .apply(&[JobDefinition::new("P", "j", ["true"])], false)
        .await
        .expect("apply");
    let format: String = sqlx::query_scalar("SELECT format FROM sisyphus.jobs")
        .fetch_one(&db.pool)
        .await
        .expect("format");
    assert_eq!(format, "sisyphus");
    // The database's CHECK stays as the last line for SQL.
    let refused = sqlx::query("UPDATE sisyphus.jobs SET format = 'cobol'")
        .execute(&db.pool)
        .await;
    assert!(refused.is_err_and(|e| e.to_string().contains("jobs_format_check")));
    // A change of the format alone is a definition change: audited with before and after.
    sqlx::query("UPDATE sisyphus.jobs SET format = 'll.sisyphus'")
        .execute(&db.pool)
        .await
        .expect("update");
    let diff: serde_json::Value = sqlx::query_scalar(
        "SELECT diff FROM sisyphus.audit WHERE action = 'job.update' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&db.pool)
    .await
    .expect("an audit row");
    assert_eq!(
        diff,
        serde_json::json!({"format": {"before": "sisyphus", "after": "ll.sisyphus"}})
    );
}
