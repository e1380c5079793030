//! `deploy/k8s/`: a kustomize layout. `base/` is generated from the manifest (a
//! Deployment and a Service per service, a `PodDisruptionBudget` with replicas, a
//! `HorizontalPodAutoscaler` with `autoscale`); `overlays/dev` and `overlays/prod` are
//! scaffolded once and then belong to the user.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::Result;
use crate::error::slash_path;
use crate::plan::{Ownership, WritePlan};
use crate::render::Renderer;
use crate::workspace::model::{Autoscale, Kind, Manifest, Resources, parse_duration_ms};

/// The kustomize layout, relative to the workspace root.
pub const K8S_DIR: &str = "deploy/k8s";
/// The generated part.
pub const BASE_DIR: &str = "deploy/k8s/base";
/// The overlays `msvc deploy k8s` scaffolds.
pub const OVERLAYS: [&str; 2] = ["dev", "prod"];

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
    /// Whether a service has a database (`DATABASE_URL` from its own Secret).
    pub has_database: bool,
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
    /// The service's database (`shop_orders`), empty without one; its URL is in the
    /// Secret `database_secret`, under key `DATABASE_URL`.
    pub database: String,
    pub database_secret: String,
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
            let database = if svc.database.is_some() && !svc.env.contains_key("DATABASE_URL") {
                manifest.database_name(name)
            } else {
                String::new()
            };
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
                database_secret: format!("{name}-database"),
                database,
            });
        }
        Self {
            workspace: manifest.workspace.name.clone(),
            has_queues: services.iter().any(|s| s.amqp),
            has_database: services.iter().any(|s| !s.database.is_empty()),
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

fn context(manifest: &Manifest) -> (K8sContext, tera::Context) {
    let k8s = K8sContext::new(manifest);
    let mut ctx = tera::Context::new();
    ctx.insert("k8s", &k8s);
    (k8s, ctx)
}

/// The path of a service's manifests in base/.
pub fn base_file(service: &str) -> PathBuf {
    Path::new(BASE_DIR).join(format!("{service}.yaml"))
}

/// Puts base/ into the plan, and deletes files there that belong to no service any more.
pub fn plan_base(plan: &mut WritePlan, renderer: &Renderer, manifest: &Manifest) -> Result<()> {
    let (k8s, ctx) = context(manifest);
    let text = renderer.render("k8s/base/kustomization.yaml.tera", &ctx)?;
    plan.put(
        Path::new(BASE_DIR).join("kustomization.yaml"),
        text,
        Ownership::Generated,
    );
    let mut wanted = vec!["kustomization.yaml".to_string()];
    for svc in &k8s.services {
        let mut sctx = ctx.clone();
        sctx.insert("service", svc);
        let text = renderer.render("k8s/base/service.yaml.tera", &sctx)?;
        plan.put(base_file(&svc.name), text, Ownership::Generated);
        wanted.push(format!("{}.yaml", svc.name));
    }
    // A removed service's manifests go with it: base/ is msvc's alone.
    if let Ok(entries) = fs_err::read_dir(plan.root().join(BASE_DIR)) {
        let mut stale: Vec<String> = entries
            .filter_map(std::result::Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| {
                Path::new(n).extension().is_some_and(|e| e == "yaml") && !wanted.contains(n)
            })
            .collect();
        stale.sort();
        for name in stale {
            plan.delete(Path::new(BASE_DIR).join(name));
        }
    }
    Ok(())
}

/// base/ and, where missing, the overlays: what `msvc deploy k8s` writes.
pub fn plan_all(
    plan: &mut WritePlan,
    renderer: &Renderer,
    manifest: &Manifest,
) -> Result<K8sContext> {
    plan_base(plan, renderer, manifest)?;
    for overlay in OVERLAYS {
        let dir = Path::new(K8S_DIR).join("overlays").join(overlay);
        // An overlay is the user's once it exists: none of its files is added or rewritten.
        if plan.root().join(&dir).join("kustomization.yaml").exists() {
            continue;
        }
        plan_overlay(plan, renderer, manifest, overlay)?;
    }
    Ok(K8sContext::new(manifest))
}

/// Every file of one overlay (`dev`, `prod`), whatever is on disk.
pub fn plan_overlay(
    plan: &mut WritePlan,
    renderer: &Renderer,
    manifest: &Manifest,
    overlay: &str,
) -> Result<()> {
    let (k8s, ctx) = context(manifest);
    let dir = Path::new(K8S_DIR).join("overlays").join(overlay);
    let mut octx = ctx;
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
    if overlay == "dev" && k8s.has_database {
        // Empty at a template version without it.
        let text = renderer.render("k8s/overlay/postgres.yaml.tera", &octx)?;
        if !text.is_empty() {
            plan.put(dir.join("postgres.yaml"), text, Ownership::ScaffoldedOnce);
        }
    }
    Ok(())
}

/// The overlays whose kustomization.yaml still patches `service`: after `msvc rm`, the
/// patch names a Deployment that is gone and `kubectl kustomize` fails until it goes too.
pub fn overlays_patching(root: &Path, service: &str) -> Vec<String> {
    let patch = format!("patches/{service}.yaml");
    OVERLAYS
        .iter()
        .map(|o| {
            Path::new(K8S_DIR)
                .join("overlays")
                .join(o)
                .join("kustomization.yaml")
        })
        .filter(|rel| {
            crate::plan::read_regular(&root.join(rel)).is_some_and(|t| t.contains(&patch))
        })
        .map(|rel| slash_path(&rel))
        .collect()
}

/// Whether `path` (relative, `/`-separated) is one of the generated base files.
pub fn is_base(path: &Path) -> bool {
    slash_path(path).starts_with(&format!("{BASE_DIR}/"))
}
