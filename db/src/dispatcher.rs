//! The dispatcher's statements (`sql/dispatcher/`): claiming due notifications with a lease,
//! recording what their attempts did, counting the backlog, and the channel that wakes a
//! dispatcher.
//!
//! A claim and its settle are separate short statements, so no transaction stays open while a
//! channel is called (migrations/0007, `dispatcher/src/outbox.rs`).

use sqlx::{PgExecutor, PgPool};

use sisyphus_model::notifications::OutboxState;
use sisyphus_notify::Notification;

const CLAIM: &str = include_str!("../../sql/dispatcher/claim.sql");
const SETTLE: &str = include_str!("../../sql/dispatcher/settle.sql");
const BACKLOG: &str = include_str!("../../sql/dispatcher/backlog.sql");

/// The channel the outbox's triggers notify when a row is written: a dispatcher LISTENs on it
/// (a [`crate::Listener`]) to wake before its next poll.
pub const OUTBOX_CHANNEL: &str = "sisyphus_outbox";

/// A notification claimed for one delivery attempt.
#[derive(Debug)]
pub struct Claimed {
    pub id: i64,
    pub channel: String,
    /// The payload as sent, or why it does not read as a [`Notification`] (a row written by
    /// hand): that row's attempt fails, not the whole claim.
    pub payload: Result<Notification, serde_json::Error>,
    /// Attempts so far, this one included: the claim's token for [`settle`].
    pub attempts: i32,
    /// Requests of a multi-part notification already done by earlier attempts.
    pub parts_done: i32,
}

/// What one attempt did to a claimed notification, as [`settle`] records it.
#[derive(Debug, Clone, PartialEq)]
pub struct Settlement {
    pub id: i64,
    /// Delivered, skipped, pending (to be retried) or failed.
    pub state: OutboxState,
    pub parts_done: i32,
    pub error: Option<String>,
    /// Seconds until the next attempt (for `pending`).
    pub delay: f64,
    /// The attempt this was (the claim's token): a row claimed again since is left alone.
    pub attempt: i32,
}

/// Claims up to `batch` due notifications for `lease` seconds, skipping rows another
/// dispatcher holds (`sql/dispatcher/claim.sql`).
pub async fn claim(pool: &PgPool, batch: i64, lease: f64) -> crate::Result<Vec<Claimed>> {
    sqlx::query(CLAIM)
        .bind(batch)
        .bind(lease)
        .try_map(decode_claimed)
        .fetch_all(pool)
        .await
        .map_err(crate::Error::from)
}

fn decode_claimed(row: sqlx::postgres::PgRow) -> sqlx::Result<Claimed> {
    use sqlx::Row;
    let payload: serde_json::Value = row.try_get("payload")?;
    Ok(Claimed {
        id: row.try_get("id")?,
        channel: row.try_get("channel")?,
        payload: serde_json::from_value(payload),
        attempts: row.try_get("attempts")?,
        parts_done: row.try_get("parts_done")?,
    })
}

/// Records the claimed attempts' results in one statement; a row whose claim no longer holds is
/// left alone (`sql/dispatcher/settle.sql`).
pub async fn settle(pool: &PgPool, settled: &[Settlement]) -> crate::Result<()> {
    sqlx::query(SETTLE)
        .bind(settled.iter().map(|s| s.id).collect::<Vec<_>>())
        .bind(settled.iter().map(|s| s.state.as_str()).collect::<Vec<_>>())
        .bind(settled.iter().map(|s| s.parts_done).collect::<Vec<_>>())
        .bind(settled.iter().map(|s| s.error.clone()).collect::<Vec<_>>())
        .bind(settled.iter().map(|s| s.delay).collect::<Vec<_>>())
        .bind(settled.iter().map(|s| s.attempt).collect::<Vec<_>>())
        .execute(pool)
        .await?;
    Ok(())
}

/// Notifications not yet delivered (`sql/dispatcher/backlog.sql`).
pub async fn backlog<'e>(db: impl PgExecutor<'e>) -> crate::Result<i64> {
    sqlx::query_scalar(BACKLOG)
        .fetch_one(db)
        .await
        .map_err(crate::Error::from)
}
