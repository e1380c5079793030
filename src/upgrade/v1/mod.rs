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

use std::collections::{BTreeMap, BTreeSet};
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
    let mut examples = BTreeSet::new();
    for name in scaffold::EXAMPLE_SERVICES {
        if manifest
            .services
            .get(name)
            .is_none_or(|s| s.kind == Kind::Process)
        {
            continue;
        }
        let candidate = |example: bool| -> Result<WritePlan> {
            let mut plan = WritePlan::new(root);
            scaffold::plan_service(&mut plan, &renderer, &manifest, name, protos, example)?;
            Ok(plan)
        };
        let mut plain = candidate(false)?;
        let mut with_example = candidate(true)?;
        if same_files(&plain, &with_example) {
            continue;
        }
        plain.format_rust();
        with_example.format_rust();
        let paths: BTreeSet<&Path> = plain
            .files()
            .iter()
            .chain(with_example.files())
            .map(|f| f.path.as_path())
            .collect();
        if distance(root, &with_example, &paths) < distance(root, &plain, &paths) {
            examples.insert(name.to_string());
        }
    }
    Ok(Shape { examples })
}

fn same_files(a: &WritePlan, b: &WritePlan) -> bool {
    a.files().len() == b.files().len()
        && a.files().iter().all(|f| {
            b.get(&f.path)
                .is_some_and(|g| g.new == f.new && g.ownership == f.ownership)
        })
}

/// How many lines the files on disk differ from a candidate render in, over `paths`: a
/// file one side lacks counts all the lines of the other.
fn distance(root: &Path, candidate: &WritePlan, paths: &BTreeSet<&Path>) -> usize {
    paths
        .iter()
        .map(|rel| {
            let disk = crate::plan::read_regular(&root.join(rel)).unwrap_or_default();
            let rendered = candidate
                .get(rel)
                .and_then(|f| f.new.as_deref())
                .unwrap_or_default();
            similar::TextDiff::from_lines(disk.as_str(), rendered)
                .iter_all_changes()
                .filter(|c| c.tag() != similar::ChangeTag::Equal)
                .count()
        })
        .sum()
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
