//! Secrets (issue 15, item 4): `{ secret = "NAME" }` in a job's env is stored as a reference only,
//! resolved by the guardian on its host (`--secrets-dir`, `SISYPHUS_SECRET_NAME`) when the run
//! starts, and masked (`***`) in everything the run prints before it is stored: `run_logs`, the
//! local log file, the run's summary and error, and so the outbox's payloads. A missing or
//! refused secret fails the run, naming it; `apply` warns about plain values under keys that
//! look secret.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sisyphus_client::JobRef;

use crate::harness::{ended, jobs_file, stderr, stdout, temp_dir, wait_for, Daemon, TestDb};

/// The value under test: distinctive, so that a search for it finds nothing else.
const VALUE: &str = "s3cr3t-Qx7vK2pL9";
/// A second secret, from the guardian's environment.
const ENV_VALUE: &str = "env-secret-8HwZr4";

/// A secrets directory (0700) holding `files` (name, content, mode).
fn secrets_dir(files: &[(&str, &str, u32)]) -> PathBuf {
    let dir = temp_dir("secrets");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod dir");
    for (name, content, mode) in files {
        let path = dir.join(name);
        std::fs::write(&path, content).expect("write secret");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode))
            .expect("chmod secret");
    }
    dir
}

/// A guardian reading secrets from `dir`, with `SISYPHUS_SECRET_FROM_ENV` in its environment.
fn guardian(db: &TestDb, dir: &Path) -> Daemon {
    let dir = dir.display().to_string();
    Daemon::guardian_with_env(
        &db.url,
        "g1",
        &["--secrets-dir", &dir],
        &[("SISYPHUS_SECRET_FROM_ENV", ENV_VALUE)],
    )
}

/// Applies `file` with `sisyctl apply` (so the TOML form is what is tested) and checks it went.
fn apply(db: &TestDb, file: &str) -> std::process::Output {
    let path = jobs_file(file);
    let out = db.sisyctl(&["apply", path.to_str().expect("path")]);
    assert!(out.status.success(), "apply: {}", stderr(&out));
    out
}

async fn run_now(db: &TestDb, job: &str) -> i64 {
    let (project, name) = job.split_once('/').expect("P/N");
    db.client
        .run_now(&JobRef::new(project, name))
        .await
        .expect("run now")[0]
        .0
}

/// Every file below `dir`, read as text.
fn files_below(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                found.push((path, String::from_utf8_lossy(&bytes).into_owned()));
            }
        }
    }
    found
}

/// Every row of every table and view of the schema, as text, that holds `needle`.
async fn rows_holding(db: &TestDb, needle: &str) -> Vec<String> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'sisyphus'",
    )
    .fetch_all(&db.pool)
    .await
    .expect("tables");
    let mut hits = Vec::new();
    for table in tables {
        let rows: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT t::text FROM sisyphus.\"{table}\" t WHERE strpos(t::text, $1) > 0"
        ))
        .bind(needle)
        .fetch_all(&db.pool)
        .await
        .unwrap_or_else(|e| panic!("read {table}: {e}"));
        hits.extend(rows.into_iter().map(|r| format!("{table}: {r}")));
    }
    hits
}

/// Two jobs use the secrets: `ok` checks it got them (against the values cut in two, so that the
/// command stored in `jobs` does not hold them), prints them on stdout and stderr, and says them
/// through the job protocol (a log line tagged for e-mail, user data, the result's summary);
/// `broken` fails with one on stderr. Both notify, so the outbox has payloads to search.
const JOBS: &str = r#"
[[job]]
project = "Sec"
name = "ok"
shell = true
command = '''
test "$TOKEN" = 's3cr3t-Qx7v''K2pL9' || { echo "TOKEN not delivered" >&2; exit 3; }
test "$OTHER" = 'env-secret''-8HwZr4' || { echo "OTHER not delivered" >&2; exit 4; }
echo "stdout has $TOKEN and $OTHER"
echo "stderr has $TOKEN" >&2
echo "twice:$TOKEN$TOKEN|glued:x${TOKEN}y"
printf '{"v":1,"type":"log","tags":["email","t-%s"],"text":"sdk says %s"}\n' "$TOKEN" "$TOKEN" >&3
printf '{"v":1,"type":"userdata","value":{"seen":"%s"}}\n' "$TOKEN" >&3
printf '{"v":1,"type":"result","status":"successful","summary":"done with %s"}\n' "$TOKEN" >&3
'''
env = { TOKEN = { secret = "API_TOKEN" }, OTHER = { secret = "FROM_ENV" }, MODE = "fast" }
notify = [{ channel = "ops", on = ["tagged", "failed"], lines = 50 }]

[[job]]
project = "Sec"
name = "broken"
shell = true
command = 'echo "starting"; echo "cannot log in with $TOKEN" >&2; exit 1'
env = { TOKEN = { secret = "API_TOKEN" } }
notify = [{ channel = "ops", on = ["failed"], lines = 50 }]
"#;

#[tokio::test]
async fn a_secret_reaches_its_job_and_nothing_that_is_stored_or_shown() {
    let db = TestDb::new().await;
    let dir = secrets_dir(&[("API_TOKEN", &format!("{VALUE}\n"), 0o600)]);
    let mut g = guardian(&db, &dir);
    apply(&db, JOBS);

    // The database holds the reference only.
    let env: String = sqlx::query_scalar("SELECT env::text FROM sisyphus.jobs WHERE name = 'ok'")
        .fetch_one(&db.pool)
        .await
        .expect("env");
    let env: serde_json::Value = serde_json::from_str(&env).expect("json");
    assert_eq!(
        env,
        serde_json::json!({"MODE": "fast", "OTHER": {"secret": "FROM_ENV"}, "TOKEN": {"secret": "API_TOKEN"}})
    );

    let ok = run_now(&db, "Sec/ok").await;
    let broken = run_now(&db, "Sec/broken").await;
    let (status, summary, error, _) = ended(&db, ok, Duration::from_secs(20)).await;
    // Successful means both values were delivered (the job checks them itself).
    assert_eq!(status, "successful", "{error:?}");
    assert_eq!(summary.as_deref(), Some("done with ***"));
    let (status, _, error, code) = ended(&db, broken, Duration::from_secs(20)).await;
    assert_eq!((status.as_str(), code), ("failed", Some(1)));
    assert_eq!(
        error.as_deref(),
        Some("exit code 1: cannot log in with ***")
    );

    // The lines arrived, masked.
    let lines: Vec<(String, Vec<String>, String)> = sqlx::query_as(
        "SELECT stream::text, tags, text FROM sisyphus.run_logs WHERE run_id = $1 ORDER BY seq",
    )
    .bind(ok)
    .fetch_all(&db.pool)
    .await
    .expect("lines");
    let texts: Vec<&str> = lines.iter().map(|l| l.2.as_str()).collect();
    for expected in [
        "stdout has *** and ***",
        "stderr has ***",
        "twice:***|glued:x***y",
        "sdk says ***",
        r#"{"seen":"***"}"#,
        "successful: done with ***",
    ] {
        assert!(texts.contains(&expected), "{expected:?} in {lines:#?}");
    }
    assert!(
        lines.iter().any(|l| l.1 == ["email", "t-***"]),
        "tags are masked too: {lines:#?}"
    );

    // Notifications were written (so there was something to leak into).
    let events: Vec<String> =
        sqlx::query_scalar("SELECT event::text FROM sisyphus.outbox ORDER BY id")
            .fetch_all(&db.pool)
            .await
            .expect("outbox");
    assert!(
        events.contains(&"tagged".to_string()) && events.contains(&"failed".to_string()),
        "{events:?}"
    );

    // No row of any table or view holds either value: run_logs, runs, outbox payloads, jobs…
    for value in [VALUE, ENV_VALUE] {
        let hits = rows_holding(&db, value).await;
        assert!(hits.is_empty(), "{value} stored: {hits:#?}");
    }
    let payloads: Vec<String> = sqlx::query_scalar("SELECT payload::text FROM sisyphus.outbox")
        .fetch_all(&db.pool)
        .await
        .expect("payloads");
    assert!(payloads
        .iter()
        .any(|p| p.contains("cannot log in with ***")));

    // No local log file holds it; they hold the masked lines.
    let files = files_below(&g.dir.join("logs"));
    assert!(
        files
            .iter()
            .any(|(_, text)| text.contains("stderr has ***")),
        "the local files hold the run's lines: {:?}",
        files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for (path, text) in &files {
        for value in [VALUE, ENV_VALUE] {
            assert!(!text.contains(value), "{} holds {value}", path.display());
        }
    }

    // `sisyctl job show` shows the reference, never the value.
    for args in [
        &["job", "show", "Sec/ok"][..],
        &["job", "show", "Sec/ok", "--json"],
    ] {
        let out = db.sisyctl(args);
        let text = stdout(&out);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert!(
            text.contains("secret:API_TOKEN") || text.contains("\"TOKEN\": \"API_TOKEN\""),
            "{args:?} shows the reference: {text}"
        );
        assert!(!text.contains(VALUE) && !text.contains(ENV_VALUE), "{text}");
    }
    let shown = stdout(&db.sisyctl(&["job", "show", "Sec/ok"]));
    assert!(
        shown.contains("MODE, OTHER=secret:FROM_ENV, TOKEN=secret:API_TOKEN"),
        "{shown}"
    );
    let logs = db.sisyctl(&["logs", &ok.to_string()]);
    assert!(!stdout(&logs).contains(VALUE), "{}", stdout(&logs));

    // Nor the guardian's own log.
    g.terminate();
    let log = g.log_text();
    assert!(!log.contains(VALUE) && !log.contains(ENV_VALUE), "{log}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_missing_secret_fails_the_run_naming_it() {
    let db = TestDb::new().await;
    let dir = secrets_dir(&[]);
    let witness = temp_dir("secret-witness").join("started");
    let _g = guardian(&db, &dir);
    apply(
        &db,
        &format!(
            r#"
[[job]]
project = "Sec"
name = "missing"
command = ["touch", "{}"]
env = {{ TOKEN = {{ secret = "NOT_THERE" }} }}
"#,
            witness.display()
        ),
    );
    let run = run_now(&db, "Sec/missing").await;
    let (status, _, error, code) = ended(&db, run, Duration::from_secs(20)).await;
    assert_eq!((status.as_str(), code), ("failed", None));
    let error = error.unwrap_or_default();
    assert!(
        error.contains("secret `NOT_THERE` is missing")
            && error.contains(&dir.join("NOT_THERE").display().to_string())
            && error.contains("SISYPHUS_SECRET_NOT_THERE"),
        "{error}"
    );
    assert!(!witness.exists(), "the command must not have started");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_secret_file_others_may_read_is_refused() {
    let db = TestDb::new().await;
    let dir = secrets_dir(&[("OPEN_TOKEN", VALUE, 0o644)]);
    let _g = Daemon::guardian_with_env(
        &db.url,
        "g1",
        &["--secrets-dir", &dir.display().to_string()],
        // A refused file is not passed over for the environment: it was meant.
        &[("SISYPHUS_SECRET_OPEN_TOKEN", ENV_VALUE)],
    );
    apply(
        &db,
        r#"
[[job]]
project = "Sec"
name = "open"
shell = true
command = 'echo "got $TOKEN"'
env = { TOKEN = { secret = "OPEN_TOKEN" } }
"#,
    );
    let run = run_now(&db, "Sec/open").await;
    let (status, _, error, _) = ended(&db, run, Duration::from_secs(20)).await;
    assert_eq!(status, "failed");
    let error = error.unwrap_or_default();
    assert!(
        error.contains("secret `OPEN_TOKEN`")
            && error.contains("group or others may read or write it (mode 0644)"),
        "{error}"
    );
    assert!(
        !error.contains(VALUE) && !error.contains(ENV_VALUE),
        "{error}"
    );
    assert!(rows_holding(&db, VALUE).await.is_empty());
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_secrets_dir_others_may_write_is_refused_at_start() {
    let db = TestDb::new().await;
    let dir = secrets_dir(&[]);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let mut g = guardian(&db, &dir);
    let status = wait_for("the guardian to refuse", Duration::from_secs(10), || {
        let exited = g.child.try_wait().expect("try_wait");
        async move { exited }
    })
    .await;
    assert_eq!(status.code(), Some(2));
    let log = g.log_text();
    assert!(
        log.contains("--secrets-dir") && log.contains("may be written by group or others"),
        "{log}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn apply_warns_about_plain_values_under_secret_looking_keys() {
    let db = TestDb::new().await;
    let out = apply(
        &db,
        r#"
[[job]]
project = "Sec"
name = "plain"
command = ["true"]
env = { DB_PASSWORD = "x", api_token = "y", MODE = "fast", REAL = { secret = "REAL_TOKEN" } }
"#,
    );
    let err = stderr(&out);
    assert!(
        err.contains("warning: job Sec/plain: env `DB_PASSWORD` has a plain value")
            && err.contains("env `api_token`"),
        "{err}"
    );
    assert!(!err.contains("`MODE`") && !err.contains("`REAL`"), "{err}");
    assert_eq!(err.lines().count(), 2, "{err}");
    // A warning, not an error: the job was applied.
    assert_eq!(db.count("jobs WHERE name = 'plain'").await, 1);
    // Without secret-looking plain values, nothing is said.
    let out = apply(
        &db,
        r#"
[[job]]
project = "Sec"
name = "plain"
command = ["true"]
env = { MODE = "fast", DB_PASSWORD = { secret = "DB_PASSWORD" } }
"#,
    );
    assert_eq!(stderr(&out), "");
}

#[tokio::test]
async fn bad_secret_references_are_refused_naming_the_key() {
    let db = TestDb::new().await;
    let cases = [
        (
            r#"env = { TOKEN = { secret = "../etc/shadow" } }"#,
            "field `env`: value of `TOKEN`: secret name `../etc/shadow` must be",
        ),
        (
            r#"env = { TOKEN = { secret = "A", fallback = "x" } }"#,
            "unknown key `fallback`",
        ),
        (r#"env = { TOKEN = { name = "A" } }"#, "unknown key `name`"),
        (
            r#"env = { TOKEN = 42 }"#,
            r#"a string, or { secret = "NAME" }"#,
        ),
    ];
    for (env, message) in cases {
        let path = jobs_file(&format!(
            "[[job]]\nproject = \"Sec\"\nname = \"bad\"\ncommand = [\"true\"]\n{env}\n"
        ));
        let out = db.sisyctl(&["apply", path.to_str().expect("path")]);
        assert_eq!(out.status.code(), Some(2), "{env}: {}", stderr(&out));
        assert!(stderr(&out).contains(message), "{env}: {}", stderr(&out));
    }
    assert_eq!(db.count("jobs").await, 0);
}
