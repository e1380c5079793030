//! Template version 1, frozen: what msvc wrote into workspaces whose services.toml says
//! `template_version = 1`, kept so that `msvc upgrade` can merge against it after the
//! live templates and render code have moved on.
//!
//! The templates are templates-v1/ (a copy of templates/ as version 1 had it) and the
//! code that rendered them is copied here: the Tera set-up and filters, the contexts,
//! the scaffolds of `init` and `new`, the files `new` and `sync` rewrite and those of
//! `deploy`. Only what reads the workspace (the manifest, protos, openapi.yaml, names)
//! is shared with the live code. Nothing here may change: the fixtures under
//! tests/fixtures/upgrade/v1 are what version 1 wrote, and a test renders them again.

mod context;
mod deploy;
mod generate;
mod renderer;
mod scaffold;

use std::collections::BTreeMap;
use std::path::Path;

use self::renderer::Renderer;
use super::files::{FileSet, Shape};
use crate::error::Result;
use crate::plan::{Ownership, WritePlan};
use crate::workspace::model::{Kind, Manifest, WorkspaceSection};
use crate::workspace::proto::ProtoInfo;

/// The template version this module renders.
pub const VERSION: u32 = 1;

/// Every file version 1 writes for the workspace at `root`: the scaffolds of `init` and
/// `new` (or `init --example` for the services in `shape`), the files `sync` rewrites and
/// the deployment files of `msvc deploy` where the workspace has them. Generated files
/// follow the user's files as they are (protos, openapi.yaml), as `sync` would write them.
pub fn render(
    root: &Path,
    manifest: &Manifest,
    protos: &BTreeMap<String, ProtoInfo>,
    shape: &Shape,
) -> Result<FileSet> {
    let manifest = at_version(manifest);
    let renderer = Renderer::for_workspace(root, &manifest)?;
    let mut scaffold = WritePlan::new(root);
    scaffold::plan_workspace(&mut scaffold, &renderer, &init_manifest(&manifest))?;
    for (name, svc) in &manifest.services {
        if svc.kind == Kind::Process {
            continue;
        }
        scaffold::plan_default_proto(&mut scaffold, &renderer, &manifest, name)?;
        let example = shape.examples.contains(name);
        scaffold::plan_service(&mut scaffold, &renderer, &manifest, name, protos, example)?;
    }
    scaffold.format_rust();

    let mut generated = WritePlan::new(root);
    // The members are set in the Cargo.toml init wrote, as init itself does.
    if let Some(cargo) = scaffold
        .get(Path::new("Cargo.toml"))
        .and_then(|f| f.new.clone())
    {
        generated.put("Cargo.toml", cargo, Ownership::Scaffolded);
    }
    generate::plan_generated(&mut generated, &renderer, &manifest, protos)?;
    if root.join(deploy::K8S_DIR).is_dir() {
        deploy::plan_k8s_base(&mut generated, &renderer, &manifest)?;
        deploy::plan_k8s_overlays(&mut generated, &renderer, &manifest)?;
    }
    if root.join(deploy::PROMETHEUS_DIR).is_dir() {
        deploy::plan_prometheus(&mut generated, &renderer, &manifest)?;
    }
    generated.format_rust();
    Ok(FileSet::from_plans(&[&scaffold, &generated]))
}

/// How version 1 most likely shaped the workspace: a service of the example system is
/// taken as written by `init --example` when its example render is closer to the files
/// on disk than its plain one (the manifest does not say which it was).
pub fn shape(
    root: &Path,
    manifest: &Manifest,
    protos: &BTreeMap<String, ProtoInfo>,
) -> Result<Shape> {
    let manifest = at_version(manifest);
    let renderer = Renderer::for_workspace(root, &manifest)?;
    Shape::detect(
        root,
        &manifest,
        &scaffold::EXAMPLE_SERVICES,
        |name, example| {
            let mut plan = WritePlan::new(root);
            scaffold::plan_service(&mut plan, &renderer, &manifest, name, protos, example)?;
            Ok(plan)
        },
    )
}

/// The manifest as version 1 saw it: templates read `template_version`.
fn at_version(manifest: &Manifest) -> Manifest {
    let mut m = manifest.clone();
    m.workspace.template_version = VERSION;
    m
}

/// The manifest `msvc init` renders the workspace files with: a name and nothing else.
fn init_manifest(manifest: &Manifest) -> Manifest {
    Manifest {
        workspace: WorkspaceSection {
            name: manifest.workspace.name.clone(),
            template_version: VERSION,
            templates: None,
            shutdown_grace: None,
        },
        broker: None,
        database: None,
        deploy: None,
        services: BTreeMap::new(),
        checks: BTreeMap::new(),
    }
}

#[cfg(test)]
pub(super) mod tests;
