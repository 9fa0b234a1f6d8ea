//! Who may do what (migrations/0011): people's grants on projects, the kinds of logins, and the
//! audit log as people read it. The database enforces all of it; these are the values that cross
//! the wire, checked early so that a typo is a clear error before anything is sent.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

crate::run::text_enum!(
    /// What a grant lets a person do to a project's jobs (`sisyphus.grants.level`). Each level
    /// includes the ones before it.
    GrantLevel, "grant level" {
        /// Read jobs, runs, logs, resources and notifications.
        Viewer = "viewer",
        /// Viewer, and run now, terminate/suspend/resume, pause/resume jobs, retry notifications.
        Operator = "operator",
        /// Operator, and apply and remove job definitions and project defaults.
        Editor = "editor",
    }
);

crate::run::text_enum!(
    /// What a login is for (`sisyphus.add_login`'s `kind`): a person, an admin, or one daemon.
    LoginKind, "kind of login" {
        /// A person; what they may do comes from their grants.
        User = "user",
        /// A person who may do everything, grants and hosts included.
        Admin = "admin",
        /// A guardian, bound to the host names it may act as.
        Guardian = "guardian",
        Scheduler = "scheduler",
        Dispatcher = "dispatcher",
        /// The web dashboard: signs people in and acts as them (`migrations/0018_web.sql`).
        Web = "web",
    }
);

/// Whether grant pattern `pattern` covers `project`, as `sisyphus.pattern_matches` decides:
/// `*`, the project itself, or `P.*` for `P` and every project under it.
pub fn pattern_matches(pattern: &str, project: &str) -> bool {
    if pattern == "*" || pattern == project {
        return true;
    }
    match pattern.strip_suffix(".*") {
        Some(prefix) => {
            project == prefix
                || (project.starts_with(prefix) && project[prefix.len()..].starts_with('.'))
        }
        None => false,
    }
}

/// What a person may do, as the dashboard reads it once per page to show only the buttons they
/// may use (the database checks every action again).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Abilities {
    pub admin: bool,
    /// Patterns the person holds operator (or more) on.
    pub operate: Vec<String>,
    /// Patterns the person holds editor on.
    pub edit: Vec<String>,
}

impl Abilities {
    /// May run, kill, suspend, resume, pause and rerun in `project`.
    pub fn may_operate(&self, project: &str) -> bool {
        self.admin || self.operate.iter().any(|p| pattern_matches(p, project))
    }

    /// May change definitions in `project`.
    pub fn may_edit(&self, project: &str) -> bool {
        self.admin || self.edit.iter().any(|p| pattern_matches(p, project))
    }
}

/// A dashboard token as its owner and admins see it (`sisyctl token ls`); never the token or
/// its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    pub id: i64,
    pub login: String,
    pub label: Option<String>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// The longest login PostgreSQL keeps (`NAMEDATALEN - 1` bytes); a longer one would be cut.
pub const MAX_LOGIN_BYTES: usize = 63;

/// Checks a login name before it is sent: not empty, at most 63 bytes (PostgreSQL cuts longer
/// names silently), no NUL.
pub fn check_login(login: &str) -> Result<(), String> {
    if login.is_empty() {
        return Err("a login name cannot be empty".to_string());
    }
    if login.len() > MAX_LOGIN_BYTES {
        return Err(format!(
            "login `{login}` is {} bytes long; PostgreSQL keeps at most {MAX_LOGIN_BYTES}",
            login.len()
        ));
    }
    if login.contains('\0') {
        return Err("a login name cannot hold a NUL character".to_string());
    }
    if ROLES.contains(&login) || login.starts_with("pg_") {
        return Err(format!(
            "`{login}` is the name of a role, not of a login: name the person or the daemon \
             (e.g. `web-1-guardian`); the login is made a member of the role"
        ));
    }
    Ok(())
}

/// The group roles the migrations create (`migrations/0011_access_control.sql`): what logins
/// are made members of, never logins themselves.
pub const ROLES: [&str; 7] = [
    "sisyphus_viewer",
    "sisyphus_operator",
    "sisyphus_editor",
    "sisyphus_admin",
    "sisyphus_guardian",
    "sisyphus_scheduler",
    "sisyphus_dispatcher",
];

/// Checks a grant's project pattern as `sisyphus.grants` does: a project (`ACME.FooBar`), a
/// project and everything under it (`ACME.*`), or every project (`*`). Project parts are
/// letters, digits, `_` and `-`, joined by dots.
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    if pattern == "*" {
        return Ok(());
    }
    let project = pattern.strip_suffix(".*").unwrap_or(pattern);
    let part_ok = |p: &str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    if project.split('.').all(part_ok) {
        Ok(())
    } else {
        Err(format!(
            "`{pattern}` is not a project pattern; write a project (ACME.FooBar), a project and \
             everything under it (ACME.*) or every project (*)"
        ))
    }
}

/// One grant: `login` holds `level` on the projects `pattern` matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grant {
    pub login: String,
    pub level: GrantLevel,
    pub pattern: String,
    pub granted_by: String,
    pub granted_at: DateTime<Utc>,
}

/// One row of the audit log (`sisyphus.audit`): who changed what, through what, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// The login that made the change.
    pub actor: String,
    /// The person a service (the dashboard) acted for.
    pub on_behalf_of: Option<String>,
    /// The program (`application_name`): `sisyctl`, `psql`, …
    pub channel: Option<String>,
    /// What was done: `job.create`, `job.pause`, `run.terminate`, `grant.add`, …
    pub action: String,
    pub project: Option<String>,
    /// What it was done to: `PROJECT/NAME`, `run ID`, a login, a host.
    pub target: Option<String>,
    /// What changed (for definitions, each changed key's before and after; never an environment
    /// value).
    pub diff: Option<serde_json::Value>,
    /// Why, as the person said (`sisyctl --reason`).
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_role_is_not_a_login() {
        for role in super::ROLES {
            let why = super::check_login(role).expect_err(role);
            assert!(why.contains("is the name of a role"), "{why}");
        }
        assert!(super::check_login("pg_monitor").is_err());
        assert!(super::check_login("sisyphus_sched").is_ok());
    }

    use super::*;

    #[test]
    fn levels_parse_with_a_clear_error() {
        assert_eq!("operator".parse(), Ok(GrantLevel::Operator));
        assert_eq!(
            "admin".parse::<GrantLevel>(),
            Err(
                "`admin` is not a grant level; expected one of: viewer, operator, editor"
                    .to_string()
            )
        );
        assert_eq!(
            LoginKind::ALL
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>(),
            [
                "user",
                "admin",
                "guardian",
                "scheduler",
                "dispatcher",
                "web"
            ]
        );
    }

    #[test]
    fn patterns_match_as_the_database_matches_them() {
        for (pattern, project, expected) in [
            ("*", "ACME", true),
            ("ACME", "ACME", true),
            ("ACME", "ACME.Foo", false),
            ("ACME.*", "ACME", true),
            ("ACME.*", "ACME.Foo", true),
            ("ACME.*", "ACME.Foo.Bar", true),
            ("ACME.*", "ACMEX", false),
            ("ACME.*", "ACMEX.Foo", false),
            ("ACME.Foo", "ACME.Foobar", false),
        ] {
            assert_eq!(
                pattern_matches(pattern, project),
                expected,
                "{pattern} {project}"
            );
        }
    }

    #[test]
    fn patterns_are_checked_as_the_table_checks_them() {
        for good in ["*", "ACME", "ACME.*", "ACME.FooBar", "a_b-c.D9.*"] {
            assert_eq!(check_pattern(good), Ok(()), "{good}");
        }
        for bad in [
            "", ".*", "ACME.", "ACME..X", "ACME*", "AC ME", "ACME.*.X", "*.ACME", "ACME/x",
        ] {
            assert!(check_pattern(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn logins_longer_than_postgres_keeps_are_refused() {
        assert_eq!(check_login("alice"), Ok(()));
        assert!(check_login("").is_err());
        assert!(check_login(&"a".repeat(64)).is_err());
        assert!(check_login("a\0b").is_err());
    }
}
