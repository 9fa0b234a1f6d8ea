//! Fleet tests: several guardians, each a host in its own network namespace (see `net`), one
//! real PostgreSQL listening on the machine's side of every host's link, and the failures a
//! fleet meets: a link cut, guardians killed with SIGKILL, the database restarted, the
//! scheduler failed over. Each test prints what it counted so a reader sees what was proved.
//!
//! A custom runner (`harness = false`): network namespaces need root, and a test that cannot
//! run here must be reported as skipped (in the `ignored` column), never as passed.

mod net;
mod partition;
mod poison;
mod storm;
mod witness;

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use sisyphus_client::Client;
use sqlx::PgPool;

use crate::net::Host;

type Test = fn(&mut Fleet);

const TESTS: [(&str, Test); 5] = [
    ("partition::a_cut_guardian_fences_and_rejoins", |f| {
        block_on(partition::a_cut_guardian_fences_and_rejoins(f))
    }),
    ("storm::guardians_killed_at_random", |f| {
        block_on(storm::run(f, storm::Trouble::None))
    }),
    ("storm::database_restarted_mid_storm", |f| {
        block_on(storm::run(f, storm::Trouble::DatabaseRestart))
    }),
    ("storm::scheduler_failed_over_mid_storm", |f| {
        block_on(storm::run(f, storm::Trouble::SchedulerFailover))
    }),
    (
        "poison::poison_jobs_beside_good_ones_with_guardians_killed",
        |f| block_on(poison::run(f)),
    ),
];

/// Checks of the checkers, runnable anywhere.
const PURE: [(&str, fn()); 1] = [(
    "witness::a_run_killed_right_after_starting_is_no_overlap",
    witness::a_run_killed_right_after_starting_is_no_overlap,
)];

fn main() -> ExitCode {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wanted = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    let pure = PURE.iter().filter(|(name, _)| wanted(name)).count();
    let fleet = TESTS.iter().filter(|(name, _)| wanted(name)).count();
    println!("\nrunning {} tests", pure + fleet);
    let started = Instant::now();
    let (mut passed, mut failed) = (0, 0);
    for (name, check) in PURE {
        if !wanted(name) {
            continue;
        }
        let ok = std::panic::catch_unwind(check).is_ok();
        if ok {
            passed += 1;
        } else {
            failed += 1;
        }
        println!("test {name} ... {}", if ok { "ok" } else { "FAILED" });
    }
    let selected: Vec<(&str, Test)> = TESTS
        .iter()
        .copied()
        .filter(|(name, _)| wanted(name))
        .collect();
    let filtered_out = TESTS.len() + PURE.len() - selected.len() - pure;
    if selected.is_empty() {
        return summary(passed, failed, 0, filtered_out, started);
    }
    if let Some(why) = net::unavailable() {
        for (name, _) in &selected {
            println!("test {name} ... skipped: {why}");
        }
        return summary(passed, failed, selected.len(), filtered_out, started);
    }
    let mut fleet = Fleet::start();
    for (name, test) in selected {
        println!("test {name} ...");
        let t = Instant::now();
        match std::panic::catch_unwind(AssertUnwindSafe(|| test(&mut fleet))) {
            Ok(()) => {
                passed += 1;
                println!("test {name} ... ok ({:.1} s)", t.elapsed().as_secs_f64());
            }
            Err(_) => {
                failed += 1;
                println!(
                    "test {name} ... FAILED ({:.1} s)",
                    t.elapsed().as_secs_f64()
                );
            }
        }
    }
    summary(passed, failed, 0, filtered_out, started)
}

fn summary(
    passed: usize,
    failed: usize,
    skipped: usize,
    filtered_out: usize,
    started: Instant,
) -> ExitCode {
    let verdict = if failed == 0 { "ok" } else { "FAILED" };
    println!(
        "\ntest result: {verdict}. {passed} passed; {failed} failed; {skipped} ignored; \
         0 measured; {filtered_out} filtered out; finished in {:.2}s\n",
        started.elapsed().as_secs_f64()
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn block_on<F: std::future::Future<Output = ()>>(future: F) {
    tokio::runtime::Runtime::new()
        .expect("tokio runtime")
        .block_on(future)
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// The PostgreSQL every test host reaches, shared by the tests (which run one after another).
pub struct Fleet {
    pub cluster: pgembed::Cluster,
}

impl Fleet {
    fn start() -> Fleet {
        let settings = [
            // Every address, so that each host's link (created later) reaches it.
            ("listen_addresses", "*"),
            // Notice a partitioned host's sessions within seconds, not hours.
            ("tcp_keepalives_idle", "2"),
            ("tcp_keepalives_interval", "1"),
            ("tcp_keepalives_count", "2"),
        ];
        let options = pgembed::Options {
            settings: settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            trusted_networks: vec!["10.77.0.0/16".into()],
            ..pgembed::Options::default()
        };
        Fleet {
            cluster: pgembed::Cluster::start(options).expect("start a private PostgreSQL"),
        }
    }

    pub fn port(&self) -> u16 {
        self.cluster.port()
    }

    /// A fresh, migrated database for one test.
    pub async fn database(&self) -> Database {
        let name = format!("fleet_{}", NEXT.fetch_add(1, Ordering::SeqCst));
        let admin = PgPool::connect(&self.cluster.url("postgres"))
            .await
            .expect("connect admin");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .expect("create database");
        admin.close().await;
        let url = self.cluster.url(&name);
        sisyphus_client::db::migrate(&url).await.expect("migrate");
        let pool = PgPool::connect(&url).await.expect("connect");
        Database {
            client: Client::from_pool(pool.clone()),
            pool,
            url,
            name,
        }
    }
}

/// One test's database, seen from the machine (loopback).
pub struct Database {
    pub name: String,
    pub url: String,
    pub pool: PgPool,
    pub client: Client,
}

impl Database {
    /// A least-privilege login for a daemon (issue 15), made with `sisyctl service add` as an
    /// operator would: every daemon of the fleet tests works under one, never as the owner.
    /// Returns the login's name (`wanted`, with what a role name cannot hold replaced).
    pub fn service_login(&self, kind: &str, wanted: &str, host: Option<&str>) -> String {
        let login: String = wanted
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(63)
            .collect();
        let mut args = vec!["service", "add", kind, login.as_str()];
        if let Some(host) = host {
            args.extend(["--hosts", host]);
        }
        let out = Command::new(env!("CARGO_BIN_EXE_sisyctl"))
            .args(&args)
            .env("SISYPHUS_DATABASE_URL", &self.url)
            .output()
            .expect("run sisyctl");
        assert!(
            out.status.success(),
            "sisyctl service add {kind} {login}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        login
    }
}

/// `url` (the owner's, `postgres://postgres@…`) with another login.
fn with_login(url: &str, login: &str) -> String {
    match url.strip_prefix("postgres://postgres@") {
        Some(rest) => format!("postgres://{login}@{rest}"),
        None => url.to_string(),
    }
}

/// A fresh temporary directory.
pub fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "sisyphus-fleet-{what}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A `sisyphus` daemon process; killed with SIGKILL when dropped. Its stderr is appended to
/// `log` across restarts.
pub struct Daemon {
    child: Child,
    started: Instant,
    command: Vec<String>,
    host: Option<String>,
    pub log: PathBuf,
}

impl Daemon {
    /// `sisyphus guardian` inside `host`, reaching the database through the host's link.
    pub fn guardian(host: &Host, port: u16, db: &Database, dir: &Path, extra: &[&str]) -> Daemon {
        let login = db.service_login(
            "guardian",
            &format!("g_{}_{}", db.name, host.name),
            Some(&host.name),
        );
        let url = with_login(&host.database_url(port, &db.name), &login);
        let mut args: Vec<String> = ["guardian", "--name", &host.name, "--database-url", &url]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for (flag, sub) in [("--log-dir", "logs"), ("--spool-dir", "spool")] {
            args.push(flag.into());
            args.push(dir.join(&host.name).join(sub).display().to_string());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let log = dir.join(format!("{}.log", host.name));
        let child = Self::spawn(Some(host), &args, &log);
        Daemon {
            child,
            started: Instant::now(),
            command: args,
            host: Some(host_key(host)),
            log,
        }
    }

    /// `sisyphus scheduler --name NAME` on the machine itself.
    pub fn scheduler(db: &Database, name: &str, dir: &Path) -> Daemon {
        let login = db.service_login("scheduler", &format!("s_{}", db.name), None);
        let url = with_login(&db.url, &login);
        let args: Vec<String> = ["scheduler", "--name", name, "--database-url", &url]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let log = dir.join(format!("{name}.log"));
        let child = Self::spawn(None, &args, &log);
        Daemon {
            child,
            started: Instant::now(),
            command: args,
            host: None,
            log,
        }
    }

    fn spawn(host: Option<&Host>, args: &[String], log: &Path) -> Child {
        let program = PathBuf::from(env!("CARGO_BIN_EXE_sisyphus"));
        let mut cmd = match host {
            Some(h) => h.command(&program),
            None => Command::new(&program),
        };
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("daemon log");
        cmd.args(args)
            .env_remove("SISYPHUS_DATABASE_URL")
            .env("RUST_LOG", "info,sqlx=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start daemon")
    }

    /// Starts the same command again (after a kill or an exit) in the same place.
    pub fn respawn(&mut self, hosts: &[Host]) {
        let host = self
            .host
            .as_ref()
            .and_then(|k| hosts.iter().find(|h| &host_key(h) == k));
        self.child = Self::spawn(host, &self.command, &self.log);
        self.started = Instant::now();
    }

    /// How long ago it was (re)started.
    pub fn age(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn host_key(host: &Host) -> String {
    host.gateway.clone()
}

/// Seconds since the Unix epoch, as the witness files and `extract(epoch …)` write them.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Polls `check` every 100 ms until it yields Some, or panics after `limit` naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, limit: std::time::Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
