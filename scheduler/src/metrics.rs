//! The scheduler's metrics, served as OpenMetrics text on `--metrics ADDR`: ticks and their
//! cost, slots materialised, runs expired and lost, alerts raised, whether this instance leads,
//! and the queue depth and outbox backlog (counted through their partial indexes at each scrape).

use std::time::Duration;

use sisyphus_metrics::{histogram, Counter, Gauge, Histogram, Registry, Unit, SECONDS};

use crate::TickReport;

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    ticks: Counter,
    pending: Counter,
    missed: Counter,
    expired: Counter,
    lost: Counter,
    slow: Counter,
    overdue: Counter,
    tick_seconds: Histogram,
    pub leader: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let m = Metrics {
            registry: Registry::default(),
            ticks: Counter::default(),
            pending: Counter::default(),
            missed: Counter::default(),
            expired: Counter::default(),
            lost: Counter::default(),
            slow: Counter::default(),
            overdue: Counter::default(),
            tick_seconds: histogram(SECONDS),
            leader: Gauge::default(),
        };
        let mut r = Registry::default();
        for (name, help, counter) in [
            ("ticks", "Ticks run while leading", &m.ticks),
            (
                "runs_created",
                "Pending runs materialised (schedule slots and data triggers)",
                &m.pending,
            ),
            (
                "runs_missed",
                "Slots written as missed (found already past their TTL)",
                &m.missed,
            ),
            (
                "runs_expired",
                "Pending runs that passed their TTL before a guardian took them",
                &m.expired,
            ),
            (
                "runs_lost",
                "Runs whose guardian stopped renewing its lease",
                &m.lost,
            ),
            (
                "slow_runs",
                "Runs that passed their job's warn_after (a `slow` notification each)",
                &m.slow,
            ),
            (
                "overdue_jobs",
                "Jobs found without a good run for longer than max_health_age (dead-man's switch)",
                &m.overdue,
            ),
        ] {
            r.register(format!("sisyphus_scheduler_{name}"), help, counter.clone());
        }
        r.register_with_unit(
            "sisyphus_scheduler_tick",
            "Cost of one tick (one transaction)",
            Unit::Seconds,
            m.tick_seconds.clone(),
        );
        r.register(
            "sisyphus_scheduler_leader",
            "1 while this instance leads, 0 while it stands by",
            m.leader.clone(),
        );
        Metrics { registry: r, ..m }
    }
}

impl Metrics {
    pub fn tick(&self, report: &TickReport, took: Duration) {
        self.ticks.inc();
        self.pending.inc_by(report.pending);
        self.missed.inc_by(report.missed);
        self.expired.inc_by(report.expired);
        self.lost.inc_by(report.lost);
        self.tick_seconds.observe(took.as_secs_f64());
    }

    /// Counts the alerts one tick raised: (slow runs, overdue jobs).
    pub fn alerts(&self, (slow, overdue): (i32, i32)) {
        self.slow.inc_by(slow.max(0) as u64);
        self.overdue.inc_by(overdue.max(0) as u64);
    }

    /// The exposition; `queue_depth` is the number of pending runs and `backlog` the number of
    /// undelivered notifications, each left out if it could not be counted.
    pub fn render(&self, queue_depth: Option<i64>, backlog: Option<i64>) -> String {
        sisyphus_metrics::encode(
            &self.registry,
            &[
                ("sisyphus_queue_depth", "Pending runs", queue_depth),
                (
                    "sisyphus_outbox_backlog",
                    "Notifications waiting for delivery",
                    backlog,
                ),
            ],
        )
    }
}
