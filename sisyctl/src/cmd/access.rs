//! Who may do what, and who did what: `sisyctl grant | revoke | grants`, `sisyctl user add`,
//! `sisyctl service add`, `sisyctl audit`. The database checks every one of them (migrations/0011);
//! a refusal comes back with its message and exit 1.

use std::io::{IsTerminal, Read};

use anyhow::anyhow;
use clap::Subcommand;
use sisyphus_client::access::{check_pattern, AuditEntry, GrantLevel, LoginKind};
use sisyphus_client::{AuditFilter, Client, JobRef};

use crate::output::{self, opt, time};
use crate::{say, Failure};

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a person's login (or set an existing one's password). What it may do comes from
    /// its grants (`sisyctl grant`), or everything with --admin.
    Add {
        name: String,
        /// Read the password from stdin (piped, not typed: e.g. `pass show db/alice | …`).
        /// Without it the login has no password and gets in only where pg_hba.conf trusts it or
        /// by certificate.
        #[arg(long)]
        password_stdin: bool,
        /// May do everything: every project, grants, logins, hosts.
        #[arg(long)]
        admin: bool,
    },
}

#[derive(Subcommand)]
pub enum ServiceCommand {
    /// Create a daemon's login (or set an existing one's password), a member of that daemon's
    /// role only; a guardian's is bound to the host names it may act as.
    Add {
        /// guardian, scheduler, dispatcher or web (the dashboard's login).
        #[arg(value_parser = parse_service)]
        kind: LoginKind,
        name: String,
        /// The host names a guardian login may register and act as (comma-separated).
        #[arg(long, value_delimiter = ',', num_args = 1..)]
        hosts: Vec<String>,
        /// Read the password from stdin (piped, not typed).
        #[arg(long)]
        password_stdin: bool,
    },
}

/// A daemon's kind of login.
fn parse_service(s: &str) -> Result<LoginKind, String> {
    match s.parse::<LoginKind>()? {
        k @ (LoginKind::Guardian
        | LoginKind::Scheduler
        | LoginKind::Dispatcher
        | LoginKind::Web) => Ok(k),
        k => Err(format!(
            "`{k}` is a person's login (`sisyctl user add`); a service is guardian, scheduler, \
             dispatcher or web"
        )),
    }
}

/// A grant's project pattern, checked before connecting.
pub fn parse_pattern(s: &str) -> Result<String, String> {
    check_pattern(s).map(|()| s.to_string())
}

pub async fn grant(
    client: &Client,
    login: &str,
    level: GrantLevel,
    pattern: &str,
    json: bool,
) -> Result<(), Failure> {
    client.grant(login, level, pattern).await?;
    if json {
        return Ok(output::json(&serde_json::json!({
            "login": login, "level": level, "pattern": pattern,
        }))?);
    }
    say!("{login} is {level} of {pattern}")?;
    Ok(())
}

pub async fn revoke(
    client: &Client,
    login: &str,
    pattern: &str,
    json: bool,
) -> Result<(), Failure> {
    let revoked = client.revoke(login, pattern).await?;
    if json {
        return Ok(output::json(&serde_json::json!({
            "login": login, "pattern": pattern, "revoked": revoked,
        }))?);
    }
    if revoked {
        say!("{login} no longer holds a grant on {pattern}")?;
    } else {
        say!("{login} held no grant on {pattern}; nothing to take back")?;
    }
    Ok(())
}

pub async fn grants(client: &Client, json: bool) -> Result<(), Failure> {
    let grants = client.grants().await?;
    if json {
        return Ok(output::json(&grants)?);
    }
    let rows: Vec<Vec<String>> = grants
        .iter()
        .map(|g| {
            vec![
                g.login.clone(),
                g.level.to_string(),
                g.pattern.clone(),
                g.granted_by.clone(),
                time(Some(g.granted_at)),
            ]
        })
        .collect();
    output::table(
        &["LOGIN", "LEVEL", "PATTERN", "GRANTED BY", "GRANTED"],
        &rows,
    )?;
    Ok(())
}

/// Reads the password before connecting (so a bad one costs no connection).
pub fn password(from_stdin: bool) -> Result<Option<String>, Failure> {
    if !from_stdin {
        return Ok(None);
    }
    read_password(std::io::stdin()).map(Some)
}

/// The password piped into stdin: one line, its line ending dropped. A terminal is refused, since
/// what is typed there is echoed.
fn read_password(stdin: std::io::Stdin) -> Result<String, Failure> {
    if stdin.is_terminal() {
        return Err(Failure::usage(anyhow!(
            "--password-stdin reads a password piped into sisyctl (e.g. `pass show db/alice | \
             sisyctl user add alice --password-stdin`), not one typed at the terminal"
        )));
    }
    let mut bytes = Vec::new();
    // A password is short; more than this is the wrong input.
    stdin
        .lock()
        .take(4097)
        .read_to_end(&mut bytes)
        .map_err(|e| anyhow!("cannot read the password from stdin: {e}"))?;
    if bytes.len() > 4096 {
        return Err(Failure::usage(anyhow!(
            "--password-stdin: more than 4096 bytes on stdin; a password is one line"
        )));
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| Failure::usage(anyhow!("--password-stdin: the password is not UTF-8")))?;
    let password = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text);
    if password.is_empty() {
        return Err(Failure::usage(anyhow!(
            "--password-stdin: stdin held no password"
        )));
    }
    if password.contains(['\n', '\r', '\0']) {
        return Err(Failure::usage(anyhow!(
            "--password-stdin: a password is one line, without NUL characters"
        )));
    }
    Ok(password.to_string())
}

pub async fn user_add(
    client: &Client,
    name: &str,
    password: Option<&str>,
    admin: bool,
    json: bool,
) -> Result<(), Failure> {
    let kind = if admin {
        LoginKind::Admin
    } else {
        LoginKind::User
    };
    client.add_login(name, password, kind, &[]).await?;
    if json {
        return Ok(output::json(&serde_json::json!({
            "login": name, "kind": kind, "password": password.is_some(),
        }))?);
    }
    if admin {
        say!("login {name} added: an admin, who may do everything")?;
    } else {
        say!("login {name} added; give it projects with `sisyctl grant {name} viewer|operator|editor PATTERN`")?;
    }
    if password.is_none() {
        say!("it has no password: it gets in only where pg_hba.conf trusts it or by certificate")?;
    }
    Ok(())
}

/// Checks `service add`'s arguments before anything is read or sent.
pub fn check_service(kind: LoginKind, hosts: &[String]) -> Result<(), Failure> {
    if let Some(bad) = hosts.iter().find(|h| h.trim().is_empty()) {
        return Err(Failure::usage(anyhow!(
            "--hosts: `{bad}` is not a host name"
        )));
    }
    match (kind, hosts.is_empty()) {
        (LoginKind::Guardian, true) => Err(Failure::usage(anyhow!(
            "a guardian login needs the host names it may act as: --hosts web-1,web-2"
        ))),
        (LoginKind::Guardian, false) => Ok(()),
        (_, false) => Err(Failure::usage(anyhow!(
            "--hosts binds guardians to hosts; a {kind} login acts for no host"
        ))),
        (_, true) => Ok(()),
    }
}

pub async fn service_add(
    client: &Client,
    kind: LoginKind,
    name: &str,
    hosts: &[String],
    password: Option<&str>,
    json: bool,
) -> Result<(), Failure> {
    client.add_login(name, password, kind, hosts).await?;
    if json {
        return Ok(output::json(&serde_json::json!({
            "login": name, "kind": kind, "hosts": hosts, "password": password.is_some(),
        }))?);
    }
    if hosts.is_empty() {
        say!("login {name} added: a {kind}")?;
    } else {
        say!("login {name} added: a {kind} for {}", hosts.join(", "))?;
    }
    Ok(())
}

/// What `sisyctl audit` was asked for.
pub struct AuditArgs {
    pub job: Option<JobRef>,
    pub actor: Option<String>,
    pub since: Option<std::time::Duration>,
    pub limit: i64,
}

pub async fn audit(client: &Client, args: AuditArgs, json: bool) -> Result<(), Failure> {
    let since = args
        .since
        .map(|d| {
            chrono::Duration::from_std(d)
                .ok()
                .and_then(|d| chrono::Utc::now().checked_sub_signed(d))
                .ok_or_else(|| Failure::usage(anyhow!("--since reaches back too far")))
        })
        .transpose()?;
    let filter = AuditFilter {
        job: args.job,
        actor: args.actor,
        since,
        limit: args.limit,
    };
    let rows = client.audit(&filter).await?;
    if json {
        return Ok(output::json(&rows)?);
    }
    let table: Vec<Vec<String>> = rows.iter().map(audit_row).collect();
    output::table(
        &[
            "ID", "AT", "ACTOR", "CHANNEL", "ACTION", "TARGET", "REASON", "CHANGE",
        ],
        &table,
    )?;
    Ok(())
}

/// The longest change shown in the table; `--json` has all of it.
const CHANGE_WIDTH: usize = 80;

fn audit_row(a: &AuditEntry) -> Vec<String> {
    let actor = match &a.on_behalf_of {
        Some(person) => format!("{} (for {person})", a.actor),
        None => a.actor.clone(),
    };
    let change = a.diff.as_ref().map_or_else(String::new, |d| {
        let text = d.to_string();
        if text.chars().count() > CHANGE_WIDTH {
            let cut: String = text.chars().take(CHANGE_WIDTH - 1).collect();
            format!("{cut}…")
        } else {
            text
        }
    });
    vec![
        a.id.to_string(),
        time(Some(a.at)),
        actor,
        opt(a.channel.as_ref()),
        a.action.clone(),
        opt(a.target.as_ref()),
        opt(a.reason.as_ref()),
        change,
    ]
}
