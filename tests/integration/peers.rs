//! The services notifications go to, as real processes or real endpoints on loopback:
//!
//! - [`SmtpServer`]: aiosmtpd (Python, from PyPI, installed into `target/test-venv` on first
//!   use) with AUTH, saving every message it accepts as a file; the same virtualenv gets
//!   ll.sisyphus (`ll-xist`) for the tests of unmodified ll.sisyphus jobs ([`python_with`]);
//! - [`Capture`]: an HTTP endpoint that records each request (method, path, headers, body)
//!   and answers 200 — standing in for Mattermost, Sentry and webhook receivers, which we
//!   cannot install; the tests check that it received exactly what the real service would.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

static VENV: Mutex<()> = Mutex::new(());

/// The Python of the tests' virtualenv (`target/test-venv`, made once per checkout), with
/// `requirement` installed from PyPI unless `import` already imports.
pub fn python_with(import: &str, requirement: &str) -> PathBuf {
    let _one_at_a_time = VENV.lock().unwrap_or_else(|e| e.into_inner());
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-venv");
    let python = venv.join("bin/python");
    let has_it = |py: &Path| {
        Command::new(py)
            .args(["-c", &format!("import {import}")])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if has_it(&python) {
        return python;
    }
    if !python.exists() {
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("python3 -m venv");
        assert!(made.success(), "python3 -m venv {} failed", venv.display());
    }
    let installed = Command::new(venv.join("bin/pip"))
        .args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            requirement,
        ])
        .status()
        .expect("pip install");
    assert!(installed.success(), "pip install {requirement} failed");
    python
}

/// The Python of a virtualenv holding aiosmtpd.
fn python() -> PathBuf {
    python_with("aiosmtpd", "aiosmtpd==1.4.6")
}

/// The Python of a virtualenv holding ll.sisyphus (the real package, `ll-xist` on PyPI).
pub fn python_with_ll_sisyphus() -> PathBuf {
    python_with("ll.sisyphus", "ll-xist==5.84")
}

/// A running aiosmtpd; killed when dropped.
pub struct SmtpServer {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
}

impl SmtpServer {
    /// Starts the server on `port`, accepting `user` with `password`; returns once it listens.
    pub fn start(port: u16, dir: &Path, user: &str, password: &str) -> SmtpServer {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/integration/smtp_server.py");
        let mut child = Command::new(python())
            .arg(script)
            .arg(port.to_string())
            .arg(dir)
            .arg(user)
            .env("SMTP_TEST_PASSWORD", password)
            .env("PYTHONWARNINGS", "ignore")
            .stdout(Stdio::piped())
            .spawn()
            .expect("start aiosmtpd");
        let stdout = child.stdout.take().expect("stdout");
        let mut first = String::new();
        BufReader::new(stdout)
            .read_line(&mut first)
            .expect("read the server's first line");
        assert_eq!(first.trim(), "ready", "the SMTP server did not start");
        SmtpServer {
            child,
            port,
            dir: dir.to_path_buf(),
        }
    }

    /// The messages received so far, as raw bytes, oldest first.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        names.retain(|p| p.extension().is_some_and(|x| x == "eml"));
        names.sort();
        names.iter().filter_map(|p| std::fs::read(p).ok()).collect()
    }

    /// Whether a client logged in with the right user and password.
    pub fn authenticated(&self) -> bool {
        self.dir.join("auth-ok").exists()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP request as received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// An HTTP endpoint on loopback that records every request and answers 200 `{}`.
pub struct Capture {
    pub port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Capture {
    pub async fn start() -> Capture {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let store = requests.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let store = store.clone();
                tokio::spawn(async move {
                    if let Some(r) = read_request(&mut stream).await {
                        store.lock().unwrap_or_else(|e| e.into_inner()).push(r);
                    }
                    let _ = stream
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
                        .await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Capture { port, requests }
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The requests to `path` so far.
    pub fn to(&self, path: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }
}

async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split_whitespace();
    let (method, path) = (first.next()?.to_string(), first.next()?.to_string());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}
