//! Notifications (issue 6): events become outbox rows in their own transaction, and the
//! dispatcher delivers them to a real SMTP server and to HTTP endpoints that check the requests
//! Mattermost, Sentry and a webhook receiver would get.

use std::time::Duration;

use hmac::{Hmac, Mac};
use mail_parser::MimeHeaders;
use sisyphus_client::notifications::RuleDefinition;
use sisyphus_client::{JobDefinition, JobRef};

use crate::harness::{ended, jobs_file, run_now, stdout, temp_dir, wait_for, Daemon, TestDb};
use crate::metrics::{free_port, parse, scrape};
use crate::peers::{Capture, SmtpServer};

const PASSWORD: &str = "pa55-Wörd-never-shown";

fn rule(channel: &str, on: &[&str]) -> RuleDefinition {
    RuleDefinition {
        channel: channel.into(),
        on: Some(on.iter().map(|s| s.to_string()).collect()),
        to: None,
        lines: None,
    }
}

fn failing(project: &str, name: &str, script: &str, notify: Vec<RuleDefinition>) -> JobDefinition {
    JobDefinition {
        notify: Some(notify),
        ..JobDefinition::new(project, name, ["sh", "-c", script])
    }
}

/// The outbox rows for a channel: (event, state, attempts, last error).
async fn outbox(db: &TestDb, channel: &str) -> Vec<(String, String, i32, Option<String>)> {
    sqlx::query_as(
        "SELECT event::text, state::text, attempts, last_error FROM sisyphus.outbox
          WHERE channel = $1 ORDER BY id",
    )
    .bind(channel)
    .fetch_all(&db.pool)
    .await
    .expect("outbox")
}

async fn events(db: &TestDb, job: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT o.event::text FROM sisyphus.outbox o JOIN sisyphus.jobs j ON j.id = o.job_id
          WHERE j.project || '/' || j.name = $1 ORDER BY o.id",
    )
    .bind(job)
    .fetch_all(&db.pool)
    .await
    .expect("events")
}

/// Gives runs a failed outcome by hand, as any writer of outcomes may (`executor`: the pool or
/// an open transaction).
async fn fail_runs<'e, E: sqlx::PgExecutor<'e>>(executor: E, runs: &[i64]) {
    sqlx::query(
        "UPDATE sisyphus.runs SET status = 'failed', finished_at = now() WHERE id = ANY($1)",
    )
    .bind(runs)
    .execute(executor)
    .await
    .expect("fail the runs");
}

fn config(text: &str) -> std::path::PathBuf {
    let path = temp_dir("notify").join("dispatcher.toml");
    std::fs::write(&path, text).expect("write the dispatcher's config");
    path
}

fn mail_channel(port: u16) -> String {
    format!(
        "[channels.mail]\nkind = \"email\"\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\n\
         user = \"sisyphus\"\npassword = {{ env = \"TEST_SMTP_PASSWORD\" }}\n\
         from = \"sisyphus@example.org\"\nto = [\"ops@example.org\"]\n"
    )
}

#[tokio::test]
async fn a_failure_mail_reaches_a_real_smtp_server_with_both_bodies_and_the_run_attached() {
    let db = TestDb::new().await;
    let smtp = SmtpServer::start(free_port(), &temp_dir("smtp"), "sisyphus", PASSWORD);
    let cfg = config(&mail_channel(smtp.port));
    let dispatcher = Daemon::dispatcher(&db.url, &cfg, &[("TEST_SMTP_PASSWORD", PASSWORD)], &[]);
    let _guardian = Daemon::guardian(&db.url, "mail-host", &[]);
    let mut r = rule("mail", &["failed"]);
    r.to = Some(vec!["dev@example.org".into()]);
    let run = run_now(
        &db,
        failing(
            "acme",
            "nightly",
            "echo 'loading <orders> & more'; echo 'disk almost full' >&2; exit 3",
            vec![r],
        ),
    )
    .await;
    assert_eq!(ended(&db, run, Duration::from_secs(20)).await.0, "failed");
    let outcome_seen = std::time::Instant::now();
    let raw = wait_for("the mail", Duration::from_secs(30), || async {
        smtp.messages().into_iter().next()
    })
    .await;
    println!(
        "the mail arrived {:.0} ms after the outcome was seen",
        outcome_seen.elapsed().as_secs_f64() * 1000.0
    );
    let mail = mail_parser::MessageParser::default()
        .parse(&raw)
        .expect("a parseable message");
    let subject = mail.subject().expect("subject");
    assert!(
        subject.starts_with("[sisyphus] acme/nightly failed on mail-host"),
        "{subject}"
    );
    let to: Vec<String> = mail
        .to()
        .expect("to")
        .iter()
        .filter_map(|a| a.address().map(str::to_string))
        .collect();
    assert_eq!(to, ["ops@example.org", "dev@example.org"]);
    let text = mail.body_text(0).expect("a plain-text body");
    assert!(
        text.contains(&format!("Run:      {run}, attempt 1")),
        "{text}"
    );
    assert!(text.contains("Exit code:3"), "{text}");
    assert!(text.contains(">> loading <orders> & more"), "{text}");
    assert!(text.contains(">> disk almost full"), "{text}");
    let html = mail.body_html(0).expect("an HTML body");
    assert!(html.contains("<table>"), "{html}");
    assert!(html.contains("loading &lt;orders&gt; &amp; more"), "{html}");
    let attachment = mail.attachment(0).expect("an attachment");
    assert_eq!(
        attachment.attachment_name(),
        Some(format!("run-{run}.json").as_str())
    );
    let json: serde_json::Value =
        serde_json::from_slice(attachment.contents()).expect("the attachment is JSON");
    assert_eq!(json["run"]["id"], run);
    assert_eq!(json["run"]["status"], "failed");
    assert_eq!(json["event"], "failed");
    let lines = json["lines"].to_string();
    assert!(lines.contains("disk almost full"), "{lines}");
    // Logged in with the password, which appears nowhere: not in the mail, not in the outbox,
    // not in the dispatcher's log.
    assert!(smtp.authenticated(), "the dispatcher did not log in");
    assert!(!String::from_utf8_lossy(&raw).contains(PASSWORD));
    let payloads: Vec<String> = sqlx::query_scalar("SELECT payload::text FROM sisyphus.outbox")
        .fetch_all(&db.pool)
        .await
        .expect("payloads");
    assert!(payloads.iter().all(|p| !p.contains(PASSWORD)));
    assert!(!dispatcher.log_text().contains(PASSWORD));
    let rows = outbox(&db, "mail").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((rows[0].1.as_str(), rows[0].2), ("delivered", 1));
}

#[tokio::test]
async fn a_mail_sent_while_the_smtp_server_is_killed_arrives_once_it_is_back() {
    let db = TestDb::new().await;
    // The server runs, then is killed before the job fails.
    let port = free_port();
    let first = SmtpServer::start(port, &temp_dir("smtp-first"), "sisyphus", PASSWORD);
    drop(first);
    let cfg = config(&format!(
        "retry_base = \"300ms\"\nretry_max = \"1s\"\nmax_attempts = 100\n{}",
        mail_channel(port)
    ));
    let _dispatcher = Daemon::dispatcher(&db.url, &cfg, &[("TEST_SMTP_PASSWORD", PASSWORD)], &[]);
    let _guardian = Daemon::guardian(&db.url, "down-host", &[]);
    let run = run_now(
        &db,
        failing("acme", "flaky", "exit 1", vec![rule("mail", &["failed"])]),
    )
    .await;
    ended(&db, run, Duration::from_secs(20)).await;
    let (attempts, error) = wait_for("failed attempts", Duration::from_secs(30), || async {
        let rows = outbox(&db, "mail").await;
        let r = rows.first()?;
        (r.1 == "pending" && r.2 >= 2).then(|| (r.2, r.3.clone()))
    })
    .await;
    let error = error.expect("the error of the last attempt");
    println!("with the SMTP server down, attempt {attempts}: {error}");
    assert!(error.contains(&format!("127.0.0.1:{port}")), "{error}");
    let smtp = SmtpServer::start(port, &temp_dir("smtp-late"), "sisyphus", PASSWORD);
    wait_for(
        "delivery after the server came back",
        Duration::from_secs(30),
        || async {
            let rows = outbox(&db, "mail").await;
            (rows[0].1 == "delivered").then_some(())
        },
    )
    .await;
    // Once: wait a few retry periods more, and count.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(smtp.messages().len(), 1, "after {attempts} failed attempts");
    let rows = outbox(&db, "mail").await;
    assert_eq!(rows.len(), 1);
    assert!(rows[0].2 > attempts, "{rows:?}");
}

#[tokio::test]
async fn mattermost_sentry_and_a_webhook_receive_what_the_real_services_would() {
    let db = TestDb::new().await;
    let http = Capture::start().await;
    let p = http.port;
    let cfg = config(&format!(
        "[channels.chat]\nkind = \"mattermost\"\nurl = \"http://127.0.0.1:{p}\"\n\
         channel_id = \"4cnszmopr3ntjexi4qmx499inc\"\ntoken = {{ env = \"TEST_MM_TOKEN\" }}\n\
         [channels.errors]\nkind = \"sentry\"\ndsn = {{ env = \"TEST_SENTRY_DSN\" }}\n\
         environment = \"staging\"\nrelease = \"acme@1.2.3\"\n\
         [channels.hook]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{p}/hook\"\n\
         secret = {{ env = \"TEST_HOOK_SECRET\" }}\n"
    ));
    let dsn = format!("http://examplePublicKey@127.0.0.1:{p}/42");
    let _dispatcher = Daemon::dispatcher(
        &db.url,
        &cfg,
        &[
            ("TEST_MM_TOKEN", "9xuqwrwgstrb3mzrxb83nb357a"),
            ("TEST_SENTRY_DSN", dsn.as_str()),
            ("TEST_HOOK_SECRET", "hook-secret"),
        ],
        &[],
    );
    let _guardian = Daemon::guardian(&db.url, "http-host", &[]);
    let testjob = crate::sdk::testjob();
    let job = JobDefinition {
        notify: Some(vec![
            rule("chat", &["tagged", "failed"]),
            rule("errors", &["tagged", "failed"]),
            rule("hook", &["failed"]),
        ]),
        env: Some(
            [(
                "TESTJOB_SCRIPT".to_string(),
                "tagged:mattermost:deploy started;tasked:sentry,warning:disk at 91%;\
                 fail:the export broke"
                    .into(),
            )]
            .into(),
        ),
        ..JobDefinition::new("acme", "export", [testjob.display().to_string()])
    };
    let run = run_now(&db, job).await;
    assert_eq!(ended(&db, run, Duration::from_secs(20)).await.0, "failed");
    wait_for("five requests", Duration::from_secs(30), || async {
        (http.requests().len() >= 5).then_some(())
    })
    .await;

    // Mattermost: one post per tagged line and one for the failure, with the token as bearer.
    let posts = http.to("/api/v4/posts");
    assert_eq!(posts.len(), 2, "{posts:?}");
    for post in &posts {
        assert_eq!(post.method, "POST");
        assert_eq!(
            post.header("authorization"),
            Some("Bearer 9xuqwrwgstrb3mzrxb83nb357a")
        );
        assert_eq!(post.json()["channel_id"], "4cnszmopr3ntjexi4qmx499inc");
    }
    let messages: Vec<String> = posts
        .iter()
        .map(|p| p.json()["message"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        messages.iter().any(|m| m.ends_with(": deploy started")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("**failed**") && m.contains("the export broke")),
        "{messages:?}"
    );

    // Sentry: envelopes at the DSN's project, authenticated with its public key.
    let envelopes = http.to("/api/42/envelope/");
    assert_eq!(envelopes.len(), 2, "{envelopes:?}");
    let mut events = Vec::new();
    for e in &envelopes {
        let auth = e.header("x-sentry-auth").expect("X-Sentry-Auth");
        assert!(
            auth.starts_with("Sentry sentry_key=examplePublicKey, sentry_version=7"),
            "{auth}"
        );
        let text = String::from_utf8_lossy(&e.body).to_string();
        let mut lines = text.lines();
        let _header: serde_json::Value =
            serde_json::from_str(lines.next().expect("header")).expect("header JSON");
        let item: serde_json::Value =
            serde_json::from_str(lines.next().expect("item header")).expect("item JSON");
        assert_eq!(item["type"], "event");
        events.push(
            serde_json::from_str::<serde_json::Value>(lines.next().expect("event"))
                .expect("event JSON"),
        );
    }
    let warning = events
        .iter()
        .find(|e| e["message"] == "disk at 91%")
        .expect("the tagged line's event");
    assert_eq!(warning["level"], "warning");
    assert_eq!(warning["tags"]["sisyphus.tag.sentry"], "true");
    assert_eq!(warning["tags"]["sisyphus.tag.warning"], "true");
    assert_eq!(warning["environment"], "staging");
    assert_eq!(warning["release"], "acme@1.2.3");
    assert_eq!(warning["server_name"], "http-host");
    let crumbs: Vec<&str> = warning["breadcrumbs"]["values"]
        .as_array()
        .expect("breadcrumbs")
        .iter()
        .filter_map(|b| b["message"].as_str())
        .collect();
    assert_eq!(
        crumbs,
        ["[1/1] volume data", "[2/2] check space"],
        "{warning}"
    );
    let fatal = events
        .iter()
        .find(|e| e["level"] == "fatal")
        .expect("the aborting error's event");
    assert!(
        fatal["message"]
            .as_str()
            .unwrap_or_default()
            .contains("the export broke"),
        "{fatal}"
    );

    // The webhook: the notification as JSON, signed with HMAC-SHA256 of the body.
    let hooks = http.to("/hook");
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"hook-secret").expect("key");
    mac.update(&hooks[0].body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        hooks[0].header("x-sisyphus-signature"),
        Some(format!("sha256={expected}").as_str())
    );
    assert_eq!(hooks[0].header("x-sisyphus-event"), Some("failed"));
    let body = hooks[0].json();
    assert_eq!(body["job"], "acme/export");
    assert_eq!(body["run"]["id"], run);
    for secret in [
        "9xuqwrwgstrb3mzrxb83nb357a",
        "examplePublicKey",
        "hook-secret",
    ] {
        assert!(!String::from_utf8_lossy(&hooks[0].body).contains(secret));
    }
}

/// Status events, recovered, too_fast, slow and the dead-man's switch become outbox rows with
/// their event, without a dispatcher; a failed attempt that is retried raises nothing.
#[tokio::test]
async fn events_become_outbox_rows_once_each() {
    let db = TestDb::new().await;
    let _scheduler = Daemon::scheduler(&db.url);
    let _guardian = Daemon::guardian(&db.url, "events-host", &["--capacity", "8"]);
    let all = || {
        vec![RuleDefinition {
            on: None,
            ..rule("ops", &[])
        }]
    };
    let flag = temp_dir("flag").join("ok");
    // Fails until the flag exists: failed, then recovered.
    let flaky = JobDefinition {
        notify: Some(all()),
        ..JobDefinition::new(
            "ev",
            "flaky",
            ["sh", "-c", &format!("test -f {}", flag.display())],
        )
    };
    let run = run_now(&db, flaky.clone()).await;
    ended(&db, run, Duration::from_secs(20)).await;
    std::fs::write(&flag, "").expect("flag");
    let run = run_now(&db, flaky).await;
    assert_eq!(
        ended(&db, run, Duration::from_secs(20)).await.0,
        "uneventful"
    );
    assert_eq!(events(&db, "ev/flaky").await, ["failed", "recovered"]);

    // A retried failure speaks once, for its last attempt.
    let retried = JobDefinition {
        notify: Some(all()),
        retries: Some(1),
        retry_backoff: Some("100ms".into()),
        ..JobDefinition::new("ev", "retried", ["false"])
    };
    let first = run_now(&db, retried).await;
    ended(&db, first, Duration::from_secs(20)).await;
    wait_for(
        "the retry's notification",
        Duration::from_secs(20),
        || async { (!events(&db, "ev/retried").await.is_empty()).then_some(()) },
    )
    .await;
    let attempt: i32 = sqlx::query_scalar(
        "SELECT r.attempt FROM sisyphus.outbox o JOIN sisyphus.runs r ON r.id = o.run_id
          WHERE o.event = 'failed' AND r.job_id = (SELECT job_id FROM sisyphus.runs WHERE id = $1)",
    )
    .bind(first)
    .fetch_one(&db.pool)
    .await
    .expect("one failed notification for the retried job");
    assert_eq!(attempt, 2);
    assert_eq!(events(&db, "ev/retried").await, ["failed"]);

    // too_fast: a good run shorter than min_duration.
    let fast = JobDefinition {
        notify: Some(all()),
        min_duration: Some("10s".into()),
        ..JobDefinition::new("ev", "fast", ["true"])
    };
    let run = run_now(&db, fast).await;
    ended(&db, run, Duration::from_secs(20)).await;
    assert_eq!(events(&db, "ev/fast").await, ["too_fast"]);

    // slow: raised while the run is still going, once.
    let slow = JobDefinition {
        notify: Some(all()),
        warn_after: Some("1s".into()),
        ..JobDefinition::new("ev", "slow", ["sleep", "8"])
    };
    let run = run_now(&db, slow).await;
    wait_for("the slow event", Duration::from_secs(10), || async {
        (events(&db, "ev/slow").await == ["slow"]).then_some(())
    })
    .await;
    assert_eq!(crate::harness::status(&db.pool, run).await, "running");
    ended(&db, run, Duration::from_secs(20)).await;
    assert_eq!(events(&db, "ev/slow").await, ["slow"]);

    // missed: a run no guardian took before its TTL passed.
    let nobody = JobDefinition {
        notify: Some(all()),
        target: Some("any:nobody-serves-this".into()),
        ttl: Some("1s".into()),
        ..JobDefinition::new("ev", "unserved", ["true"])
    };
    let run = run_now(&db, nobody).await;
    assert_eq!(ended(&db, run, Duration::from_secs(10)).await.0, "missed");
    assert_eq!(events(&db, "ev/unserved").await, ["missed"]);

    // The dead-man's switch: no good run within max_health_age raises `missed`, once.
    let idle = JobDefinition {
        notify: Some(all()),
        max_health_age: Some("1s".into()),
        ..JobDefinition::new("ev", "idle", ["true"])
    };
    db.client.apply(&[idle], false).await.expect("apply");
    wait_for("the dead-man's switch", Duration::from_secs(20), || async {
        (events(&db, "ev/idle").await == ["missed"]).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(events(&db, "ev/idle").await, ["missed"]);
    let reason: String =
        sqlx::query_scalar("SELECT payload->>'reason' FROM sisyphus.outbox WHERE run_id IS NULL")
            .fetch_one(&db.pool)
            .await
            .expect("reason");
    assert!(reason.contains("max_health_age"), "{reason}");
}

/// No notification for an event that did not commit; one for the same event committed.
#[tokio::test]
async fn an_outcome_rolled_back_notifies_nobody() {
    let db = TestDb::new().await;
    let run = run_now(
        &db,
        failing("tx", "job", "true", vec![rule("ops", &["failed"])]),
    )
    .await;
    let mut tx = db.pool.begin().await.expect("begin");
    fail_runs(&mut *tx, &[run]).await;
    tx.rollback().await.expect("rollback");
    assert_eq!(db.count("outbox").await, 0);
    let mut tx = db.pool.begin().await.expect("begin");
    fail_runs(&mut *tx, &[run]).await;
    // Deferred to commit: nothing yet inside the transaction.
    let inside: i64 = sqlx::query_scalar("SELECT count(*) FROM sisyphus.outbox")
        .fetch_one(&mut *tx)
        .await
        .expect("count");
    assert_eq!(inside, 0);
    tx.commit().await.expect("commit");
    assert_eq!(events(&db, "tx/job").await, ["failed"]);
}

/// Project defaults from a jobs file, a job's own empty rules, and bad rules refused by name.
#[tokio::test]
async fn project_defaults_apply_to_jobs_without_rules_of_their_own() {
    let db = TestDb::new().await;
    let file = jobs_file(
        "[projects.acme]\nnotify = [{ channel = \"ops\", on = [\"failed\"] }]\n\
         [[job]]\nproject = \"acme\"\nname = \"plain\"\ncommand = [\"false\"]\n\
         [[job]]\nproject = \"acme\"\nname = \"quiet\"\ncommand = [\"false\"]\nnotify = []\n",
    );
    let out = db.sisyctl(&["apply", &file.display().to_string()]);
    assert!(out.status.success(), "{}", crate::harness::stderr(&out));
    let show = db.sisyctl(&["job", "show", "acme/plain"]);
    assert!(
        stdout(&show).contains("notify: the project's defaults"),
        "{}",
        stdout(&show)
    );
    for name in ["plain", "quiet"] {
        let runs = db
            .client
            .run_now(&JobRef::new("acme", name))
            .await
            .expect("run");
        fail_runs(&db.pool, &[runs[0].0]).await;
    }
    assert_eq!(events(&db, "acme/plain").await, ["failed"]);
    assert!(events(&db, "acme/quiet").await.is_empty());

    let bad = jobs_file(
        "[[job]]\nproject = \"acme\"\nname = \"bad\"\ncommand = [\"true\"]\nmaxtime = \"1m\"\n\
         warn_after = \"2m\"\nnotify = [{ channel = \"ops\", on = [\"failed\", \"exploded\"] }]\n",
    );
    let out = db.sisyctl(&["apply", &bad.display().to_string()]);
    assert!(!out.status.success());
    let err = crate::harness::stderr(&out);
    assert!(
        err.contains("notify") && err.contains("unknown event `exploded`"),
        "{err}"
    );
    assert!(
        err.contains("warn_after") && err.contains("not shorter than maxtime"),
        "{err}"
    );
    assert_eq!(db.count("jobs WHERE name = 'bad'").await, 0);
}

/// After max_attempts a notification is failed, shown by `sisyctl notifications` with its
/// error, counted in the dispatcher's metrics, and can be sent again.
#[tokio::test]
async fn undeliverable_notifications_fail_visibly_and_can_be_retried() {
    let db = TestDb::new().await;
    let dead = free_port();
    let metrics = free_port();
    let cfg = config(&format!(
        "max_attempts = 2\nretry_base = \"100ms\"\n\
         [channels.hook]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{dead}/h\"\nsecret = \"k\"\n"
    ));
    let _dispatcher = Daemon::dispatcher(
        &db.url,
        &cfg,
        &[],
        &["--metrics", &format!("127.0.0.1:{metrics}")],
    );
    let run = run_now(
        &db,
        failing(
            "dl",
            "job",
            "true",
            vec![rule("hook", &["failed"]), rule("nowhere", &["failed"])],
        ),
    )
    .await;
    fail_runs(&db.pool, &[run]).await;
    wait_for("both to fail", Duration::from_secs(20), || async {
        let failed = db.count("outbox WHERE state = 'failed'").await;
        (failed == 2).then_some(())
    })
    .await;
    let out = db.sisyctl(&["notifications", "--state", "failed"]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(
        text.contains("hook") && text.contains("attempt 2: webhook:"),
        "{text}"
    );
    assert!(
        text.contains("channel `nowhere` is not configured in this dispatcher"),
        "{text}"
    );
    let scraped = wait_for("metrics", Duration::from_secs(10), || async {
        scrape(metrics)
    })
    .await;
    let samples = parse(&scraped);
    assert_eq!(
        samples.get("sisyphus_notifications_total{result=\"failed\"}"),
        Some(&2.0)
    );
    assert_eq!(samples.get("sisyphus_outbox_backlog"), Some(&0.0));

    let id: i64 = sqlx::query_scalar("SELECT id FROM sisyphus.outbox WHERE channel = 'hook'")
        .fetch_one(&db.pool)
        .await
        .expect("id");
    let out = db.sisyctl(&["notifications", "--retry", &id.to_string()]);
    assert!(
        stdout(&out).contains(&format!("notification {id}: pending again")),
        "{}",
        stdout(&out)
    );
    let out = db.sisyctl(&["notifications", "--state", "sent"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(crate::harness::stderr(&out).contains("--state sent"));
}

/// Three dispatchers share one outbox: each of 60 notifications reaches the endpoint once.
#[tokio::test]
async fn dispatchers_share_the_outbox_and_send_each_notification_once() {
    let db = TestDb::new().await;
    let http = Capture::start().await;
    let cfg = config(&format!(
        "[channels.hook]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{}/hook\"\nsecret = \"k\"\n",
        http.port
    ));
    let _dispatchers: Vec<Daemon> = (0..3)
        .map(|_| Daemon::dispatcher(&db.url, &cfg, &[], &[]))
        .collect();
    let job = failing("many", "job", "true", vec![rule("hook", &["failed"])]);
    db.client.apply(&[job], false).await.expect("apply");
    let ids: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO sisyphus.runs (job_id, slot, scheduled_for, trigger)
         SELECT j.id, now() + make_interval(secs => i), now() + interval '1 day', 'manual'
           FROM sisyphus.jobs j, generate_series(1, 60) i
         RETURNING id",
    )
    .fetch_all(&db.pool)
    .await
    .expect("runs");
    fail_runs(&db.pool, &ids).await;
    wait_for("60 deliveries", Duration::from_secs(30), || async {
        let delivered = db.count("outbox WHERE state = 'delivered'").await;
        (delivered == 60).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut runs: Vec<i64> = http
        .to("/hook")
        .iter()
        .map(|r| r.json()["run"]["id"].as_i64().unwrap_or(-1))
        .collect();
    runs.sort();
    assert_eq!(runs, ids, "each notification once");
}

/// A run whose guardian died is `lost`: the scheduler's lease sweep records it, and the outbox
/// row comes with that outcome.
#[tokio::test]
async fn a_run_lost_with_its_guardian_notifies() {
    let db = TestDb::new().await;
    let _scheduler = Daemon::scheduler(&db.url);
    let mut guardian = Daemon::guardian(&db.url, "doomed", &[]);
    let job = failing("lose", "job", "sleep 30", vec![rule("ops", &["lost"])]);
    let run = run_now(&db, job).await;
    crate::harness::running_pid(&db.pool, run).await;
    guardian.kill9();
    assert_eq!(ended(&db, run, Duration::from_secs(20)).await.0, "lost");
    assert_eq!(events(&db, "lose/job").await, ["lost"]);
    let payload: serde_json::Value =
        sqlx::query_scalar("SELECT payload FROM sisyphus.outbox WHERE run_id = $1")
            .bind(run)
            .fetch_one(&db.pool)
            .await
            .expect("payload");
    assert_eq!(payload["run"]["host"], "doomed");
    assert!(
        payload["run"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("stopped renewing its lease")),
        "{payload}"
    );
}
