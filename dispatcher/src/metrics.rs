//! The dispatcher's metrics, served as OpenMetrics text on `--metrics ADDR`: notifications by
//! result, passes, and the outbox backlog (pending rows, counted through the partial index at
//! each scrape).

use sisyphus_client::notifications::OutboxState;
use sisyphus_metrics::{Counter, LabelledCounter, Registry};

use crate::outbox::Pass;

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    notifications: LabelledCounter,
    passes: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let notifications = LabelledCounter::default();
        // Every result is shown from the start, at 0 until it happens.
        for result in ["delivered", "skipped", "retry", "failed"] {
            let _ = notifications.get_or_create(&[("result", result)]);
        }
        let passes = Counter::default();
        let mut registry = Registry::default();
        registry.register(
            "sisyphus_notifications",
            "Delivery attempts by result",
            notifications.clone(),
        );
        registry.register(
            "sisyphus_dispatcher_passes",
            "Transactions that took notifications",
            passes.clone(),
        );
        Metrics {
            registry,
            notifications,
            passes,
        }
    }
}

impl Metrics {
    pub fn record(&self, pass: &Pass) {
        if pass.taken > 0 {
            self.passes.inc();
        }
        for s in &pass.settled {
            let result = match s.state {
                OutboxState::Delivered => "delivered",
                OutboxState::Skipped => "skipped",
                OutboxState::Pending => "retry",
                OutboxState::Failed => "failed",
            };
            self.notifications
                .get_or_create(&[("result", result)])
                .inc();
        }
    }

    /// The exposition; `backlog` is the number of pending notifications, left out if it could
    /// not be counted.
    pub fn render(&self, backlog: Option<i64>) -> String {
        sisyphus_metrics::encode(
            &self.registry,
            &[(
                "sisyphus_outbox_backlog",
                "Notifications waiting for delivery",
                backlog,
            )],
        )
    }
}
