//! Version 1's deployment files, frozen: deploy/k8s (base/ is msvc's, the overlays are
//! written once and then the user's) and deploy/prometheus (msvc's).

use std::path::Path;

use serde::Serialize;

use super::renderer::Renderer;
use crate::error::Result;
use crate::plan::{Ownership, WritePlan};
use crate::workspace::model::{Autoscale, Kind, Manifest, Resources, parse_duration_ms};

/// The kustomize layout, relative to the workspace root.
pub const K8S_DIR: &str = "deploy/k8s";
const BASE_DIR: &str = "deploy/k8s/base";
const OVERLAYS: [&str; 2] = ["dev", "prod"];
/// Where the Prometheus files go, relative to the workspace root.
pub const PROMETHEUS_DIR: &str = "deploy/prometheus";
const ERROR_RATE_THRESHOLD: f64 = 0.05;
const BACKLOG_THRESHOLD: u32 = 100;
const RABBITMQ_METRICS_PORT: u16 = 15692;

/// The workspace as the Kubernetes templates see it.
#[derive(Debug, Clone, Serialize)]
pub struct K8sContext {
    pub workspace: String,
    pub services: Vec<K8sService>,
    /// `process` services: they have no image, so they get no manifests.
    pub skipped: Vec<String>,
    pub has_queues: bool,
    /// The Secret holding `AMQP_URL`, under key `AMQP_URL`.
    pub broker_secret: String,
}

/// One service's Deployment, Service and the rest.
#[derive(Debug, Clone, Serialize)]
pub struct K8sService {
    pub name: String,
    pub kind: Kind,
    /// `REGISTRY/NAME`, without the tag: what kustomize's `images:` matches.
    pub image_name: String,
    pub tag: String,
    /// Main port, 0 for a worker.
    pub port: u16,
    /// `http` (REST) or `grpc`; empty for a worker.
    pub port_name: &'static str,
    /// HTTP admin port (gRPC, worker), 0 when none.
    pub admin_port: u16,
    /// The named port that serves /healthz, /readyz and /metrics.
    pub http_port_name: &'static str,
    pub replicas: u32,
    pub autoscale: Option<Autoscale>,
    /// Whether a `PodDisruptionBudget` keeps one replica up during node drains.
    pub disruption_budget: bool,
    pub resources: Resources,
    pub grace_seconds: u64,
    /// Plain environment, in order; `AMQP_URL` comes from the Secret instead.
    pub env: Vec<EnvVar>,
    pub amqp: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct EnvVar {
    pub name: String,
    pub value: String,
}

impl K8sContext {
    pub fn new(manifest: &Manifest) -> Self {
        let mut services = Vec::new();
        let mut skipped = Vec::new();
        for (name, svc) in &manifest.services {
            if svc.kind == Kind::Process {
                skipped.push(name.clone());
                continue;
            }
            let port = svc.port.filter(|_| svc.kind.has_main_port()).unwrap_or(0);
            let admin_port = svc
                .admin_port
                .filter(|_| svc.kind.has_admin_port())
                .unwrap_or(0);
            let grace = manifest.shutdown_grace(svc);
            let grace_ms = parse_duration_ms(&grace).unwrap_or(10_000);
            let amqp = !svc.publishes.is_empty() || !svc.consumes.is_empty();
            let mut env = vec![EnvVar::new("HOST", "0.0.0.0")];
            if port > 0 {
                env.push(EnvVar::new("PORT", &port.to_string()));
            }
            if admin_port > 0 {
                env.push(EnvVar::new("ADMIN_PORT", &admin_port.to_string()));
            }
            env.push(EnvVar::new("LOG_FORMAT", "json"));
            env.push(EnvVar::new("RUST_LOG", "info"));
            env.push(EnvVar::new("SHUTDOWN_GRACE", &grace));
            for dep in &svc.depends_on {
                let Some(peer) = manifest.services.get(dep) else {
                    continue;
                };
                let peer_port = peer.port.or(peer.admin_port).unwrap_or(0);
                let forms = crate::workspace::names::NameForms::new(dep);
                env.push(EnvVar::new(
                    &forms.env_url,
                    &format!("http://{dep}:{peer_port}"),
                ));
            }
            // The service's own `env` wins over the wiring, as in compose and `up`.
            for (key, value) in &svc.env {
                env.retain(|e| &e.name != key);
                env.push(EnvVar::new(key, value));
            }
            let amqp = amqp && !svc.env.contains_key("AMQP_URL");
            let replicas = svc.replicas.unwrap_or(1);
            let disruption_budget = replicas > 1 || svc.autoscale.is_some_and(|a| a.min > 1);
            services.push(K8sService {
                name: name.clone(),
                kind: svc.kind,
                image_name: manifest.image_name(name),
                tag: manifest.image_tag().to_string(),
                port,
                port_name: match svc.kind {
                    Kind::Grpc => "grpc",
                    Kind::Rest => "http",
                    _ => "",
                },
                admin_port,
                http_port_name: if svc.kind.has_admin_port() {
                    "admin"
                } else {
                    "http"
                },
                replicas,
                autoscale: svc.autoscale,
                disruption_budget,
                resources: svc.resources.clone().unwrap_or_default(),
                grace_seconds: grace_ms.div_ceil(1000),
                env,
                amqp,
            });
        }
        Self {
            workspace: manifest.workspace.name.clone(),
            has_queues: services.iter().any(|s| s.amqp),
            broker_secret: format!("{}-broker", manifest.workspace.name),
            services,
            skipped,
        }
    }
}

impl EnvVar {
    fn new(name: &str, value: &str) -> Self {
        Self {
            name: name.to_string(),
            value: value.to_string(),
        }
    }
}

fn k8s_context(manifest: &Manifest) -> (K8sContext, tera::Context) {
    let k8s = K8sContext::new(manifest);
    let mut ctx = tera::Context::new();
    ctx.insert("k8s", &k8s);
    (k8s, ctx)
}

/// deploy/k8s/base/, as version 1's `plan_existing` rewrites it.
pub fn plan_k8s_base(plan: &mut WritePlan, renderer: &Renderer, manifest: &Manifest) -> Result<()> {
    let (k8s, ctx) = k8s_context(manifest);
    let text = renderer.render("k8s/base/kustomization.yaml.tera", &ctx)?;
    plan.put(
        Path::new(BASE_DIR).join("kustomization.yaml"),
        text,
        Ownership::Generated,
    );
    for svc in &k8s.services {
        let mut sctx = ctx.clone();
        sctx.insert("service", svc);
        let text = renderer.render("k8s/base/service.yaml.tera", &sctx)?;
        plan.put(
            Path::new(BASE_DIR).join(format!("{}.yaml", svc.name)),
            text,
            Ownership::Generated,
        );
    }
    Ok(())
}

/// Every overlay, as `msvc deploy k8s` writes them into a workspace that has none.
pub fn plan_k8s_overlays(
    plan: &mut WritePlan,
    renderer: &Renderer,
    manifest: &Manifest,
) -> Result<()> {
    let (k8s, ctx) = k8s_context(manifest);
    for overlay in OVERLAYS {
        let dir = Path::new(K8S_DIR).join("overlays").join(overlay);
        let mut octx = ctx.clone();
        octx.insert("overlay", overlay);
        let text = renderer.render("k8s/overlay/kustomization.yaml.tera", &octx)?;
        plan.put(
            dir.join("kustomization.yaml"),
            text,
            Ownership::ScaffoldedOnce,
        );
        for svc in &k8s.services {
            let mut sctx = octx.clone();
            sctx.insert("service", svc);
            let text = renderer.render("k8s/overlay/patch.yaml.tera", &sctx)?;
            plan.put(
                dir.join("patches").join(format!("{}.yaml", svc.name)),
                text,
                Ownership::ScaffoldedOnce,
            );
        }
        if overlay == "dev" && k8s.has_queues {
            for file in ["rabbitmq.yaml", "broker.env"] {
                let text = renderer.render(&format!("k8s/overlay/{file}.tera"), &octx)?;
                plan.put(dir.join(file), text, Ownership::ScaffoldedOnce);
            }
        }
    }
    Ok(())
}

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
    fn with_targets(manifest: &Manifest, targets: Vec<ScrapeTarget>) -> Self {
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
            error_rate: ERROR_RATE_THRESHOLD,
            backlog: BACKLOG_THRESHOLD,
            scrape_interval: "15s",
            scrape_broker: true,
        }
    }
}

/// The port serving `/metrics`: a REST service's main port, else its admin port.
/// `process` services are not scraped: msvc cannot know they export metrics.
fn metrics_port(kind: Kind, port: Option<u16>, admin_port: Option<u16>) -> Option<u16> {
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

/// deploy/prometheus/.
pub fn plan_prometheus(
    plan: &mut WritePlan,
    renderer: &Renderer,
    manifest: &Manifest,
) -> Result<()> {
    let prom = PrometheusContext::new(manifest);
    let mut ctx = tera::Context::new();
    ctx.insert("prom", &prom);
    for name in ["prometheus.yml", "prometheus-kubernetes.yml", "alerts.yml"] {
        let text = renderer.render(&format!("prometheus/{name}.tera"), &ctx)?;
        plan.put(
            Path::new(PROMETHEUS_DIR).join(name),
            text,
            Ownership::Generated,
        );
    }
    Ok(())
}
