//! The leader's alerts (see `migrations/0007_notifications.sql`): each tick, runs still going
//! after their job's `warn_after` raise `slow`; every [`OVERDUE_EVERY`], jobs without a good run
//! for longer than their `max_health_age` raise `missed` (the dead-man's switch). That check
//! reads every job with a `max_health_age`, so it does not run each tick: the tick's cost stays
//! with due jobs and active runs (invariant `tick-cost-by-due-jobs`). The marks and the outbox rows commit together,
//! so each alert is raised once.

use sisyphus_db::scheduler as db;
use sisyphus_db::{PgConnection, Result};

/// How often the dead-man's switch is checked.
pub const OVERDUE_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Raises the due alerts, overdue jobs only when `overdue`; returns (slow runs, overdue jobs).
pub async fn raise_alerts(conn: &mut PgConnection, overdue: bool) -> Result<(i32, i32)> {
    db::raise_alerts(conn, overdue).await
}
