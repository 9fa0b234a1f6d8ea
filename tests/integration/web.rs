//! The web dashboard over HTTP, as a browser speaks to it (cookies, forms, redirects): sign-in
//! with personal tokens, the database's refusals behind every button, CSRF, read-only mode, a
//! trusted proxy's header, the security headers and the live event stream. (The pages in a real
//! Chromium: `browser.rs`.)

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use reqwest::redirect::Policy;
use reqwest::StatusCode;
use sisyphus_client::{JobDefinition, JobRef};
use tokio_util::sync::CancellationToken;

use crate::harness::{service_url, wait_for, TestDb};

/// A dashboard served in this process as the test web login; stopped when dropped.
pub struct Web {
    pub base: String,
    stop: CancellationToken,
}

impl Drop for Web {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Web {
    pub async fn start(db: &TestDb) -> Web {
        Self::start_with(db, false, Vec::new(), None).await
    }

    pub async fn start_with(
        db: &TestDb,
        read_only: bool,
        trusted_proxies: Vec<IpAddr>,
        proxy_header: Option<&str>,
    ) -> Web {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let listen = SocketAddr::from(([127, 0, 0, 1], port));
        let config = sisyphus_web::Config {
            listen,
            database_url: service_url(&db.url, &["web".to_string()]),
            read_only,
            trusted_proxies,
            proxy_header: proxy_header.map(str::to_string),
            secure_cookies: false,
        };
        let stop = CancellationToken::new();
        tokio::spawn(sisyphus_web::serve(config, stop.clone()));
        wait_for(
            "the dashboard to listen",
            Duration::from_secs(10),
            || async { tokio::net::TcpStream::connect(listen).await.ok() },
        )
        .await;
        Web {
            base: format!("http://{listen}"),
            stop,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// A person's login with `level` on `pattern` (none: no grant) and a token for them, made by the
/// owner (an admin) as `sisyctl user add`, `grant` and `token create` would.
pub async fn person(db: &TestDb, login: &str, grant: Option<(&str, &str)>) -> String {
    let out = db.sisyctl(&["user", "add", login]);
    assert!(out.status.success(), "{}", crate::harness::stderr(&out));
    if let Some((level, pattern)) = grant {
        let out = db.sisyctl(&["grant", login, level, pattern]);
        assert!(out.status.success(), "{}", crate::harness::stderr(&out));
    }
    db.client
        .create_token(login, Some(Duration::from_secs(3600)), Some("test"))
        .await
        .expect("create token")
        .1
}

/// A browser-like HTTP client: keeps cookies, does not follow redirects (the tests look at them).
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .expect("http client")
}

/// Signs in with `token`; the response's status.
pub async fn sign_in(http: &reqwest::Client, web: &Web, token: &str) -> StatusCode {
    http.post(web.url("/sign-in"))
        .form(&[("token", token)])
        .send()
        .await
        .expect("sign in")
        .status()
}

async fn get(http: &reqwest::Client, web: &Web, path: &str) -> (StatusCode, String) {
    let r = http.get(web.url(path)).send().await.expect("get");
    let status = r.status();
    (status, r.text().await.expect("body"))
}

/// The CSRF token of the page at `path`.
async fn csrf(http: &reqwest::Client, web: &Web, path: &str) -> String {
    let (_, body) = get(http, web, path).await;
    let at = body
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    body[at..at + 64].to_string()
}

async fn post(
    http: &reqwest::Client,
    web: &Web,
    path: &str,
    form: &[(&str, &str)],
) -> (StatusCode, String) {
    let r = http
        .post(web.url(path))
        .form(form)
        .send()
        .await
        .expect("post");
    let status = r.status();
    (status, r.text().await.expect("body"))
}

fn job(project: &str, name: &str, command: &str) -> JobDefinition {
    let text = format!("project = \"{project}\"\nname = \"{name}\"\ncommand = [\"{command}\"]\n");
    toml::from_str(&text).expect("a job")
}

async fn runs_of(db: &TestDb, project: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM sisyphus.runs r JOIN sisyphus.jobs j ON j.id = r.job_id WHERE j.project = $1",
    )
    .bind(project)
    .fetch_one(&db.pool)
    .await
    .expect("count")
}

#[tokio::test]
async fn a_wrong_revoked_or_expired_token_cannot_sign_in_and_revoking_ends_sessions() {
    let db = TestDb::new().await;
    let web = Web::start(&db).await;
    let token = person(&db, "web_alice", Some(("viewer", "*"))).await;

    let http = browser();
    let (status, _) = get(&http, &web, "/").await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "signed out: to the sign-in page"
    );
    let wrong = format!("{}0", &token[..token.len() - 1]);
    assert_eq!(sign_in(&http, &web, &wrong).await, StatusCode::UNAUTHORIZED);
    assert_eq!(sign_in(&http, &web, &token).await, StatusCode::SEE_OTHER);
    let (status, body) = get(&http, &web, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("web_alice"), "the page names the person");

    // Revoked: the session ends at its next request, and the token cannot sign in again.
    let id = db.client.tokens().await.expect("tokens")[0].id;
    assert!(db.client.revoke_token(id).await.expect("revoke"));
    let (status, _) = get(&http, &web, "/").await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "a revoked token's session is over"
    );
    assert_eq!(
        sign_in(&browser(), &web, &token).await,
        StatusCode::UNAUTHORIZED
    );

    // Expired.
    let (_, short) = db
        .client
        .create_token("web_alice", Some(Duration::from_secs(1)), None)
        .await
        .expect("token");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        sign_in(&browser(), &web, &short).await,
        StatusCode::UNAUTHORIZED
    );

    // The database keeps only hashes, and the audit log names who made and revoked tokens.
    let leaked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sisyphus.tokens WHERE hash = convert_to($1, 'UTF8')",
    )
    .bind(&token)
    .fetch_one(&db.pool)
    .await
    .expect("count");
    assert_eq!(leaked, 0);
    assert_eq!(db.count("audit WHERE action = 'token.create'").await, 2);
    assert_eq!(db.count("audit WHERE action = 'token.revoke'").await, 1);
    let text: String = sqlx::query_scalar("SELECT string_agg(diff::text, ' ') FROM sisyphus.audit")
        .fetch_one(&db.pool)
        .await
        .expect("audit");
    assert!(!text.contains(&token[5..]), "no token in the audit log");
}

#[tokio::test]
async fn a_viewer_sees_no_buttons_and_the_database_refuses_their_forged_posts() {
    let db = TestDb::new().await;
    db.client
        .apply(
            &[job("ACME.app", "a", "true"), job("Other.x", "b", "true")],
            false,
        )
        .await
        .expect("apply");
    let acme_run = db
        .client
        .run_now(&JobRef::new("ACME.app", "a"))
        .await
        .expect("run")[0]
        .0;
    let other_run = db
        .client
        .run_now(&JobRef::new("Other.x", "b"))
        .await
        .expect("run")[0]
        .0;
    let web = Web::start(&db).await;
    let viewer = browser();
    let token = person(&db, "web_viewer", Some(("viewer", "ACME.*"))).await;
    assert_eq!(sign_in(&viewer, &web, &token).await, StatusCode::SEE_OTHER);

    let (status, page) = get(&viewer, &web, "/jobs/ACME.app/a").await;
    assert_eq!(status, StatusCode::OK);
    for button in ["Run now", "Pause", ">Kill<", "Suspend"] {
        assert!(!page.contains(button), "a viewer sees no {button} button");
    }
    let (status, page) = get(&viewer, &web, &format!("/runs/{acme_run}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains(">Kill<") && !page.contains(">Rerun<"));
    let (_, jobs) = get(&viewer, &web, "/jobs").await;
    assert!(
        jobs.contains("ACME.app/a") && !jobs.contains("Other.x"),
        "only their projects"
    );

    // A run of another project is not there for them: 404, and nothing of it shown.
    let (status, page) = get(&viewer, &web, &format!("/runs/{other_run}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!page.contains("Other.x"));
    let (status, _) = get(&viewer, &web, "/jobs/Other.x/b").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Hand-made POSTs with the viewer's own valid CSRF token: the database refuses them.
    let token = csrf(&viewer, &web, "/").await;
    let before = runs_of(&db, "ACME.app").await;
    let (status, body) = post(&viewer, &web, "/jobs/ACME.app/a/run", &[("csrf", &token)]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body.contains("needs operator"),
        "the database's words: {body}"
    );
    assert_eq!(runs_of(&db, "ACME.app").await, before, "nothing written");
    let (status, _) = post(&viewer, &web, "/jobs/ACME.app/a/pause", &[("csrf", &token)]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = post(
        &viewer,
        &web,
        &format!("/runs/{acme_run}/control?action=terminate"),
        &[("csrf", &token)],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let paused: bool = sqlx::query_scalar("SELECT paused FROM sisyphus.jobs WHERE name = 'a'")
        .fetch_one(&db.pool)
        .await
        .expect("paused");
    assert!(!paused);

    // An operator sees the buttons and may use them; the run and the audit name them.
    let operator = browser();
    let token = person(&db, "web_op", Some(("operator", "ACME.*"))).await;
    assert_eq!(
        sign_in(&operator, &web, &token).await,
        StatusCode::SEE_OTHER
    );
    let (_, page) = get(&operator, &web, "/jobs/ACME.app/a").await;
    assert!(page.contains("Run now") && page.contains("Pause"));
    let token = csrf(&operator, &web, "/jobs/ACME.app/a").await;
    let (status, _) = post(&operator, &web, "/jobs/ACME.app/a/run", &[("csrf", &token)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(runs_of(&db, "ACME.app").await, before + 1);
    let (by, for_whom): (Option<String>, Option<String>) = sqlx::query_as(
        "SELECT r.created_by, a.on_behalf_of FROM sisyphus.runs r, sisyphus.audit a \
          WHERE r.id = (SELECT max(id) FROM sisyphus.runs) AND a.action = 'run.now' \
          ORDER BY a.id DESC LIMIT 1",
    )
    .fetch_one(&db.pool)
    .await
    .expect("who");
    assert_eq!(by.as_deref(), Some("web_op"));
    assert_eq!(for_whom.as_deref(), Some("web_op"));
    let (status, _) = post(
        &operator,
        &web,
        "/jobs/ACME.app/a/pause",
        &[("csrf", &token), ("reason", "migration tonight")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (reason, by): (Option<String>, Option<String>) =
        sqlx::query_as("SELECT pause_reason, paused_by::text FROM sisyphus.jobs WHERE name = 'a'")
            .fetch_one(&db.pool)
            .await
            .expect("pause");
    assert_eq!(reason.as_deref(), Some("migration tonight"));
    assert_eq!(by.as_deref(), Some("web_op"));
}

#[tokio::test]
async fn a_post_without_the_csrf_token_or_from_another_origin_is_refused() {
    let db = TestDb::new().await;
    db.client
        .apply(&[job("P", "j", "true")], false)
        .await
        .expect("apply");
    let web = Web::start(&db).await;
    let http = browser();
    let token = person(&db, "web_csrf", Some(("operator", "*"))).await;
    assert_eq!(sign_in(&http, &web, &token).await, StatusCode::SEE_OTHER);
    let (status, _) = post(&http, &web, "/jobs/P/j/run", &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = post(&http, &web, "/jobs/P/j/run", &[("csrf", &"0".repeat(64))]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let good = csrf(&http, &web, "/").await;
    let status = http
        .post(web.url("/jobs/P/j/run"))
        .header("Origin", "http://evil.example")
        .form(&[("csrf", good.as_str())])
        .send()
        .await
        .expect("post")
        .status();
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(runs_of(&db, "P").await, 0, "nothing written");
    // The same request with the token goes through.
    let (status, _) = post(&http, &web, "/jobs/P/j/run", &[("csrf", &good)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(runs_of(&db, "P").await, 1);
}

#[tokio::test]
async fn read_only_mode_shows_no_buttons_and_refuses_every_action() {
    let db = TestDb::new().await;
    db.client
        .apply(&[job("P", "j", "true")], false)
        .await
        .expect("apply");
    let web = Web::start_with(&db, true, Vec::new(), None).await;
    let http = browser();
    let token = person(&db, "web_ro", Some(("operator", "*"))).await;
    assert_eq!(sign_in(&http, &web, &token).await, StatusCode::SEE_OTHER);
    let (_, page) = get(&http, &web, "/jobs/P/j").await;
    assert!(!page.contains("Run now") && page.contains("read-only"));
    let good = csrf(&http, &web, "/").await;
    let (status, _) = post(&http, &web, "/jobs/P/j/run", &[("csrf", &good)]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(runs_of(&db, "P").await, 0);
}

#[tokio::test]
async fn a_proxys_header_is_believed_only_from_its_addresses() {
    let db = TestDb::new().await;
    person(&db, "web_proxied", Some(("viewer", "*"))).await;
    let trusted = Web::start_with(
        &db,
        false,
        vec!["127.0.0.1".parse().expect("ip")],
        Some("X-Forwarded-User"),
    )
    .await;
    let http = browser();
    let r = http
        .get(trusted.url("/"))
        .header("X-Forwarded-User", "web_proxied")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.expect("body").contains("web_proxied"));
    // A login that is not a person's (the owner) is refused.
    let r = http
        .get(trusted.url("/"))
        .header("X-Forwarded-User", "postgres")
        .send()
        .await
        .expect("get");
    assert_ne!(r.status(), StatusCode::OK);

    let elsewhere = Web::start_with(
        &db,
        false,
        vec!["10.9.9.9".parse().expect("ip")],
        Some("X-Forwarded-User"),
    )
    .await;
    let r = http
        .get(elsewhere.url("/"))
        .header("X-Forwarded-User", "web_proxied")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn pages_carry_a_strict_csp_and_the_session_cookie_is_httponly_and_samesite() {
    let db = TestDb::new().await;
    let web = Web::start(&db).await;
    let token = person(&db, "web_hdr", Some(("viewer", "*"))).await;
    let r = browser()
        .post(web.url("/sign-in"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .expect("sign in");
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains(&token),
        "the cookie is a session id, not the token"
    );
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"));
}

#[tokio::test]
async fn the_event_stream_says_when_runs_change() {
    let db = TestDb::new().await;
    db.client
        .apply(&[job("P", "j", "true")], false)
        .await
        .expect("apply");
    let web = Web::start(&db).await;
    let http = browser();
    let token = person(&db, "web_live", Some(("viewer", "*"))).await;
    assert_eq!(sign_in(&http, &web, &token).await, StatusCode::SEE_OTHER);
    let mut stream = http.get(web.url("/events")).send().await.expect("events");
    assert_eq!(stream.status(), StatusCode::OK);
    // Let the stream settle, then make a run: the stream says `changed` within 2 s.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let asked = std::time::Instant::now();
    db.client
        .run_now(&JobRef::new("P", "j"))
        .await
        .expect("run");
    let mut seen = String::new();
    while !seen.contains("event: changed") {
        let chunk = tokio::time::timeout(Duration::from_secs(2), stream.chunk())
            .await
            .expect("an event within 2 s")
            .expect("stream")
            .expect("open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(asked.elapsed() < Duration::from_secs(2));
    // A Run page's stream for a run the person may not see is refused before it opens.
    let (status, _) = get(&http, &web, "/events?run=999999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// The Jobs page writes out `job_status` and `health_reason` (sql/web/jobs_page.sql: the view
/// costs a function call per job, too dear at 10,000 jobs): for jobs in every state of health
/// both say the same.
#[tokio::test]
async fn the_jobs_page_tells_each_jobs_state_as_job_status_does() {
    use sisyphus_client::db;
    let db = TestDb::new().await;
    let with = |name: &str, extra: &str| -> JobDefinition {
        let text = format!("project = \"P\"\nname = \"{name}\"\ncommand = [\"true\"]\n{extra}\n");
        toml::from_str(&text).expect("a job")
    };
    let stale = with("stale", "max_health_age = \"1h\"");
    let paused = with("paused", "paused = true");
    db.client
        .apply(
            &[
                job("P", "never", "true"),
                job("P", "good", "true"),
                job("P", "bad", "true"),
                job("P", "marked", "true"),
                stale,
                paused,
            ],
            false,
        )
        .await
        .expect("apply");
    // Histories made by hand: ended runs `minutes` ago with a status and an error.
    for (name, minutes, status, error) in [
        ("good", 10, "successful", None),
        // A slot a calendar or an overlap policy skipped is no outcome (0016): still healthy.
        ("good", 2, "skipped", None),
        ("bad", 120, "successful", None),
        ("bad", 5, "failed", Some("boom")),
        ("stale", 180, "uneventful", None),
        ("marked", 30, "successful", None),
        ("paused", 30, "timeout", None),
    ] {
        sqlx::query(
            "INSERT INTO sisyphus.runs (job_id, slot, scheduled_for, status, started_at, finished_at, error, trigger) \
             SELECT id, now() - make_interval(mins => $2), now() - make_interval(mins => $2), \
                    $3::sisyphus.run_status, now() - make_interval(mins => $2), \
                    now() - make_interval(mins => $2) + interval '1 second', $4, 'manual' \
               FROM sisyphus.jobs WHERE project = 'P' AND name = $1",
        )
        .bind(name)
        .bind(minutes)
        .bind(status)
        .bind(error)
        .execute(&db.pool)
        .await
        .expect("a run");
    }
    sqlx::query("UPDATE sisyphus.jobs SET scheduler_error = 'cron overflow', scheduler_error_at = now() WHERE name = 'marked'")
        .execute(&db.pool)
        .await
        .expect("mark");

    let mut conn = db.pool.acquire().await.expect("connection");
    let viewed = db::jobs::status(&mut *conn, None, None)
        .await
        .expect("job_status");
    let page = db::web::jobs_page(
        &mut conn,
        &db::web::JobPage {
            size: 100,
            ..Default::default()
        },
    )
    .await
    .expect("jobs page");
    assert_eq!(viewed.len(), 6);
    assert_eq!(page.len(), viewed.len());
    for (line, status) in page.iter().zip(&viewed) {
        assert_eq!(&line.status, status, "{}", status.name);
        let good = db::web::last_success(&mut conn, status.id)
            .await
            .expect("last success");
        assert_eq!(line.last_success, good, "{}", status.name);
    }
    let unhealthy: Vec<_> = viewed.iter().filter(|s| !s.healthy).map(|s| s.name.as_str()).collect();
    assert_eq!(unhealthy, ["bad", "marked", "never", "paused", "stale"]);
    let filtered = db::web::jobs_page(
        &mut conn,
        &db::web::JobPage {
            healthy: Some(false),
            size: 100,
            ..Default::default()
        },
    )
    .await
    .expect("unhealthy jobs");
    let names: Vec<_> = filtered.iter().map(|l| l.status.name.as_str()).collect();
    assert_eq!(names, unhealthy);
}
