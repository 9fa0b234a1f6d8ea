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
        let every = if supervised.is_empty() {
            idle_beat(&config)
        } else {
            config.heartbeat
        };
        let next = (sent + every).min(last_renewal + fence_after);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep_until(next.max(Instant::now() + std::time::Duration::from_millis(50))) => {}
        }
    }
}

/// A host counts as live while its last beat is at most 30 s old (`sisyphus.live_hosts`,
/// migration 0002): a third of that is the longest an idle guardian waits between beats.
const IDLE_BEAT_MAX: std::time::Duration = std::time::Duration::from_secs(10);

/// How often a guardian that supervises no run beats: a third of the lease (no lease of its
/// own to renew; a run claimed meanwhile is renewed within a third of its lease), never more
/// often than `--heartbeat` and never less often than [`IDLE_BEAT_MAX`] (unless `--heartbeat`
/// says so). With the defaults, 10 s instead of 5: an idle fleet's beats were most of its
/// database load (issue 17, `sisyphus-bench fleet`).
fn idle_beat(config: &Config) -> std::time::Duration {
    (config.lease / 3).min(IDLE_BEAT_MAX).max(config.heartbeat)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn config(lease: u64, heartbeat_ms: u64) -> Config {
        let mut c = Config::new("postgres://unused");
        c.lease = Duration::from_secs(lease);
        c.heartbeat = Duration::from_millis(heartbeat_ms);
        c
    }

    #[test]
    fn an_idle_guardian_beats_every_third_of_its_lease_within_the_live_window() {
        // Defaults: lease 30 s, heartbeat 5 s: 10 s when idle.
        assert_eq!(idle_beat(&config(30, 5000)), Duration::from_secs(10));
        // The test harness's 4 s lease and 1 s beat: a third of the lease.
        assert_eq!(idle_beat(&config(4, 1000)), Duration::from_secs(4) / 3);
        // A long lease does not take an idle host out of `live_hosts` (30 s).
        assert_eq!(idle_beat(&config(600, 5000)), IDLE_BEAT_MAX);
        // Never more often than asked: a lease of exactly three beats changes nothing.
        assert_eq!(idle_beat(&config(3, 1000)), Duration::from_secs(1));
        // A heartbeat longer than the cap is kept (the operator chose it).
        assert_eq!(idle_beat(&config(60, 20_000)), Duration::from_secs(20));
    }
}
