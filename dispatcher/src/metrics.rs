//! The dispatcher's metrics, served as Prometheus text on `--metrics ADDR`: notifications by
//! result, and the outbox backlog (pending rows, counted through the partial index at each
//! scrape).

use sisyphus_client::notifications::OutboxState;
use sisyphus_metrics::{Counter, Exposition};

use crate::outbox::Pass;

#[derive(Debug, Default)]
pub struct Metrics {
    delivered: Counter,
    skipped: Counter,
    retried: Counter,
    failed: Counter,
    passes: Counter,
}

impl Metrics {
    pub fn record(&self, pass: &Pass) {
        if pass.taken > 0 {
            self.passes.inc();
        }
        for s in &pass.settled {
            match s.state {
                OutboxState::Delivered => self.delivered.inc(),
                OutboxState::Skipped => self.skipped.inc(),
                OutboxState::Pending => self.retried.inc(),
                OutboxState::Failed => self.failed.inc(),
            }
        }
    }

    /// The exposition; `backlog` is the number of pending notifications, if it could be counted.
    pub fn render(&self, backlog: Option<i64>) -> String {
        let mut e = Exposition::default();
        e.labelled_counter(
            "sisyphus_notifications_total",
            "Delivery attempts by result.",
            "result",
            &[
                ("delivered", self.delivered.get()),
                ("skipped", self.skipped.get()),
                ("retry", self.retried.get()),
                ("failed", self.failed.get()),
            ],
        )
        .counter(
            "sisyphus_dispatcher_passes_total",
            "Transactions that took notifications.",
            self.passes.get(),
        );
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
