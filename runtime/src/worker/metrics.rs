//! Worker metrics: messages processed, failed and dead-lettered, by queue.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
    registry::Registry,
};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    pub queue: String,
}

/// Counters shared by all consumer tasks; cloning shares the same series.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    processed: Family<QueueLabels, Counter>,
    failed: Family<QueueLabels, Counter>,
    dead_lettered: Family<QueueLabels, Counter>,
}

impl Metrics {
    /// Creates the counters and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "worker_messages_processed",
            "Messages handled successfully and acknowledged",
            metrics.processed.clone(),
        );
        registry.register(
            "worker_messages_failed",
            "Handler failures, one per failed attempt",
            metrics.failed.clone(),
        );
        registry.register(
            "worker_messages_dead_lettered",
            "Messages moved to the dead-letter queue",
            metrics.dead_lettered.clone(),
        );
        metrics
    }

    /// Creates the series of `queue` at zero, so it is scraped before its first message.
    pub fn init_queue(&self, queue: &str) {
        let labels = labels(queue);
        for family in [&self.processed, &self.failed, &self.dead_lettered] {
            drop(family.get_or_create(&labels));
        }
    }

    /// `count` more messages of `queue` were handled and acknowledged.
    pub fn processed(&self, queue: &str, count: u64) {
        self.processed.get_or_create(&labels(queue)).inc_by(count);
    }

    pub fn failed(&self, queue: &str) {
        self.failed.get_or_create(&labels(queue)).inc();
    }

    pub fn dead_lettered(&self, queue: &str) {
        self.dead_lettered.get_or_create(&labels(queue)).inc();
    }
}

fn labels(queue: &str) -> QueueLabels {
    QueueLabels {
        queue: queue.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrape(registry: &Registry) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, registry).expect("encodes");
        text
    }

    #[test]
    fn counts_by_queue_from_zero() {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        metrics.init_queue("orders");
        let text = scrape(&registry);
        for name in ["processed", "failed", "dead_lettered"] {
            let line = format!("worker_messages_{name}_total{{queue=\"orders\"}} 0");
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }

        metrics.processed("orders", 3);
        metrics.failed("orders");
        metrics.dead_lettered("refunds");
        // Clones share the series.
        metrics.clone().processed("orders", 1);
        let text = scrape(&registry);
        for line in [
            "worker_messages_processed_total{queue=\"orders\"} 4",
            "worker_messages_failed_total{queue=\"orders\"} 1",
            "worker_messages_dead_lettered_total{queue=\"orders\"} 0",
            "worker_messages_dead_lettered_total{queue=\"refunds\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
