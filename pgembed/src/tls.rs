//! TLS for a private cluster: a CA made for it and a server certificate signed by that CA for
//! `localhost`, `127.0.0.1` and `::1`, so that clients can connect with `sslmode=verify-full`.
//!
//! The certificates are made with the machine's `openssl` command, as the server itself is the
//! machine's: no crypto library is built for a test fixture. The CA's private key is deleted as
//! soon as it has signed, so nothing else can ever be signed by a CA that clients trust.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::{io, Error};

/// A CA and a server certificate it signed, as PEM files.
#[derive(Debug, Clone)]
pub struct Certificates {
    /// The CA's certificate: what clients trust (`sslrootcert`).
    pub ca: PathBuf,
    /// The server's certificate (`ssl_cert_file`).
    pub cert: PathBuf,
    /// The server's private key (`ssl_key_file`), mode 0600.
    pub key: PathBuf,
}

impl Certificates {
    /// The files [`generate`] writes in `dir` (which may not exist yet).
    pub fn in_dir(dir: &Path) -> Certificates {
        Certificates {
            ca: dir.join("ca.crt"),
            cert: dir.join("server.crt"),
            key: dir.join("server.key"),
        }
    }

    /// Whether all three files are there (a kept cluster reuses them).
    pub fn exist(&self) -> bool {
        [&self.ca, &self.cert, &self.key]
            .iter()
            .all(|p| p.is_file())
    }
}

/// The names the server certificate is valid for.
pub const SERVER_NAMES: &str = "DNS:localhost, IP:127.0.0.1, IP:::1";

const CONFIG: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = pgembed
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

/// Makes a new CA (its name unique, so two of them never look alike) and a server certificate
/// signed by it in `dir` (created 0700 if missing): `ca.crt`, `server.crt` and `server.key`
/// (0600). Valid for ten years from now; elliptic-curve keys (P-256), which are quick to make.
pub fn generate(dir: &Path) -> Result<Certificates, Error> {
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    set_mode(dir, 0o700)?;
    let files = Certificates::in_dir(dir);
    let config = dir.join("openssl.cnf");
    let ca_key = dir.join("ca.key");
    let csr = dir.join("server.csr");
    let config_text = format!("{CONFIG}subjectAltName = {SERVER_NAMES}\n");
    std::fs::write(&config, config_text).map_err(io(format!("writing {}", config.display())))?;
    let serial = unique();
    let made = (|| {
        openssl(|c| {
            c.args(["req", "-x509", "-config"])
                .arg(&config)
                .args(["-extensions", "ca"])
                .args(EC_KEY)
                .arg("-keyout")
                .arg(&ca_key)
                .arg("-out")
                .arg(&files.ca)
                .args(["-days", "3650", "-subj"])
                .arg(format!("/CN=pgembed CA {serial:x}"));
        })?;
        openssl(|c| {
            c.args(["req", "-new", "-config"])
                .arg(&config)
                .args(EC_KEY)
                .arg("-keyout")
                .arg(&files.key)
                .arg("-out")
                .arg(&csr)
                .args(["-subj", "/CN=localhost"]);
        })?;
        openssl(|c| {
            c.args(["x509", "-req", "-in"])
                .arg(&csr)
                .arg("-CA")
                .arg(&files.ca)
                .arg("-CAkey")
                .arg(&ca_key)
                .arg("-set_serial")
                .arg(format!("0x{serial:x}"))
                .args(["-days", "3650", "-extfile"])
                .arg(&config)
                .args(["-extensions", "server", "-out"])
                .arg(&files.cert);
        })
    })();
    // The CA's key goes whatever happened: no one may sign with it afterwards.
    for leftover in [&ca_key, &csr, &config] {
        let _ = std::fs::remove_file(leftover);
    }
    made?;
    set_mode(&files.key, 0o600)?;
    set_mode(&files.cert, 0o644)?;
    set_mode(&files.ca, 0o644)?;
    Ok(files)
}

/// A new P-256 key, unencrypted.
const EC_KEY: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
];

fn openssl(build: impl FnOnce(&mut Command)) -> Result<(), Error> {
    let mut cmd = Command::new("openssl");
    build(&mut cmd);
    match cmd.output() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::NoOpenssl),
        Err(e) => Err(io("running openssl")(e)),
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(Error::Command {
            program: "openssl".to_string(),
            status: out.status.to_string(),
            output: String::from_utf8_lossy(&out.stderr).into_owned(),
        }),
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<(), Error> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(io(format!("chmod {mode:o} {}", path.display())))
}

/// A number no other certificate made here shares: the time in nanoseconds and our pid.
fn unique() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    // Positive as a DER integer and never zero.
    ((nanos ^ (u64::from(std::process::id()) << 40)) >> 1) | 1
}
