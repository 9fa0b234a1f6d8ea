//! One scheduler tick, in one transaction: materialise due slots and data-triggered runs, then
//! expire stale pending runs.
//!
//! Everything a tick writes goes through the leader's own connection — the one holding the
//! advisory lock — so a scheduler that lost its session (and with it its leadership) cannot
//! write. Duplicates are impossible anyway: the unique index `runs_one_per_slot` rejects them.

use chrono::{DateTime, Utc};
use sisyphus_client::db::jobs::JobRow;
use sisyphus_client::JobId;
use sqlx::{Connection, PgConnection, Postgres, Transaction};

use crate::data::{data_jobs, trigger_one};
use crate::plan::{plan, Host, PlanSettings, PlannedRun};

const DUE_JOBS: &str = concat!(
    include_str!("../../sql/jobs/columns.sql"),
    include_str!("../../sql/scheduler/due_jobs.sql")
);
const DUE_JOB_IDS: &str = include_str!("../../sql/scheduler/due_job_ids.sql");
const JOB_BY_ID: &str = concat!(
    include_str!("../../sql/jobs/columns.sql"),
    include_str!("../../sql/scheduler/job_by_id.sql")
);
const CLOCK: &str = include_str!("../../sql/scheduler/clock.sql");
const NOTIFY_RUNS: &str = include_str!("../../sql/scheduler/notify_runs.sql");
const NO_JIT: &str = include_str!("../../sql/scheduler/no_jit.sql");
const INSERT_RUNS: &str = include_str!("../../sql/scheduler/insert_runs.sql");
const ADVANCE_JOBS: &str = include_str!("../../sql/scheduler/advance_jobs.sql");
const EXPIRE_PENDING: &str = include_str!("../../sql/scheduler/expire_pending.sql");
const EXPIRED_PENDING_IDS: &str = include_str!("../../sql/scheduler/expired_pending_ids.sql");
const EXPIRE_ONE_PENDING: &str = include_str!("../../sql/scheduler/expire_one_pending.sql");
const LIVE_HOSTS: &str = include_str!("../../sql/scheduler/live_hosts.sql");
const EXPIRE_LEASES: &str = include_str!("../../sql/scheduler/expire_leases.sql");
const LOST_RUN_IDS: &str = include_str!("../../sql/scheduler/lost_run_ids.sql");
const EXPIRE_ONE_LEASE: &str = include_str!("../../sql/scheduler/expire_one_lease.sql");
const MARK_ERRORS: &str = include_str!("../../sql/scheduler/mark_errors.sql");
const FIRE_DEFERRED: &str = include_str!("../../sql/scheduler/fire_deferred.sql");
const DEFER_AGAIN: &str = include_str!("../../sql/scheduler/defer_again.sql");

/// Due jobs handled per tick at most; more wait for the next tick (which follows at once).
pub const JOBS_PER_TICK: i64 = 1000;
/// Expired pending runs marked per tick at most.
const EXPIRES_PER_TICK: i64 = 5000;
/// A job marked with a scheduler error is tried again this long after the mark (at once when
/// its definition changes).
pub const HOLD_BACK: std::time::Duration = std::time::Duration::from_secs(60);

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Due jobs looked at.
    pub jobs: usize,
    /// Pending runs created.
    pub pending: u64,
    /// Of those, data-triggered runs (`on_inputs`).
    pub data: u64,
    /// Slots recorded as missed (catch-up, TTL, no host).
    pub missed: u64,
    /// Pending runs whose TTL passed, marked missed.
    pub expired: u64,
    /// Active runs whose guardian's lease ran out, marked lost.
    pub lost: u64,
    /// Jobs whose stored definition no longer reads or plans (changed by hand); marked with a
    /// scheduler error and left alone.
    pub corrupt: usize,
    /// Jobs marked with a scheduler error by this tick, for any reason (`corrupt` included):
    /// the tick went on for every other job (invariant `bad-job-isolated`).
    pub isolated: usize,
    /// Whether the batch limit was reached (more due jobs are waiting).
    pub full: bool,
}

/// Whether an error belongs to the values of what a statement touched — one job's data — and
/// can be isolated by redoing the step job by job, rather than to the connection or to our own
/// SQL: data exceptions (class 22: out of range, overflow), integrity violations (23), errors
/// raised by PL/pgSQL (P0), SQL routine and trigger protocol errors (2F, 39), and rows that do
/// not decode.
pub fn isolable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db.code().is_some_and(|c| {
            ["22", "23", "P0", "2F", "39"]
                .iter()
                .any(|class| c.starts_with(class))
        }),
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => true,
        _ => false,
    }
}

/// A job's failure in one step of the tick, to be recorded as its scheduler error.
struct Failure {
    job: JobId,
    error: String,
}

/// Ends a step run inside a savepoint: released when it worked, rolled back when it failed with
/// an isolable error (returned as `Ok(Err(_))`, the transaction still usable); any other error
/// ends the tick.
async fn settle<T>(
    savepoint: Transaction<'_, Postgres>,
    result: sqlx::Result<T>,
) -> sqlx::Result<Result<T, sqlx::Error>> {
    match result {
        Ok(v) => {
            savepoint.commit().await?;
            Ok(Ok(v))
        }
        Err(e) if isolable(&e) => {
            savepoint.rollback().await?;
            Ok(Err(e))
        }
        Err(e) => Err(e),
    }
}

/// Fires the deferred triggers of the runs a step ended inside the step (see
/// `sql/scheduler/fire_deferred.sql`).
async fn fire_deferred(conn: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query(FIRE_DEFERRED).execute(&mut *conn).await?;
    sqlx::query(DEFER_AGAIN).execute(&mut *conn).await?;
    Ok(())
}

/// Runs one tick at `now` (`None`: the database's clock) on the leader's connection.
///
/// Each step (materialising slots, data triggers, expiring pending runs, expiring leases) runs
/// in bulk inside a savepoint. When one fails with an isolable error (see [`isolable`]), it is
/// rolled back and redone job by job (or run by run), each in its own savepoint; what still
/// fails marks its job with a scheduler error, and the tick goes on for everything else.
pub async fn tick(
    conn: &mut PgConnection,
    now: Option<DateTime<Utc>>,
    settings: &PlanSettings,
    created_by: &str,
) -> sqlx::Result<TickReport> {
    let mut tx = conn.begin().await?;
    sqlx::query(NO_JIT).execute(&mut *tx).await?;
    let now: DateTime<Utc> = match now {
        Some(t) => t,
        None => sqlx::query_scalar(CLOCK).fetch_one(&mut *tx).await?,
    };
    let lookahead = chrono::Duration::from_std(settings.lookahead).unwrap_or_default();
    let horizon = now.checked_add_signed(lookahead).unwrap_or(now);
    let hold_back = chrono::Duration::from_std(HOLD_BACK).unwrap_or_default();
    let retry_marked_before = now.checked_sub_signed(hold_back).unwrap_or(now);
    let mut failures: Vec<Failure> = Vec::new();
    let due = due_jobs(&mut tx, horizon, retry_marked_before, &mut failures).await?;
    let mut report = TickReport {
        jobs: due.len() + failures.len(),
        full: (due.len() + failures.len()) as i64 == JOBS_PER_TICK,
        ..Default::default()
    };
    let hosts: Vec<Host> = if due.iter().any(|j| j.target_all) {
        sqlx::query_as(LIVE_HOSTS).fetch_all(&mut *tx).await?
    } else {
        Vec::new()
    };
    let mut planned: Vec<JobPlan> = Vec::new();
    for job in &due {
        match plan(job, now, &hosts, settings) {
            Ok(p) => planned.push(JobPlan {
                job: job.id,
                next_slot: p.next_slot,
                fired: p.fired,
                runs: p.runs,
            }),
            Err(e) => failures.push(Failure {
                job: job.id,
                error: e.to_string(),
            }),
        }
    }
    report.corrupt = failures.len();

    // Slots become runs and schedules move on: in bulk, or job by job.
    let mut sp = Connection::begin(&mut *tx).await?;
    let bulk = write_plans(&mut sp, &planned, now, created_by).await;
    if let Err(e) = settle(sp, bulk).await? {
        tracing::warn!("materialising slots failed ({e}); redoing it job by job");
        let mut kept = Vec::new();
        for p in planned {
            let mut sp = Connection::begin(&mut *tx).await?;
            let one = write_plans(&mut sp, std::slice::from_ref(&p), now, created_by).await;
            match settle(sp, one).await? {
                Ok(()) => kept.push(p),
                Err(e) => failures.push(Failure {
                    job: p.job,
                    error: format!("cannot materialise its slots: {e}"),
                }),
            }
        }
        planned = kept;
    }
    for p in &planned {
        for r in &p.runs {
            if r.status == sisyphus_client::RunStatus::Pending {
                report.pending += 1;
            } else {
                report.missed += 1;
            }
        }
    }

    // Data-triggered runs: in bulk, or job by job.
    let data = data_jobs(&mut tx, retry_marked_before).await?;
    let mut sp = Connection::begin(&mut *tx).await?;
    let bulk = async {
        let mut created = 0;
        for job in &data {
            created += trigger_one(&mut sp, job, now, created_by).await?;
        }
        Ok(created)
    }
    .await;
    report.data = match settle(sp, bulk).await? {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!("data triggers failed ({e}); redoing them job by job");
            let mut created = 0;
            for job in &data {
                let mut sp = Connection::begin(&mut *tx).await?;
                let one = trigger_one(&mut sp, job, now, created_by).await;
                match settle(sp, one).await? {
                    Ok(n) => created += n,
                    Err(e) => failures.push(Failure {
                        job: job.id,
                        error: format!("cannot create its data-triggered runs: {e}"),
                    }),
                }
            }
            created
        }
    };
    report.pending += report.data;

    // Pending runs past their TTL, then runs whose lease ran out: in bulk, or run by run.
    report.expired = expire(
        &mut tx,
        now,
        EXPIRE_PENDING,
        EXPIRED_PENDING_IDS,
        EXPIRE_ONE_PENDING,
        "cannot mark run {} missed",
        &mut failures,
    )
    .await?;
    report.lost = expire(
        &mut tx,
        now,
        EXPIRE_LEASES,
        LOST_RUN_IDS,
        EXPIRE_ONE_LEASE,
        "cannot mark run {} lost",
        &mut failures,
    )
    .await?;

    report.isolated = mark(&mut tx, &failures).await?;
    if report.pending > 0 {
        sqlx::query(NOTIFY_RUNS).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(report)
}

/// One job's plan, as written.
struct JobPlan {
    job: JobId,
    next_slot: Option<DateTime<Utc>>,
    fired: i32,
    runs: Vec<PlannedRun>,
}

async fn write_plans(
    conn: &mut PgConnection,
    plans: &[JobPlan],
    now: DateTime<Utc>,
    created_by: &str,
) -> sqlx::Result<()> {
    let runs: Vec<PlannedRun> = plans.iter().flat_map(|p| p.runs.iter().cloned()).collect();
    insert_runs(&mut *conn, &runs, now, created_by).await?;
    let mut advance = Advance::default();
    for p in plans {
        advance.push(p.job, p.next_slot, p.fired);
    }
    advance.write(conn).await
}

/// The due jobs, locked. A row that does not read back (a value changed by hand that the Rust
/// types cannot hold) does not stop the others: the rows are then read one by one and the
/// unreadable ones become failures.
async fn due_jobs(
    conn: &mut PgConnection,
    horizon: DateTime<Utc>,
    retry_marked_before: DateTime<Utc>,
    failures: &mut Vec<Failure>,
) -> sqlx::Result<Vec<JobRow>> {
    let all = sqlx::query_as(DUE_JOBS)
        .bind(horizon)
        .bind(JOBS_PER_TICK)
        .bind(retry_marked_before)
        .fetch_all(&mut *conn)
        .await;
    match all {
        Ok(rows) => return Ok(rows),
        Err(e @ (sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_))) => {
            tracing::warn!("a due job does not read back ({e}); reading them one by one");
        }
        Err(e) => return Err(e),
    }
    let ids: Vec<JobId> = sqlx::query_scalar(DUE_JOB_IDS)
        .bind(horizon)
        .bind(JOBS_PER_TICK)
        .bind(retry_marked_before)
        .fetch_all(&mut *conn)
        .await?;
    let mut rows = Vec::with_capacity(ids.len());
    for id in ids {
        let row = sqlx::query_as::<_, JobRow>(JOB_BY_ID)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await;
        match row {
            Ok(Some(row)) => rows.push(row),
            Ok(None) => {}
            Err(e @ (sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_))) => {
                failures.push(Failure {
                    job: id,
                    error: format!("its stored definition does not read back: {e}"),
                })
            }
            Err(e) => return Err(e),
        }
    }
    Ok(rows)
}

/// Runs an expiry statement (`sql` with $1 now, $2 `arg`) in a savepoint, with the deferred
/// triggers of what it ended; the savepoint is released on success and rolled back on a data
/// error (the inner result), a connection error ends the tick (the outer one).
async fn expire_in_savepoint(
    tx: &mut PgConnection,
    sql: &str,
    now: DateTime<Utc>,
    arg: i64,
) -> sqlx::Result<Result<u64, sqlx::Error>> {
    let mut sp = Connection::begin(&mut *tx).await?;
    let done = async {
        let n = sqlx::query(sql)
            .bind(now)
            .bind(arg)
            .execute(&mut *sp)
            .await?
            .rows_affected();
        if n > 0 {
            fire_deferred(&mut sp).await?;
        }
        Ok(n)
    }
    .await;
    settle(sp, done).await
}

/// An expiry step: `bulk` ($1 now, $2 batch) inside a savepoint; when it fails, the runs it
/// would take (`ids`: id and job) are expired one by one with `one` ($1 now, $2 run), each in
/// its own savepoint. Returns how many runs were expired.
async fn expire(
    tx: &mut PgConnection,
    now: DateTime<Utc>,
    bulk: &str,
    ids: &str,
    one: &str,
    what: &str,
    failures: &mut Vec<Failure>,
) -> sqlx::Result<u64> {
    let bulk_result = expire_in_savepoint(tx, bulk, now, EXPIRES_PER_TICK).await?;
    let e = match bulk_result {
        Ok(n) => return Ok(n),
        Err(e) => e,
    };
    tracing::warn!("expiring runs failed ({e}); redoing it run by run");
    let runs: Vec<(i64, JobId)> = sqlx::query_as(ids)
        .bind(now)
        .bind(EXPIRES_PER_TICK)
        .fetch_all(&mut *tx)
        .await?;
    let mut expired = 0;
    for (run, job) in runs {
        match expire_in_savepoint(tx, one, now, run).await? {
            Ok(n) => expired += n,
            Err(e) => failures.push(Failure {
                job,
                error: format!("{}: {e}", what.replace("{}", &run.to_string())),
            }),
        }
    }
    Ok(expired)
}

/// Records the failures as their jobs' scheduler errors; returns how many jobs were marked.
/// A job newly marked is logged as an error (and notifies); one marked already, tried again
/// after [`HOLD_BACK`], only at debug level.
async fn mark(conn: &mut PgConnection, failures: &[Failure]) -> sqlx::Result<usize> {
    if failures.is_empty() {
        return Ok(0);
    }
    let ids: Vec<i64> = failures.iter().map(|f| f.job.0).collect();
    let errors: Vec<&str> = failures.iter().map(|f| f.error.as_str()).collect();
    let newly: i64 = sqlx::query_scalar(MARK_ERRORS)
        .bind(&ids)
        .bind(&errors)
        .fetch_one(&mut *conn)
        .await?;
    for f in failures {
        if newly > 0 {
            tracing::error!(job = %f.job, "scheduler error, job left alone: {}", f.error);
        } else {
            tracing::debug!(job = %f.job, "scheduler error again: {}", f.error);
        }
    }
    Ok(failures.len())
}

async fn insert_runs(
    conn: &mut PgConnection,
    runs: &[PlannedRun],
    now: DateTime<Utc>,
    created_by: &str,
) -> sqlx::Result<()> {
    if runs.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&PlannedRun) -> _| runs.iter().map(f).collect::<Vec<_>>();
    let jobs: Vec<i64> = runs.iter().map(|r| r.job.0).collect();
    let statuses: Vec<&str> = runs.iter().map(|r| r.status.as_str()).collect();
    let errors: Vec<Option<String>> = runs.iter().map(|r| r.error.clone()).collect();
    let hosts: Vec<Option<String>> = runs.iter().map(|r| r.target_host.clone()).collect();
    sqlx::query(INSERT_RUNS)
        .bind(jobs)
        .bind(column(|r| r.slot))
        .bind(column(|r| r.scheduled_for))
        .bind(column(|r| r.expires_at))
        .bind(hosts)
        .bind(statuses)
        .bind(errors)
        .bind(now)
        .bind(created_by)
        .execute(conn)
        .await?;
    Ok(())
}

/// The jobs' new scheduler state, written in one statement.
#[derive(Default)]
struct Advance {
    ids: Vec<i64>,
    next_slots: Vec<Option<DateTime<Utc>>>,
    fired: Vec<i32>,
}

impl Advance {
    fn push(&mut self, job: JobId, next_slot: Option<DateTime<Utc>>, fired: i32) {
        self.ids.push(job.0);
        self.next_slots.push(next_slot);
        self.fired.push(fired);
    }

    async fn write(self, conn: &mut PgConnection) -> sqlx::Result<()> {
        if self.ids.is_empty() {
            return Ok(());
        }
        sqlx::query(ADVANCE_JOBS)
            .bind(self.ids)
            .bind(self.next_slots)
            .bind(self.fired)
            .execute(conn)
            .await?;
        Ok(())
    }
}
