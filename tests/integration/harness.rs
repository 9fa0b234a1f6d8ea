//! The test harness: one private PostgreSQL cluster per test binary (started on first use from
//! the machine's binaries, as `nobody` when we are root), a migrated template database, and a
//! fresh database per test copied from it.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use pgembed::Cluster;
use sisyphus_client::{Client, JobDefinition, JobRef};
use sqlx::PgPool;

const TEMPLATE: &str = "sisyphus_template";
/// The daemons' least-privilege logins (issue 15): every daemon a test starts logs in as one of
/// these, never as the owner, unless `SISYPHUS_TEST_DAEMONS_AS_OWNER` is set (for comparisons).
const SCHEDULER_LOGIN: &str = "test_scheduler";
const DISPATCHER_LOGIN: &str = "test_dispatcher";
const WEB_LOGIN: &str = "test_web";

struct Shared {
    port: u16,
    // Kept alive for the whole binary; the watchdog stops it when the process exits.
    _cluster: Mutex<Cluster>,
}

static SHARED: tokio::sync::OnceCell<Shared> = tokio::sync::OnceCell::const_new();
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

async fn shared() -> &'static Shared {
    SHARED
        .get_or_init(|| async {
            let cluster =
                tokio::task::spawn_blocking(|| Cluster::start(pgembed::Options::default()))
                    .await
                    .expect("cluster start task")
                    .expect("start a private PostgreSQL");
            let port = cluster.port();
            let admin = admin_url(port);
            let pool = PgPool::connect(&admin)
                .await
                .expect("connect to the test cluster");
            sqlx::query(&format!("CREATE DATABASE {TEMPLATE}"))
                .execute(&pool)
                .await
                .expect("create template");
            pool.close().await;
            sisyphus_client::db::migrate(&db_url(port, TEMPLATE))
                .await
                .expect("migrate the template");
            // The scheduler's and the dispatcher's logins (roles are the cluster's, so once).
            for (kind, login) in [
                ("scheduler", SCHEDULER_LOGIN),
                ("dispatcher", DISPATCHER_LOGIN),
                ("web", WEB_LOGIN),
            ] {
                add_service(&db_url(port, TEMPLATE), kind, login, None);
            }
            Shared {
                port,
                _cluster: Mutex::new(cluster),
            }
        })
        .await
}

fn admin_url(port: u16) -> String {
    db_url(port, "postgres")
}

fn db_url(port: u16, db: &str) -> String {
    format!("postgres://postgres@127.0.0.1:{port}/{db}")
}

/// A fresh database for one test.
pub struct TestDb {
    pub url: String,
    pub pool: PgPool,
    pub client: Client,
}

impl TestDb {
    /// A new database with the schema migrated.
    pub async fn new() -> TestDb {
        Self::create(true).await
    }

    /// A new, empty database (no schema).
    pub async fn empty() -> TestDb {
        Self::create(false).await
    }

    async fn create(migrated: bool) -> TestDb {
        let shared = shared().await;
        let name = format!(
            "t_{}_{}",
            std::process::id(),
            NEXT_DB.fetch_add(1, Ordering::SeqCst)
        );
        let admin = PgPool::connect(&admin_url(shared.port))
            .await
            .expect("connect admin");
        let sql = if migrated {
            format!("CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
        } else {
            format!("CREATE DATABASE {name}")
        };
        // Copying a template fails while another copy of it is being made; try again.
        let mut tries = 0;
        loop {
            match sqlx::query(&sql).execute(&admin).await {
                Ok(_) => break,
                Err(e) if tries < 50 && e.to_string().contains("being accessed") => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => panic!("create database {name}: {e}"),
            }
        }
        admin.close().await;
        let url = db_url(shared.port, &name);
        let pool = PgPool::connect(&url).await.expect("connect test db");
        let client = Client::from_pool(pool.clone());
        TestDb { url, pool, client }
    }

    /// A pool logged in as a daemon's least-privilege login, as the daemons are (a guardian's
    /// bound to host name `host`), for tests that drive a daemon's parts in process.
    pub async fn service_pool(&self, kind: &str, host: &str) -> PgPool {
        let args = [kind.to_string(), "--name".to_string(), host.to_string()];
        PgPool::connect(&service_url(&self.url, &args))
            .await
            .expect("connect as a service login")
    }

    /// Runs `sisyctl ARGS` against this database.
    pub fn sisyctl(&self, args: &[&str]) -> Output {
        sisyctl_with_url(Some(&self.url), args)
    }

    /// `SELECT count(*) FROM sisyphus.<table>` (with an optional WHERE clause).
    pub async fn count(&self, table_and_where: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM sisyphus.{table_and_where}"))
            .fetch_one(&self.pool)
            .await
            .expect("count")
    }
}

/// Runs `sisyctl` with the database URL in the environment (or none).
pub fn sisyctl_with_url(url: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(bin("sisyctl"));
    cmd.args(args).env_remove("SISYPHUS_DATABASE_URL");
    if let Some(url) = url {
        cmd.env("SISYPHUS_DATABASE_URL", url);
    }
    cmd.output().expect("run sisyctl")
}

/// Runs `sisyctl ARGS` against `url` with `input` on its stdin.
pub fn sisyctl_stdin(url: &str, args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(bin("sisyctl"))
        .args(args)
        .env("SISYPHUS_DATABASE_URL", url)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run sisyctl");
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    child.wait_with_output().expect("wait for sisyctl")
}

/// The path of one of this package's binaries.
pub fn bin(name: &str) -> PathBuf {
    match name {
        "sisyctl" => PathBuf::from(env!("CARGO_BIN_EXE_sisyctl")),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_sisyphus")),
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Writes a jobs file into a temporary directory and returns its path.
pub fn jobs_file(text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sisyphus-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!(
        "jobs-{}.toml",
        NEXT_DB.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::write(&path, text).expect("write jobs file");
    path
}

/// A daemon started as a real process; killed (SIGKILL) when dropped.
pub struct Daemon {
    pub child: std::process::Child,
    pub dir: PathBuf,
    pub log: PathBuf,
}

impl Daemon {
    /// `sisyphus guardian --name NAME` with short leases for tests, its own log and spool dirs,
    /// plus `extra` arguments.
    pub fn guardian(url: &str, name: &str, extra: &[&str]) -> Daemon {
        Self::guardian_with_env(url, name, extra, &[])
    }

    /// [`Daemon::guardian`] with `env` added to the guardian's environment.
    pub fn guardian_with_env(
        url: &str,
        name: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Daemon {
        let dir = std::env::temp_dir().join(format!(
            "sisyphus-g-{}-{}-{name}",
            std::process::id(),
            NEXT_DB.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("guardian dir");
        let defaults = [
            ("--lease", "4s"),
            ("--heartbeat", "1s"),
            ("--grace", "1s"),
            ("--drain-timeout", "2s"),
        ];
        let mut args: Vec<String> = vec!["guardian".into(), "--name".into(), name.into()];
        for (flag, value) in defaults {
            if !extra.contains(&flag) {
                args.push(flag.into());
                args.push(value.into());
            }
        }
        for (flag, sub) in [("--log-dir", "logs"), ("--spool-dir", "spool")] {
            if !extra.contains(&flag) {
                args.push(flag.into());
                args.push(dir.join(sub).display().to_string());
            }
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        Self::spawn_with(url, &args, dir, env)
    }

    /// `sisyphus scheduler`.
    pub fn scheduler(url: &str) -> Daemon {
        Self::scheduler_with(url, &[])
    }

    /// `sisyphus scheduler` with `extra` arguments.
    pub fn scheduler_with(url: &str, extra: &[&str]) -> Daemon {
        let mut args = vec![
            "scheduler".to_string(),
            "--name".into(),
            "test-scheduler".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        Self::spawn(url, &args, std::env::temp_dir())
    }

    /// `sisyphus dispatcher --config CONFIG` with `env` set, plus `extra` arguments; its log is
    /// `self.log`.
    pub fn dispatcher(
        url: &str,
        config: &std::path::Path,
        env: &[(&str, &str)],
        extra: &[&str],
    ) -> Daemon {
        let mut args = vec![
            "dispatcher".to_string(),
            "--config".into(),
            config.display().to_string(),
            "--poll".into(),
            "200ms".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        Self::spawn_with(url, &args, temp_dir("dispatcher"), env)
    }

    fn spawn(url: &str, args: &[String], dir: PathBuf) -> Daemon {
        Self::spawn_with(url, args, dir, &[])
    }

    fn spawn_with(url: &str, args: &[String], dir: PathBuf, env: &[(&str, &str)]) -> Daemon {
        let url = service_url(url, args);
        let log_path = dir.join(format!(
            "daemon-{}.log",
            NEXT_DB.fetch_add(1, Ordering::SeqCst)
        ));
        let log = std::fs::File::create(&log_path).expect("daemon log");
        let child = Command::new(bin("sisyphus"))
            .args(args)
            .envs(env.iter().copied())
            .env("SISYPHUS_DATABASE_URL", &url)
            .env("RUST_LOG", "info,sqlx=warn")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start daemon");
        Daemon {
            child,
            dir,
            log: log_path,
        }
    }

    /// What the daemon has logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// SIGTERM, then wait.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid()),
            nix::sys::signal::Signal::SIGTERM,
        );
        self.child.wait().expect("wait daemon")
    }

    /// SIGKILL, then wait.
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

/// The URL a daemon started with `args` logs in with: the owner's URL of a test database becomes
/// its service login's — a guardian's bound to its `--name` in that database (created here with
/// `sisyctl service add`, as an operator would), the scheduler's and dispatcher's made once.
/// Any other URL (a TLS test's, a wrong one) is left as it is.
pub fn service_url(url: &str, args: &[String]) -> String {
    const OWNER: &str = "postgres://postgres@";
    let Some(rest) = url.strip_prefix(OWNER) else {
        return url.to_string();
    };
    if std::env::var_os("SISYPHUS_TEST_DAEMONS_AS_OWNER").is_some() {
        return url.to_string();
    }
    let login = match args.first().map(String::as_str) {
        Some("scheduler") => SCHEDULER_LOGIN.to_string(),
        Some("dispatcher") => DISPATCHER_LOGIN.to_string(),
        Some("web") => WEB_LOGIN.to_string(),
        Some("guardian") => {
            let Some(name) = args
                .iter()
                .position(|a| a == "--name")
                .and_then(|i| args.get(i + 1))
            else {
                return url.to_string();
            };
            let db = rest
                .rsplit('/')
                .next()
                .and_then(|d| d.split('?').next())
                .unwrap_or("db");
            let login: String = format!("g_{db}_{name}")
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .take(63)
                .collect();
            add_service(url, "guardian", &login, Some(name));
            login
        }
        _ => return url.to_string(),
    };
    format!("postgres://{login}@{rest}")
}

/// `sisyctl service add KIND LOGIN [--hosts HOST]` as the owner.
fn add_service(owner_url: &str, kind: &str, login: &str, host: Option<&str>) {
    let mut args = vec!["service", "add", kind, login];
    if let Some(host) = host {
        args.extend(["--hosts", host]);
    }
    let out = sisyctl_with_url(Some(owner_url), &args);
    assert!(
        out.status.success(),
        "sisyctl service add {kind} {login}: {}",
        stderr(&out)
    );
}

/// A new directory under the system's temp dir, unique to this test process and call.
pub fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "sisyphus-{what}-{}-{}",
        std::process::id(),
        NEXT_DB.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Polls `check` every 50 ms until it yields Some, or panics after `limit` naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, limit: std::time::Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A run's status by id.
pub async fn status(pool: &PgPool, run: i64) -> String {
    sqlx::query_scalar("SELECT status::text FROM sisyphus.runs WHERE id = $1")
        .bind(run)
        .fetch_one(pool)
        .await
        .expect("status")
}

/// Waits until the run is running and returns its pid.
pub async fn running_pid(pool: &PgPool, run: i64) -> i32 {
    wait_for(
        &format!("run {run} to run"),
        std::time::Duration::from_secs(15),
        || async {
            sqlx::query_scalar::<_, Option<i32>>(
                "SELECT pid FROM sisyphus.runs WHERE id = $1 AND status = 'running'",
            )
            .bind(run)
            .fetch_one(pool)
            .await
            .ok()
            .flatten()
        },
    )
    .await
}

/// Whether a process is gone (or only a zombie waiting for its parent).
pub fn process_gone(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z"))
}

/// Applies `def` and asks for a run now; returns the run id.
pub async fn run_now(db: &TestDb, def: JobDefinition) -> i64 {
    let job = JobRef::new(
        def.project.clone().unwrap_or_default(),
        def.name.clone().unwrap_or_default(),
    );
    db.client.apply(&[def], false).await.expect("apply");
    db.client.run_now(&job).await.expect("run now")[0].0
}

/// Waits until the run has ended; returns (status, summary, error, exit code).
pub async fn ended(
    db: &TestDb,
    run: i64,
    limit: Duration,
) -> (String, Option<String>, Option<String>, Option<i32>) {
    wait_for(&format!("run {run} to end"), limit, || async {
        let row: (String, Option<String>, Option<String>, Option<i32>, bool) = sqlx::query_as(
            "SELECT status::text, summary, error, exit_code, finished_at IS NOT NULL FROM sisyphus.runs WHERE id = $1",
        )
        .bind(run)
        .fetch_one(&db.pool)
        .await
        .ok()?;
        row.4.then_some((row.0, row.1, row.2, row.3))
    })
    .await
}
