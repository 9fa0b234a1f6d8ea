//! A cluster started with `Options::tls` serves TLS with a certificate its own CA signed, and
//! only that CA: checked with `openssl s_client`, which speaks PostgreSQL's TLS request.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::{Command, Output, Stdio};

use pgembed::{Cluster, Options};

/// `openssl s_client` against the cluster, trusting `ca`, checking the name (or address) `host`.
fn s_client(cluster: &Cluster, ca: &std::path::Path, host: &str) -> Output {
    Command::new("openssl")
        .args(["s_client", "-connect"])
        .arg(format!("127.0.0.1:{}", cluster.port()))
        .args(["-starttls", "postgres", "-verify_return_error", "-CAfile"])
        .arg(ca)
        .arg(match host.parse::<std::net::IpAddr>() {
            Ok(_) => "-verify_ip",
            Err(_) => "-verify_hostname",
        })
        .arg(host)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl s_client")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_tls_cluster_serves_a_certificate_its_own_ca_signed() {
    let mut cluster = Cluster::start(Options {
        tls: true,
        ..Options::default()
    })
    .expect("start a TLS cluster");
    let files = cluster.tls().expect("TLS is on").clone();
    let ca = cluster.ca_file().expect("a CA file").to_path_buf();
    assert_eq!(ca, files.ca);
    for f in [&files.ca, &files.cert, &files.key] {
        assert!(f.starts_with(cluster.data_dir()), "{}", f.display());
    }
    assert!(
        !files.ca.with_file_name("ca.key").exists(),
        "the CA's key is deleted once it signed"
    );

    // The key: 0600, owned by the user the server runs as (`nobody` when we are root).
    let key = std::fs::metadata(&files.key).expect("the key");
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
    let server_uid = if nix::unistd::Uid::effective().is_root() {
        let name = std::env::var("SISYPHUS_PG_USER").unwrap_or_else(|_| "nobody".to_string());
        nix::unistd::User::from_name(&name)
            .expect("look the user up")
            .expect("the server's user")
            .uid
            .as_raw()
    } else {
        nix::unistd::Uid::effective().as_raw()
    };
    assert_eq!(key.uid(), server_uid);

    let url = cluster.tls_url("postgres").expect("a TLS URL");
    assert!(
        url.starts_with(&format!(
            "postgres://postgres@127.0.0.1:{}/postgres?sslmode=verify-full&sslrootcert=/",
            cluster.port()
        )),
        "{url}"
    );
    assert!(url.ends_with("/tls/ca.crt"), "{url}");

    // Its own CA verifies the server under each name the certificate is for.
    for host in ["localhost", "127.0.0.1"] {
        let out = s_client(&cluster, &ca, host);
        assert!(out.status.success(), "{host}: {}", text(&out));
        assert!(
            text(&out).contains("Verify return code: 0 (ok)"),
            "{}",
            text(&out)
        );
    }
    // Not under another name.
    let out = s_client(&cluster, &ca, "db.example.com");
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("hostname mismatch"), "{}", text(&out));

    // Another CA (made the same way) does not.
    let elsewhere = std::env::temp_dir().join(format!("pgembed-other-ca-{}", std::process::id()));
    let other = pgembed::tls::generate(&elsewhere).expect("another CA");
    let out = s_client(&cluster, &other.ca, "localhost");
    let _ = std::fs::remove_dir_all(&elsewhere);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("unable to get local issuer certificate"),
        "{}",
        text(&out)
    );

    // A restart keeps TLS on, with the same certificate.
    let before = std::fs::read(&files.cert).expect("the certificate");
    cluster.restart().expect("restart");
    let out = s_client(&cluster, &ca, "localhost");
    assert!(out.status.success(), "after a restart: {}", text(&out));
    assert_eq!(std::fs::read(&files.cert).expect("the certificate"), before);
}

#[test]
fn a_cluster_without_tls_has_no_tls_url() {
    let cluster = Cluster::start(Options::default()).expect("start a cluster");
    assert!(cluster.tls().is_none());
    assert!(cluster.tls_url("postgres").is_none());
    assert!(!cluster.data_dir().join("tls").exists());
}
