//! One scheduler tick, in one transaction: materialise due slots and data-triggered runs, then
//! expire stale pending runs.
//!
//! Everything a tick writes goes through the leader's own connection — the one holding the
//! advisory lock — so a scheduler that lost its session (and with it its leadership) cannot
//! write. Duplicates are impossible anyway: the unique index `runs_one_per_slot` rejects them.

use chrono::{DateTime, Utc};
use sisyphus_client::db::jobs::JobRow;
use sqlx::{Connection, PgConnection};

use crate::data::trigger_data_jobs;
use crate::plan::{plan, Host, PlanSettings, PlannedRun};

const JOB_COLUMNS: &str = include_str!("../../sql/jobs/columns.sql");
const DUE_JOBS: &str = include_str!("../../sql/scheduler/due_jobs.sql");
const INSERT_RUNS: &str = include_str!("../../sql/scheduler/insert_runs.sql");
const ADVANCE_JOBS: &str = include_str!("../../sql/scheduler/advance_jobs.sql");
const EXPIRE_PENDING: &str = include_str!("../../sql/scheduler/expire_pending.sql");
const LIVE_HOSTS: &str = include_str!("../../sql/scheduler/live_hosts.sql");
const EXPIRE_LEASES: &str = include_str!("../../sql/scheduler/expire_leases.sql");

/// Due jobs handled per tick at most; more wait for the next tick (which follows at once).
pub const JOBS_PER_TICK: i64 = 1000;
/// Expired pending runs marked per tick at most.
const EXPIRES_PER_TICK: i64 = 5000;

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
    /// Jobs whose stored definition no longer reads (changed by hand); left alone.
    pub corrupt: usize,
    /// Whether the batch limit was reached (more due jobs are waiting).
    pub full: bool,
}

/// Runs one tick at `now` (`None`: the database's clock) on the leader's connection.
pub async fn tick(
    conn: &mut PgConnection,
    now: Option<DateTime<Utc>>,
    settings: &PlanSettings,
    created_by: &str,
) -> sqlx::Result<TickReport> {
    let mut tx = conn.begin().await?;
    let now: DateTime<Utc> = match now {
        Some(t) => t,
        None => {
            sqlx::query_scalar("SELECT clock_timestamp()")
                .fetch_one(&mut *tx)
                .await?
        }
    };
    let horizon = now + chrono::Duration::from_std(settings.lookahead).unwrap_or_default();
    let due: Vec<JobRow> = sqlx::query_as(&format!("{JOB_COLUMNS}{DUE_JOBS}"))
        .bind(horizon)
        .bind(JOBS_PER_TICK)
        .fetch_all(&mut *tx)
        .await?;
    let mut report = TickReport {
        jobs: due.len(),
        full: due.len() as i64 == JOBS_PER_TICK,
        ..Default::default()
    };
    let hosts: Vec<Host> = if due.iter().any(|j| j.target_all) {
        sqlx::query_as(LIVE_HOSTS).fetch_all(&mut *tx).await?
    } else {
        Vec::new()
    };
    let mut runs: Vec<PlannedRun> = Vec::new();
    let mut advance = Advance::default();
    for job in &due {
        match plan(job, now, &hosts, settings) {
            Ok(p) => {
                advance.push(job, p.next_slot, p.fired);
                runs.extend(p.runs);
            }
            Err(e) => {
                tracing::error!(job = %job.job_ref(), "skipping a job that does not read back: {e}");
                report.corrupt += 1;
            }
        }
    }
    report.pending = runs
        .iter()
        .filter(|r| r.status == sisyphus_client::RunStatus::Pending)
        .count() as u64;
    report.missed = runs.len() as u64 - report.pending;
    insert_runs(&mut tx, &runs, now, created_by).await?;
    advance.write(&mut tx).await?;
    report.data = trigger_data_jobs(&mut tx, now, created_by).await?;
    report.pending += report.data;
    report.expired = sqlx::query(EXPIRE_PENDING)
        .bind(now)
        .bind(EXPIRES_PER_TICK)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    report.lost = sqlx::query(EXPIRE_LEASES)
        .bind(now)
        .bind(EXPIRES_PER_TICK)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if report.pending > 0 {
        sqlx::query("SELECT pg_notify('sisyphus_runs', '')")
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(report)
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
    fn push(&mut self, job: &JobRow, next_slot: Option<DateTime<Utc>>, fired: i32) {
        self.ids.push(job.id.0);
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
