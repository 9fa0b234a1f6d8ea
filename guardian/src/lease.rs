//! The heartbeat and self-fencing.
//!
//! Every beat is one statement that refreshes the host's heartbeat and renews the lease of every
//! run this host holds. If beats keep failing (database down, network cut) for two thirds of the
//! lease, measured from when the last successful beat was *sent* (so never later than the
//! database's own clock for it), the guardian kills all its runs and stops claiming: the lease
//! then expires with nothing of ours still running, and the scheduler's `lost` plus the retry
//! elsewhere can never overlap us (invariant `fleet-wide-concurrency`). When beats succeed again, claiming resumes.
//! The spool is written whenever a beat succeeds.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use sisyphus_db::guardian::{heartbeat, Beat};
use sisyphus_db::PgPool;
use sisyphus_model::RunId;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::spool::Spool;
use crate::{Active, Config, Control};

/// What the heartbeat tells the claim loop.
#[derive(Debug, Default)]
pub struct State {
    /// Our lease could not be renewed in time: our runs were killed; no claims until renewed.
    pub fenced: AtomicBool,
    /// An operator drained this host: no new claims.
    pub draining: AtomicBool,
    /// Where renewals and failures are counted.
    pub metrics: Arc<crate::metrics::Metrics>,
}

impl State {
    pub fn may_claim(&self) -> bool {
        !self.fenced.load(Ordering::SeqCst) && !self.draining.load(Ordering::SeqCst)
    }
}

pub async fn run(
    pool: PgPool,
    config: Config,
    instance: String,
    state: Arc<State>,
    active: Active,
    spool: Spool,
    stop: CancellationToken,
) {
    let metrics = state.metrics.clone();
    let fence_after = config.lease * 2 / 3;
    let mut last_renewal = Instant::now();
    loop {
        let sent = Instant::now();
        let supervised: Vec<RunId> = active
            .lock()
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default();
        let beat = tokio::time::timeout(
            config.heartbeat,
            heartbeat(&pool, &config.name, &instance, config.lease, &supervised),
        )
        .await;
        match beat {
            Ok(Ok(Beat {
                ours: true,
                draining,
                ..
            })) => {
                metrics.renewals.inc();
                last_renewal = sent;
                state.draining.store(draining, Ordering::SeqCst);
                if state.fenced.swap(false, Ordering::SeqCst) {
                    tracing::info!("lease renewed again; claiming resumes");
                }
                if !spool.is_empty() {
                    let n = spool
                        .replay(&pool, &metrics, Some(config.heartbeat / 2))
                        .await;
                    tracing::info!("wrote {n} spooled entries");
                }
            }
            Ok(Ok(Beat { ours: false, .. })) => {
                tracing::error!(
                    "host `{}` was taken over by another guardian; fencing",
                    config.name
                );
                fence(&state, &active).await;
            }
            Ok(Err(e)) => {
                metrics.renewal_failures.inc();
                tracing::warn!("heartbeat failed: {e}");
            }
            Err(_) => {
                metrics.renewal_failures.inc();
                tracing::warn!("heartbeat timed out");
            }
        }
        if last_renewal.elapsed() >= fence_after && !state.fenced.load(Ordering::SeqCst) {
            tracing::error!(
                "no lease renewal for {:?}; killing this host's runs (self-fencing)",
                last_renewal.elapsed()
            );
            fence(&state, &active).await;
        }
        let next = (sent + config.heartbeat).min(last_renewal + fence_after);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep_until(next.max(Instant::now() + std::time::Duration::from_millis(50))) => {}
        }
    }
}

async fn fence(state: &State, active: &Active) {
    state.fenced.store(true, Ordering::SeqCst);
    let ids: Vec<_> = active
        .lock()
        .map(|m| m.keys().copied().collect())
        .unwrap_or_default();
    for id in ids {
        crate::send(active, id, Control::Fence).await;
    }
}
