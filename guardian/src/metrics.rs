//! The guardian's metrics, served as OpenMetrics text on `--metrics ADDR` (`sisyphus-metrics`):
//! runs ended by status, run duration, start latency (due → started), claim batch size, lease
//! renewals and failures, refused lines and outcomes, quarantined spool entries, runs in flight.

use std::time::Duration;

use sisyphus_metrics::{
    histogram, Counter, Gauge, Histogram, LabelledCounter, Registry, Unit, COUNTS, SECONDS,
};
use sisyphus_model::RunStatus;

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    ended: LabelledCounter,
    in_flight: Gauge,
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
        let m = Metrics {
            registry: Registry::default(),
            ended: LabelledCounter::default(),
            in_flight: Gauge::default(),
            duration: histogram(SECONDS),
            start_latency: histogram(SECONDS),
            claim_batch: histogram(COUNTS),
            renewals: Counter::default(),
            renewal_failures: Counter::default(),
            unrecordable: Counter::default(),
            quarantined: Counter::default(),
        };
        let mut r = Registry::default();
        r.register(
            "sisyphus_guardian_runs",
            "Runs this guardian supervised to their end, by status",
            m.ended.clone(),
        );
        r.register(
            "sisyphus_guardian_runs_in_flight",
            "Runs being supervised now",
            m.in_flight.clone(),
        );
        r.register_with_unit(
            "sisyphus_guardian_run_duration",
            "From start to outcome",
            Unit::Seconds,
            m.duration.clone(),
        );
        r.register_with_unit(
            "sisyphus_guardian_start_latency",
            "From a run's due time to its supervision starting",
            Unit::Seconds,
            m.start_latency.clone(),
        );
        r.register(
            "sisyphus_guardian_claim_batch_size",
            "Runs per non-empty claim",
            m.claim_batch.clone(),
        );
        r.register(
            "sisyphus_guardian_lease_renewals",
            "Heartbeats that renewed this host's leases",
            m.renewals.clone(),
        );
        r.register(
            "sisyphus_guardian_lease_renewal_failures",
            "Heartbeats that failed or timed out",
            m.renewal_failures.clone(),
        );
        r.register(
            "sisyphus_guardian_unrecordable",
            "Log lines and outcomes the database refused, recorded as an explained failure instead",
            m.unrecordable.clone(),
        );
        r.register(
            "sisyphus_guardian_spool_quarantined",
            "Spool entries the database refuses for good, moved aside into the spool's quarantine",
            m.quarantined.clone(),
        );
        Metrics { registry: r, ..m }
    }
}

impl Metrics {
    /// A run started this long after it was due.
    pub fn started(&self, late: Duration) {
        self.start_latency.observe(late.as_secs_f64());
    }

    /// A run ended with `status` after running this long.
    pub fn ended(&self, status: RunStatus, ran: Duration) {
        self.ended
            .get_or_create(&[("status", status.as_str())])
            .inc();
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
        self.in_flight
            .set(i64::try_from(in_flight).unwrap_or(i64::MAX));
        sisyphus_metrics::encode(&self.registry, &[])
    }
}
