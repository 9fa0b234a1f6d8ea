//! The scheduler's statements (`sql/scheduler/`), one function each, and what it needs around
//! them: the leader's own connection, the transaction of a tick and its savepoints, the channel
//! the leader listens on, and the wording of the errors a tick records.
//!
//! Grouped as the scheduler runs them: leadership, the tick (due jobs, materialising slots,
//! expiry, scheduler errors), data triggers, alerts, housekeeping, the queue depth its metrics
//! show (the outbox backlog they show too is [`crate::dispatcher::backlog`]).

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{ConnectOptions as _, Connection as _, PgConnection, PgExecutor, Postgres, Row as _};

use sisyphus_model::{JobId, RunId, RunStatus};

use crate::decode::{job_id, run_id};
use crate::error::{Error, Result};
use crate::interval;
use crate::jobs::JobRow;

// Leadership.

/// The leader's own connection (not pooled: the session holds the leader lock, and the tick
/// writes through it), named `application` in `pg_stat_activity`.
pub async fn connect(url: &str, application: &str) -> Result<PgConnection> {
    Ok(crate::options(url, application)?.connect().await?)
}

/// Takes the leader lock (a session advisory lock on `key`) if nobody holds it; whether it did.
pub async fn try_lead<'e>(db: impl PgExecutor<'e>, key: i64) -> Result<bool> {
    let won = sqlx::query_scalar(include_str!("../../sql/scheduler/try_lead.sql"))
        .bind(key)
        .fetch_one(db)
        .await?;
    Ok(won)
}

/// Gives the leader lock on `key` back (at shutdown).
pub async fn stop_leading<'e>(db: impl PgExecutor<'e>, key: i64) -> Result<()> {
    sqlx::query(include_str!("../../sql/scheduler/stop_leading.sql"))
        .bind(key)
        .execute(db)
        .await?;
    Ok(())
}

/// The channel the scheduler's leader LISTENs on (a [`crate::Listener`]): NOTIFYed when
/// definitions change or inputs are seen, which wakes it before its next tick is due.
pub const JOBS_CHANNEL: &str = "sisyphus_jobs";

// The tick's transaction and its savepoints.

/// A transaction on a borrowed connection (the tick on the leader's connection) or, begun inside
/// one, a savepoint: sqlx's nesting — `BEGIN` or `SAVEPOINT`, `COMMIT` or `RELEASE SAVEPOINT`,
/// `ROLLBACK` or `ROLLBACK TO SAVEPOINT`. One dropped unfinished is rolled back. Statements run on
/// it through `&mut *tx`, a `PgConnection`.
pub struct Tx<'c>(sqlx::Transaction<'c, Postgres>);

/// Begins a transaction on `conn`, or a savepoint when `conn` is a [`Tx`] already.
pub async fn begin(conn: &mut PgConnection) -> Result<Tx<'_>> {
    Ok(Tx(conn.begin().await?))
}

impl Tx<'_> {
    /// Commits the transaction, or releases the savepoint.
    pub async fn commit(self) -> Result<()> {
        Ok(self.0.commit().await?)
    }

    /// Rolls the transaction back, or back to the savepoint (which ends it).
    pub async fn rollback(self) -> Result<()> {
        Ok(self.0.rollback().await?)
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.0
    }
}

impl std::ops::DerefMut for Tx<'_> {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.0
    }
}

/// An error in the words the scheduler logs and records as a job's scheduler error: the
/// driver's own message (`error returned from database: …`, `error occurred while decoding
/// column …`), without the "database error: " that [`Error`]'s display adds and with the
/// prefix a [`Error::Declined`] drops. Other errors display as they are.
pub fn reason(e: &Error) -> impl fmt::Display + '_ {
    Reason(e)
}

struct Reason<'a>(&'a Error);

impl fmt::Display for Reason<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Error::Db(e) => e.fmt(f),
            Error::Declined { message, .. } => write!(f, "error returned from database: {message}"),
            other => other.fmt(f),
        }
    }
}

/// Turns JIT compilation off for the tick's transaction.
pub async fn no_jit<'e>(db: impl PgExecutor<'e>) -> Result<()> {
    sqlx::query(include_str!("../../sql/scheduler/no_jit.sql"))
        .execute(db)
        .await?;
    Ok(())
}

/// The database's clock (`clock_timestamp()`): the tick's `now` when the caller pins none.
pub async fn clock<'e>(db: impl PgExecutor<'e>) -> Result<DateTime<Utc>> {
    let now = sqlx::query_scalar(include_str!("../../sql/scheduler/clock.sql"))
        .fetch_one(db)
        .await?;
    Ok(now)
}

/// Fires the deferred triggers of the runs a step ended, now, inside the step's savepoint.
pub async fn fire_deferred<'e>(db: impl PgExecutor<'e>) -> Result<()> {
    sqlx::query(include_str!("../../sql/scheduler/fire_deferred.sql"))
        .execute(db)
        .await?;
    Ok(())
}

/// Defers the constraint triggers again after [`fire_deferred`].
pub async fn defer_again<'e>(db: impl PgExecutor<'e>) -> Result<()> {
    sqlx::query(include_str!("../../sql/scheduler/defer_again.sql"))
        .execute(db)
        .await?;
    Ok(())
}

/// Wakes the guardians (`pg_notify('sisyphus_runs')`, delivered when the tick commits).
pub async fn notify_runs<'e>(db: impl PgExecutor<'e>) -> Result<()> {
    sqlx::query(include_str!("../../sql/scheduler/notify_runs.sql"))
        .execute(db)
        .await?;
    Ok(())
}

// Due jobs.

const DUE_JOBS: &str = concat!(
    include_str!("../../sql/jobs/columns.sql"),
    include_str!("../../sql/scheduler/due_jobs.sql")
);
const JOB_BY_ID: &str = concat!(
    include_str!("../../sql/jobs/columns.sql"),
    include_str!("../../sql/scheduler/job_by_id.sql")
);

/// At most `limit` jobs with a slot due by `horizon`, oldest first, locked for the tick; jobs
/// marked with a scheduler error after `retry_marked_before` are held back. A row that does not
/// decode fails the whole statement ([`Error::is_decode`]).
pub async fn due_jobs<'e>(
    db: impl PgExecutor<'e>,
    horizon: DateTime<Utc>,
    limit: i64,
    retry_marked_before: DateTime<Utc>,
) -> Result<Vec<JobRow>> {
    let rows = sqlx::query_as(DUE_JOBS)
        .bind(horizon)
        .bind(limit)
        .bind(retry_marked_before)
        .fetch_all(db)
        .await?;
    Ok(rows)
}

/// The ids [`due_jobs`] would return (and locks them), without reading the definitions.
pub async fn due_job_ids<'e>(
    db: impl PgExecutor<'e>,
    horizon: DateTime<Utc>,
    limit: i64,
    retry_marked_before: DateTime<Utc>,
) -> Result<Vec<JobId>> {
    let ids: Vec<i64> = sqlx::query_scalar(include_str!("../../sql/scheduler/due_job_ids.sql"))
        .bind(horizon)
        .bind(limit)
        .bind(retry_marked_before)
        .fetch_all(db)
        .await?;
    Ok(ids.into_iter().map(JobId).collect())
}

/// One job by id, if it still exists.
pub async fn job_by_id<'e>(db: impl PgExecutor<'e>, id: JobId) -> Result<Option<JobRow>> {
    let row = sqlx::query_as(JOB_BY_ID)
        .bind(id.0)
        .fetch_optional(db)
        .await?;
    Ok(row)
}

/// A live host that takes new runs (for `all` jobs' fan-out).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LiveHost {
    pub name: String,
    pub pools: Vec<String>,
}

/// Hosts that take new runs: live and not draining, by name.
pub async fn live_hosts<'e>(db: impl PgExecutor<'e>) -> Result<Vec<LiveHost>> {
    let hosts = sqlx::query_as(include_str!("../../sql/scheduler/live_hosts.sql"))
        .fetch_all(db)
        .await?;
    Ok(hosts)
}

// Materialising slots.

/// A run to insert, as the planner decided it: pending, or missed with the reason.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRun {
    pub job: JobId,
    pub slot: DateTime<Utc>,
    pub scheduled_for: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub target_host: Option<String>,
    pub status: RunStatus,
    pub error: Option<String>,
}

/// Inserts planned runs in one statement (a slot that has its run already is skipped); missed
/// ones finished at `now`. `created_by` names the scheduler.
pub async fn insert_runs<'e>(
    db: impl PgExecutor<'e>,
    runs: &[PlannedRun],
    now: DateTime<Utc>,
    created_by: &str,
) -> Result<()> {
    let column = |f: fn(&PlannedRun) -> _| runs.iter().map(f).collect::<Vec<_>>();
    let jobs: Vec<i64> = runs.iter().map(|r| r.job.0).collect();
    let statuses: Vec<&str> = runs.iter().map(|r| r.status.as_str()).collect();
    let errors: Vec<Option<&str>> = runs.iter().map(|r| r.error.as_deref()).collect();
    let hosts: Vec<Option<&str>> = runs.iter().map(|r| r.target_host.as_deref()).collect();
    sqlx::query(include_str!("../../sql/scheduler/insert_runs.sql"))
        .bind(jobs)
        .bind(column(|r| r.slot))
        .bind(column(|r| r.scheduled_for))
        .bind(column(|r| r.expires_at))
        .bind(hosts)
        .bind(statuses)
        .bind(errors)
        .bind(now)
        .bind(created_by)
        .execute(db)
        .await?;
    Ok(())
}

/// A job's scheduler state after a tick planned it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advance {
    pub job: JobId,
    pub next_slot: Option<DateTime<Utc>>,
    pub fired: i32,
}

/// Moves the jobs' schedules on in one statement, clearing their scheduler error marks.
pub async fn advance_jobs<'e>(db: impl PgExecutor<'e>, jobs: &[Advance]) -> Result<()> {
    let ids: Vec<i64> = jobs.iter().map(|a| a.job.0).collect();
    let next_slots: Vec<Option<DateTime<Utc>>> = jobs.iter().map(|a| a.next_slot).collect();
    let fired: Vec<i32> = jobs.iter().map(|a| a.fired).collect();
    sqlx::query(include_str!("../../sql/scheduler/advance_jobs.sql"))
        .bind(ids)
        .bind(next_slots)
        .bind(fired)
        .execute(db)
        .await?;
    Ok(())
}

// Backfill and overlap policies (migrations/0016_overlap_backfill.sql).

/// Materialises waiting backfill slots as runs, per job as many as it has room for (`job`:
/// only that job's). Returns how many runs it made.
pub async fn feed_backfills<'e>(
    db: impl PgExecutor<'e>,
    now: DateTime<Utc>,
    job: Option<JobId>,
) -> Result<u64> {
    let done = sqlx::query(include_str!("../../sql/scheduler/feed_backfills.sql"))
        .bind(now)
        .bind(job.map(|j| j.0))
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}

/// The jobs with backfill slots waiting.
pub async fn backfill_jobs<'e>(db: impl PgExecutor<'e>) -> Result<Vec<JobId>> {
    let ids: Vec<i64> = sqlx::query_scalar(include_str!("../../sql/scheduler/backfill_jobs.sql"))
        .fetch_all(db)
        .await?;
    Ok(ids.into_iter().map(JobId).collect())
}

/// Where the leader's looks at overlap policies have got to: scheduled runs due up to
/// `settled_to` and written up to run `last_id` were looked at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settled {
    pub settled_to: Option<DateTime<Utc>>,
    pub last_id: Option<i64>,
    /// Runs skipped by this look.
    pub skipped: i32,
    /// Runs asked to terminate by this look (`replace`).
    pub replaced: i32,
}

/// Settles the overlap policies of scheduled runs that came due or were written since `since`
/// (the previous look's [`Settled`]; the default: every due run), in a transaction of its own.
pub async fn settle_overlaps<'e>(db: impl PgExecutor<'e>, since: Settled) -> Result<Settled> {
    let row = sqlx::query(include_str!("../../sql/scheduler/settle_overlaps.sql"))
        .bind(since.settled_to)
        .bind(since.last_id)
        .fetch_one(db)
        .await?;
    Ok(Settled {
        settled_to: row.try_get("settled_to")?,
        last_id: row.try_get("last_id")?,
        skipped: row.try_get("skipped")?,
        replaced: row.try_get("replaced")?,
    })
}

// Expiry.

/// What a tick expires: pending runs whose TTL passed become `missed` (invariant
/// `no-late-start`), active runs whose guardian's lease ran out become `lost`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    Pending,
    Lease,
}

/// The runs one expiry statement takes: at most this many of the oldest, or one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    Batch(i64),
    Run(RunId),
}

impl Expiry {
    /// The status the runs it takes end in.
    pub fn ending(self) -> RunStatus {
        match self {
            Expiry::Pending => RunStatus::Missed,
            Expiry::Lease => RunStatus::Lost,
        }
    }
}

/// Expires the runs `take` names whose TTL (or lease) passed by `now`; how many. One statement
/// for each way: `expire_pending.sql`, `expire_one_pending.sql`, `expire_leases.sql`,
/// `expire_one_lease.sql` ($1 now, $2 the batch or the run).
pub async fn expire<'e>(
    db: impl PgExecutor<'e>,
    expiry: Expiry,
    now: DateTime<Utc>,
    take: Take,
) -> Result<u64> {
    let (sql, arg) = match (expiry, take) {
        (Expiry::Pending, Take::Batch(batch)) => (
            include_str!("../../sql/scheduler/expire_pending.sql"),
            batch,
        ),
        (Expiry::Pending, Take::Run(run)) => (
            include_str!("../../sql/scheduler/expire_one_pending.sql"),
            run.0,
        ),
        (Expiry::Lease, Take::Batch(batch)) => {
            (include_str!("../../sql/scheduler/expire_leases.sql"), batch)
        }
        (Expiry::Lease, Take::Run(run)) => (
            include_str!("../../sql/scheduler/expire_one_lease.sql"),
            run.0,
        ),
    };
    let done = sqlx::query(sql).bind(now).bind(arg).execute(db).await?;
    Ok(done.rows_affected())
}

/// The runs [`expire`] would take with [`Take::Batch`]`(batch)`, with their jobs, to expire them
/// one by one when the batch failed (`expired_pending_ids.sql`, `lost_run_ids.sql`).
pub async fn expirable<'e>(
    db: impl PgExecutor<'e>,
    expiry: Expiry,
    now: DateTime<Utc>,
    batch: i64,
) -> Result<Vec<(RunId, JobId)>> {
    let sql = match expiry {
        Expiry::Pending => include_str!("../../sql/scheduler/expired_pending_ids.sql"),
        Expiry::Lease => include_str!("../../sql/scheduler/lost_run_ids.sql"),
    };
    let runs = sqlx::query(sql)
        .bind(now)
        .bind(batch)
        .try_map(|row: PgRow| Ok((run_id(&row, "id")?, job_id(&row, "job_id")?)))
        .fetch_all(db)
        .await?;
    Ok(runs)
}

/// Marks each job with its scheduler error; returns how many were not marked before.
pub async fn mark_errors<'e>(db: impl PgExecutor<'e>, marks: &[(JobId, &str)]) -> Result<i64> {
    let ids: Vec<i64> = marks.iter().map(|(job, _)| job.0).collect();
    let errors: Vec<&str> = marks.iter().map(|(_, error)| *error).collect();
    let newly = sqlx::query_scalar(include_str!("../../sql/scheduler/mark_errors.sql"))
        .bind(ids)
        .bind(errors)
        .fetch_one(db)
        .await?;
    Ok(newly)
}

// Data triggers.

/// A data-triggered job as the tick sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataJob {
    pub id: JobId,
    /// The input templates as stored (parsed by the scheduler, which skips a job whose inputs
    /// do not read back).
    pub inputs: Vec<String>,
    pub timezone: String,
    /// The job's watermark: the newest write looked at.
    pub inputs_seen_at: Option<DateTime<Utc>>,
    /// Marked with a scheduler error: the mark goes when its runs are handled without one.
    pub marked: bool,
}

/// The data-triggered jobs that may have new inputs, less those marked after
/// `retry_marked_before`. Moves the global watermark and empties the queue of full looks.
pub async fn data_jobs<'e>(
    db: impl PgExecutor<'e>,
    retry_marked_before: DateTime<Utc>,
) -> Result<Vec<DataJob>> {
    let jobs = sqlx::query(include_str!("../../sql/scheduler/data_jobs.sql"))
        .bind(retry_marked_before)
        .try_map(|row: PgRow| {
            Ok(DataJob {
                id: job_id(&row, "id")?,
                inputs: row.try_get("inputs")?,
                timezone: row.try_get("timezone")?,
                inputs_seen_at: row.try_get("inputs_seen_at")?,
                marked: row.try_get("marked")?,
            })
        })
        .fetch_all(db)
        .await?;
    Ok(jobs)
}

/// A resource written, as [`written_like`] finds it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Written {
    pub name: String,
    pub written_at: DateTime<Utc>,
}

/// At most `limit` resources written since `since` (less a minute; `None`: from the start)
/// whose names match one of the LIKE `patterns`, oldest write first.
pub async fn written_like<'e>(
    db: impl PgExecutor<'e>,
    patterns: &[String],
    since: Option<DateTime<Utc>>,
    limit: i64,
) -> Result<Vec<Written>> {
    let written = sqlx::query_as(include_str!("../../sql/scheduler/written_like.sql"))
        .bind(patterns)
        .bind(since)
        .bind(limit)
        .fetch_all(db)
        .await?;
    Ok(written)
}

/// What a job whose inputs are plain names finds fresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Fresh {
    /// The newest input's write time (the job's watermark moves to it).
    pub newest: Option<DateTime<Utc>>,
    /// The same time when every input is written, unexpired, since the last successful run
    /// began: the slot of a new run. `None`: nothing fresh.
    pub slot: Option<DateTime<Utc>>,
}

/// The fresh slot of `job`, whose inputs are plain names, at `now`.
pub async fn fresh_fixed<'e>(
    db: impl PgExecutor<'e>,
    job: JobId,
    now: DateTime<Utc>,
) -> Result<Fresh> {
    let fresh = sqlx::query_as(include_str!("../../sql/scheduler/fresh_fixed.sql"))
        .bind(job.0)
        .bind(now)
        .fetch_one(db)
        .await?;
    Ok(fresh)
}

/// Creates `job`'s data-triggered runs for those of `slots` whose inputs are all written (one
/// run per slot at most); how many were created.
pub async fn insert_data_runs<'e>(
    db: impl PgExecutor<'e>,
    job: JobId,
    slots: &[DateTime<Utc>],
    now: DateTime<Utc>,
    created_by: &str,
) -> Result<u64> {
    let done = sqlx::query(include_str!("../../sql/scheduler/insert_data_runs.sql"))
        .bind(job.0)
        .bind(slots)
        .bind(now)
        .bind(created_by)
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}

/// Clears `job`'s scheduler error mark.
pub async fn clear_error<'e>(db: impl PgExecutor<'e>, job: JobId) -> Result<()> {
    sqlx::query(include_str!("../../sql/scheduler/clear_error.sql"))
        .bind(job.0)
        .execute(db)
        .await?;
    Ok(())
}

/// Moves `job`'s watermark to `newest`, the newest write looked at.
pub async fn set_inputs_seen<'e>(
    db: impl PgExecutor<'e>,
    job: JobId,
    newest: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(include_str!("../../sql/scheduler/set_inputs_seen.sql"))
        .bind(job.0)
        .bind(newest)
        .execute(db)
        .await?;
    Ok(())
}

/// Queues `job` for a full look on the next tick.
pub async fn queue_full_look<'e>(db: impl PgExecutor<'e>, job: JobId) -> Result<()> {
    sqlx::query(include_str!("../../sql/scheduler/queue_full_look.sql"))
        .bind(job.0)
        .execute(db)
        .await?;
    Ok(())
}

// Alerts, housekeeping, metrics.

/// Resumes the jobs whose pause has ended (`sisyctl job pause --until`), each with an audit row;
/// how many.
pub async fn resume_ended_pauses<'e>(db: impl PgExecutor<'e>) -> Result<i32> {
    let resumed = sqlx::query_scalar(include_str!("../../sql/scheduler/resume_ended_pauses.sql"))
        .fetch_one(db)
        .await?;
    Ok(resumed)
}

/// Raises the due alerts (slow runs; overdue jobs only when `overdue`): (slow runs, overdue
/// jobs).
pub async fn raise_alerts<'e>(db: impl PgExecutor<'e>, overdue: bool) -> Result<(i32, i32)> {
    let raised = sqlx::query_as(include_str!("../../sql/scheduler/raise_alerts.sql"))
        .bind(overdue)
        .fetch_one(db)
        .await?;
    Ok(raised)
}

/// What one housekeeping pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, sqlx::FromRow)]
pub struct Housekeeping {
    pub created_partitions: i32,
    pub dropped_partitions: i32,
    pub deleted_runs: i64,
    /// Delivered, skipped or failed notifications older than the run retention.
    pub deleted_notifications: i64,
    /// Audit rows older than the audit retention.
    pub deleted_audit: i64,
}

/// One housekeeping pass: log partitions ahead, those older than `keep_logs` dropped, at most
/// `batch` finished runs and settled notifications older than `keep_runs` deleted, and as many
/// audit rows older than `keep_audit`.
pub async fn housekeeping<'e>(
    db: impl PgExecutor<'e>,
    keep_logs: Duration,
    keep_runs: Duration,
    keep_audit: Duration,
    batch: i32,
) -> Result<Housekeeping> {
    let done = sqlx::query_as(include_str!("../../sql/scheduler/housekeeping.sql"))
        .bind(interval::from_duration(keep_logs))
        .bind(interval::from_duration(keep_runs))
        .bind(batch)
        .bind(interval::from_duration(keep_audit))
        .fetch_one(db)
        .await?;
    Ok(done)
}

/// Pending runs: the queue depth.
pub async fn queue_depth<'e>(db: impl PgExecutor<'e>) -> Result<i64> {
    let depth = sqlx::query_scalar(include_str!("../../sql/scheduler/queue_depth.sql"))
        .fetch_one(db)
        .await?;
    Ok(depth)
}
