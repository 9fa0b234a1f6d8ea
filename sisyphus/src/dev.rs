//! `sisyphus dev`: the embedded default. Starts a private PostgreSQL from the machine's own
//! binaries in a state directory (unless a database URL is given), migrates it, applies a jobs
//! file, and runs the daemons (scheduler, guardian, dispatcher) in this one process until Ctrl-C.
//!
//! Least privilege here too (issue 15): the owner's login migrates and applies the jobs file,
//! then each daemon works under its own service login, and people are given an operator's URL,
//! not the owner's.

use std::path::Path;

use anyhow::Context;
use sisyphus_client::access::{GrantLevel, LoginKind};
use sisyphus_client::{jobsfile, Client};
use tokio_util::sync::CancellationToken;

pub async fn run(
    database_url: Option<String>,
    state_dir: &Path,
    jobs: &Path,
    notify_config: Option<&Path>,
    web: std::net::SocketAddr,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let settings = match notify_config {
        Some(path) => sisyphus_dispatcher::Settings::load(path)?,
        None => sisyphus_dispatcher::Settings::default(),
    };
    let text = std::fs::read_to_string(jobs)
        .with_context(|| format!("cannot read jobs file {}", jobs.display()))?;
    let checked = jobsfile::parse_all(&text, &jobs.display().to_string())?;
    // Kept until the end of this function: dropping it stops the server.
    let mut cluster = None;
    let url = match database_url {
        Some(url) => url,
        None => {
            let data_dir = std::path::absolute(state_dir.join("pg"))?;
            let options = pgembed::Options {
                data_dir: Some(data_dir.clone()),
                fast_and_unsafe: false,
                ..pgembed::Options::default()
            };
            eprintln!("starting a private PostgreSQL in {}", data_dir.display());
            let started = tokio::task::spawn_blocking(move || pgembed::Cluster::start(options))
                .await?
                .context("starting the private PostgreSQL")?;
            let url = started.url("postgres");
            cluster = Some(started);
            url
        }
    };
    let (from, to) = sisyphus_client::db::migrate(&url).await?;
    if from != to {
        eprintln!("schema migrated from version {from} to {to}");
    }
    let client = Client::connect(&url).await?;
    let applied = client
        .apply_with_defaults(&checked.jobs, &checked.projects, false)
        .await?;
    eprintln!("applied {} job(s) from {}", applied.len(), jobs.display());
    let logins = Logins::create(&client, &url, cluster.is_none()).await?;
    let scheduler =
        sisyphus_scheduler::Scheduler::new(sisyphus_scheduler::Config::new(logins.scheduler))
            .await?;
    let scheduler = tokio::spawn(scheduler.run(shutdown.clone()));
    let mut config = sisyphus_guardian::Config::new(logins.guardian);
    config.name = "dev".to_string();
    config.log_dir = std::path::absolute(state_dir.join("logs"))?;
    config.spool_dir = state_dir.join("spool");
    config.drain_timeout = std::time::Duration::from_secs(5);
    let log_dir = config.log_dir.clone();
    let guardian = sisyphus_guardian::Guardian::start(config).await?;
    let guardian = tokio::spawn(guardian.run(shutdown.clone()));
    let dispatcher = sisyphus_dispatcher::Dispatcher::start(sisyphus_dispatcher::Config::new(
        logins.dispatcher,
        settings,
    ))
    .await?;
    let dispatcher = tokio::spawn(dispatcher.run(shutdown.clone()));
    // The dashboard, and a token for the operator to sign in with (a new one each start).
    let operator = Client::connect(&logins.operator).await?;
    let (_, token) = operator
        .create_token(
            OPERATOR,
            Some(std::time::Duration::from_secs(30 * 86_400)),
            Some("sisyphus dev"),
        )
        .await?;
    let dashboard = tokio::spawn(sisyphus_web::serve(
        sisyphus_web::Config {
            listen: web,
            database_url: logins.web.clone(),
            read_only: false,
            trusted_proxies: Vec::new(),
            proxy_header: None,
            secure_cookies: false,
        },
        shutdown.clone(),
    ));
    eprintln!("\nThe dashboard: http://{web}/ — sign in as {OPERATOR} with the token\n\n  {token}");
    eprintln!(
        "\nSisyphus is running: the scheduler, the dispatcher and guardian `dev`. In another shell:\n\n  \
         export SISYPHUS_DATABASE_URL={operator}\n  cargo run -q --bin sisyctl -- runs\n  \
         cargo run -q --bin sisyctl -- job ls\n\nThat URL is {OPERATOR}'s, an operator of every project \
         (run, kill, pause; not edit).\nThe owner's, for `apply`, grants and logins: {url}\n\
         Log files: {}\nCtrl-C stops everything.\n",
        log_dir.display(),
        operator = logins.operator,
    );
    shutdown.cancelled().await;
    scheduler.await?;
    guardian.await?;
    dispatcher.await?;
    if let Err(e) = dashboard.await? {
        eprintln!("the dashboard stopped: {e}");
    }
    if let Some(mut c) = cluster.take() {
        tokio::task::spawn_blocking(move || c.stop()).await?;
    }
    eprintln!("stopped");
    Ok(())
}

/// The person's login `sisyphus dev` prints a URL for.
const OPERATOR: &str = "dev_operator";

/// The URLs of the logins `sisyphus dev` works with: one per daemon, one for people.
struct Logins {
    scheduler: String,
    guardian: String,
    dispatcher: String,
    web: String,
    operator: String,
}

impl Logins {
    /// Creates (or renews) the daemons' service logins and an operator of every project, through
    /// the same function `sisyctl service add` uses; each with a fresh random password when the
    /// database is not the embedded one (which trusts its local connections).
    async fn create(owner: &Client, owner_url: &str, passwords: bool) -> anyhow::Result<Logins> {
        let one = |login, kind, hosts| Self::one(owner, owner_url, passwords, login, kind, hosts);
        let scheduler = one("sisyphus_dev_scheduler", LoginKind::Scheduler, &[]).await?;
        let dev = ["dev".to_string()];
        let guardian = one("sisyphus_dev_guardian", LoginKind::Guardian, &dev).await?;
        let dispatcher = one("sisyphus_dev_dispatcher", LoginKind::Dispatcher, &[]).await?;
        let web = one("sisyphus_dev_web", LoginKind::Web, &[]).await?;
        let operator = one(OPERATOR, LoginKind::User, &[]).await?;
        owner.grant(OPERATOR, GrantLevel::Operator, "*").await?;
        Ok(Logins {
            scheduler,
            guardian,
            dispatcher,
            web,
            operator,
        })
    }

    /// One login and its URL.
    async fn one(
        owner: &Client,
        owner_url: &str,
        password: bool,
        login: &str,
        kind: LoginKind,
        hosts: &[String],
    ) -> anyhow::Result<String> {
        let password = if password {
            Some(random_password()?)
        } else {
            None
        };
        owner
            .add_login(login, password.as_deref(), kind, hosts)
            .await?;
        with_login(owner_url, login, password.as_deref())
    }
}

/// 16 bytes from the kernel's random source, as hex (nothing in it a URL must escape).
fn random_password() -> anyhow::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom for a password")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// `url` with its user and password replaced: `postgres://owner@h:5432/db?x` →
/// `postgres://login:password@h:5432/db?x` (or `login@` without a password).
fn with_login(url: &str, login: &str, password: Option<&str>) -> anyhow::Result<String> {
    let (scheme, rest) = url
        .split_once("://")
        .with_context(|| format!("not a database URL: {url}"))?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let user = match password {
        Some(p) => format!("{login}:{p}"),
        None => login.to_string(),
    };
    Ok(format!("{scheme}://{user}@{host}{tail}"))
}

#[cfg(test)]
mod tests {
    use super::with_login;

    #[test]
    fn with_login_replaces_only_the_user() {
        let cases = [
            (
                "postgres://postgres@127.0.0.1:5/db",
                "postgres://a:p@127.0.0.1:5/db",
            ),
            (
                "postgres://o:secret@h/db?sslmode=verify-full",
                "postgres://a:p@h/db?sslmode=verify-full",
            ),
            ("postgresql://h:5", "postgresql://a:p@h:5"),
        ];
        for (url, want) in cases {
            assert_eq!(with_login(url, "a", Some("p")).expect(url), want, "{url}");
        }
        assert_eq!(
            with_login("postgres://postgres@h:5/db", "a", None).expect("without a password"),
            "postgres://a@h:5/db"
        );
        assert!(with_login("h:5/db", "a", None).is_err());
    }
}
