//! The user-owned files version 1 scaffolds, frozen: the workspace of `msvc init`, a
//! service's crate of `msvc new` (or of `msvc init --example`) and its default proto.

use std::collections::BTreeMap;

use super::context::{ServiceContext, WorkspaceContext};
use super::renderer::Renderer;
use crate::error::Result;
use crate::plan::{Ownership, WritePlan};
use crate::workspace::model::{Kind, Manifest};
use crate::workspace::proto::ProtoInfo;
use crate::workspace::service_dir;

/// The services of version 1's example system (`msvc init --example`).
pub const EXAMPLE_SERVICES: [&str; 3] = ["user-service", "user-api", "email-worker"];

/// The template directories a kind of service is rendered from, later ones winning.
fn kind_dirs(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Rest => &["service", "rest"],
        Kind::Grpc => &["service", "admin", "grpc"],
        Kind::Worker => &["service", "admin", "worker"],
        Kind::Process => &[],
    }
}

pub fn workspace_context(
    manifest: &Manifest,
    protos: &BTreeMap<String, ProtoInfo>,
) -> tera::Context {
    let ws = WorkspaceContext::new(manifest, protos);
    let mut ctx = tera::Context::new();
    ctx.insert("ws", &ws);
    ctx
}

fn service_context(
    manifest: &Manifest,
    name: &str,
    protos: &BTreeMap<String, ProtoInfo>,
) -> tera::Context {
    let mut ctx = workspace_context(manifest, protos);
    ctx.insert("service", &ServiceContext::new(manifest, name, protos));
    ctx
}

/// The files of a new workspace (init), for `manifest` as init has it: no services yet.
pub fn plan_workspace(
    plan: &mut WritePlan,
    renderer: &Renderer,
    manifest: &Manifest,
) -> Result<()> {
    let ctx = workspace_context(manifest, &BTreeMap::new());
    for (rel, text) in renderer.render_dirs(&["workspace"], &ctx)? {
        plan.put(rel, text, Ownership::Scaffolded);
    }
    Ok(())
}

/// The default proto of a gRPC service.
pub fn plan_default_proto(
    plan: &mut WritePlan,
    renderer: &Renderer,
    manifest: &Manifest,
    name: &str,
) -> Result<()> {
    let svc = &manifest.services[name];
    let Some(path) = &svc.proto else {
        return Ok(());
    };
    let ctx = service_context(manifest, name, &BTreeMap::new());
    let text = renderer.render("proto/service.proto.tera", &ctx)?;
    plan.put(path.clone(), text, Ownership::Scaffolded);
    Ok(())
}

/// A service's own files, as `msvc new` writes them, or with `example` as
/// `msvc init --example` does: the kind's templates with those under
/// `example/<name>/` taking precedence, file by file.
pub fn plan_service(
    plan: &mut WritePlan,
    renderer: &Renderer,
    manifest: &Manifest,
    name: &str,
    protos: &BTreeMap<String, ProtoInfo>,
    example: bool,
) -> Result<()> {
    let kind = manifest.services[name].kind;
    let ctx = service_context(manifest, name, protos);
    let example_dir = format!("example/{name}");
    let mut dirs: Vec<&str> = kind_dirs(kind).to_vec();
    if example {
        dirs.push(&example_dir);
    }
    let dir = service_dir(name);
    for (rel, text) in renderer.render_dirs(&dirs, &ctx)? {
        plan.put(dir.join(rel), text, Ownership::Scaffolded);
    }
    Ok(())
}
