//! Housekeeping the leader does about once a minute (see `migrations/0005_retention.sql`):
//! create the daily `run_logs` partitions before they are needed, drop the ones older than the
//! log retention (whole partitions: no row-by-row DELETE, no dead tuples), and delete finished
//! runs older than the run retention, in batches, keeping each job's latest run — and settled
//! notifications (delivered, skipped, failed) as old, from the outbox; and audit rows older than
//! the audit retention (the only way they are ever deleted, migrations/0012).

use std::time::Duration;

use sisyphus_db::scheduler as db;
use sisyphus_db::{PgConnection, Result};

pub use sisyphus_db::scheduler::Housekeeping;

/// Most runs deleted in one housekeeping pass; the rest wait for the next.
const RUNS_PER_PASS: i32 = 10_000;

/// How long what is kept.
#[derive(Debug, Clone)]
pub struct Retention {
    /// Log lines older than this go, a day's partition at a time.
    pub keep_logs: Duration,
    /// Finished runs that ended longer ago than this go (each job's latest run stays).
    pub keep_runs: Duration,
    /// Audit rows older than this go.
    pub keep_audit: Duration,
    /// Between housekeeping passes.
    pub every: Duration,
}

impl Default for Retention {
    /// Logs 30 days, runs 90 days, the audit log 400 days (a year and a month: a yearly review
    /// still finds last year's), a pass a minute.
    fn default() -> Self {
        Retention {
            keep_logs: Duration::from_secs(30 * 86_400),
            keep_runs: Duration::from_secs(90 * 86_400),
            keep_audit: Duration::from_secs(400 * 86_400),
            every: Duration::from_secs(60),
        }
    }
}

/// One housekeeping pass.
pub async fn housekeep(conn: &mut PgConnection, retention: &Retention) -> Result<Housekeeping> {
    db::housekeeping(
        conn,
        retention.keep_logs,
        retention.keep_runs,
        retention.keep_audit,
        RUNS_PER_PASS,
    )
    .await
}
