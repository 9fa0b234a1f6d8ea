//! [`Client`]: the actions people take on jobs and runs.
//!
//! `sisyctl` is a thin shell over this type, and control actions go through the same SQL
//! functions a psql user calls (`sisyphus.run_now`, `pause_job`, …), so every interface shares
//! one code path.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::db::resources::ResourceRow;
use crate::db::{self, jobs, runs, runs::RunFilter};
use crate::error::{Error, Result};
use crate::lock::{wait_for, LockRequest, ResourceLock, Waited};
use crate::model::{JobId, JobRef, Run, RunId};
use crate::notifications::{OutboxEntry, OutboxState, ProjectDefaults};
use crate::resources::Template;
use crate::schedule::Schedule;
use crate::spec::{JobDefinition, JobSpec};

/// A handle on a Sisyphus database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    pool: PgPool,
}

/// What `apply` did to one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Created,
    Updated,
    Unchanged,
    Removed,
}

/// One line of `apply`'s report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Applied {
    pub job: String,
    pub change: Change,
}

/// Whether a job is healthy; `reason` says why not.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobHealth {
    pub job: JobRef,
    pub reason: Option<String>,
}

/// A job's state, from the `sisyphus.job_status` view.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct JobStatus {
    pub id: JobId,
    pub project: String,
    pub name: String,
    pub schedule: String,
    pub timezone: String,
    pub paused: bool,
    pub next_due: Option<DateTime<Utc>>,
    pub active_runs: i64,
    pub last_run_id: Option<RunId>,
    pub last_status: Option<String>,
    pub last_finished_at: Option<DateTime<Utc>>,
    pub last_summary: Option<String>,
    pub health: String,
    /// Never run, last run not good, or last good run too old: see `sisyphus.health_reason`.
    pub healthy: bool,
    pub health_reason: Option<String>,
    /// Why the scheduler left this job alone, and since when (`migrations/0008_isolation.sql`).
    pub scheduler_error: Option<String>,
    pub scheduler_error_at: Option<DateTime<Utc>>,
}

const STATUS: &str = include_str!("../../sql/jobs/status.sql");
const HEALTH: &str = include_str!("../../sql/jobs/health.sql");
const DURATIONS: &str = include_str!("../../sql/jobs/durations.sql");
const HOSTS: &str = include_str!("../../sql/hosts/list.sql");
const SET_PROJECT: &str = include_str!("../../sql/notifications/set_project.sql");
const NOTIFICATIONS: &str = include_str!("../../sql/notifications/list.sql");
const RETRY_NOTIFICATIONS: &str = include_str!("../../sql/notifications/retry.sql");

/// A registered guardian.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Host {
    pub name: String,
    pub pools: Vec<String>,
    pub capacity: i32,
    pub draining: bool,
    pub pid: Option<i32>,
    pub version: Option<String>,
    pub started_at: DateTime<Utc>,
    pub last_heartbeat: DateTime<Utc>,
    /// Seconds since the last heartbeat.
    pub heartbeat_age: f64,
    /// Heartbeat younger than 30 s.
    pub live: bool,
    /// Runs running or suspended there.
    pub running: i64,
    /// How the host holds its runs' processes: `cgroup` or `process-group`.
    pub isolation: String,
}

/// A remote control action on a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlAction {
    Terminate,
    Suspend,
    Resume,
}

impl ControlAction {
    /// Every action, in the order of the check on `runs.requested`.
    pub const ALL: [ControlAction; 3] = [
        ControlAction::Terminate,
        ControlAction::Suspend,
        ControlAction::Resume,
    ];

    /// As stored in `runs.requested`.
    pub fn as_str(self) -> &'static str {
        match self {
            ControlAction::Terminate => "terminate",
            ControlAction::Suspend => "suspend",
            ControlAction::Resume => "resume",
        }
    }

    fn function(self) -> &'static str {
        match self {
            ControlAction::Terminate => "SELECT sisyphus.terminate($1)",
            ControlAction::Suspend => "SELECT sisyphus.suspend($1)",
            ControlAction::Resume => "SELECT sisyphus.resume($1)",
        }
    }
}

impl std::str::FromStr for ControlAction {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        ControlAction::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not a control action (terminate, suspend, resume)"))
    }
}

impl TryFrom<String> for ControlAction {
    type Error = String;
    fn try_from(s: String) -> std::result::Result<Self, Self::Error> {
        s.parse()
    }
}

impl Client {
    /// Connects and checks that the schema matches this build, giving up after
    /// [`db::DEFAULT_CONNECT_TIMEOUT`].
    pub async fn connect(url: &str) -> Result<Client> {
        Self::connect_with_timeout(url, db::DEFAULT_CONNECT_TIMEOUT).await
    }

    /// As [`connect`](Self::connect), giving up after `timeout` with the cause (connection
    /// refused, no answer, authentication…); later queries wait at most as long for a
    /// connection.
    pub async fn connect_with_timeout(url: &str, timeout: std::time::Duration) -> Result<Client> {
        let pool = db::pool_with_timeout(url, "sisyphus-client", 4, timeout).await?;
        db::check_schema(&pool).await?;
        Ok(Client { pool })
    }

    /// Wraps an existing pool (whose schema the caller has checked).
    pub fn from_pool(pool: PgPool) -> Client {
        Client { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Makes the database hold exactly these definitions: creates new jobs, updates changed ones,
    /// leaves identical ones alone, and with `prune` removes jobs of the same projects that are
    /// not listed. All or nothing: one bad definition, or a job that cannot be removed, and
    /// nothing is written.
    pub async fn apply(&self, definitions: &[JobDefinition], prune: bool) -> Result<Vec<Applied>> {
        let specs = crate::jobsfile::check(definitions)?;
        self.apply_specs(&specs, prune).await
    }

    /// As [`apply`](Self::apply), for definitions already checked (e.g. from a jobs file).
    pub async fn apply_specs(&self, specs: &[JobSpec], prune: bool) -> Result<Vec<Applied>> {
        self.apply_with_defaults(specs, &[], prune).await
    }

    /// As [`apply_specs`](Self::apply_specs), setting projects' defaults in the same
    /// transaction (a jobs file's `[projects.NAME]` sections).
    pub async fn apply_with_defaults(
        &self,
        specs: &[JobSpec],
        defaults: &[ProjectDefaults],
        prune: bool,
    ) -> Result<Vec<Applied>> {
        let mut tx = self.pool.begin().await?;
        for d in defaults {
            sqlx::query(SET_PROJECT)
                .bind(&d.project)
                .bind(sqlx::types::Json(&d.notify))
                .execute(&mut *tx)
                .await?;
        }
        let now: DateTime<Utc> = sqlx::query_scalar("SELECT now()")
            .fetch_one(&mut *tx)
            .await?;
        let projects: Vec<String> = specs
            .iter()
            .map(|s| s.job.project.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let existing: BTreeMap<JobRef, jobs::JobRow> = jobs::by_project(&mut tx, &projects, None)
            .await?
            .into_iter()
            .map(|row| (row.job_ref(), row))
            .collect();
        let mut report = Vec::new();
        for spec in specs {
            let change = apply_one(&mut tx, spec, existing.get(&spec.job), now).await?;
            report.push(Applied {
                job: spec.job.to_string(),
                change,
            });
        }
        if prune {
            let listed: BTreeSet<&JobRef> = specs.iter().map(|s| &s.job).collect();
            for job in existing.keys().filter(|j| !listed.contains(j)) {
                remove(&mut tx, job).await?;
                report.push(Applied {
                    job: job.to_string(),
                    change: Change::Removed,
                });
            }
        }
        tx.commit().await?;
        Ok(report)
    }

    /// The outbox, newest first: every notification, or those in one `state`, or one job's.
    pub async fn notifications(
        &self,
        state: Option<OutboxState>,
        job: Option<&JobRef>,
        limit: i64,
    ) -> Result<Vec<OutboxEntry>> {
        let job_id = match job {
            Some(j) => Some(self.job_id(j).await?),
            None => None,
        };
        Ok(sqlx::query_as(NOTIFICATIONS)
            .bind(state.map(OutboxState::as_str))
            .bind(job_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Sends failed notifications again; returns the ids taken back (failed ones only).
    pub async fn retry_notifications(&self, ids: &[i64]) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar(RETRY_NOTIFICATIONS)
            .bind(ids)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Every job's state (or one project's).
    pub async fn jobs(&self, project: Option<&str>) -> Result<Vec<JobStatus>> {
        Ok(sqlx::query_as(STATUS)
            .bind(project)
            .bind(None::<String>)
            .fetch_all(&self.pool)
            .await?)
    }

    /// One job's state.
    pub async fn job_status(&self, job: &JobRef) -> Result<JobStatus> {
        let row: Option<JobStatus> = sqlx::query_as(STATUS)
            .bind(&job.project)
            .bind(&job.name)
            .fetch_optional(&self.pool)
            .await?;
        row.ok_or_else(|| Error::NoSuchJob(job.clone()))
    }

    /// Whether one job (or every job) is healthy, and why not: never run, last run failed, or
    /// last good run older than the job's `max_health_age` (`sisyphus.health_reason`).
    pub async fn health(&self, job: Option<&JobRef>) -> Result<Vec<JobHealth>> {
        let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(HEALTH)
            .bind(job.map(|j| &j.project))
            .bind(job.map(|j| &j.name))
            .fetch_all(&self.pool)
            .await?;
        if let (Some(j), true) = (job, rows.is_empty()) {
            return Err(Error::NoSuchJob(j.clone()));
        }
        Ok(rows
            .into_iter()
            .map(|(project, name, reason)| JobHealth {
                job: JobRef::new(project, name),
                reason,
            })
            .collect())
    }

    /// A job's last `count` run durations (start to finish), newest first.
    pub async fn durations(&self, job: &JobRef, count: i64) -> Result<Vec<std::time::Duration>> {
        let secs: Vec<f64> = sqlx::query_scalar(DURATIONS)
            .bind(&job.project)
            .bind(&job.name)
            .bind(count)
            .fetch_all(&self.pool)
            .await?;
        Ok(secs
            .into_iter()
            .map(|s| std::time::Duration::from_secs_f64(s.max(0.0)))
            .collect())
    }

    /// One job's stored definition.
    pub async fn job_spec(&self, job: &JobRef) -> Result<JobSpec> {
        let mut conn = self.pool.acquire().await?;
        let row = jobs::find(&mut conn, job)
            .await?
            .ok_or_else(|| Error::NoSuchJob(job.clone()))?;
        row.to_spec().map_err(|e| Error::Refused(e.to_string()))
    }

    /// The job's next `count` fire times from now (for an interval job: its next slot, if known).
    pub async fn next_fire_times(&self, job: &JobRef, count: usize) -> Result<Vec<DateTime<Utc>>> {
        let mut conn = self.pool.acquire().await?;
        let row = jobs::find(&mut conn, job)
            .await?
            .ok_or_else(|| Error::NoSuchJob(job.clone()))?;
        let spec = row.to_spec().map_err(|e| Error::Refused(e.to_string()))?;
        let mut out = Vec::new();
        let Some(mut cursor) = row.next_slot else {
            return Ok(out);
        };
        let left = spec
            .iterations
            .map(|n| (n as i64 - row.fired as i64).max(0) as usize);
        let count = left.map_or(count, |l| l.min(count));
        while out.len() < count && spec.end.is_none_or(|end| cursor <= end) {
            out.push(cursor);
            match spec
                .schedule
                .as_ref()
                .and_then(|s| s.next_after(cursor, spec.timezone))
            {
                Some(next) => cursor = next,
                None => break,
            }
        }
        Ok(out)
    }

    /// Runs a job now, outside its schedule. Returns the new runs (one per host for `all` jobs).
    pub async fn run_now(&self, job: &JobRef) -> Result<Vec<RunId>> {
        let ids: Vec<RunId> = sqlx::query_scalar("SELECT sisyphus.run_now($1, $2)")
            .bind(&job.project)
            .bind(&job.name)
            .fetch_all(&self.pool)
            .await?;
        Ok(ids)
    }

    /// Pauses a job. Returns false if it was paused already.
    pub async fn pause(&self, job: &JobRef) -> Result<bool> {
        self.call_bool("SELECT sisyphus.pause_job($1, $2)", job)
            .await
    }

    /// Resumes a paused job. Returns false if it was not paused.
    pub async fn resume(&self, job: &JobRef) -> Result<bool> {
        self.call_bool("SELECT sisyphus.resume_job($1, $2)", job)
            .await
    }

    /// Removes a job and its history. Refused while a run of it is active. Returns the number of
    /// runs removed with it.
    pub async fn remove(&self, job: &JobRef) -> Result<i32> {
        let mut conn = self.pool.acquire().await?;
        remove(&mut conn, job).await
    }

    /// Runs, newest first. A filter naming a job that does not exist is an error
    /// ([`Error::NoSuchJob`]), not an empty list.
    pub async fn runs(&self, filter: &RunFilter) -> Result<Vec<Run>> {
        let mut conn = self.pool.acquire().await?;
        let found = runs::list(&mut conn, filter).await?;
        if let (true, Some(project), Some(name)) = (found.is_empty(), &filter.project, &filter.name)
        {
            let job = JobRef::new(project, name);
            if jobs::find(&mut conn, &job).await?.is_none() {
                return Err(Error::NoSuchJob(job));
            }
        }
        Ok(found)
    }

    /// Asks for a run to be terminated, suspended or resumed. Returns `cancelled` (a pending run,
    /// ended at once) or `requested` (its guardian carries it out within a second).
    pub async fn control(&self, run: RunId, action: ControlAction) -> Result<String> {
        Ok(sqlx::query_scalar(action.function())
            .bind(run)
            .fetch_one(&self.pool)
            .await?)
    }

    /// One run.
    pub async fn run(&self, id: RunId) -> Result<Run> {
        let mut conn = self.pool.acquire().await?;
        runs::one(&mut conn, id).await?.ok_or(Error::NoSuchRun(id))
    }

    /// A run's log lines after `after_seq` (optionally only those tagged `tag`), at most
    /// 10,000; read on with [`logs_page`](Self::logs_page) from the last line's `seq`.
    pub async fn logs(
        &self,
        run: RunId,
        after_seq: i32,
        tag: Option<&str>,
    ) -> Result<Vec<db::logs::LogRow>> {
        self.logs_page(run, after_seq, tag, 10_000).await
    }

    /// A page of a run's log: at most `limit` lines after `after_seq`, in order.
    pub async fn logs_page(
        &self,
        run: RunId,
        after_seq: i32,
        tag: Option<&str>,
        limit: u32,
    ) -> Result<Vec<db::logs::LogRow>> {
        let mut conn = self.pool.acquire().await?;
        Ok(db::logs::list(&mut conn, run, after_seq, tag, i64::from(limit)).await?)
    }

    /// Where a run's last `n` lines (with `tag`, if given) begin: the `seq` to read after, or
    /// `None` when the log has no more than `n` lines.
    pub async fn log_tail_start(
        &self,
        run: RunId,
        tag: Option<&str>,
        n: u32,
    ) -> Result<Option<i32>> {
        let mut conn = self.pool.acquire().await?;
        Ok(db::logs::tail_start(&mut conn, run, tag, n).await?)
    }

    /// Registered guardians.
    pub async fn hosts(&self) -> Result<Vec<Host>> {
        Ok(sqlx::query_as(HOSTS).fetch_all(&self.pool).await?)
    }

    /// Stops (or, with `drain = false`, restarts) new claims on a host.
    pub async fn drain(&self, host: &str, drain: bool) -> Result<()> {
        sqlx::query("SELECT sisyphus.drain_host($1, $2)")
            .bind(host)
            .bind(drain)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn call_bool(&self, sql: &str, job: &JobRef) -> Result<bool> {
        Ok(sqlx::query_scalar(sql)
            .bind(&job.project)
            .bind(&job.name)
            .fetch_one(&self.pool)
            .await?)
    }
}

/// Resources and lineage (migrations/0004).
impl Client {
    /// Waits for reader locks on `request`'s inputs and writer locks on its outputs, all at
    /// once; see [`ResourceLock`].
    pub async fn lock(&self, request: LockRequest) -> Result<ResourceLock> {
        ResourceLock::acquire(&self.pool, request).await
    }

    /// Adds resources to a running run's locks (what a job declares once it knows them, before
    /// it starts its work). If one is busy the run holds none of its locks while it waits, so
    /// two runs adding crosswise cannot deadlock.
    pub async fn add_run_resources(
        &self,
        run: RunId,
        inputs: &[String],
        outputs: &[String],
        wait: std::time::Duration,
    ) -> Result<()> {
        for name in inputs.iter().chain(outputs) {
            Template::parse(name).map_err(Error::Refused)?;
        }
        let waited = wait_for(wait, || {
            db::resources::lock_run(&self.pool, run, inputs, outputs)
        })
        .await?;
        match waited {
            Waited::Granted => Ok(()),
            Waited::Refused(reason) => Err(Error::LockRefused(reason)),
        }
    }

    /// Resources whose names start with `prefix`, with writer, age and current locks.
    pub async fn resources(&self, prefix: &str) -> Result<Vec<ResourceRow>> {
        Ok(db::resources::list(&self.pool, prefix).await?)
    }

    /// The lineage graph (all of it, or the edges one job wrote) as Graphviz DOT.
    pub async fn graph(&self, job: Option<&JobRef>) -> Result<String> {
        let id = match job {
            None => None,
            Some(j) => Some(self.job_id(j).await?),
        };
        let edges = db::resources::edges(&self.pool, id).await?;
        Ok(crate::resources::to_dot(&edges))
    }

    async fn job_id(&self, job: &JobRef) -> Result<JobId> {
        let mut conn = self.pool.acquire().await?;
        jobs::find(&mut conn, job)
            .await?
            .map(|row| row.id)
            .ok_or_else(|| Error::NoSuchJob(job.clone()))
    }
}

impl RunFilter {
    /// The runs of one job.
    pub fn for_job(job: &JobRef) -> RunFilter {
        RunFilter {
            project: Some(job.project.clone()),
            name: Some(job.name.clone()),
            ..RunFilter::default()
        }
    }
}

async fn remove(conn: &mut sqlx::PgConnection, job: &JobRef) -> Result<i32> {
    Ok(sqlx::query_scalar("SELECT sisyphus.remove_job($1, $2)")
        .bind(&job.project)
        .bind(&job.name)
        .fetch_one(conn)
        .await?)
}

/// Writes one checked definition against what is stored, and says what changed.
async fn apply_one(
    conn: &mut sqlx::PgConnection,
    spec: &JobSpec,
    existing: Option<&jobs::JobRow>,
    now: DateTime<Utc>,
) -> Result<Change> {
    let Some(row) = existing else {
        jobs::upsert(conn, spec, jobs::first_slot(spec, now, 0)).await?;
        if spec.paused {
            set_paused(conn, &spec.job, true).await?;
        }
        return Ok(Change::Created);
    };
    let old = row.to_spec().ok();
    if old.as_ref() == Some(spec) {
        return Ok(Change::Unchanged);
    }
    let timing_changed = old.as_ref().is_none_or(|o| !same_timing(o, spec));
    let next_slot = if timing_changed {
        jobs::take_back_future_runs(conn, row.id).await?;
        let fired = sqlx::query_scalar("SELECT fired FROM sisyphus.jobs WHERE id = $1")
            .bind(row.id)
            .fetch_one(&mut *conn)
            .await?;
        jobs::first_slot(spec, now, fired)
    } else {
        row.next_slot
    };
    jobs::upsert(conn, spec, next_slot).await?;
    if spec.paused != row.paused {
        set_paused(conn, &spec.job, spec.paused).await?;
    }
    Ok(Change::Updated)
}

/// Whether two definitions put their slots at the same times (if so, the scheduler's state —
/// the next slot — stays valid across the change).
fn same_timing(a: &JobSpec, b: &JobSpec) -> bool {
    let interval_only = matches!(
        (&a.schedule, &b.schedule),
        (Some(Schedule::Interval(_)), Some(Schedule::Interval(_)))
    );
    (a.schedule == b.schedule || interval_only)
        && a.timezone == b.timezone
        && a.start == b.start
        && a.end == b.end
        && a.jitter == b.jitter
        && a.iterations == b.iterations
        && a.target == b.target
}

async fn set_paused(conn: &mut sqlx::PgConnection, job: &JobRef, paused: bool) -> Result<()> {
    let sql = if paused {
        "SELECT sisyphus.pause_job($1, $2)"
    } else {
        "SELECT sisyphus.resume_job($1, $2)"
    };
    sqlx::query(sql)
        .bind(&job.project)
        .bind(&job.name)
        .execute(conn)
        .await?;
    Ok(())
}
