//! Everyday operation (issue 19, migration 0013): rerun a run, pause a job with a reason and an
//! end — through the real `sisyctl`, daemons on their own logins, the audit log checked.

use std::time::Duration;

use sisyphus_client::JobDefinition;

use crate::harness::{ended, run_now, sisyctl_with_url, stderr, stdout, wait_for, Daemon, TestDb};

/// The newest audit row of `action`: (actor, reason, diff).
async fn last_audit(
    db: &TestDb,
    action: &str,
) -> Option<(String, Option<String>, Option<serde_json::Value>)> {
    sqlx::query_as(
        "SELECT actor::text, reason, diff FROM sisyphus.audit WHERE action = $1
          ORDER BY id DESC LIMIT 1",
    )
    .bind(action)
    .fetch_optional(&db.pool)
    .await
    .expect("audit")
}

#[tokio::test]
async fn a_rerun_is_the_next_attempt_of_the_same_slot_linked_to_the_run_it_repeats() {
    let db = TestDb::new().await;
    let first = run_now(
        &db,
        JobDefinition::new("Ops", "again", ["sh", "-c", "exit 3"]),
    )
    .await;
    let _g = Daemon::guardian(&db.url, "g", &[]);
    let (status, ..) = ended(&db, first, Duration::from_secs(20)).await;
    assert_eq!(status, "failed");

    let out = db.sisyctl(&["--reason", "flaky network", "rerun", &first.to_string()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let again: i64 = sqlx::query_scalar("SELECT max(id) FROM sisyphus.runs")
        .fetch_one(&db.pool)
        .await
        .expect("newest run");
    assert_ne!(again, first);
    assert!(stdout(&out).contains(&format!("run {again} reruns run {first}")));
    let (same_slot, attempt, trigger, rerun_of): (bool, i32, String, Option<i64>) = sqlx::query_as(
        "SELECT a.slot = b.slot, a.attempt, a.trigger::text, a.rerun_of
           FROM sisyphus.runs a, sisyphus.runs b WHERE a.id = $1 AND b.id = $2",
    )
    .bind(again)
    .bind(first)
    .fetch_one(&db.pool)
    .await
    .expect("the rerun");
    assert!(same_slot, "a rerun keeps its original's slot");
    assert_eq!(
        (attempt, trigger.as_str(), rerun_of),
        (2, "rerun", Some(first))
    );
    // It runs like any run, and `runs` says what it repeats.
    let (status, ..) = ended(&db, again, Duration::from_secs(20)).await;
    assert_eq!(status, "failed");
    let listed = stdout(&db.sisyctl(&["runs", "--job", "Ops/again"]));
    assert!(listed.contains(&format!("rerun of {first}")), "{listed}");
    let json: serde_json::Value =
        serde_json::from_slice(&db.sisyctl(&["runs", "--json"]).stdout).expect("json");
    assert_eq!(json[0]["rerun_of"], first);
    let show = stdout(&db.sisyctl(&["job", "show", "Ops/again"]));
    assert!(
        show.contains(&format!("run {again} reruns {first}")),
        "{show}"
    );
    // Audited with who and why.
    let (actor, reason, diff) = last_audit(&db, "run.rerun").await.expect("an audit row");
    assert_eq!(actor, "postgres");
    assert_eq!(reason.as_deref(), Some("flaky network"));
    assert_eq!(diff.expect("diff")["rerun_of"], first);

    // A rerun of a rerun is the slot's third attempt.
    let out = db.sisyctl(&["rerun", &again.to_string()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let attempts: Vec<i32> = sqlx::query_scalar("SELECT attempt FROM sisyphus.runs ORDER BY id")
        .fetch_all(&db.pool)
        .await
        .expect("attempts");
    assert_eq!(attempts, [1, 2, 3]);
}

#[tokio::test]
async fn a_rerun_of_no_run_or_by_a_viewer_is_refused_and_writes_nothing() {
    let db = TestDb::new().await;
    let first = run_now(&db, JobDefinition::new("Ops", "r", ["true"])).await;
    let out = db.sisyctl(&["rerun", "999999"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("run 999999 does not exist"),
        "{}",
        stderr(&out)
    );
    let out = db.sisyctl(&["rerun", "seven"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    let base = db.url.rsplit('/').next().unwrap_or("t").to_string();
    let viewer = format!("{base}_viewer");
    assert!(db.sisyctl(&["user", "add", &viewer]).status.success());
    assert!(db
        .sisyctl(&["grant", &viewer, "viewer", "Ops.*"])
        .status
        .success());
    let url = db
        .url
        .replacen("postgres://postgres@", &format!("postgres://{viewer}@"), 1);
    let out = sisyctl_with_url(Some(&url), &["rerun", &first.to_string()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "{viewer} (viewer of Ops.*) may not run jobs of Ops: needs operator"
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(db.count("runs").await, 1, "nothing written");
    assert!(last_audit(&db, "run.rerun").await.is_none());
}

#[tokio::test]
async fn a_pause_says_who_why_and_until_when_and_the_scheduler_ends_it() {
    let db = TestDb::new().await;
    db.client
        .apply(
            &[JobDefinition {
                cron: Some(sisyphus_client::spec::CronLines::One("* * * * *".into())),
                ..JobDefinition::new("Ops", "nightly", ["true"])
            }],
            false,
        )
        .await
        .expect("apply");
    let out = db.sisyctl(&[
        "--reason",
        "database migration, OPS-42",
        "job",
        "pause",
        "Ops/nightly",
        "--until",
        "4s",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    // Shown by job ls, job show, health, job_status.
    let ls = stdout(&db.sisyctl(&["job", "ls"]));
    assert!(
        ls.contains("paused by postgres since ") && ls.contains(": database migration, OPS-42"),
        "{ls}"
    );
    let show = stdout(&db.sisyctl(&["job", "show", "Ops/nightly"]));
    assert!(
        show.contains(" until ") && show.contains("OPS-42"),
        "{show}"
    );
    let health = stdout(&db.sisyctl(&["health", "Ops/nightly"]));
    assert!(health.contains("(paused by postgres"), "{health}");
    let (reason, by, until_set): (Option<String>, Option<String>, bool) = sqlx::query_as(
        "SELECT pause_reason, paused_by::text, paused_until > now() FROM sisyphus.job_status",
    )
    .fetch_one(&db.pool)
    .await
    .expect("job_status");
    assert_eq!(reason.as_deref(), Some("database migration, OPS-42"));
    assert_eq!(by.as_deref(), Some("postgres"));
    assert!(until_set);
    let (actor, why, diff) = last_audit(&db, "job.pause").await.expect("the pause's row");
    assert_eq!(actor, "postgres");
    assert_eq!(why.as_deref(), Some("database migration, OPS-42"));
    let diff = diff.expect("diff");
    assert_eq!(diff["pause_reason"]["after"], "database migration, OPS-42");

    // The scheduler (its own login) resumes it when the pause ends, and says so in the log.
    let _s = Daemon::scheduler(&db.url);
    wait_for("the pause to end", Duration::from_secs(20), || async {
        let paused: bool = sqlx::query_scalar("SELECT paused FROM sisyphus.jobs")
            .fetch_one(&db.pool)
            .await
            .ok()?;
        (!paused).then_some(())
    })
    .await;
    let (actor, why, _) = last_audit(&db, "job.resume")
        .await
        .expect("the resume's row");
    assert!(actor.contains("scheduler"), "resumed by {actor}");
    assert!(why.is_some_and(|w| w.starts_with("paused until ")));
    let cleared: (Option<String>, Option<String>) =
        sqlx::query_as("SELECT pause_reason, paused_by::text FROM sisyphus.jobs")
            .fetch_one(&db.pool)
            .await
            .expect("job");
    assert_eq!(cleared, (None, None), "a resume clears the note");
    let ls = stdout(&db.sisyctl(&["job", "ls"]));
    assert!(!ls.contains("paused by"), "{ls}");
}

#[tokio::test]
async fn a_pause_that_ends_in_the_past_or_never_parses_is_refused_and_nothing_changes() {
    let db = TestDb::new().await;
    db.client
        .apply(&[JobDefinition::new("Ops", "p", ["true"])], false)
        .await
        .expect("apply");
    for until in ["2020-01-01T00:00:00Z", "yesterday", "0s"] {
        let out = db.sisyctl(&["job", "pause", "Ops/p", "--until", until]);
        assert_eq!(out.status.code(), Some(2), "{until}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("--until"),
            "{until}: {}",
            stderr(&out)
        );
    }
    // Through SQL the database refuses the same.
    let refused =
        sqlx::query("SELECT sisyphus.pause_job('Ops', 'p', 'x', now() - interval '1 minute')")
            .execute(&db.pool)
            .await
            .expect_err("a pause ending in the past");
    assert!(
        refused.to_string().contains("ends in the past"),
        "{refused}"
    );
    let paused: bool = sqlx::query_scalar("SELECT paused FROM sisyphus.jobs")
        .fetch_one(&db.pool)
        .await
        .expect("job");
    assert!(!paused);
    assert!(last_audit(&db, "job.pause").await.is_none());
}

/// A jobs file's `params`, as the issue writes them.
const PARAMS_JOB: &str = r#"
[[job]]
project = "Ops"
name = "load"
command = ["sh", "-c", "echo \"date=$SISYPHUS_PARAM_DATE full=$SISYPHUS_PARAM_FULL all=$SISYPHUS_PARAMS\""]
params = { date = { default = "{yesterday}" }, full = { default = "false", choices = ["true", "false"] } }
"#;

/// The one line a run printed.
async fn printed(db: &TestDb, run: i64) -> String {
    sqlx::query_scalar("SELECT text FROM sisyphus.run_logs WHERE run_id = $1 AND stream = 'stdout'")
        .bind(run)
        .fetch_one(&db.pool)
        .await
        .expect("the run's line")
}

#[tokio::test]
async fn parameters_reach_the_run_as_variables_and_are_stored_with_it() {
    let db = TestDb::new().await;
    let file = crate::harness::jobs_file(PARAMS_JOB);
    let out = db.sisyctl(&["apply", file.to_str().expect("path")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let _g = Daemon::guardian(&db.url, "g", &[]);

    // Given: date and full.
    let out = db.sisyctl(&[
        "--json",
        "run",
        "Ops/load",
        "--param",
        "date=2026-11-30",
        "--param",
        "full=true",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ids: Vec<i64> = serde_json::from_slice(&out.stdout).expect("ids");
    let (status, ..) = ended(&db, ids[0], Duration::from_secs(20)).await;
    assert_eq!(status, "successful");
    let line = printed(&db, ids[0]).await;
    assert!(line.starts_with("date=2026-11-30 full=true all="), "{line}");
    let all: serde_json::Value =
        serde_json::from_str(line.split("all=").nth(1).expect("json")).expect("$SISYPHUS_PARAMS");
    assert_eq!(
        all,
        serde_json::json!({"date": "2026-11-30", "full": "true"})
    );
    let listed = stdout(&db.sisyctl(&["runs", "--job", "Ops/load"]));
    assert!(listed.contains("date=2026-11-30 full=true"), "{listed}");
    let logs = db.sisyctl(&["logs", &ids[0].to_string()]);
    assert!(
        stderr(&logs).contains("params: date=2026-11-30 full=true"),
        "{}",
        stderr(&logs)
    );

    // Not given: the defaults, the date template resolved at the run's slot (in UTC here).
    let out = db.sisyctl(&["--json", "run", "Ops/load"]);
    let ids: Vec<i64> = serde_json::from_slice(&out.stdout).expect("ids");
    let (status, ..) = ended(&db, ids[0], Duration::from_secs(20)).await;
    assert_eq!(status, "successful");
    let yesterday: String = sqlx::query_scalar(
        "SELECT to_char((slot AT TIME ZONE 'UTC') - interval '1 day', 'YYYY-MM-DD')
           FROM sisyphus.runs WHERE id = $1",
    )
    .bind(ids[0])
    .fetch_one(&db.pool)
    .await
    .expect("slot");
    let line = printed(&db, ids[0]).await;
    assert!(
        line.starts_with(&format!("date={yesterday} full=false")),
        "{line}"
    );

    // Through SQL, with the issue's spelling; a rerun takes the same values.
    let id: i64 = sqlx::query_scalar(
        "SELECT sisyphus.run_now('Ops', 'load', params => '{\"full\": \"true\"}')",
    )
    .fetch_one(&db.pool)
    .await
    .expect("run_now with params");
    let rerun = db.sisyctl(&["--json", "rerun", &id.to_string()]);
    let rerun: serde_json::Value = serde_json::from_slice(&rerun.stdout).expect("rerun");
    let both: Vec<serde_json::Value> =
        sqlx::query_scalar("SELECT params FROM sisyphus.runs WHERE id = ANY($1) ORDER BY id")
            .bind(vec![id, rerun["run"].as_i64().expect("id")])
            .fetch_all(&db.pool)
            .await
            .expect("params");
    assert_eq!(both[0]["full"], "true");
    assert_eq!(both[0], both[1], "a rerun keeps its original's parameters");
    // The audit row names them.
    let (_, _, diff) = last_audit(&db, "run.now").await.expect("run.now row");
    assert_eq!(diff.expect("diff")["params"]["full"], "true");
}

#[tokio::test]
async fn bad_parameters_are_refused_naming_them_and_nothing_runs() {
    let db = TestDb::new().await;
    let file = crate::harness::jobs_file(&format!(
        "{PARAMS_JOB}\n[[job]]\nproject = \"Ops\"\nname = \"needs\"\ncommand = [\"true\"]\n\
         params = {{ table = {{}} }}\n"
    ));
    let out = db.sisyctl(&["apply", file.to_str().expect("path")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let cases: [(&[&str], &str); 6] = [
        (
            &["run", "Ops/load", "--param", "colour=red"],
            "unknown parameter `colour`",
        ),
        (
            &["run", "Ops/load", "--param", "full=maybe"],
            "`maybe` is not one of true, false",
        ),
        (&["run", "Ops/needs"], "parameter `table` is required"),
        (&["run", "Ops/load", "--param", "date"], "is not NAME=VALUE"),
        (
            &["run", "Ops/load", "--param", "no way=1"],
            "not a parameter name",
        ),
        (
            &[
                "run",
                "Ops/load",
                "--param",
                "full=true",
                "--param",
                "full=false",
            ],
            "--param full is given twice",
        ),
    ];
    for (args, want) in cases {
        let out = db.sisyctl(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(db.count("runs").await, 0, "nothing written");

    // A job that runs by itself needs a default for each parameter; a default outside its
    // choices is refused too — at apply, naming the key.
    for (params, want) in [
        ("{ date = {} }", "`date` has no default"),
        (
            "{ mode = { default = \"x\", choices = [\"a\"] } }",
            "not one of its choices",
        ),
    ] {
        let file = crate::harness::jobs_file(&format!(
            "[[job]]\nproject = \"Ops\"\nname = \"cron\"\ncommand = [\"true\"]\n\
             cron = \"0 3 * * *\"\nparams = {params}\n"
        ));
        let out = db.sisyctl(&["apply", file.to_str().expect("path")]);
        assert_eq!(out.status.code(), Some(2), "{params}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("params") && stderr(&out).contains(want),
            "{}",
            stderr(&out)
        );
    }
    let jobs: i64 = db.count("jobs WHERE name = 'cron'").await;
    assert_eq!(jobs, 0);
}

#[tokio::test]
async fn scheduled_and_retried_runs_take_the_defaults() {
    let db = TestDb::new().await;
    let file = crate::harness::jobs_file(
        r#"
[[job]]
project = "Ops"
name = "tick"
command = ["sh", "-c", "echo \"day=$SISYPHUS_PARAM_DAY\"; exit 1"]
cron = "* * * * * *"
retries = 1
retry_backoff = "0s"
params = { day = { default = "{date}" } }
"#,
    );
    let out = db.sisyctl(&["apply", file.to_str().expect("path")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let _s = Daemon::scheduler(&db.url);
    let _g = Daemon::guardian(&db.url, "g", &[]);
    let (first, retry): (i64, i64) =
        wait_for("a run and its retry", Duration::from_secs(30), || async {
            sqlx::query_as(
                "SELECT a.id, b.id FROM sisyphus.runs a JOIN sisyphus.runs b
                 ON b.job_id = a.job_id AND b.slot = a.slot AND b.attempt = 2
              WHERE a.attempt = 1 AND a.trigger = 'schedule'
                AND b.status NOT IN ('pending', 'running')
              ORDER BY a.id LIMIT 1",
            )
            .fetch_optional(&db.pool)
            .await
            .ok()
            .flatten()
        })
        .await;
    let day: String = sqlx::query_scalar(
        "SELECT to_char(slot AT TIME ZONE 'UTC', 'YYYY-MM-DD') FROM sisyphus.runs WHERE id = $1",
    )
    .bind(first)
    .fetch_one(&db.pool)
    .await
    .expect("slot");
    for run in [first, retry] {
        assert_eq!(printed(&db, run).await, format!("day={day}"), "run {run}");
    }
}

#[tokio::test]
async fn bulk_actions_list_ask_and_act_once_per_run() {
    let db = TestDb::new().await;
    let file = crate::harness::jobs_file(
        "[[job]]\nproject = \"Ops\"\nname = \"flaky\"\ncommand = [\"sh\", \"-c\", \"exit 1\"]\n\
         [[job]]\nproject = \"Ops\"\nname = \"long\"\ncommand = [\"sleep\", \"60\"]\n\
         concurrency = 5\n",
    );
    let out = db.sisyctl(&["apply", file.to_str().expect("path")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let _g = Daemon::guardian(&db.url, "g", &[]);
    let mut failed = Vec::new();
    for _ in 0..3 {
        let id = run_now(
            &db,
            JobDefinition::new("Ops", "flaky", ["sh", "-c", "exit 1"]),
        )
        .await;
        ended(&db, id, Duration::from_secs(20)).await;
        failed.push(id);
    }
    // Listed and asked: "no" (or no answer) does nothing.
    let args = [
        "runs",
        "--job",
        "Ops/flaky",
        "--status",
        "failed",
        "--since",
        "1h",
        "--rerun",
    ];
    let out = crate::harness::sisyctl_stdin(&db.url, &args, "n\n");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("rerun these 3 run(s)? [y/N]"),
        "{}",
        stderr(&out)
    );
    for id in &failed {
        assert!(stdout(&out).contains(&id.to_string()), "{}", stdout(&out));
    }
    assert_eq!(db.count("runs WHERE trigger = 'rerun'").await, 0);
    // "y": one rerun each, reported per run.
    let out = crate::harness::sisyctl_stdin(&db.url, &args, "y\n");
    assert!(out.status.success(), "{}", stderr(&out));
    for id in &failed {
        assert!(
            stdout(&out).contains(&format!("run {id}: run ")),
            "{}",
            stdout(&out)
        );
    }
    let reruns: Vec<i64> = sqlx::query_scalar(
        "SELECT rerun_of FROM sisyphus.runs WHERE trigger = 'rerun' ORDER BY rerun_of",
    )
    .fetch_all(&db.pool)
    .await
    .expect("reruns");
    assert_eq!(reruns, failed);

    // --kill --yes on running runs: each terminated; one that ends meanwhile is reported, the
    // others go on.
    let mut long = Vec::new();
    for _ in 0..3 {
        long.push(
            db.client
                .run_now(&sisyphus_client::JobRef::new("Ops", "long"))
                .await
                .expect("run")[0]
                .0,
        );
    }
    wait_for("three long runs", Duration::from_secs(20), || async {
        (db.count("runs WHERE status = 'running' AND job_id IN (SELECT id FROM sisyphus.jobs WHERE name = 'long')").await == 3).then_some(())
    })
    .await;
    let out = db.sisyctl(&[
        "--json", "runs", "--job", "Ops/long", "--status", "running", "--kill", "--yes",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report.as_array().map(Vec::len), Some(3), "{report}");
    assert!(
        report
            .as_array()
            .into_iter()
            .flatten()
            .all(|r| r["done"] == "requested"),
        "{report}"
    );
    for id in long {
        let (status, ..) = ended(&db, id, Duration::from_secs(20)).await;
        assert_eq!(status, "terminated");
    }
    // Nothing matches: nothing done, said so.
    let out = db.sisyctl(&[
        "runs", "--job", "Ops/long", "--status", "running", "--kill", "--yes",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("no run matches"), "{}", stdout(&out));
    // --yes alone, or two actions, is bad input.
    for args in [
        &["runs", "--yes"][..],
        &["runs", "--kill", "--suspend", "--yes"][..],
    ] {
        let out = db.sisyctl(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
}
