//! The scheduler's metrics, served as Prometheus text on `--metrics ADDR`: ticks and their
//! cost, slots materialised, runs expired and lost, whether this instance leads, and the queue
//! depth (pending runs, counted through the partial index at each scrape).

use std::time::Duration;

use sisyphus_metrics::{Counter, Exposition, Gauge, Histogram, SECONDS};

use crate::TickReport;

#[derive(Debug)]
pub struct Metrics {
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
        Metrics {
            ticks: Counter::default(),
            pending: Counter::default(),
            missed: Counter::default(),
            expired: Counter::default(),
            lost: Counter::default(),
            slow: Counter::default(),
            overdue: Counter::default(),
            tick_seconds: Histogram::new(SECONDS),
            leader: Gauge::default(),
        }
    }
}

impl Metrics {
    pub fn tick(&self, report: &TickReport, took: Duration) {
        self.ticks.inc();
        self.pending.add(report.pending);
        self.missed.add(report.missed);
        self.expired.add(report.expired);
        self.lost.add(report.lost);
        self.tick_seconds.observe(took.as_secs_f64());
    }

    /// Counts the alerts one tick raised: (slow runs, overdue jobs).
    pub fn alerts(&self, (slow, overdue): (i32, i32)) {
        self.slow.add(slow.max(0) as u64);
        self.overdue.add(overdue.max(0) as u64);
    }

    /// The exposition; `queue_depth` is the number of pending runs and `backlog` the number of
    /// undelivered notifications, if they could be counted.
    pub fn render(&self, queue_depth: Option<i64>, backlog: Option<i64>) -> String {
        let mut e = Exposition::default();
        e.counter(
            "sisyphus_scheduler_ticks_total",
            "Ticks run while leading.",
            self.ticks.get(),
        )
        .counter(
            "sisyphus_scheduler_runs_created_total",
            "Pending runs materialised (schedule slots and data triggers).",
            self.pending.get(),
        )
        .counter(
            "sisyphus_scheduler_runs_missed_total",
            "Slots written as missed (found already past their TTL).",
            self.missed.get(),
        )
        .counter(
            "sisyphus_scheduler_runs_expired_total",
            "Pending runs that passed their TTL before a guardian took them.",
            self.expired.get(),
        )
        .counter(
            "sisyphus_scheduler_runs_lost_total",
            "Runs whose guardian stopped renewing its lease.",
            self.lost.get(),
        )
        .counter(
            "sisyphus_scheduler_slow_runs_total",
            "Runs that passed their job's warn_after (a `slow` notification each).",
            self.slow.get(),
        )
        .counter(
            "sisyphus_scheduler_overdue_jobs_total",
            "Jobs found without a good run for longer than max_health_age (dead-man's switch).",
            self.overdue.get(),
        )
        .histogram(
            "sisyphus_scheduler_tick_seconds",
            "Cost of one tick (one transaction).",
            &self.tick_seconds,
        )
        .gauge(
            "sisyphus_scheduler_leader",
            "1 while this instance leads, 0 while it stands by.",
            self.leader.get(),
        );
        if let Some(depth) = queue_depth {
            e.gauge("sisyphus_queue_depth", "Pending runs.", depth);
        }
        if let Some(b) = backlog {
            e.gauge(
                "sisyphus_outbox_backlog",
                "Notifications waiting for delivery.",
                b,
            );
        }
        e.finish()
    }
}
