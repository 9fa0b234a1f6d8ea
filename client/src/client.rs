//! [`Client`]: the actions people take on jobs and runs.
//!
//! `sisyctl` is a thin shell over this type, and control actions go through the same SQL
//! functions a psql user calls (`sisyphus.run_now`, `pause_job`, …), so every interface shares
//! one code path.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sisyphus_db::{PgConnection, PgPool};

use crate::access::{self, AuditEntry, Grant, GrantLevel, LoginKind};
use crate::db::access::AuditFilter;
use crate::db::resources::ResourceRow;
use crate::db::{self, hosts, jobs, notifications, runs, runs::RunFilter};
use crate::lock::{wait_for, LockRequest, ResourceLock, Waited};
use crate::model::{JobId, JobRef, Run, RunId};
use crate::notifications::{OutboxEntry, OutboxState, ProjectDefaults};
use crate::resources::Template;
use crate::schedule::Schedule;
use crate::spec::{JobDefinition, JobSpec};
use crate::views::{Host, JobHealth, JobStatus};
use crate::{Error, Result};
use sisyphus_model::ControlAction;

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

/// What [`Client::backfill`] found: each slot in the range (per host of an `all` job) with its
/// state and run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Backfill {
    pub job: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub dry_run: bool,
    pub slots: Vec<jobs::BackfillSlot>,
}

impl Backfill {
    /// How many slots were found in `state`.
    pub fn count(&self, state: crate::backfill::BackfillState) -> usize {
        self.slots.iter().filter(|s| s.state == state).count()
    }
}

/// What [`Client::bulk`] does to each run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkAction {
    /// A new run of the same job and slot (`sisyctl rerun`).
    Rerun,
    /// Terminate, suspend or resume.
    Control(ControlAction),
}

impl Client {
    /// Connects and checks that the schema matches this build, giving up after
    /// [`db::DEFAULT_CONNECT_TIMEOUT`].
    pub async fn connect(url: &str) -> Result<Client> {
        Self::connect_with_timeout(url, db::DEFAULT_CONNECT_TIMEOUT).await
    }

    /// As [`connect`](Self::connect), giving up after `timeout` with the cause (connection
    /// refused, no answer, authentication…); later queries wait at most as long for a
    /// connection. Its `application_name`, the audit log's channel, is `client`.
    pub async fn connect_with_timeout(url: &str, timeout: std::time::Duration) -> Result<Client> {
        let pool = db::pool_with_timeout(url, "client", 4, timeout).await?;
        db::check_schema(&pool).await?;
        Ok(Client { pool })
    }

    /// As [`connect_with_timeout`](Self::connect_with_timeout), naming the program
    /// (`application_name`: the audit log's channel, e.g. `sisyctl`) and, when given, the reason
    /// for the changes this client makes (the setting `sisyphus.reason`, which the audit log
    /// records with each of them).
    pub async fn connect_as(
        url: &str,
        timeout: std::time::Duration,
        application: &str,
        reason: Option<&str>,
    ) -> Result<Client> {
        let settings: Vec<(&str, &str)> = reason
            .filter(|r| !r.is_empty())
            .map(|r| ("sisyphus.reason", r))
            .into_iter()
            .collect();
        let pool = db::pool_with_settings(url, application, 4, timeout, &settings).await?;
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
    ///
    /// Plain env values under keys that look secret are logged as warnings (job and key only).
    pub async fn apply(&self, definitions: &[JobDefinition], prune: bool) -> Result<Vec<Applied>> {
        let specs = crate::jobsfile::check(definitions)?;
        for warning in crate::jobsfile::env_warnings(&specs) {
            tracing::warn!("{warning}");
        }
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
            notifications::set_project(&mut tx, d).await?;
        }
        let now = jobs::now(&mut *tx).await?;
        crate::calendars::check_specs(&mut tx, specs, now).await?;
        let existing = existing_jobs(&mut tx, specs).await?;
        let mut report = Vec::new();
        for spec in specs {
            let change = apply_one(&mut tx, spec, existing.get(&spec.job), now).await?;
            report.push(Applied {
                job: spec.job.to_string(),
                change,
            });
        }
        if prune {
            for job in pruned(&existing, specs) {
                jobs::remove(&mut *tx, job).await?;
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
        notifications::list(&self.pool, state, job_id, limit).await
    }

    /// Sends failed notifications again; returns the ids taken back (failed ones only).
    pub async fn retry_notifications(&self, ids: &[i64]) -> Result<Vec<i64>> {
        notifications::retry(&self.pool, ids).await
    }

    /// Every job's state (or one project's).
    pub async fn jobs(&self, project: Option<&str>) -> Result<Vec<JobStatus>> {
        jobs::status(&self.pool, project, None).await
    }

    /// One job's state.
    pub async fn job_status(&self, job: &JobRef) -> Result<JobStatus> {
        jobs::status(&self.pool, Some(&job.project), Some(&job.name))
            .await?
            .pop()
            .ok_or_else(|| Error::NoSuchJob(job.clone()))
    }

    /// Whether one job (or every job) is healthy, and why not: never run, last run failed, or
    /// last good run older than the job's `max_health_age` (`sisyphus.health_reason`).
    pub async fn health(&self, job: Option<&JobRef>) -> Result<Vec<JobHealth>> {
        let found = jobs::health(&self.pool, job).await?;
        if let (Some(j), true) = (job, found.is_empty()) {
            return Err(Error::NoSuchJob(j.clone()));
        }
        Ok(found)
    }

    /// A job's last `count` run durations (start to finish), newest first.
    pub async fn durations(&self, job: &JobRef, count: i64) -> Result<Vec<std::time::Duration>> {
        jobs::durations(&self.pool, job, count).await
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
        Ok(slots_from(&spec, row.next_slot, row.fired, count))
    }

    /// Runs a job now, outside its schedule. Returns the new runs (one per host for `all` jobs).
    pub async fn run_now(&self, job: &JobRef) -> Result<Vec<RunId>> {
        jobs::run_now(&self.pool, job, &BTreeMap::new()).await
    }

    /// As [`run_now`](Self::run_now), with parameters: each must be one the job declares (and
    /// one of its choices, where it lists them); those not given take their defaults, and one
    /// without a default must be given. A refused parameter is [`Error::BadInput`] naming it, and
    /// no run is made. The run gets them as `SISYPHUS_PARAM_<NAME>` and `$SISYPHUS_PARAMS`.
    pub async fn run_now_with(
        &self,
        job: &JobRef,
        params: &BTreeMap<String, String>,
    ) -> Result<Vec<RunId>> {
        for (name, value) in params {
            crate::params::check_name(name).map_err(Error::BadInput)?;
            crate::params::check_value(name, "value", value).map_err(Error::BadInput)?;
        }
        jobs::run_now(&self.pool, job, params).await
    }

    /// Backfills a job: a run (trigger `backfill`) for each slot of its schedule in `[from, to)`
    /// — computed here with the scheduler's cron evaluator, inside the job's window — that has
    /// no good run (successful or uneventful) and none pending, running or suspended; oldest
    /// first, made by the scheduler as the job's concurrency has room (see
    /// migrations/0016_overlap_backfill.sql). Idempotent: a second call finds the slots waiting,
    /// active or done and queues nothing. More than `max` slots (10,000 unless raised, at most
    /// 1,000,000), an empty or reversed range and a job without clock slots (manual, interval)
    /// are [`Error::BadInput`] and nothing is written; with `dry_run` nothing is written either.
    /// Operators of the project may; one audit row per call that queued anything.
    pub async fn backfill(
        &self,
        job: &JobRef,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        max: u32,
        dry_run: bool,
    ) -> Result<Backfill> {
        if from >= to {
            return Err(Error::BadInput(
                crate::backfill::BackfillError::EmptyRange { from, to }.to_string(),
            ));
        }
        let spec = self.job_spec(job).await?;
        let mut slots = crate::backfill::slots(&spec, from, to, max)
            .map_err(|e| Error::BadInput(e.to_string()))?;
        // Slots the job's calendars exclude are not filled: the scheduler skipped them on
        // purpose, and a backfill fills only what should have run.
        if !spec.skip_on.is_empty() || !spec.only_on.is_empty() {
            let calendars = self.calendar_set(&spec.skip_on, &spec.only_on, "").await?;
            slots.retain(|t| calendars.excluded_by(*t).is_none());
        }
        let found = jobs::backfill(&self.pool, job, from, to, &slots, max, dry_run).await?;
        Ok(Backfill {
            job: job.to_string(),
            from,
            to,
            dry_run,
            slots: found,
        })
    }

    /// Takes back a job's backfill slots that are not runs yet (the runs already made are
    /// cancelled as any run is). Returns how many.
    pub async fn cancel_backfill(&self, job: &JobRef) -> Result<i32> {
        jobs::cancel_backfill(&self.pool, job).await
    }

    /// Pauses a job. Returns false if it was paused already.
    pub async fn pause(&self, job: &JobRef) -> Result<bool> {
        jobs::set_paused(&self.pool, job, true).await
    }

    /// Pauses a job saying why (shown by `job ls`, `job show`, `job_status`, `health`) and, with
    /// `until`, when the scheduler resumes it by itself (a time in the future). Returns false if
    /// it was paused already.
    pub async fn pause_with(
        &self,
        job: &JobRef,
        reason: Option<&str>,
        until: Option<DateTime<Utc>>,
    ) -> Result<bool> {
        if let Some(reason) = reason {
            if reason.chars().count() > 1000 || reason.contains('\0') {
                return Err(Error::Refused(
                    "a pause's reason holds at most 1000 characters and no NUL".to_string(),
                ));
            }
        }
        if until.is_some_and(|t| t <= Utc::now()) {
            return Err(Error::Refused(
                "--until: the pause must end in the future".to_string(),
            ));
        }
        jobs::pause(&self.pool, job, reason, until).await
    }

    /// Runs `run` again: a new run of the same job, slot and target host, trigger `rerun`, linked
    /// to it (`rerun_of`). Returns the new run's id.
    pub async fn rerun(&self, run: RunId) -> Result<RunId> {
        db::runs::rerun(&self.pool, run).await
    }

    /// Resumes a paused job. Returns false if it was not paused.
    pub async fn resume(&self, job: &JobRef) -> Result<bool> {
        jobs::set_paused(&self.pool, job, false).await
    }

    /// Removes a job and its history. Refused while a run of it is active. Returns the number of
    /// runs removed with it.
    pub async fn remove(&self, job: &JobRef) -> Result<i32> {
        jobs::remove(&self.pool, job).await
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
        let mut conn = self.pool.acquire().await?;
        runs::control(&mut conn, run, action).await
    }

    /// One action on many runs (`sisyctl runs … --kill --yes`): one transaction for all of them,
    /// each run in a savepoint of its own, so that one that cannot be acted on (it ended
    /// meanwhile, or is not the caller's to touch) is reported and the others go on. Returns
    /// per run what happened: the control's answer (`requested`, `cancelled`) or the new run of
    /// a rerun, or the refusal.
    pub async fn bulk(
        &self,
        runs: &[RunId],
        action: BulkAction,
    ) -> Result<Vec<(RunId, std::result::Result<String, String>)>> {
        let mut tx = self.pool.begin().await?;
        let mut done = Vec::with_capacity(runs.len());
        for &run in runs {
            let mut savepoint = db::begin_nested(&mut tx).await?;
            let answer = match action {
                BulkAction::Rerun => runs::rerun(&mut *savepoint, run)
                    .await
                    .map(|new| format!("run {new}")),
                BulkAction::Control(c) => runs::control(&mut savepoint, run, c).await,
            };
            match answer {
                Ok(answer) => {
                    savepoint.commit().await?;
                    done.push((run, Ok(answer)));
                }
                Err(e @ (Error::Declined { .. } | Error::NoSuchRun(_))) => {
                    savepoint.rollback().await?;
                    done.push((run, Err(e.to_string())));
                }
                Err(e) => return Err(e),
            }
        }
        tx.commit().await?;
        Ok(done)
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
        db::logs::list(&mut conn, run, after_seq, tag, i64::from(limit)).await
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
        db::logs::tail_start(&mut conn, run, tag, n).await
    }

    /// Registered guardians.
    pub async fn hosts(&self) -> Result<Vec<Host>> {
        hosts::list(&self.pool).await
    }

    /// Stops (or, with `drain = false`, restarts) new claims on a host.
    pub async fn drain(&self, host: &str, drain: bool) -> Result<()> {
        hosts::drain(&self.pool, host, drain).await
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
        db::resources::list(&self.pool, prefix).await
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

/// Access control (migrations/0011): grants, logins and the audit log. The database checks the
/// caller; a refusal is [`Error::Declined`] with its message ("alice (operator of ACME.*) may not
/// remove jobs of ACME.FooBar: needs editor").
impl Client {
    /// Gives `login` `level` on the projects `pattern` matches (`ACME.FooBar`, `ACME.*`, `*`),
    /// replacing the level it held there. Admins only.
    pub async fn grant(&self, login: &str, level: GrantLevel, pattern: &str) -> Result<()> {
        access::check_login(login).map_err(Error::Refused)?;
        access::check_pattern(pattern).map_err(Error::Refused)?;
        db::access::grant(&self.pool, login, level, pattern).await
    }

    /// Takes back `login`'s grant on `pattern`; false when it held none there. Admins only.
    pub async fn revoke(&self, login: &str, pattern: &str) -> Result<bool> {
        access::check_login(login).map_err(Error::Refused)?;
        access::check_pattern(pattern).map_err(Error::Refused)?;
        db::access::revoke(&self.pool, login, pattern).await
    }

    /// The grants this login may see: all of them for admins, its own for others.
    pub async fn grants(&self) -> Result<Vec<Grant>> {
        db::access::grants(&self.pool).await
    }

    /// Creates a login for a person or a daemon (or sets an existing one's password): `password`
    /// or none (then only trusted or certificate authentication lets it in), and for a guardian
    /// the host names it may act as (at least one). Admins only.
    pub async fn add_login(
        &self,
        login: &str,
        password: Option<&str>,
        kind: LoginKind,
        hosts: &[String],
    ) -> Result<()> {
        access::check_login(login).map_err(Error::Refused)?;
        if kind == LoginKind::Guardian && hosts.is_empty() {
            return Err(Error::Refused(format!(
                "guardian login {login} needs the host names it may act as"
            )));
        }
        if password.is_some_and(|p| p.is_empty() || p.contains('\0')) {
            return Err(Error::Refused(
                "a password cannot be empty or hold a NUL character".to_string(),
            ));
        }
        db::access::add_login(&self.pool, login, password, kind, hosts).await
    }

    /// The audit log, newest first, as far as this login may read it.
    pub async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        db::access::audit(&self.pool, filter).await
    }

    /// A new personal token for `login` to sign in to the dashboard with, valid for `valid_for`
    /// (None: until revoked): its id and the token, which exists only in this answer (the
    /// database keeps its SHA-256). One's own, or anyone's for admins.
    pub async fn create_token(
        &self,
        login: &str,
        valid_for: Option<std::time::Duration>,
        label: Option<&str>,
    ) -> Result<(i64, String)> {
        access::check_login(login).map_err(Error::Refused)?;
        let expires_at = match valid_for {
            None => None,
            Some(d) => {
                let d = chrono::Duration::from_std(d)
                    .ok()
                    .filter(|d| *d > chrono::Duration::zero())
                    .ok_or_else(|| {
                        Error::Refused(format!("--expires: {d:?} is not a usable validity"))
                    })?;
                Some(Utc::now().checked_add_signed(d).ok_or_else(|| {
                    Error::Refused("--expires: the token would expire after year 262143".into())
                })?)
            }
        };
        let token =
            crate::token::generate().map_err(|e| Error::Refused(format!("no randomness: {e}")))?;
        let id = db::tokens::create(
            &self.pool,
            login,
            &crate::token::hash(&token),
            expires_at,
            label,
        )
        .await?;
        Ok((id, token))
    }

    /// Revokes token `id` at once (sessions signed in with it end at their next request); false
    /// when there was no such live token.
    pub async fn revoke_token(&self, id: i64) -> Result<bool> {
        db::tokens::revoke(&self.pool, id).await
    }

    /// The tokens this login may see (its own; admins all), newest first.
    pub async fn tokens(&self) -> Result<Vec<access::TokenInfo>> {
        db::tokens::list(&self.pool).await
    }
}

/// The stored jobs of the projects `specs` name, by job: what apply (and a plan) compares with.
pub(crate) async fn existing_jobs(
    conn: &mut PgConnection,
    specs: &[JobSpec],
) -> Result<BTreeMap<JobRef, jobs::JobRow>> {
    let projects: Vec<String> = specs
        .iter()
        .map(|s| s.job.project.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    Ok(jobs::by_project(conn, &projects, None)
        .await?
        .into_iter()
        .map(|row| (row.job_ref(), row))
        .collect())
}

/// The stored jobs `--prune` removes: those of the file's projects that the file does not list.
pub(crate) fn pruned<'a>(
    existing: &'a BTreeMap<JobRef, jobs::JobRow>,
    specs: &[JobSpec],
) -> Vec<&'a JobRef> {
    let listed: BTreeSet<&JobRef> = specs.iter().map(|s| &s.job).collect();
    existing.keys().filter(|j| !listed.contains(j)).collect()
}

/// What apply does to one job, decided from the definition and the stored row alone — the one
/// decision `apply` acts on and `apply --plan` reports: the change, and whether the job's slots
/// move (then its future runs are taken back and its next slot is computed afresh).
pub(crate) fn decide(spec: &JobSpec, existing: Option<&jobs::JobRow>) -> (Change, bool) {
    let Some(row) = existing else {
        return (Change::Created, true);
    };
    let old = row.to_spec().ok();
    if old.as_ref() == Some(spec) {
        return (Change::Unchanged, false);
    }
    let timing_changed = old.as_ref().is_none_or(|o| !same_timing(o, spec));
    (Change::Updated, timing_changed)
}

/// A job's next `count` slots from `first`, as the scheduler will make them: within its window
/// and the iterations it has left after `fired`.
pub(crate) fn slots_from(
    spec: &JobSpec,
    first: Option<DateTime<Utc>>,
    fired: i32,
    count: usize,
) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    let Some(mut cursor) = first else {
        return out;
    };
    let left = spec
        .iterations
        .map(|n| (i64::from(n) - i64::from(fired)).max(0) as usize);
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
    out
}

/// Writes one checked definition against what is stored, and says what changed.
async fn apply_one(
    conn: &mut PgConnection,
    spec: &JobSpec,
    existing: Option<&jobs::JobRow>,
    now: DateTime<Utc>,
) -> Result<Change> {
    let (change, timing_changed) = decide(spec, existing);
    let Some(row) = existing else {
        jobs::upsert(conn, spec, jobs::first_slot(spec, now, 0)).await?;
        if spec.paused {
            jobs::set_paused(&mut *conn, &spec.job, true).await?;
        }
        return Ok(Change::Created);
    };
    if change == Change::Unchanged {
        return Ok(Change::Unchanged);
    }
    let next_slot = if timing_changed {
        jobs::take_back_future_runs(conn, row.id).await?;
        let fired = jobs::fired(&mut *conn, row.id).await?;
        jobs::first_slot(spec, now, fired)
    } else {
        row.next_slot
    };
    jobs::upsert(conn, spec, next_slot).await?;
    if spec.paused != row.paused {
        jobs::set_paused(&mut *conn, &spec.job, spec.paused).await?;
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
