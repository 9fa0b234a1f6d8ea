//! Starts a private PostgreSQL cluster from the machine's own binaries.
//!
//! Used by the test suites (one cluster per test binary, a fresh database per test) and by the
//! embedded default (`sisyphus dev`). The binaries are found in `$SISYPHUS_PG_BIN`, else in the
//! newest `/usr/lib/postgresql/<version>/bin`, else next to `pg_config --bindir`.
//!
//! PostgreSQL refuses to run as root. When we are root, `initdb` and `postgres` run as the user
//! `nobody` (or `$SISYPHUS_PG_USER`), and the data directory is handed to that user.
//!
//! The server is started under a small `sh` watchdog that stops it (fast shutdown) as soon as the
//! process that started it is gone, so a test binary that panics or is killed with SIGKILL never
//! leaves a PostgreSQL behind. A temporary cluster's data directory is removed by the watchdog too.
//!
//! With [`Options::tls`] the server also speaks TLS, with a certificate for `localhost`,
//! `127.0.0.1` and `::1` signed by a CA made for the cluster ([`tls`]); clients connect with
//! [`Cluster::tls_url`] (`sslmode=verify-full`, `sslrootcert` = [`Cluster::ca_file`]).

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::unistd::{Gid, Uid, User};

pub mod tls;

/// What can go wrong while finding, initialising or starting PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "no PostgreSQL server binaries found (looked in $SISYPHUS_PG_BIN, /usr/lib/postgresql/*/bin \
         and pg_config --bindir); install them, e.g. `apt-get install -y postgresql`"
    )]
    NoBinaries,
    #[error("running as root, but the user `{0}` to run PostgreSQL as does not exist")]
    NoUser(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{program} failed ({status}): {output}")]
    Command {
        program: String,
        status: String,
        output: String,
    },
    #[error("PostgreSQL did not accept connections within {0:?}; see {1}")]
    StartTimeout(Duration, PathBuf),
    #[error(
        "TLS certificates are made with the `openssl` command, which was not found; install it, \
         e.g. `apt-get install -y openssl`"
    )]
    NoOpenssl,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// How to set up a cluster.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the cluster lives. `None`: a fresh temporary directory, removed when the cluster stops.
    pub data_dir: Option<PathBuf>,
    /// TCP port on 127.0.0.1. `None`: a free port.
    pub port: Option<u16>,
    /// Trade durability for speed (fsync off): right for tests, wrong for anything kept.
    pub fast_and_unsafe: bool,
    /// Extra `-c name=value` server settings (`listen_addresses` among them overrides the
    /// default of loopback only).
    pub settings: Vec<(String, String)>,
    /// Networks (CIDR) whose clients are trusted like loopback, added to `pg_hba.conf` when the
    /// cluster is initialised: for test hosts in network namespaces.
    pub trusted_networks: Vec<String>,
    /// Serve TLS too (`ssl = on`), with a server certificate for `localhost`, `127.0.0.1` and
    /// `::1` signed by a CA made for this cluster (kept in `<data dir>/tls`, reused by a kept
    /// cluster). Connections without TLS are still accepted.
    pub tls: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            data_dir: None,
            port: None,
            fast_and_unsafe: true,
            settings: Vec::new(),
            trusted_networks: Vec::new(),
            tls: false,
        }
    }
}

/// A running (or stopped) private PostgreSQL cluster. Stops the server on drop.
#[derive(Debug)]
pub struct Cluster {
    bin_dir: PathBuf,
    data_dir: PathBuf,
    port: u16,
    owner: Option<(Uid, Gid)>,
    temporary: bool,
    settings: Vec<(String, String)>,
    trusted_networks: Vec<String>,
    tls: Option<tls::Certificates>,
    watchdog: Option<Child>,
}

impl Cluster {
    /// Initialises the data directory if needed and starts the server.
    pub fn start(options: Options) -> Result<Cluster, Error> {
        let bin_dir = find_bin_dir()?;
        let owner = server_owner()?;
        let temporary = options.data_dir.is_none();
        let data_dir = match options.data_dir {
            Some(d) => d,
            None => temp_dir()?,
        };
        let port = match options.port {
            Some(p) => p,
            None => free_port()?,
        };
        let mut settings = vec![
            ("listen_addresses".to_string(), "127.0.0.1".to_string()),
            ("max_connections".to_string(), "400".to_string()),
            (
                "unix_socket_directories".to_string(),
                data_dir.display().to_string(),
            ),
        ];
        if options.fast_and_unsafe {
            for (k, v) in [
                ("fsync", "off"),
                ("synchronous_commit", "off"),
                ("full_page_writes", "off"),
            ] {
                settings.push((k.to_string(), v.to_string()));
            }
        }
        let mut cluster = Cluster {
            bin_dir,
            data_dir,
            port,
            owner,
            temporary,
            settings,
            trusted_networks: options.trusted_networks,
            tls: None,
            watchdog: None,
        };
        cluster.init_if_needed()?;
        if options.tls {
            cluster.set_up_tls()?;
        }
        // The caller's settings last, so that they win over ours.
        cluster.settings.extend(options.settings);
        cluster.start_server()?;
        Ok(cluster)
    }

    /// The port the server listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// A connection URL for `database` as the superuser `postgres` (trust authentication on
    /// loopback only).
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{}", self.port, database)
    }

    /// The certificates of a cluster started with [`Options::tls`].
    pub fn tls(&self) -> Option<&tls::Certificates> {
        self.tls.as_ref()
    }

    /// The CA certificate clients trust to verify this server (`sslrootcert`), when TLS is on.
    pub fn ca_file(&self) -> Option<&Path> {
        self.tls.as_ref().map(|t| t.ca.as_path())
    }

    /// As [`Cluster::url`], but over TLS with the server's certificate verified against
    /// [`Cluster::ca_file`] (`sslmode=verify-full`); None when TLS is off.
    pub fn tls_url(&self, database: &str) -> Option<String> {
        let ca = self.ca_file()?;
        Some(format!(
            "{}?sslmode=verify-full&sslrootcert={}",
            self.url(database),
            query_value(&ca.display().to_string())
        ))
    }

    /// Whether the server process is running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.watchdog.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Stops the server (fast shutdown: sessions are disconnected) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.watchdog.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let _ = child.wait();
        }
    }

    /// Starts the server again after [`Cluster::stop`], on the same port and data.
    pub fn restart(&mut self) -> Result<(), Error> {
        self.stop();
        self.start_server()
    }

    fn init_if_needed(&self) -> Result<(), Error> {
        if self.data_dir.join("PG_VERSION").exists() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.data_dir)
            .map_err(io(format!("creating {}", self.data_dir.display())))?;
        self.hand_over(&self.data_dir)?;
        let mut cmd = self.command("initdb");
        cmd.args(["-D"]).arg(&self.data_dir).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        ]);
        run(cmd, "initdb")?;
        self.trust_networks()
    }

    /// Makes (or, for a kept cluster, reuses) the CA and the server certificate in
    /// `<data dir>/tls`, hands them to the server's user (the key 0600, as PostgreSQL demands),
    /// and turns TLS on.
    fn set_up_tls(&mut self) -> Result<(), Error> {
        let dir = self.data_dir.join("tls");
        let existing = tls::Certificates::in_dir(&dir);
        let files = if existing.exist() {
            existing
        } else {
            tls::generate(&dir)?
        };
        for path in [&dir, &files.ca, &files.cert, &files.key] {
            self.hand_over(path)?;
        }
        for (k, v) in [
            ("ssl", "on".to_string()),
            ("ssl_cert_file", files.cert.display().to_string()),
            ("ssl_key_file", files.key.display().to_string()),
        ] {
            self.settings.push((k.to_string(), v));
        }
        self.tls = Some(files);
        Ok(())
    }

    fn trust_networks(&self) -> Result<(), Error> {
        if self.trusted_networks.is_empty() {
            return Ok(());
        }
        let hba = self.data_dir.join("pg_hba.conf");
        let lines: String = self
            .trusted_networks
            .iter()
            .map(|net| format!("host all all {net} trust\n"))
            .collect();
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&hba)
            .map_err(io(format!("opening {}", hba.display())))?;
        std::io::Write::write_all(&mut file, lines.as_bytes())
            .map_err(io(format!("writing {}", hba.display())))
    }

    fn start_server(&mut self) -> Result<(), Error> {
        let log = self.data_dir.join("server.log");
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c").arg(WATCHDOG).arg("pgembed-watchdog");
        cmd.arg(self.bin_dir.join("postgres"))
            .arg(&self.data_dir)
            .arg(self.port.to_string());
        for (k, v) in &self.settings {
            cmd.arg("-c").arg(format!("{k}={v}"));
        }
        cmd.env("PGEMBED_WATCH", std::process::id().to_string())
            .env("PGEMBED_LOG", &log)
            .env("PGEMBED_REMOVE", if self.temporary { "1" } else { "" })
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.as_owner(&mut cmd);
        // Its own process group, so that a terminal's Ctrl-C reaches us first and we stop the
        // server in order, instead of the server dying half-way through our shutdown.
        cmd.process_group(0);
        let child = cmd
            .spawn()
            .map_err(io("starting the PostgreSQL watchdog"))?;
        self.watchdog = Some(child);
        self.wait_until_ready(Duration::from_secs(60), &log)
    }

    fn wait_until_ready(&mut self, limit: Duration, log: &Path) -> Result<(), Error> {
        let start = Instant::now();
        while start.elapsed() < limit {
            let status = Command::new(self.bin_dir.join("pg_isready"))
                .args([
                    "-q",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "postgres",
                ])
                .status();
            if matches!(status, Ok(s) if s.success()) {
                return Ok(());
            }
            if !self.is_running() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(Error::StartTimeout(limit, log.to_path_buf()))
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin_dir.join(program));
        self.as_owner(&mut cmd);
        cmd
    }

    fn as_owner(&self, cmd: &mut Command) {
        if let Some((uid, gid)) = self.owner {
            cmd.uid(uid.as_raw()).gid(gid.as_raw());
            // Supplementary groups are root's otherwise; clearing them needs `setgroups`, which
            // std does for us when `gid` is set together with `uid`.
        }
    }

    fn hand_over(&self, dir: &Path) -> Result<(), Error> {
        if let Some((uid, gid)) = self.owner {
            nix::unistd::chown(dir, Some(uid), Some(gid)).map_err(|e| Error::Io {
                what: format!("chown {}", dir.display()),
                source: e.into(),
            })?;
        }
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }
}

/// The watchdog: runs postgres in the background and stops it when asked (SIGTERM) or when the
/// starter process is gone; in the latter case it also removes a temporary data directory.
const WATCHDOG: &str = r#"
bin="$1"; data="$2"; port="$3"; shift 3
"$bin" -D "$data" -p "$port" "$@" >>"$PGEMBED_LOG" 2>&1 &
pg=$!
stop() { kill -INT "$pg" 2>/dev/null; wait "$pg"; }
trap 'stop; exit 0' TERM INT HUP
while kill -0 "$pg" 2>/dev/null && [ -d "/proc/$PGEMBED_WATCH" ]; do sleep 0.2; done
stop
# The starter is gone without cleaning up: a temporary cluster's data goes with it.
if [ ! -d "/proc/$PGEMBED_WATCH" ] && [ -n "$PGEMBED_REMOVE" ]; then rm -rf "$data"; fi
"#;

/// Finds the directory holding `postgres`, `initdb` and `pg_isready`.
pub fn find_bin_dir() -> Result<PathBuf, Error> {
    if let Some(dir) = std::env::var_os("SISYPHUS_PG_BIN") {
        let dir = PathBuf::from(dir);
        if dir.join("postgres").exists() {
            return Ok(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    let out = Command::new("pg_config").arg("--bindir").output();
    if let Ok(out) = out {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("postgres").exists() {
            return Ok(dir);
        }
    }
    Err(Error::NoBinaries)
}

fn server_owner() -> Result<Option<(Uid, Gid)>, Error> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    let name = std::env::var("SISYPHUS_PG_USER").unwrap_or_else(|_| "nobody".to_string());
    match User::from_name(&name) {
        Ok(Some(user)) => Ok(Some((user.uid, user.gid))),
        _ => Err(Error::NoUser(name)),
    }
}

fn temp_dir() -> Result<PathBuf, Error> {
    let base = std::env::temp_dir();
    for attempt in 0..100u32 {
        let dir = base.join(format!("pgembed-{}-{}", std::process::id(), attempt));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io(format!("creating {}", dir.display()))(e)),
        }
    }
    Err(io("creating a temporary directory")(std::io::Error::other(
        "too many attempts",
    )))
}

/// Percent-encodes a URL query value (a file path): all but unreserved characters and `/`.
fn query_value(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn free_port() -> Result<u16, Error> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io("finding a free port"))?;
    let port = listener
        .local_addr()
        .map_err(io("finding a free port"))?
        .port();
    Ok(port)
}

fn run(mut cmd: Command, program: &str) -> Result<(), Error> {
    let out = cmd.output().map_err(io(format!("running {program}")))?;
    if out.status.success() {
        return Ok(());
    }
    let mut output = String::from_utf8_lossy(&out.stderr).into_owned();
    output.push_str(&String::from_utf8_lossy(&out.stdout));
    Err(Error::Command {
        program: program.to_string(),
        status: out.status.to_string(),
        output,
    })
}
