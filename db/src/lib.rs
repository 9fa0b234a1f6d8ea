//! The database layer: the only crate that runs SQL (ARCHITECTURE.md, invariant
//! *one-code-path*). Connecting (pools, and [`Listener`] for LISTEN), migrating, checking the
//! schema version, and one module per table or per daemon with one typed function per statement.
//!
//! The SQL itself lives in `.sql` files under `sql/` (statements) and `migrations/` (schema,
//! views, functions); this crate only binds parameters and decodes rows into the types of
//! `sisyphus-model`, never into strings. Every statement of `sql/` is prepared against a freshly
//! migrated database by `tests/integration/schema.rs` before it can ship.

pub mod access;
pub mod bench;
pub mod calendars;
mod decode;
pub mod dispatcher;
pub mod error;
pub mod guardian;
pub mod hosts;
pub mod jobs;
pub mod listener;
pub mod logs;
pub mod notifications;
pub mod resources;
pub mod runs;
pub mod scheduler;
pub mod tokens;
pub mod web;

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::Connection as _;

pub use error::{Error, Result};
pub use listener::Listener;
/// What the other crates hold and pass: a pool, one connection, a transaction.
pub use sqlx::{PgConnection, PgPool};
/// A transaction on a pooled connection.
pub type Transaction = sqlx::Transaction<'static, sqlx::Postgres>;

/// A transaction on a connection of `pool`.
pub async fn begin(pool: &PgPool) -> Result<Transaction> {
    Ok(pool.begin().await?)
}

/// A savepoint inside `tx`: committing it releases it, rolling it back (or dropping it) undoes
/// only what was done since, and the transaction goes on.
pub async fn begin_nested(tx: &mut Transaction) -> Result<sqlx::Transaction<'_, sqlx::Postgres>> {
    use sqlx::Connection;
    Ok(Connection::begin(&mut **tx).await?)
}

/// The schema migrations, embedded. Every part and every test migrates through this one value.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// The schema version this build needs: the newest embedded migration.
pub fn expected_version() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

/// Connection settings from a URL, named for the program (shown in `pg_stat_activity`).
///
/// TLS is set in the URL as libpq sets it: `sslmode=verify-full&sslrootcert=/etc/sisyphus/ca.pem`
/// encrypts and checks that the server's certificate was issued by that CA (or one of the
/// built-in public roots) for the host name in the URL; `verify-ca` skips the name. As in libpq,
/// `sslmode=require` with a root certificate given (`sslrootcert` or `$PGSSLROOTCERT`) checks the
/// chain like `verify-ca`; without one it only encrypts. The default, `prefer`, uses TLS
/// unverified when the server offers it.
pub fn options(url: &str, application: &str) -> Result<PgConnectOptions> {
    let mut options: PgConnectOptions = url.parse().map_err(|e| Error::Connect {
        url: redact(url),
        source: e,
    })?;
    if matches!(options.get_ssl_mode(), PgSslMode::Require) && root_cert(url).is_some() {
        options = options.ssl_mode(PgSslMode::VerifyCa);
    }
    Ok(options.application_name(application))
}

/// Whether connecting checks the server's certificate against trusted CAs.
fn verifies(options: &PgConnectOptions) -> bool {
    matches!(
        options.get_ssl_mode(),
        PgSslMode::VerifyCa | PgSslMode::VerifyFull
    )
}

/// The root certificate(s) the URL (or `$PGSSLROOTCERT`) names, as sqlx reads them: the last
/// `sslrootcert` of the query wins over the environment.
fn root_cert(url: &str) -> Option<String> {
    let from_url = url::Url::parse(url).ok().and_then(|u| {
        u.query_pairs()
            .filter(|(k, _)| matches!(&**k, "sslrootcert" | "ssl-root-cert" | "ssl-ca"))
            .map(|(_, v)| v.into_owned())
            .last()
    });
    from_url.or_else(|| std::env::var("PGSSLROOTCERT").ok())
}

/// Refuses a root certificate file that cannot be used, before connecting: sqlx would report a
/// missing file as a bare "No such file or directory" and a file without certificates not at
/// all (only the built-in roots would be trusted).
async fn check_root_cert(url: &str, options: &PgConnectOptions) -> Result<()> {
    let Some(path) = root_cert(url).filter(|_| verifies(options)) else {
        return Ok(());
    };
    if path.trim_start().starts_with("-----BEGIN") {
        return Ok(()); // the certificate itself, inline
    }
    let refuse = |cause: String| Error::Tls {
        url: redact(url),
        cause,
    };
    let text = tokio::fs::read(&path)
        .await
        .map_err(|e| refuse(format!("cannot read sslrootcert {path}: {e}")))?;
    if !String::from_utf8_lossy(&text).contains("-----BEGIN CERTIFICATE-----") {
        return Err(refuse(format!(
            "sslrootcert {path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        )));
    }
    Ok(())
}

/// What went wrong in a TLS handshake, said so that the reader knows whose certificate failed
/// and what to check. `io` is the error sqlx passed up; None when it was not TLS.
fn tls_failure(url: &str, io: &std::io::Error) -> Option<String> {
    let tls = io.get_ref()?.downcast_ref::<rustls::Error>()?;
    let trusted = match root_cert(url) {
        Some(path) if !path.trim_start().starts_with("-----BEGIN") => {
            format!("the CA certificates in sslrootcert {path} and the built-in public roots")
        }
        Some(_) => "the CA certificates in sslrootcert and the built-in public roots".to_string(),
        None => "the built-in public roots only (no sslrootcert given)".to_string(),
    };
    Some(match tls {
        rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer) => format!(
            "the server's certificate could not be verified: UnknownIssuer (it was not issued \
             by a trusted CA; trusted are {trusted})"
        ),
        rustls::Error::InvalidCertificate(e) => {
            format!("the server's certificate could not be verified: {e}")
        }
        other => format!("the TLS handshake with the server failed: {other}"),
    })
}

/// How long connecting waits when the caller does not say.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection pool, without checking the schema.
pub async fn pool(url: &str, application: &str, max_connections: u32) -> Result<PgPool> {
    pool_with_timeout(url, application, max_connections, DEFAULT_CONNECT_TIMEOUT).await
}

/// A pool whose callers give up on an unreachable database after `acquire_timeout` (the guardian
/// spools instead of waiting long).
///
/// One connection is made first, within `acquire_timeout`, so that a database that cannot be
/// reached fails now with its cause ([`Error::Unreachable`]: "connection refused at
/// 127.0.0.1:5432") — a pool alone retries until its timeout and then only says it timed out.
pub async fn pool_with_timeout(
    url: &str,
    application: &str,
    max_connections: u32,
    acquire_timeout: Duration,
) -> Result<PgPool> {
    pool_with_settings(url, application, max_connections, acquire_timeout, &[]).await
}

/// As [`pool_with_timeout`], with `settings` (name, value) in force in every session of the pool
/// from its first statement: `sisyphus.reason`, which the audit log records as the reason of each
/// change. They travel as the startup parameter `options`, escaped so that a value may hold
/// spaces, quotes and backslashes; a NUL or an odd name is refused.
pub async fn pool_with_settings(
    url: &str,
    application: &str,
    max_connections: u32,
    acquire_timeout: Duration,
    settings: &[(&str, &str)],
) -> Result<PgPool> {
    let options = access::with_settings(options(url, application)?, settings)?;
    let probe = connect_within(url, &options, acquire_timeout).await?;
    // Closing is a courtesy to the server; the pool makes its own connections.
    let _ = probe.close().await;
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire_timeout)
        .connect_lazy_with(options))
}

/// One connection, or the reason there is none within `timeout`.
async fn connect_within(
    url: &str,
    options: &PgConnectOptions,
    timeout: Duration,
) -> Result<PgConnection> {
    let address = || {
        let host = options.get_host();
        if host.starts_with('/') {
            format!("{host}/.s.PGSQL.{}", options.get_port())
        } else {
            format!("{host}:{}", options.get_port())
        }
    };
    check_root_cert(url, options).await?;
    match tokio::time::timeout(timeout, PgConnection::connect_with(options)).await {
        Err(_) => Err(Error::Unreachable {
            address: address(),
            cause: format!(
                "no answer within {}",
                sisyphus_model::schedule::format_duration(timeout)
            ),
        }),
        Ok(Err(sqlx::Error::Tls(e))) => Err(Error::Tls {
            url: redact(url),
            cause: match e.to_string() {
                // sqlx's words when the server answers the TLS request with "no".
                m if m.contains("does not support TLS") => format!(
                    "the server does not accept TLS connections (ssl = off?), and sslmode={} \
                     requires it",
                    ssl_mode_name(options.get_ssl_mode())
                ),
                m => m,
            },
        }),
        Ok(Err(sqlx::Error::Io(e))) => Err(match tls_failure(url, &e) {
            Some(cause) => Error::Tls {
                url: redact(url),
                cause,
            },
            None => Error::Unreachable {
                address: address(),
                cause: match e.kind() {
                    std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
                    std::io::ErrorKind::NotFound => "no such socket".to_string(),
                    _ => e.to_string(),
                },
            },
        }),
        Ok(Err(e)) => Err(Error::Connect {
            url: redact(url),
            source: e,
        }),
        Ok(Ok(conn)) => Ok(conn),
    }
}

/// The URL spelling of an sslmode, for messages.
fn ssl_mode_name(mode: PgSslMode) -> &'static str {
    match mode {
        PgSslMode::Disable => "disable",
        PgSslMode::Allow => "allow",
        PgSslMode::Prefer => "prefer",
        PgSslMode::Require => "require",
        PgSslMode::VerifyCa => "verify-ca",
        PgSslMode::VerifyFull => "verify-full",
    }
}

/// The schema `sisyphus` (created where missing, its bookkeeping inside it), then `migrator`'s
/// migrations that are not applied yet.
pub(crate) async fn run_migrations(conn: &mut PgConnection, migrator: &Migrator) -> Result<()> {
    sqlx::query(include_str!("../../sql/schema/create.sql"))
        .execute(&mut *conn)
        .await?;
    sqlx::query(include_str!("../../sql/schema/search_path.sql"))
        .execute(&mut *conn)
        .await?;
    migrator.run(&mut *conn).await?;
    Ok(())
}

/// Applies every pending migration. The migrations table lives in schema `sisyphus`, next to
/// what it describes, so `public` stays untouched. Returns (version before, version after).
pub async fn migrate(url: &str) -> Result<(i64, i64)> {
    migrate_with_timeout(url, DEFAULT_CONNECT_TIMEOUT).await
}

/// As [`migrate`], giving up connecting after `timeout`.
pub async fn migrate_with_timeout(url: &str, timeout: Duration) -> Result<(i64, i64)> {
    let mut conn = connect_within(url, &options(url, "sisyctl migrate")?, timeout).await?;
    let before = schema_version(&mut conn).await?.unwrap_or(0);
    run_migrations(&mut conn, &MIGRATOR).await?;
    let after = schema_version(&mut conn).await?.unwrap_or(0);
    conn.close().await?;
    Ok((before, after))
}

/// Checks that the schema exists and matches this build.
pub async fn check_schema(pool: &PgPool) -> Result<()> {
    let mut conn = pool.acquire().await?;
    let expected = expected_version();
    match schema_version(&mut conn).await? {
        None => Err(Error::SchemaMissing),
        Some(found) if found < expected => Err(Error::SchemaOutdated { found, expected }),
        Some(found) if found > expected => Err(Error::SchemaNewer { found, expected }),
        Some(_) => Ok(()),
    }
}

async fn schema_version(conn: &mut PgConnection) -> Result<Option<i64>> {
    let exists: bool = sqlx::query_scalar(include_str!("../../sql/schema/migrated.sql"))
        .fetch_one(&mut *conn)
        .await?;
    if !exists {
        return Ok(None);
    }
    let version: Option<i64> = sqlx::query_scalar(include_str!("../../sql/schema/version.sql"))
        .fetch_one(&mut *conn)
        .await?;
    Ok(version)
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// Converts between `std::time::Duration` and PostgreSQL `interval`, with checked arithmetic:
/// a value that does not fit is an error, never a wrapped number. Intervals written by people in
/// SQL may hold days; months have no fixed length and are refused.
pub mod interval {
    use std::time::Duration;

    use sqlx::postgres::types::PgInterval;

    use sisyphus_model::spec::MAX_DURATION;

    const MICROS_PER_DAY: i64 = 86_400_000_000;

    /// A duration that has no `interval` of the same length: more microseconds than an `i64`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
    #[error("{}s is too long for a PostgreSQL interval", .0.as_secs())]
    pub struct TooLong(pub Duration);

    /// The interval of exactly `d` (to the microsecond; less is dropped), or an error when its
    /// microseconds do not fit an `i64` (about 292,000 years).
    pub fn try_from_duration(d: Duration) -> Result<PgInterval, TooLong> {
        let microseconds = i64::try_from(d.as_micros()).map_err(|_| TooLong(d))?;
        Ok(PgInterval {
            months: 0,
            days: 0,
            microseconds,
        })
    }

    /// As [`try_from_duration`], for durations a program chose itself (daemons' checked
    /// settings): one too long saturates at the longest interval instead of wrapping to a
    /// negative one. Values from definitions go through [`try_from_duration`].
    pub fn from_duration(d: Duration) -> PgInterval {
        try_from_duration(d).unwrap_or(PgInterval {
            months: 0,
            days: 0,
            microseconds: i64::MAX,
        })
    }

    /// The duration of a stored interval. Refuses months, negative intervals and any longer
    /// than [`MAX_DURATION`] (100 years): no definition can hold one, so it was written by hand.
    pub fn to_duration(i: &PgInterval) -> Result<Duration, String> {
        if i.months != 0 {
            return Err("an interval in months has no fixed length".to_string());
        }
        let micros = i64::from(i.days)
            .checked_mul(MICROS_PER_DAY)
            .and_then(|days| days.checked_add(i.microseconds))
            .ok_or_else(|| "an interval too long to measure".to_string())?;
        let d = u64::try_from(micros)
            .map(Duration::from_micros)
            .map_err(|_| "a negative interval".to_string())?;
        if d > MAX_DURATION {
            return Err(format!(
                "an interval of {}s, longer than 100 years",
                d.as_secs()
            ));
        }
        Ok(d)
    }

    #[cfg(test)]
    mod tests {
        use std::time::Duration;

        use sqlx::postgres::types::PgInterval;

        use super::*;
        use crate::interval;

        #[test]
        fn intervals_convert_without_wrapping() {
            let i = interval::try_from_duration(MAX_DURATION).expect("100 years fits");
            assert_eq!(i.microseconds, 3_155_760_000_000_000);
            assert_eq!(interval::to_duration(&i), Ok(MAX_DURATION));
            assert!(interval::try_from_duration(Duration::from_secs(18_446_744_073_712)).is_err());
            assert!(interval::try_from_duration(Duration::MAX).is_err());
            // Daemons' own settings saturate instead of turning negative.
            assert_eq!(
                interval::from_duration(Duration::MAX).microseconds,
                i64::MAX
            );
            let read = |days: i32, microseconds: i64| {
                interval::to_duration(&PgInterval {
                    months: 0,
                    days,
                    microseconds,
                })
            };
            assert_eq!(read(1, 1), Ok(Duration::from_micros(86_400_000_001)));
            // Written by hand in SQL: errors, never a panic or a wrapped value.
            assert!(read(i32::MAX, i64::MAX).is_err());
            assert!(read(i32::MIN, 0).is_err());
            assert!(read(0, -1).expect_err("negative").contains("negative"));
            assert!(read(36_526, 0)
                .expect_err("too long")
                .contains("longer than 100 years"));
            assert!(interval::to_duration(&PgInterval {
                months: 1,
                days: 0,
                microseconds: 0
            })
            .is_err());
        }
    }
}
