//! The web dashboard's statements (`sql/web/`): the start of each request's transaction as the
//! person (the authenticator pattern of `migrations/0018_web.sql`) and the reads only its pages
//! make. Actions go through the same functions as `sisyctl` (`runs::control`, `jobs::run_now`,
//! …).

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use sisyphus_model::access::Abilities;
use sisyphus_model::views::{JobStatus, RunFacts};
use sisyphus_model::{JobId, Run, RunId, RunStatus, RunTrigger};

use crate::decode;

const SIGN_IN: &str = include_str!("../../sql/web/sign_in.sql");
const PROXY_PERSON: &str = include_str!("../../sql/web/proxy_person.sql");
const SET_REASON: &str = include_str!("../../sql/web/set_reason.sql");
const RUNS_PAGE: &str = include_str!("../../sql/web/runs_page.sql");
const RUN_FACTS: &str = include_str!("../../sql/web/run_facts.sql");
const ATTEMPTS: &str = include_str!("../../sql/web/attempts.sql");
const ACTIVE: &str = include_str!("../../sql/web/active.sql");
const TROUBLED: &str = include_str!("../../sql/web/troubled.sql");
const STATUS_COUNTS: &str = include_str!("../../sql/web/status_counts.sql");
const UPCOMING: &str = include_str!("../../sql/web/upcoming.sql");
const JOBS_PAGE: &str = include_str!("../../sql/web/jobs_page.sql");
const ABILITIES: &str = include_str!("../../sql/web/abilities.sql");
const LAST_SUCCESS: &str = include_str!("../../sql/web/last_success.sql");
const JOB_COUNTS: &str = include_str!("../../sql/web/job_counts.sql");

/// The channel the dashboard LISTENs on: `runs`, or `log <ids>` / `log *`.
pub const CHANNEL: &str = "sisyphus_web";

/// Who a request acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// The SHA-256 of a personal token.
    Token([u8; 32]),
    /// A login named by a trusted proxy.
    Proxy(String),
}

/// Turns the transaction `conn` is in into the person's: checks the credential (a wrong,
/// expired or revoked token is SQLSTATE 28000), switches to their role and names them for the
/// audit. Their login.
pub async fn act_as(conn: &mut PgConnection, who: &Credential) -> crate::Result<String> {
    let row = match who {
        Credential::Token(hash) => {
            sqlx::query(SIGN_IN)
                .bind(hash.as_slice())
                .fetch_one(&mut *conn)
                .await
        }
        Credential::Proxy(login) => {
            sqlx::query(PROXY_PERSON)
                .bind(login)
                .fetch_one(&mut *conn)
                .await
        }
    }
    .map_err(crate::Error::from)?;
    row.try_get("person").map_err(crate::Error::from)
}

/// The reason the person gave for this transaction's change.
pub async fn set_reason(conn: &mut PgConnection, reason: &str) -> crate::Result<()> {
    sqlx::query(SET_REASON)
        .bind(reason)
        .execute(conn)
        .await
        .map(drop)
        .map_err(crate::Error::from)
}

/// Which runs a page of the Runs screen shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunPage {
    /// Runs with ids below this one (the previous page's last); None: the newest.
    pub before: Option<RunId>,
    pub project: Option<String>,
    pub name: Option<String>,
    pub status: Option<RunStatus>,
    pub host: Option<String>,
    pub trigger: Option<RunTrigger>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub size: i64,
}

/// One page of runs, newest first.
pub async fn runs_page(conn: &mut PgConnection, page: &RunPage) -> crate::Result<Vec<Run>> {
    sqlx::query(RUNS_PAGE)
        .bind(page.before.map(|r| r.0))
        .bind(&page.project)
        .bind(&page.name)
        .bind(page.status.map(RunStatus::as_str))
        .bind(&page.host)
        .bind(page.trigger.map(RunTrigger::as_str))
        .bind(page.from)
        .bind(page.to)
        .bind(page.size)
        .try_map(decode::run)
        .fetch_all(conn)
        .await
        .map_err(crate::Error::from)
}

/// The Run page's facts beyond the run's row; None when the caller may not see the run.
pub async fn run_facts(conn: &mut PgConnection, run: RunId) -> crate::Result<Option<RunFacts>> {
    sqlx::query(RUN_FACTS)
        .bind(run.0)
        .try_map(|row: PgRow| {
            Ok(RunFacts {
                pid: row.try_get("pid")?,
                signal: row.try_get("signal")?,
                created_by: row.try_get("created_by")?,
                requested: row.try_get("requested")?,
                suspended_at: row.try_get("suspended_at")?,
                expires_at: row.try_get("expires_at")?,
                lease_expires_at: row.try_get("lease_expires_at")?,
                job_id: decode::job_id(&row, "job_id")?,
            })
        })
        .fetch_optional(conn)
        .await
        .map_err(crate::Error::from)
}

/// Every run of `run`'s slot: attempts, reruns, hosts.
pub async fn attempts(conn: &mut PgConnection, run: RunId) -> crate::Result<Vec<Run>> {
    fetch_runs(conn, ATTEMPTS, Some(run.0)).await
}

/// Runs running or suspended now.
pub async fn active(conn: &mut PgConnection) -> crate::Result<Vec<Run>> {
    fetch_runs(conn, ACTIVE, None).await
}

/// Runs that ended failed, timeout, lost or missed and were made since `since`.
pub async fn troubled(conn: &mut PgConnection, since: DateTime<Utc>) -> crate::Result<Vec<Run>> {
    sqlx::query(TROUBLED)
        .bind(since)
        .try_map(decode::run)
        .fetch_all(conn)
        .await
        .map_err(crate::Error::from)
}

async fn fetch_runs(
    conn: &mut PgConnection,
    sql: &str,
    id: Option<i64>,
) -> crate::Result<Vec<Run>> {
    let mut query = sqlx::query(sql);
    if let Some(id) = id {
        query = query.bind(id);
    }
    query
        .try_map(decode::run)
        .fetch_all(conn)
        .await
        .map_err(crate::Error::from)
}

/// How many runs were made since `since`, by status.
pub async fn status_counts(
    conn: &mut PgConnection,
    since: DateTime<Utc>,
) -> crate::Result<Vec<(RunStatus, i64)>> {
    sqlx::query(STATUS_COUNTS)
        .bind(since)
        .try_map(|row: PgRow| Ok((decode::label(&row, "status")?, row.try_get("n")?)))
        .fetch_all(conn)
        .await
        .map_err(crate::Error::from)
}

/// A job that is due soon (or overdue).
#[derive(Debug, Clone, PartialEq)]
pub struct Upcoming {
    pub job_id: JobId,
    /// `PROJECT/NAME`.
    pub job: String,
    pub due: DateTime<Utc>,
}

/// Unpaused jobs due before `until`, soonest first.
pub async fn upcoming(
    conn: &mut PgConnection,
    until: DateTime<Utc>,
) -> crate::Result<Vec<Upcoming>> {
    sqlx::query(UPCOMING)
        .bind(until)
        .try_map(|row: PgRow| {
            Ok(Upcoming {
                job_id: decode::job_id(&row, "id")?,
                job: row.try_get("job")?,
                due: row.try_get("next_slot")?,
            })
        })
        .fetch_all(conn)
        .await
        .map_err(crate::Error::from)
}

/// Which jobs a page of the Jobs screen shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobPage {
    pub project: Option<String>,
    /// Text anywhere in `PROJECT/NAME`, any case.
    pub search: Option<String>,
    pub last_status: Option<RunStatus>,
    pub pool: Option<String>,
    pub paused: Option<bool>,
    pub healthy: Option<bool>,
    /// Jobs after this (project, name); None: from the first.
    pub after: Option<(String, String)>,
    pub size: i64,
}

/// A job's line on the Jobs screen.
#[derive(Debug, Clone, PartialEq)]
pub struct JobLine {
    pub status: JobStatus,
    /// When its newest successful or uneventful run ended.
    pub last_success: Option<DateTime<Utc>>,
}

/// One page of jobs with their state, by project and name.
pub async fn jobs_page(conn: &mut PgConnection, page: &JobPage) -> crate::Result<Vec<JobLine>> {
    sqlx::query(JOBS_PAGE)
        .bind(&page.project)
        .bind(&page.search)
        .bind(page.last_status.map(RunStatus::as_str))
        .bind(&page.pool)
        .bind(page.paused)
        .bind(page.healthy)
        .bind(page.after.as_ref().map(|a| a.0.as_str()))
        .bind(page.after.as_ref().map(|a| a.1.as_str()))
        .bind(page.size)
        .try_map(|row: PgRow| {
            let last_success = row.try_get("last_success")?;
            Ok(JobLine {
                status: decode::job_status(row)?,
                last_success,
            })
        })
        .fetch_all(conn)
        .await
        .map_err(crate::Error::from)
}

/// What the person of this transaction may do.
pub async fn abilities(conn: &mut PgConnection) -> crate::Result<Abilities> {
    sqlx::query(ABILITIES)
        .try_map(|row: PgRow| {
            Ok(Abilities {
                admin: row.try_get("admin")?,
                operate: row.try_get("operate")?,
                edit: row.try_get("edit")?,
            })
        })
        .fetch_one(conn)
        .await
        .map_err(crate::Error::from)
}

/// When job `job`'s newest good run ended.
pub async fn last_success(
    conn: &mut PgConnection,
    job: JobId,
) -> crate::Result<Option<DateTime<Utc>>> {
    sqlx::query_scalar(LAST_SUCCESS)
        .bind(job.0)
        .fetch_one(conn)
        .await
        .map_err(crate::Error::from)
}

/// Of job `job`'s last 100 ended runs: how many, and how many were good.
pub async fn job_counts(conn: &mut PgConnection, job: JobId) -> crate::Result<(i64, i64)> {
    sqlx::query(JOB_COUNTS)
        .bind(job.0)
        .try_map(|row: PgRow| Ok((row.try_get("ended")?, row.try_get("good")?)))
        .fetch_one(conn)
        .await
        .map_err(crate::Error::from)
}
