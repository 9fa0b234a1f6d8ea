//! The guardian's metrics, served as Prometheus text on `--metrics ADDR` (`sisyphus-metrics`):
//! runs ended by status, run duration, start latency (due → started), claim batch size, lease
//! renewals and failures, runs in flight.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use sisyphus_client::RunStatus;
use sisyphus_metrics::{Counter, Exposition, Histogram, COUNTS, SECONDS};

#[derive(Debug)]
pub struct Metrics {
    ended: Mutex<BTreeMap<&'static str, u64>>,
    duration: Histogram,
    start_latency: Histogram,
    claim_batch: Histogram,
    pub renewals: Counter,
    pub renewal_failures: Counter,
    /// Log lines and outcomes the database refused (replaced by an explanation).
    pub unrecordable: Counter,
    /// Spool entries moved aside because the database refuses them for good.
    pub quarantined: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            ended: Mutex::default(),
            duration: Histogram::new(SECONDS),
            start_latency: Histogram::new(SECONDS),
            claim_batch: Histogram::new(COUNTS),
            renewals: Counter::default(),
            renewal_failures: Counter::default(),
            unrecordable: Counter::default(),
            quarantined: Counter::default(),
        }
    }
}

impl Metrics {
    /// A run started this long after it was due.
    pub fn started(&self, late: Duration) {
        self.start_latency.observe(late.as_secs_f64());
    }

    /// A run ended with `status` after running this long.
    pub fn ended(&self, status: RunStatus, ran: Duration) {
        if let Ok(mut m) = self.ended.lock() {
            *m.entry(status.as_str()).or_default() += 1;
        }
        self.duration.observe(ran.as_secs_f64());
    }

    /// A claim brought `n` runs (only non-empty claims are observed).
    pub fn claimed(&self, n: usize) {
        if n > 0 {
            self.claim_batch.observe(n as f64);
        }
    }

    /// The exposition, with `in_flight` runs being supervised now.
    pub fn render(&self, in_flight: usize) -> String {
        let ended: Vec<(&str, u64)> = self
            .ended
            .lock()
            .map(|m| m.iter().map(|(k, v)| (*k, *v)).collect())
            .unwrap_or_default();
        let mut e = Exposition::default();
        e.labelled_counter(
            "sisyphus_guardian_runs_total",
            "Runs this guardian supervised to their end, by status.",
            "status",
            &ended,
        )
        .gauge(
            "sisyphus_guardian_runs_in_flight",
            "Runs being supervised now.",
            in_flight as i64,
        )
        .histogram(
            "sisyphus_guardian_run_duration_seconds",
            "From start to outcome.",
            &self.duration,
        )
        .histogram(
            "sisyphus_guardian_start_latency_seconds",
            "From a run's due time to its supervision starting.",
            &self.start_latency,
        )
        .histogram(
            "sisyphus_guardian_claim_batch_size",
            "Runs per non-empty claim.",
            &self.claim_batch,
        )
        .counter(
            "sisyphus_guardian_lease_renewals_total",
            "Heartbeats that renewed this host's leases.",
            self.renewals.get(),
        )
        .counter(
            "sisyphus_guardian_lease_renewal_failures_total",
            "Heartbeats that failed or timed out.",
            self.renewal_failures.get(),
        )
        .counter(
            "sisyphus_guardian_unrecordable_total",
            "Log lines and outcomes the database refused, recorded as an explained failure instead.",
            self.unrecordable.get(),
        )
        .counter(
            "sisyphus_guardian_spool_quarantined_total",
            "Spool entries the database refuses for good, moved aside into the spool's quarantine.",
            self.quarantined.get(),
        );
        e.finish()
    }
}
