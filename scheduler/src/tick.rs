//! One scheduler tick, in one transaction: materialise due slots, data-triggered runs and
//! waiting backfill slots, then expire stale pending runs. After it, [`settle_overlaps`] decides
//! the overlap policies of the runs that came due, in a transaction of its own.
//!
//! Everything a tick writes goes through the leader's own connection — the one holding the
//! advisory lock — so a scheduler that lost its session (and with it its leadership) cannot
//! write. Duplicates are impossible anyway: the unique index `runs_one_per_slot` rejects them.

use chrono::{DateTime, Utc};
use sisyphus_db::jobs::JobRow;
use sisyphus_db::scheduler::{self as db, begin, reason, Advance, Expiry, Settled, Take, Tx};
use sisyphus_db::{Error, PgConnection, Result};
use sisyphus_model::{JobId, RunStatus};

use crate::calendars::Calendars;
use crate::data::{data_jobs, trigger_one};
use crate::plan::{plan_with, Host, PlanSettings, PlannedRun};

/// Due jobs handled per tick at most; more wait for the next tick (which follows at once).
pub const JOBS_PER_TICK: i64 = 1000;
/// Runs each expiry step (TTL, lease) ends per tick at most.
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
    /// Of those, backfill runs made from waiting backfill slots.
    pub backfilled: u64,
    /// Slots recorded as missed (catch-up, TTL, no host).
    pub missed: u64,
    /// Slots recorded as skipped (a calendar excludes them).
    pub skipped: u64,
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
pub fn isolable(e: &Error) -> bool {
    let isolable_class = |code: String| {
        ["22", "23", "P0", "2F", "39"]
            .iter()
            .any(|class| code.starts_with(class))
    };
    e.sqlstate().is_some_and(isolable_class) || e.is_decode()
}

/// A job's failure in one step of the tick, to be recorded as its scheduler error.
struct Failure {
    job: JobId,
    error: String,
}

/// Ends a step run inside a savepoint: released when it worked, rolled back when it failed with
/// an isolable error (returned as `Ok(Err(_))`, the transaction still usable); any other error
/// ends the tick.
async fn settle<T>(savepoint: Tx<'_>, result: Result<T>) -> Result<Result<T>> {
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
async fn fire_deferred(conn: &mut PgConnection) -> Result<()> {
    db::fire_deferred(&mut *conn).await?;
    db::defer_again(&mut *conn).await
}

/// Runs one tick at `now` (`None`: the database's clock) on the leader's connection, reading
/// the calendars afresh if a due job names any (the leader keeps them: [`tick_with`]).
pub async fn tick(
    conn: &mut PgConnection,
    now: Option<DateTime<Utc>>,
    settings: &PlanSettings,
    created_by: &str,
) -> Result<TickReport> {
    tick_with(conn, now, settings, created_by, &mut Calendars::default()).await
}

/// Runs one tick at `now` (`None`: the database's clock) on the leader's connection, with the
/// calendars kept since the last tick (read again only when their version moved).
///
/// Each step (materialising slots, data triggers, expiring pending runs, expiring leases) runs
/// in bulk inside a savepoint. When one fails with an isolable error (see [`isolable`]), it is
/// rolled back and redone job by job (or run by run), each in its own savepoint; what still
/// fails marks its job with a scheduler error, and the tick goes on for everything else.
pub async fn tick_with(
    conn: &mut PgConnection,
    now: Option<DateTime<Utc>>,
    settings: &PlanSettings,
    created_by: &str,
    calendars: &mut Calendars,
) -> Result<TickReport> {
    let mut tx = begin(conn).await?;
    db::no_jit(&mut *tx).await?;
    let now: DateTime<Utc> = match now {
        Some(t) => t,
        None => db::clock(&mut *tx).await?,
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
        db::live_hosts(&mut *tx).await?
    } else {
        Vec::new()
    };
    if due.iter().any(Calendars::used_by) {
        calendars.refresh(&mut tx).await?;
    }
    let mut planned: Vec<JobPlan> = Vec::new();
    for job in &due {
        let set = match calendars.set_for(job) {
            Ok(set) => set,
            Err(e) => {
                failures.push(Failure {
                    job: job.id,
                    error: format!("cannot evaluate its calendars: {e}"),
                });
                continue;
            }
        };
        match plan_with(job, now, &hosts, settings, &set) {
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
    let mut sp = begin(&mut tx).await?;
    let bulk = write_plans(&mut sp, &planned, now, created_by).await;
    if let Err(e) = settle(sp, bulk).await? {
        tracing::warn!(
            "materialising slots failed ({}); redoing it job by job",
            reason(&e)
        );
        let mut kept = Vec::new();
        for p in planned {
            let mut sp = begin(&mut tx).await?;
            let one = write_plans(&mut sp, std::slice::from_ref(&p), now, created_by).await;
            match settle(sp, one).await? {
                Ok(()) => kept.push(p),
                Err(e) => failures.push(Failure {
                    job: p.job,
                    error: format!("cannot materialise its slots: {}", reason(&e)),
                }),
            }
        }
        planned = kept;
    }
    for p in &planned {
        for r in &p.runs {
            match r.status {
                RunStatus::Pending => report.pending += 1,
                RunStatus::Skipped => report.skipped += 1,
                _ => report.missed += 1,
            }
        }
    }

    // Data-triggered runs: in bulk, or job by job.
    let data = data_jobs(&mut tx, retry_marked_before).await?;
    let mut sp = begin(&mut tx).await?;
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
            tracing::warn!(
                "data triggers failed ({}); redoing them job by job",
                reason(&e)
            );
            let mut created = 0;
            for job in &data {
                let mut sp = begin(&mut tx).await?;
                let one = trigger_one(&mut sp, job, now, created_by).await;
                match settle(sp, one).await? {
                    Ok(n) => created += n,
                    Err(e) => failures.push(Failure {
                        job: job.id,
                        error: format!("cannot create its data-triggered runs: {}", reason(&e)),
                    }),
                }
            }
            created
        }
    };
    report.pending += report.data;

    // Backfill slots waiting for room: in bulk, or job by job.
    report.backfilled = feed_backfills(&mut tx, now, &mut failures).await?;
    report.pending += report.backfilled;

    // Pending runs past their TTL, then runs whose lease ran out: in bulk, or run by run.
    report.expired = expire(&mut tx, now, Expiry::Pending, &mut failures).await?;
    report.lost = expire(&mut tx, now, Expiry::Lease, &mut failures).await?;

    report.isolated = mark(&mut tx, &failures).await?;
    if report.pending > 0 {
        db::notify_runs(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(report)
}

/// Materialises waiting backfill slots as runs where their jobs have room
/// (`sql/scheduler/feed_backfills.sql`): all jobs in one statement inside a savepoint; when that
/// fails, job by job, each in its own. Returns how many runs it made.
async fn feed_backfills(
    tx: &mut PgConnection,
    now: DateTime<Utc>,
    failures: &mut Vec<Failure>,
) -> Result<u64> {
    let mut sp = begin(tx).await?;
    let bulk = db::feed_backfills(&mut *sp, now, None).await;
    let e = match settle(sp, bulk).await? {
        Ok(n) => return Ok(n),
        Err(e) => e,
    };
    tracing::warn!(
        "feeding backfills failed ({}); redoing it job by job",
        reason(&e)
    );
    let mut made = 0;
    for job in db::backfill_jobs(&mut *tx).await? {
        let mut sp = begin(tx).await?;
        let one = db::feed_backfills(&mut *sp, now, Some(job)).await;
        match settle(sp, one).await? {
            Ok(n) => made += n,
            Err(e) => failures.push(Failure {
                job,
                error: format!("cannot make runs of its backfill: {}", reason(&e)),
            }),
        }
    }
    Ok(made)
}

/// The leader's look at overlap policies after a tick (migrations/0016_overlap_backfill.sql):
/// scheduled runs that came due or were written since `since` are settled under their jobs'
/// claim locks — also when no guardian has room to claim them. In a transaction of its own, so
/// the claim locks are never held while a tick holds job rows. Returns where the next look
/// starts; a look refused for its data is logged and made again from the same place.
pub async fn settle_overlaps(conn: &mut PgConnection, since: Settled) -> Result<Settled> {
    match db::settle_overlaps(&mut *conn, since).await {
        Ok(settled) => Ok(settled),
        Err(e) if isolable(&e) => {
            tracing::warn!("settling overlap policies failed ({})", reason(&e));
            Ok(Settled {
                skipped: 0,
                replaced: 0,
                ..since
            })
        }
        Err(e) => Err(e),
    }
}

/// One job's plan, as written.
struct JobPlan {
    job: JobId,
    next_slot: Option<DateTime<Utc>>,
    fired: i32,
    runs: Vec<PlannedRun>,
}

/// Inserts the plans' runs and moves their jobs' schedules on.
async fn write_plans(
    conn: &mut PgConnection,
    plans: &[JobPlan],
    now: DateTime<Utc>,
    created_by: &str,
) -> Result<()> {
    let runs: Vec<PlannedRun> = plans.iter().flat_map(|p| p.runs.iter().cloned()).collect();
    if !runs.is_empty() {
        db::insert_runs(&mut *conn, &runs, now, created_by).await?;
    }
    let advance: Vec<Advance> = plans
        .iter()
        .map(|p| Advance {
            job: p.job,
            next_slot: p.next_slot,
            fired: p.fired,
        })
        .collect();
    if !advance.is_empty() {
        db::advance_jobs(conn, &advance).await?;
    }
    Ok(())
}

/// The due jobs, locked. A row that does not read back (a value changed by hand that the Rust
/// types cannot hold) does not stop the others: the rows are then read one by one and the
/// unreadable ones become failures.
async fn due_jobs(
    conn: &mut PgConnection,
    horizon: DateTime<Utc>,
    retry_marked_before: DateTime<Utc>,
    failures: &mut Vec<Failure>,
) -> Result<Vec<JobRow>> {
    match db::due_jobs(&mut *conn, horizon, JOBS_PER_TICK, retry_marked_before).await {
        Ok(rows) => return Ok(rows),
        Err(e) if e.is_decode() => {
            tracing::warn!(
                "a due job does not read back ({}); reading them one by one",
                reason(&e)
            );
        }
        Err(e) => return Err(e),
    }
    let ids = db::due_job_ids(&mut *conn, horizon, JOBS_PER_TICK, retry_marked_before).await?;
    let mut rows = Vec::with_capacity(ids.len());
    for id in ids {
        match db::job_by_id(&mut *conn, id).await {
            Ok(Some(row)) => rows.push(row),
            Ok(None) => {}
            Err(e) if e.is_decode() => failures.push(Failure {
                job: id,
                error: format!("its stored definition does not read back: {}", reason(&e)),
            }),
            Err(e) => return Err(e),
        }
    }
    Ok(rows)
}

/// Runs an expiry statement in a savepoint, with the deferred triggers of what it ended; the
/// savepoint is released on success and rolled back on a data error (the inner result), a
/// connection error ends the tick (the outer one).
async fn expire_in_savepoint(
    tx: &mut PgConnection,
    expiry: Expiry,
    now: DateTime<Utc>,
    take: Take,
) -> Result<Result<u64>> {
    let mut sp = begin(tx).await?;
    let done = async {
        let n = db::expire(&mut *sp, expiry, now, take).await?;
        if n > 0 {
            fire_deferred(&mut sp).await?;
        }
        Ok(n)
    }
    .await;
    settle(sp, done).await
}

/// An expiry step: in bulk inside a savepoint; when that fails, the runs it would take are
/// expired one by one, each in its own savepoint. Returns how many runs were expired.
async fn expire(
    tx: &mut PgConnection,
    now: DateTime<Utc>,
    expiry: Expiry,
    failures: &mut Vec<Failure>,
) -> Result<u64> {
    let e = match expire_in_savepoint(tx, expiry, now, Take::Batch(EXPIRES_PER_TICK)).await? {
        Ok(n) => return Ok(n),
        Err(e) => e,
    };
    tracing::warn!(
        "expiring runs failed ({}); redoing it run by run",
        reason(&e)
    );
    let runs = db::expirable(&mut *tx, expiry, now, EXPIRES_PER_TICK).await?;
    let mut expired = 0;
    for (run, job) in runs {
        match expire_in_savepoint(tx, expiry, now, Take::Run(run)).await? {
            Ok(n) => expired += n,
            Err(e) => failures.push(Failure {
                job,
                error: format!("cannot mark run {run} {}: {}", expiry.ending(), reason(&e)),
            }),
        }
    }
    Ok(expired)
}

/// Records the failures as their jobs' scheduler errors; returns how many jobs were marked.
/// A job newly marked is logged as an error (and notifies); one marked already, tried again
/// after [`HOLD_BACK`], only at debug level.
async fn mark(conn: &mut PgConnection, failures: &[Failure]) -> Result<usize> {
    if failures.is_empty() {
        return Ok(0);
    }
    let marks: Vec<(JobId, &str)> = failures.iter().map(|f| (f.job, f.error.as_str())).collect();
    let newly = db::mark_errors(conn, &marks).await?;
    for f in failures {
        if newly > 0 {
            tracing::error!(job = %f.job, "scheduler error, job left alone: {}", f.error);
        } else {
            tracing::debug!(job = %f.job, "scheduler error again: {}", f.error);
        }
    }
    Ok(failures.len())
}
