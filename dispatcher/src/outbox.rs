//! One pass over the outbox: claim the due rows (a short transaction that leases them), send
//! them with no transaction open, record what happened (another short transaction). A row is
//! held by one dispatcher at a time; one that dies mid-pass loses its lease and the row comes
//! due again, so delivery is at least once — twice only if a dispatcher dies between a
//! channel's acknowledgement and its settle.

use sisyphus_client::db::dispatcher::{self as db, Claimed};
use sisyphus_client::db::PgPool;
use sisyphus_client::notifications::OutboxState;
use sisyphus_notify::{Delivered, Senders};

use crate::config::Settings;

/// What became of one row: the database's record of the attempt.
pub use db::Settlement as Settled;

/// What one pass did.
#[derive(Debug, Clone, Default)]
pub struct Pass {
    pub taken: usize,
    pub settled: Vec<Settled>,
}

/// Takes up to `batch` due notifications, sends them and records the results.
pub async fn deliver_due(
    pool: &PgPool,
    senders: &Senders,
    settings: &Settings,
    batch: i64,
) -> sisyphus_client::db::Result<Pass> {
    // The batch's sends go out together, so the slowest bounds the pass: the lease covers one
    // send timing out, with room to settle.
    let lease = settings.send_timeout.as_secs_f64() + 30.0;
    let rows = db::claim(pool, batch, lease).await?;
    if rows.is_empty() {
        return Ok(Pass::default());
    }
    let settled: Vec<Settled> =
        futures_util::future::join_all(rows.iter().map(|row| deliver(row, senders, settings)))
            .await;
    db::settle(pool, &settled).await?;
    for (row, s) in rows.iter().zip(&settled) {
        log(&row.channel, s);
    }
    Ok(Pass {
        taken: rows.len(),
        settled,
    })
}

/// One line per settled row, at the level its new state deserves.
fn log(channel: &str, s: &Settled) {
    match s.state {
        OutboxState::Pending => tracing::warn!(
            id = s.id, channel = %channel,
            "notification not delivered, retrying in {:.1} s: {}", s.delay,
            s.error.as_deref().unwrap_or("")
        ),
        OutboxState::Failed => tracing::error!(
            id = s.id, channel = %channel,
            "notification failed for good: {}", s.error.as_deref().unwrap_or("")
        ),
        state => tracing::info!(id = s.id, channel = %channel, "notification {state}"),
    }
}

/// Sends one row and decides its next state.
async fn deliver(row: &Claimed, senders: &Senders, settings: &Settings) -> Settled {
    let attempt = row.attempts.max(1) as u32;
    let result = match (settings.channels.get(&row.channel), &row.payload) {
        (None, _) => Err((
            row.parts_done,
            format!(
                "channel `{}` is not configured in this dispatcher",
                row.channel
            ),
        )),
        (_, Err(e)) => Err((row.parts_done, format!("unreadable payload: {e}"))),
        (Some(channel), Ok(n)) => senders
            .send(channel, n, row.parts_done.max(0) as usize)
            .await
            .map_err(|e| (e.done as i32, e.message)),
    };
    let settled = |state, parts_done, error, delay| Settled {
        id: row.id,
        state,
        parts_done,
        error,
        delay,
        attempt: row.attempts,
    };
    match result {
        Ok(Delivered::Sent(parts)) => settled(OutboxState::Delivered, parts as i32, None, 0.0),
        Ok(Delivered::Nothing) => settled(OutboxState::Skipped, row.parts_done, None, 0.0),
        Err((done, error)) if attempt >= settings.max_attempts => settled(
            OutboxState::Failed,
            done,
            Some(format!("attempt {attempt}: {error}")),
            0.0,
        ),
        Err((done, error)) => settled(
            OutboxState::Pending,
            done,
            Some(format!("attempt {attempt}: {error}")),
            settings.backoff(attempt).as_secs_f64(),
        ),
    }
}
