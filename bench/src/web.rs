//! The web dashboard at scale (issue 16): 10,000 jobs in 100 projects, 1,000,000 ended runs and
//! one run with a 100,000-line log, on one private cluster; the dashboard served in this process
//! (`sisyphus_web::serve`) as a web login, people signed in with real personal tokens.
//!
//! 1. Live updates (measured first, see [`web`]): 200 event streams (`GET /events` with the
//!    session cookie, each a real TCP connection) on the one server. Memory per stream: this
//!    process's resident set before and after opening them, divided — against the same number
//!    of bare TCP connections held open by a plain accept loop in the same process (opened first
//!    and kept, so neither reuses the other's freed memory). Delivery: a run made by `run_now`
//!    (the owner's client) every half second; for each, the time from asking to each stream's
//!    `event: changed`, and to a plain LISTEN connection's notification (the baseline: the
//!    database's own delivery).
//! 2. Pages: each screen fetched over HTTP (a keep-alive connection, the session cookie, the
//!    whole body read), as an admin and as a viewer of one project (`P3.*`, 1% of the runs:
//!    row-level security decides what they see), against its baseline — the same statements the
//!    page's handler runs, in the same order, run directly through sqlx on a plain connection as
//!    the same person (as they would in psql; JIT off as in the dashboard's transactions). Rounds
//!    interleave every page and its baseline; p50 and p99 of each, and the ratio of the p50s.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use sisyphus_client::access::{GrantLevel, LoginKind};
use sisyphus_client::db::{self, PgConnection};
use sisyphus_client::{Client, JobRef, RunId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{fresh_database, percentiles};

const DATABASE: &str = "bench_web";
const WEB_LOGIN: &str = "bench_web_server";
const ADMIN: &str = "bench_web_admin";
const VIEWER: &str = "bench_web_viewer";
/// The viewer's project pattern, and the job whose runs and long log are opened.
const VIEWED: &str = "P3.*";
const JOB: (&str, &str) = ("P3", "job7");
/// One run in this many failed (prime to the number of jobs: the failures spread over them).
const FAIL_EVERY: i64 = 997;
/// The Run page shows this many last lines; `log.txt` reads this many a statement
/// (web/src/pages/run.rs).
const TAIL: u32 = 500;
const DOWNLOAD_BATCH: i64 = 10_000;

#[derive(clap::Args, Debug, Clone)]
pub struct Options {
    /// Projects P0, P1, … of `--per-project` jobs each.
    #[arg(long, default_value_t = 100)]
    pub projects: i64,
    #[arg(long, default_value_t = 100)]
    pub per_project: i64,
    /// Ended runs in the history.
    #[arg(long, default_value_t = 1_000_000)]
    pub runs: i64,
    /// Lines of the one long log.
    #[arg(long, default_value_t = 100_000)]
    pub log_lines: i32,
    /// Rounds: each page and its baseline fetched once per round and person.
    #[arg(long, default_value_t = 50)]
    pub rounds: usize,
    /// Event streams open at once.
    #[arg(long, default_value_t = 200)]
    pub clients: usize,
    /// Runs made while they are open (one `event: changed` each).
    #[arg(long, default_value_t = 20)]
    pub events: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            projects: 100,
            per_project: 100,
            runs: 1_000_000,
            log_lines: 100_000,
            rounds: 50,
            clients: 200,
            events: 20,
        }
    }
}

pub async fn web(cluster: &pgembed::Cluster, o: &Options) -> anyhow::Result<()> {
    anyhow::ensure!(
        o.projects > 3 && o.per_project > 7 && o.runs >= 2 * o.projects * o.per_project,
        "--projects must be above 3, --per-project above 7, and --runs at least two per job"
    );
    anyhow::ensure!(
        o.rounds > 0 && o.clients > 0 && o.events > 0 && o.log_lines > 0,
        "--rounds, --clients, --events and --log-lines must be positive"
    );
    let started = Instant::now();
    let url = fresh_database(cluster, DATABASE).await?;
    let owner = Client::connect(&url).await?;
    let long_run = fill(&owner, o).await?;
    let filled = started.elapsed();
    let people = sign_up(&owner).await?;

    let stop = CancellationToken::new();
    let addr = serve(cluster, stop.clone()).await?;
    let base = format!("http://{addr}");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let mut persons = Vec::new();
    for (label, login, token) in people {
        persons.push(Person {
            label,
            cookie: sign_in(&http, &base, &token).await?,
            conn: baseline_connection(cluster, login).await?,
        });
    }
    let mid = RunId(o.runs / 2);
    let pages = [
        Page::Overview,
        Page::Jobs,
        Page::Runs(None, false),
        Page::Runs(Some(mid), false),
        Page::Runs(None, true),
        Page::Run(long_run),
        Page::LogText(long_run, o.log_lines as usize),
    ];
    // The streams first: the pages' big bodies, once freed, would leave the allocator memory
    // that the streams then reuse without the resident set growing.
    let result = match live_table(cluster, &owner, addr, &persons[1].cookie, o).await {
        Ok(()) => {
            println!();
            pages_table(&http, &base, &mut persons, &pages, o, filled).await
        }
        Err(e) => Err(e),
    };
    stop.cancel();
    result
}

/// The jobs, the history, the long log; vacuumed and analysed as autovacuum would have. The long
/// log's run.
async fn fill(owner: &Client, o: &Options) -> anyhow::Result<RunId> {
    let pool = owner.pool();
    db::bench::define_project_jobs(pool, o.projects, o.per_project).await?;
    db::bench::insert_history(pool, o.runs, FAIL_EVERY).await?;
    let run = db::bench::insert_log_run(pool, JOB.0, JOB.1).await?;
    db::bench::insert_log_lines(pool, run, o.log_lines).await?;
    for table in [
        db::bench::Table::Jobs,
        db::bench::Table::Runs,
        db::bench::Table::RunLogs,
    ] {
        db::bench::vacuum_analyze(pool, table).await?;
    }
    Ok(run)
}

/// The web login (`sisyctl service add web`), an admin and a viewer of [`VIEWED`], and a token
/// for each person (`sisyctl token create`): (label, login, token).
async fn sign_up(owner: &Client) -> anyhow::Result<Vec<(&'static str, &'static str, String)>> {
    owner
        .add_login(WEB_LOGIN, None, LoginKind::Web, &[])
        .await?;
    owner.add_login(ADMIN, None, LoginKind::Admin, &[]).await?;
    owner.add_login(VIEWER, None, LoginKind::User, &[]).await?;
    owner.grant(VIEWER, GrantLevel::Viewer, VIEWED).await?;
    let day = Some(Duration::from_secs(24 * 3600));
    let (_, admin) = owner.create_token(ADMIN, day, Some("bench")).await?;
    let (_, viewer) = owner.create_token(VIEWER, day, Some("bench")).await?;
    Ok(vec![
        ("admin", ADMIN, admin),
        ("viewer of P3.* (1% of the runs)", VIEWER, viewer),
    ])
}

fn login_url(cluster: &pgembed::Cluster, login: &str) -> String {
    format!("postgres://{login}@127.0.0.1:{}/{DATABASE}", cluster.port())
}

/// Starts the dashboard in this process on a free loopback port, as the web login.
async fn serve(cluster: &pgembed::Cluster, stop: CancellationToken) -> anyhow::Result<SocketAddr> {
    let addr = TcpListener::bind("127.0.0.1:0").await?.local_addr()?;
    let config = sisyphus_web::Config {
        listen: addr,
        database_url: login_url(cluster, WEB_LOGIN),
        read_only: false,
        trusted_proxies: Vec::new(),
        proxy_header: None,
        secure_cookies: false,
    };
    let server = tokio::spawn(sisyphus_web::serve(config, stop));
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).await.is_err() {
        if server.is_finished() {
            server.await??;
            anyhow::bail!("the dashboard stopped before it listened");
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the dashboard did not listen on {addr}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(addr)
}

/// Signs in with `token` as the sign-in form does; the session cookie (`name=value`).
async fn sign_in(http: &reqwest::Client, base: &str, token: &str) -> anyhow::Result<String> {
    let answer = http
        .post(format!("{base}/sign-in"))
        .form(&[("token", token)])
        .send()
        .await?;
    anyhow::ensure!(
        answer.status() == reqwest::StatusCode::SEE_OTHER,
        "sign-in answered {}",
        answer.status()
    );
    let cookie = answer
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|c| c.to_str().ok())
        .and_then(|c| c.split(';').next())
        .context("sign-in set no cookie")?;
    Ok(cookie.to_string())
}

/// A plain connection as `login`, as psql would open one; JIT off as in the dashboard.
async fn baseline_connection(
    cluster: &pgembed::Cluster,
    login: &str,
) -> anyhow::Result<PgConnection> {
    let mut conn = db::bench::connect(&login_url(cluster, login)).await?;
    db::bench::jit_off(&mut conn).await?;
    Ok(conn)
}

/// A signed-in person: their session, and their own connection for the baselines.
struct Person {
    label: &'static str,
    cookie: String,
    conn: PgConnection,
}

/// A screen as the bench opens it.
#[derive(Debug, Clone, Copy)]
enum Page {
    Overview,
    Jobs,
    /// The Runs screen: from the newest or before a run; filtered by [`JOB`] or not.
    Runs(Option<RunId>, bool),
    Run(RunId),
    /// `/runs/ID/log.txt`, and how many lines it must have.
    LogText(RunId, usize),
}

impl Page {
    fn label(self) -> String {
        match self {
            Page::Overview => "Overview `/`".into(),
            Page::Jobs => "Jobs `/jobs` (first 100)".into(),
            Page::Runs(None, false) => "Runs `/runs` (newest 50)".into(),
            Page::Runs(Some(_), false) => "Runs `/runs?before=<middle id>`".into(),
            Page::Runs(_, true) => format!("Runs `/runs?job={}/{}`", JOB.0, JOB.1),
            Page::Run(_) => "Run `/runs/ID` of the long log (its last 500 lines)".into(),
            Page::LogText(_, lines) => format!("`/runs/ID/log.txt` ({lines} lines)"),
        }
    }

    fn path(self) -> String {
        match self {
            Page::Overview => "/".into(),
            Page::Jobs => "/jobs".into(),
            Page::Runs(None, false) => "/runs".into(),
            Page::Runs(Some(before), false) => format!("/runs?before={}", before.0),
            Page::Runs(_, true) => format!("/runs?job={}/{}", JOB.0, JOB.1),
            Page::Run(run) => format!("/runs/{}", run.0),
            Page::LogText(run, _) => format!("/runs/{}/log.txt", run.0),
        }
    }

    /// Fetches the page; fails unless it is a 200 that looks like the page.
    async fn fetch(self, http: &reqwest::Client, base: &str, cookie: &str) -> anyhow::Result<()> {
        let answer = http
            .get(format!("{base}{}", self.path()))
            .header(reqwest::header::COOKIE, cookie)
            .send()
            .await?;
        let status = answer.status();
        let body = answer.text().await?;
        anyhow::ensure!(
            status == reqwest::StatusCode::OK,
            "{} answered {status}: {}",
            self.path(),
            body.chars().take(300).collect::<String>()
        );
        let looks_right = match self {
            Page::LogText(_, lines) => body.lines().count() == lines,
            Page::Run(run) => body.contains(&format!("Run #{}", run.0)),
            Page::Overview => body.contains("Overview"),
            Page::Jobs => body.contains("Jobs"),
            Page::Runs(..) => body.contains("Runs") && body.contains("/runs/"),
        };
        anyhow::ensure!(looks_right, "{} is not the page expected", self.path());
        Ok(())
    }

    /// The statements the page's handler runs (web/src/pages/), in order, on `conn`.
    async fn baseline(self, conn: &mut PgConnection) -> anyhow::Result<()> {
        let now = Utc::now();
        match self {
            Page::Overview => {
                db::web::abilities(conn).await?;
                db::web::active(conn).await?;
                db::web::troubled(conn, now - chrono::Duration::hours(24)).await?;
                let unhealthy = db::web::JobPage {
                    healthy: Some(false),
                    size: 50,
                    ..Default::default()
                };
                db::web::jobs_page(conn, &unhealthy).await?;
                db::web::upcoming(conn, now + chrono::Duration::hours(24)).await?;
                db::hosts::list(&mut *conn).await?;
                let midnight = now
                    .date_naive()
                    .and_hms_opt(0, 0, 0)
                    .map_or(now, |t| t.and_utc());
                db::web::status_counts(conn, midnight).await?;
            }
            Page::Jobs => {
                db::web::abilities(conn).await?;
                let first = db::web::JobPage {
                    size: 100,
                    ..Default::default()
                };
                let jobs = db::web::jobs_page(conn, &first).await?;
                anyhow::ensure!(jobs.len() == 100, "{} jobs on the first page", jobs.len());
            }
            Page::Runs(before, by_job) => {
                let page = db::web::RunPage {
                    before,
                    project: by_job.then(|| JOB.0.to_string()),
                    name: by_job.then(|| JOB.1.to_string()),
                    size: 50,
                    ..Default::default()
                };
                let runs = db::web::runs_page(conn, &page).await?;
                anyhow::ensure!(!runs.is_empty(), "no run on the page");
            }
            Page::Run(run) => {
                db::runs::one(conn, run).await?.context("the long run")?;
                db::web::run_facts(conn, run).await?;
                db::web::attempts(conn, run).await?;
                db::web::abilities(conn).await?;
                let start = db::logs::tail_start(conn, run, None, TAIL)
                    .await?
                    .unwrap_or(0);
                db::logs::list(conn, run, start, None, i64::from(TAIL)).await?;
            }
            Page::LogText(run, lines) => {
                db::runs::one(conn, run).await?.context("the long run")?;
                let (mut after, mut read) = (0, 0);
                loop {
                    let rows = db::logs::list(conn, run, after, None, DOWNLOAD_BATCH).await?;
                    let Some(last) = rows.last() else { break };
                    after = last.seq;
                    read += rows.len();
                }
                anyhow::ensure!(read == lines, "read {read} of {lines} lines");
            }
        }
        Ok(())
    }
}

async fn pages_table(
    http: &reqwest::Client,
    base: &str,
    persons: &mut [Person],
    pages: &[Page],
    o: &Options,
    filled: Duration,
) -> anyhow::Result<()> {
    // [person][page] → (page ms, baseline ms).
    let mut samples = vec![vec![(Vec::new(), Vec::new()); pages.len()]; persons.len()];
    // One round unmeasured: connections, prepared statements, caches.
    for round in 0..=o.rounds {
        for (p, person) in persons.iter_mut().enumerate() {
            for (k, page) in pages.iter().enumerate() {
                let t = Instant::now();
                page.fetch(http, base, &person.cookie)
                    .await
                    .with_context(|| format!("as {}", person.label))?;
                let fetched = t.elapsed();
                let t = Instant::now();
                page.baseline(&mut person.conn)
                    .await
                    .with_context(|| format!("{} baseline as {}", page.path(), person.label))?;
                let direct = t.elapsed();
                if round > 0 {
                    samples[p][k].0.push(fetched.as_secs_f64() * 1000.0);
                    samples[p][k].1.push(direct.as_secs_f64() * 1000.0);
                }
            }
        }
    }

    println!(
        "Web dashboard: pages over HTTP with {} jobs in {} projects and {} runs (filled and \
         vacuumed in {:.0} s), {} rounds, against the same statements run directly as the same \
         person\n",
        o.projects * o.per_project,
        o.projects,
        o.runs,
        filled.as_secs_f64(),
        o.rounds
    );
    println!(
        "| page | person | HTTP p50 | HTTP p99 | statements p50 | statements p99 | ratio p50 |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|");
    for (k, page) in pages.iter().enumerate() {
        for (p, person) in persons.iter().enumerate() {
            let (fetched, direct) = &samples[p][k];
            let (f, d) = (percentiles(fetched.clone()), percentiles(direct.clone()));
            println!(
                "| {} | {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.2}× |",
                page.label(),
                person.label,
                f.p50,
                f.p99,
                d.p50,
                d.p99,
                f.p50 / d.p50
            );
        }
    }
    Ok(())
}

/// This process's resident set, in kB (`VmRSS` of /proc/self/status).
fn rss_kb() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS in /proc/self/status")
}

/// One event stream's client: a real connection, `GET path` with the cookie; says when the
/// answer's head has come (`ready`) and when each `event: changed` arrives.
async fn stream_client(
    addr: SocketAddr,
    path: &'static str,
    cookie: String,
    ready: mpsc::UnboundedSender<()>,
    heard: mpsc::UnboundedSender<Instant>,
) -> anyhow::Result<()> {
    const NEEDLE: &str = "event: changed";
    let mut socket = TcpStream::connect(addr).await?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nAccept: text/event-stream\r\n\r\n"
    );
    socket.write_all(request.as_bytes()).await?;
    let mut buf = [0u8; 2048];
    let mut seen = String::new();
    let mut head = false;
    loop {
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        let at = Instant::now();
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        if !head && seen.contains("\r\n\r\n") {
            anyhow::ensure!(
                seen.starts_with("HTTP/1.1 200"),
                "{path}: {}",
                seen.lines().next().unwrap_or_default()
            );
            head = true;
            let _ = ready.send(());
        }
        while let Some(i) = seen.find(NEEDLE) {
            let _ = heard.send(at);
            seen.drain(..i + NEEDLE.len());
        }
        if seen.len() > NEEDLE.len() {
            let keep = seen.len() - NEEDLE.len();
            let cut = (keep..seen.len())
                .find(|&i| seen.is_char_boundary(i))
                .unwrap_or(seen.len());
            seen.drain(..cut);
        }
    }
}

/// The baseline's server: accepts connections, answers each with an event stream's head and
/// holds it open without sending anything.
async fn bare_server(listener: TcpListener, stop: CancellationToken) {
    loop {
        let socket = tokio::select! {
            () = stop.cancelled() => return,
            s = listener.accept() => s,
        };
        let Ok((mut socket, _)) = socket else {
            continue;
        };
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
            if socket.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            tokio::select! {
                () = stop.cancelled() => {}
                _ = socket.read(&mut buf) => {}
            }
        });
    }
}

/// Opens `n` stream clients on `addr` and waits until every one has its answer's head.
async fn open_streams(
    addr: SocketAddr,
    cookie: &str,
    n: usize,
    heard: &mpsc::UnboundedSender<Instant>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<anyhow::Result<()>>>> {
    let (ready_tx, mut ready) = mpsc::unbounded_channel();
    let clients: Vec<_> = (0..n)
        .map(|_| {
            tokio::spawn(stream_client(
                addr,
                "/events",
                cookie.to_string(),
                ready_tx.clone(),
                heard.clone(),
            ))
        })
        .collect();
    for _ in 0..n {
        tokio::time::timeout(Duration::from_secs(30), ready.recv())
            .await
            .context("an event stream did not open within 30 s")?
            .context("the stream clients ended")?;
    }
    Ok(clients)
}

async fn live_table(
    cluster: &pgembed::Cluster,
    owner: &Client,
    addr: SocketAddr,
    cookie: &str,
    o: &Options,
) -> anyhow::Result<()> {
    let stop = CancellationToken::new();
    let bare = TcpListener::bind("127.0.0.1:0").await?;
    let bare_addr = bare.local_addr()?;
    tokio::spawn(bare_server(bare, stop.clone()));
    let (ignored, _keep) = mpsc::unbounded_channel();
    let (heard_tx, mut heard) = mpsc::unbounded_channel();

    let before = rss_kb()?;
    let bare_clients = open_streams(bare_addr, cookie, o.clients, &ignored).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let with_bare = rss_kb()?;
    let clients = open_streams(addr, cookie, o.clients, &heard_tx).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let with_streams = rss_kb()?;

    let url = cluster.url(DATABASE);
    let mut listener =
        db::Listener::connect(&url, "sisyphus-bench listen", &[db::web::CHANNEL]).await?;
    let job = JobRef::new("P0", "job0");
    let (mut calls, mut floor, mut delivery, mut after_commit) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for event in 0..=o.events {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let asked = Instant::now();
        owner.run_now(&job).await?;
        let committed = asked.elapsed();
        let notified = tokio::time::timeout(Duration::from_secs(10), listener.recv())
            .await
            .context("no NOTIFY within 10 s")??;
        let floor_ms = asked.elapsed().as_secs_f64() * 1000.0;
        anyhow::ensure!(notified.payload == "runs", "heard {}", notified.payload);
        let mut times = Vec::with_capacity(o.clients);
        for _ in 0..o.clients {
            let at = tokio::time::timeout(Duration::from_secs(10), heard.recv())
                .await
                .context("a stream heard no `changed` within 10 s")?
                .context("the stream clients ended")?;
            times.push(at);
        }
        // The first run warms the path up (plans, buffers); it is not counted.
        if event == 0 {
            continue;
        }
        calls.push(committed.as_secs_f64() * 1000.0);
        floor.push(floor_ms);
        for at in times {
            let ms = (at - asked).as_secs_f64() * 1000.0;
            delivery.push(ms);
            after_commit.push(ms - committed.as_secs_f64() * 1000.0);
        }
    }
    let after_events = rss_kb()?;
    stop.cancel();
    for c in clients.into_iter().chain(bare_clients) {
        c.abort();
    }

    let n = o.clients as f64;
    println!(
        "Web dashboard: {} event streams (`GET /events`, real TCP connections) on one server; \
         {} runs made by `run_now` half a second apart\n",
        o.clients, o.events
    );
    println!("| memory (this process's VmRSS) | total | per connection |");
    println!("|---|---:|---:|");
    println!(
        "| {} bare TCP connections held by a plain accept loop, both ends (baseline) | {} kB | {:.1} kB |",
        o.clients,
        with_bare as i64 - before as i64,
        (with_bare as f64 - before as f64) / n
    );
    println!(
        "| {} dashboard event streams, both ends | {} kB | {:.1} kB |",
        o.clients,
        with_streams as i64 - with_bare as i64,
        (with_streams as f64 - with_bare as f64) / n
    );
    println!(
        "| the same after {} events delivered | {} kB | {:.1} kB |",
        o.events,
        after_events as i64 - with_bare as i64,
        (after_events as f64 - with_bare as f64) / n
    );
    println!();
    let (c, f, d, a) = (
        percentiles(calls),
        percentiles(floor),
        percentiles(delivery),
        percentiles(after_commit),
    );
    println!("| from `run_now` called to … | p50 | p99 | max |");
    println!("|---|---:|---:|---:|");
    println!(
        "| its commit acknowledged | {:.1} ms | {:.1} ms | {:.1} ms |",
        c.p50, c.p99, c.max
    );
    println!(
        "| a plain LISTEN connection's notification (baseline) | {:.1} ms | {:.1} ms | {:.1} ms |",
        f.p50, f.p99, f.max
    );
    println!(
        "| each of {} streams' `event: changed` | {:.1} ms | {:.1} ms | {:.1} ms |",
        o.clients, d.p50, d.p99, d.max
    );
    println!(
        "| … counted from the commit acknowledged | {:.1} ms | {:.1} ms | {:.1} ms |",
        a.p50, a.p99, a.max
    );
    Ok(())
}
