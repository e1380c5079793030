//! `deploy/prometheus/`: a scrape configuration covering every service's `/metrics`
//! (static targets at the manifest's ports, Kubernetes service discovery in a cluster)
//! and alert rules: a service down, an error rate above a threshold, a queue's backlog
//! growing.

use std::path::Path;

use serde::Serialize;

use crate::error::Result;
use crate::plan::{Ownership, WritePlan};
use crate::render::Renderer;
use crate::workspace::model::{Kind, Manifest};

/// Where the files go, relative to the workspace root.
pub const PROMETHEUS_DIR: &str = "deploy/prometheus";
/// The share of failed requests (or messages) above which an alert fires.
pub const ERROR_RATE_THRESHOLD: f64 = 0.05;
/// Ready messages in a queue above which a growing backlog alerts.
pub const BACKLOG_THRESHOLD: u32 = 100;
/// `RabbitMQ`'s Prometheus plugin port.
pub const RABBITMQ_METRICS_PORT: u16 = 15692;

/// The workspace as the Prometheus templates see it.
#[derive(Debug, Clone, Serialize)]
pub struct PrometheusContext {
    pub workspace: String,
    pub targets: Vec<ScrapeTarget>,
    pub queues: Vec<String>,
    /// Host of the broker's metrics on this machine (the `[broker]` URL's host).
    pub broker_host: String,
    pub broker_metrics_port: u16,
    pub has_rest: bool,
    pub has_grpc: bool,
    pub has_worker: bool,
    /// Whether a service publishes through the outbox (it has a database and publishes).
    pub has_outbox: bool,
    pub error_rate: f64,
    pub backlog: u32,
    pub scrape_interval: &'static str,
    /// Whether the broker's own metrics are scraped on this machine.
    pub scrape_broker: bool,
}

/// One `/metrics` endpoint.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ScrapeTarget {
    pub service: String,
    /// `host:port`.
    pub address: String,
}

impl PrometheusContext {
    /// Targets at the manifest's ports on 127.0.0.1.
    pub fn new(manifest: &Manifest) -> Self {
        let targets = manifest
            .services
            .iter()
            .filter_map(|(name, svc)| {
                metrics_port(svc.kind, svc.port, svc.admin_port).map(|port| ScrapeTarget {
                    service: name.clone(),
                    address: format!("127.0.0.1:{port}"),
                })
            })
            .collect();
        Self::with_targets(manifest, targets)
    }

    /// The same configuration with the given static targets (e.g. the ports `msvc up` picked).
    pub fn with_targets(manifest: &Manifest, targets: Vec<ScrapeTarget>) -> Self {
        let kinds: Vec<Kind> = manifest.services.values().map(|s| s.kind).collect();
        Self {
            workspace: manifest.workspace.name.clone(),
            targets,
            queues: manifest.queues(),
            broker_host: broker_host(manifest.broker_url()),
            broker_metrics_port: RABBITMQ_METRICS_PORT,
            has_rest: kinds.contains(&Kind::Rest),
            has_grpc: kinds.contains(&Kind::Grpc),
            has_worker: kinds.contains(&Kind::Worker),
            has_outbox: manifest
                .generated_with_database()
                .any(|(_, s)| !s.publishes.is_empty()),
            error_rate: ERROR_RATE_THRESHOLD,
            backlog: BACKLOG_THRESHOLD,
            scrape_interval: "15s",
            scrape_broker: true,
        }
    }
}

/// The port serving `/metrics`: a REST service's main port, else its admin port.
/// `process` services are not scraped: msvc cannot know they export metrics.
pub fn metrics_port(kind: Kind, port: Option<u16>, admin_port: Option<u16>) -> Option<u16> {
    match kind {
        Kind::Rest => port,
        Kind::Grpc | Kind::Worker => admin_port,
        Kind::Process => None,
    }
}

/// `amqp://user:pw@host:5672/%2f` -> `host` (127.0.0.1 when it cannot be read).
fn broker_host(url: &str) -> String {
    match crate::workspace::url::AmqpUrl::parse(url) {
        Some(u) if u.host.contains(':') => format!("[{}]", u.host),
        Some(u) if !u.host.is_empty() => u.host,
        _ => "127.0.0.1".into(),
    }
}

/// Renders prometheus.yml, prometheus-kubernetes.yml and alerts.yml for a context.
pub fn render(renderer: &Renderer, prom: &PrometheusContext) -> Result<[(String, String); 3]> {
    let mut ctx = tera::Context::new();
    ctx.insert("prom", prom);
    Ok([
        (
            "prometheus.yml".to_string(),
            renderer.render("prometheus/prometheus.yml.tera", &ctx)?,
        ),
        (
            "prometheus-kubernetes.yml".to_string(),
            renderer.render("prometheus/prometheus-kubernetes.yml.tera", &ctx)?,
        ),
        (
            "alerts.yml".to_string(),
            renderer.render("prometheus/alerts.yml.tera", &ctx)?,
        ),
    ])
}

/// Puts deploy/prometheus/ into the plan.
pub fn plan(plan: &mut WritePlan, renderer: &Renderer, manifest: &Manifest) -> Result<()> {
    let prom = PrometheusContext::new(manifest);
    for (name, text) in render(renderer, &prom)? {
        plan.put(
            Path::new(PROMETHEUS_DIR).join(name),
            text,
            Ownership::Generated,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::broker_host;

    #[test]
    fn broker_hosts() {
        assert_eq!(
            broker_host("amqp://guest:guest@127.0.0.1:5672/%2f"),
            "127.0.0.1"
        );
        assert_eq!(broker_host("amqp://rabbit.internal/%2f"), "rabbit.internal");
        assert_eq!(broker_host("amqp://u:p@[::1]:5672"), "[::1]");
        assert_eq!(broker_host(""), "127.0.0.1");
    }
}
