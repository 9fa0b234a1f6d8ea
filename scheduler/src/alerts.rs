//! The leader's alerts, each tick (see `migrations/0007_notifications.sql`): runs still going
//! after their job's `warn_after` raise `slow`, and jobs without a good run for longer than
//! their `max_health_age` raise `missed` (the dead-man's switch). The marks and the outbox rows
//! commit together, so each alert is raised once.

use sqlx::PgConnection;

const RAISE_ALERTS: &str = include_str!("../../sql/scheduler/raise_alerts.sql");

/// Raises the due alerts; returns (slow runs, overdue jobs).
pub async fn raise_alerts(conn: &mut PgConnection) -> sqlx::Result<(i32, i32)> {
    sqlx::query_as(RAISE_ALERTS).fetch_one(conn).await
}
