//! The current template version's render of a workspace, through the live render code,
//! so that it follows the templates as they change.

use std::collections::BTreeMap;
use std::path::Path;

use super::files::{FileSet, Shape};
use crate::deploy::k8s;
use crate::error::Result;
use crate::plan::{Ownership, WritePlan};
use crate::render::templates::TemplateSet;
use crate::render::{self, Renderer};
use crate::workspace::model::{Kind, Manifest, TEMPLATE_VERSION, WorkspaceSection};
use crate::workspace::proto::ProtoInfo;

/// Every file the current templates write for the workspace at `root`: what `msvc init`
/// and `msvc new` (or `msvc init --example`, for the services in `shape`) scaffold, what
/// `msvc sync` rewrites, and the deployment files of `msvc deploy` where the workspace
/// has them. Generated files follow the user's files as they are (protos, openapi.yaml).
pub fn render_current(
    root: &Path,
    manifest: &Manifest,
    protos: &BTreeMap<String, ProtoInfo>,
    shape: &Shape,
) -> Result<FileSet> {
    render_with(root, manifest, protos, shape, TemplateSet::embedded())
}

/// Like [`render_current`], with the templates of `set`: an earlier version the live
/// render code still renders (see [`TemplateSet::of_version`]).
pub fn render_with(
    root: &Path,
    manifest: &Manifest,
    protos: &BTreeMap<String, ProtoInfo>,
    shape: &Shape,
    set: TemplateSet,
) -> Result<FileSet> {
    let mut manifest = manifest.clone();
    manifest.workspace.template_version = TEMPLATE_VERSION;
    let renderer = Renderer::for_workspace_with(root, &manifest, set)?;

    let mut scaffold = WritePlan::new(root);
    render::plan_workspace(&mut scaffold, &renderer, &init_manifest(&manifest))?;
    for (name, svc) in &manifest.services {
        if svc.kind == Kind::Process {
            continue;
        }
        render::plan_default_proto(&mut scaffold, &renderer, &manifest, name)?;
        if shape.examples.contains(name) {
            render::plan_example_service(&mut scaffold, &renderer, &manifest, name, protos)?;
        } else {
            render::plan_service(&mut scaffold, &renderer, &manifest, name, protos)?;
        }
    }
    scaffold.format_rust();

    // A plan of its own, so that generation reads the user's openapi.yaml, not a fresh
    // one; the members go into the Cargo.toml init writes, as in init.
    let mut generated = WritePlan::new(root);
    if let Some(cargo) = scaffold
        .get(Path::new("Cargo.toml"))
        .and_then(|f| f.new.clone())
    {
        generated.put("Cargo.toml", cargo, Ownership::Scaffolded);
    }
    // Generation completes a service with a database whose files lack what its wiring
    // needs; here they are the ones just rendered, not those on disk.
    for f in scaffold.files() {
        let of_service = f.path.starts_with(crate::workspace::SERVICES_DIR);
        let needed = f.path.ends_with("Cargo.toml")
            || f.path.components().any(|c| c.as_os_str() == "migrations");
        if let (true, true, Some(text)) = (of_service, needed, &f.new) {
            generated.put(f.path.clone(), text.clone(), f.ownership);
        }
    }
    crate::generate::plan_generated(&mut generated, &renderer, &manifest, protos)?;
    // The overlays as `msvc deploy k8s` writes them, once, into a workspace without any.
    if root.join(k8s::K8S_DIR).is_dir() {
        for overlay in k8s::OVERLAYS {
            k8s::plan_overlay(&mut generated, &renderer, &manifest, overlay)?;
        }
    }
    Ok(FileSet::from_plans(&[&scaffold, &generated]))
}

/// The manifest `msvc init` renders the workspace files with: a name and nothing else.
fn init_manifest(manifest: &Manifest) -> Manifest {
    Manifest {
        workspace: WorkspaceSection {
            name: manifest.workspace.name.clone(),
            template_version: TEMPLATE_VERSION,
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
