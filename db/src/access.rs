//! Access control as people use it (migrations/0011): grants on projects, logins for people and
//! daemons, and the audit log. The checks are the database's: each function here is one call of
//! a SQL function that refuses (SQLSTATE 42501, [`crate::Error::Declined`]) a caller who may not.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgConnectOptions;
use sqlx::PgExecutor;

use sisyphus_model::access::{AuditEntry, Grant, GrantLevel, LoginKind};
use sisyphus_model::JobRef;

const GRANT: &str = include_str!("../../sql/access/grant.sql");
const REVOKE: &str = include_str!("../../sql/access/revoke.sql");
const LIST: &str = include_str!("../../sql/access/list.sql");
const ADD_LOGIN: &str = include_str!("../../sql/access/add_login.sql");
const AUDIT: &str = include_str!("../../sql/access/audit.sql");

/// Gives `login` `level` on the projects `pattern` matches (replacing the level it held there).
pub async fn grant<'e>(
    db: impl PgExecutor<'e>,
    login: &str,
    level: GrantLevel,
    pattern: &str,
) -> crate::Result<()> {
    sqlx::query(GRANT)
        .bind(login)
        .bind(level.as_str())
        .bind(pattern)
        .execute(db)
        .await?;
    Ok(())
}

/// Takes back `login`'s grant on `pattern`; false when there was none.
pub async fn revoke<'e>(
    db: impl PgExecutor<'e>,
    login: &str,
    pattern: &str,
) -> crate::Result<bool> {
    sqlx::query_scalar(REVOKE)
        .bind(login)
        .bind(pattern)
        .fetch_one(db)
        .await
        .map_err(crate::Error::from)
}

/// The grants the caller may see: every grant for admins, their own for others.
pub async fn grants<'e>(db: impl PgExecutor<'e>) -> crate::Result<Vec<Grant>> {
    sqlx::query(LIST)
        .try_map(crate::decode::grant)
        .fetch_all(db)
        .await
        .map_err(crate::Error::from)
}

/// Creates `login` for `kind` (or sets an existing one's password), with `password` or none; a
/// guardian is bound to `hosts`. The password travels as a parameter and is never logged here.
pub async fn add_login<'e>(
    db: impl PgExecutor<'e>,
    login: &str,
    password: Option<&str>,
    kind: LoginKind,
    hosts: &[String],
) -> crate::Result<()> {
    sqlx::query(ADD_LOGIN)
        .bind(login)
        .bind(password)
        .bind(kind.as_str())
        .bind(hosts)
        .execute(db)
        .await?;
    Ok(())
}

/// Which audit rows to read.
#[derive(Debug, Clone)]
pub struct AuditFilter {
    /// Only rows about this job or its runs.
    pub job: Option<JobRef>,
    /// Only changes made by this login.
    pub actor: Option<String>,
    /// Only rows written at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// At most this many rows.
    pub limit: i64,
}

impl Default for AuditFilter {
    fn default() -> AuditFilter {
        AuditFilter {
            job: None,
            actor: None,
            since: None,
            limit: 50,
        }
    }
}

/// The audit log, newest first, as far as the caller may read it (admins everything; others
/// the rows of projects they can see and their own acts).
pub async fn audit<'e>(
    db: impl PgExecutor<'e>,
    filter: &AuditFilter,
) -> crate::Result<Vec<AuditEntry>> {
    sqlx::query(AUDIT)
        .bind(filter.job.as_ref().map(|j| j.project.as_str()))
        .bind(filter.job.as_ref().map(ToString::to_string))
        .bind(filter.actor.as_deref())
        .bind(filter.since)
        .bind(filter.limit)
        .try_map(crate::decode::audit_entry)
        .fetch_all(db)
        .await
        .map_err(crate::Error::from)
}

/// The longest setting value sent at connection time: the whole startup packet may not pass
/// 10,000 bytes.
pub const MAX_SETTING_BYTES: usize = 4000;

/// `options` with `settings` in force from the session's start (the startup parameter
/// `options`, as `PGOPTIONS="-c name=value"`). PostgreSQL splits that parameter at white space
/// unless a backslash escapes it, and sqlx passes values on as they are, so each value is escaped
/// here: a reason may hold spaces, quotes and backslashes. Refuses a name that is not a setting's
/// (letters, digits, `_`, `.`) and a value with a NUL or longer than [`MAX_SETTING_BYTES`].
pub(crate) fn with_settings(
    options: PgConnectOptions,
    settings: &[(&str, &str)],
) -> crate::Result<PgConnectOptions> {
    if settings.is_empty() {
        return Ok(options);
    }
    let mut escaped = Vec::with_capacity(settings.len());
    for (name, value) in settings {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            return Err(crate::Error::Refused(format!(
                "`{name}` is not the name of a setting"
            )));
        }
        if value.contains('\0') {
            return Err(crate::Error::Refused(format!(
                "the value of {name} cannot hold a NUL character"
            )));
        }
        if value.len() > MAX_SETTING_BYTES {
            return Err(crate::Error::Refused(format!(
                "the value of {name} is {} bytes long; at most {MAX_SETTING_BYTES} can be sent",
                value.len()
            )));
        }
        escaped.push((*name, escape_option(value)));
    }
    Ok(options.options(escaped))
}

/// A value as a word of the startup parameter `options`: backslashes and the white space C's
/// `isspace` knows each preceded by a backslash (PostgreSQL's `pg_split_opts`).
fn escape_option(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        if matches!(c, '\\' | ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_values_escape_white_space_and_backslashes() {
        assert_eq!(escape_option("plain"), "plain");
        assert_eq!(
            escape_option("it's \"late\"\tC:\\x\n"),
            "it's\\ \"late\"\\\tC:\\\\x\\\n"
        );
    }

    #[test]
    fn odd_names_and_values_are_refused() {
        let options = PgConnectOptions::new();
        assert!(with_settings(options.clone(), &[("sisyphus.reason", "a b")]).is_ok());
        assert!(with_settings(options.clone(), &[("x y", "v")]).is_err());
        assert!(with_settings(options.clone(), &[("sisyphus.reason", "a\0b")]).is_err());
        let long = "x".repeat(MAX_SETTING_BYTES + 1);
        assert!(with_settings(options, &[("sisyphus.reason", long.as_str())]).is_err());
    }
}
