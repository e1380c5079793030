//! Deployment files rendered from the manifest on the same `WritePlan` as compose:
//! Kubernetes manifests (a kustomize layout) and a Prometheus configuration.

pub mod k8s;
pub mod prometheus;

use crate::error::Result;
use crate::plan::WritePlan;
use crate::render::Renderer;
use crate::workspace::model::Manifest;

/// Regenerates the deployment files the workspace has opted into (by running
/// `msvc deploy k8s` or `msvc deploy prometheus` once): part of `plan_generated`.
pub fn plan_existing(plan: &mut WritePlan, renderer: &Renderer, manifest: &Manifest) -> Result<()> {
    if plan.root().join(k8s::K8S_DIR).is_dir() {
        k8s::plan_base(plan, renderer, manifest)?;
    }
    if plan.root().join(prometheus::PROMETHEUS_DIR).is_dir() {
        prometheus::plan(plan, renderer, manifest)?;
    }
    Ok(())
}
