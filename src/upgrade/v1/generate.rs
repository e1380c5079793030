//! The msvc-owned files version 1 rewrites (`new`, `link`, `rm`, `sync`), frozen:
//! compose, the contracts crate, its message files, a worker's routes and the members
//! of the workspace Cargo.toml.

use std::collections::BTreeMap;
use std::path::Path;

use super::context::{RestPeer, ServiceContext, WorkspaceContext};
use super::renderer::Renderer;
use super::scaffold::workspace_context;
use crate::error::{Error, Location, Result};
use crate::plan::{Ownership, WritePlan};
use crate::workspace::model::{Kind, Manifest};
use crate::workspace::names::{NameForms, QueueForms};
use crate::workspace::openapi::RestApis;
use crate::workspace::proto::ProtoInfo;
use crate::workspace::service_dir;
use crate::workspace::source::Files as _;

/// Path of the generated contracts crate, relative to the workspace root.
pub const CONTRACTS_DIR: &str = "crates/contracts";

/// What version 1's `plan_generated` puts in the plan, before the deployment files.
pub fn plan_generated(
    plan: &mut WritePlan,
    renderer: &Renderer,
    manifest: &Manifest,
    protos: &BTreeMap<String, ProtoInfo>,
) -> Result<()> {
    let mut ws_ctx = WorkspaceContext::new(manifest, protos);
    ws_ctx.rest_peers = rest_peers(plan, manifest)?;
    let mut ctx = tera::Context::new();
    ctx.insert("ws", &ws_ctx);
    for (rel, text) in renderer.render_dirs(&["contracts"], &ctx)? {
        plan.put(
            Path::new(CONTRACTS_DIR).join(rel),
            text,
            Ownership::Generated,
        );
    }
    for queue in manifest.queues() {
        let forms = QueueForms::new(&queue);
        let mut qctx = ctx.clone();
        qctx.insert("queue", &forms);
        let text = renderer.render("message/message.rs.tera", &qctx)?;
        plan.put(
            Path::new(CONTRACTS_DIR)
                .join("src/messages")
                .join(format!("{}.rs", forms.module)),
            text,
            Ownership::ScaffoldedOnce,
        );
    }
    for (rel, text) in renderer.render_dirs(&["deploy"], &ctx)? {
        plan.put(rel, text, Ownership::Generated);
    }
    let mut ws_only: Option<tera::Context> = None;
    for (name, svc) in &manifest.services {
        if svc.kind == Kind::Worker {
            let mut ctx = ws_only
                .get_or_insert_with(|| workspace_context(manifest, protos))
                .clone();
            ctx.insert("service", &ServiceContext::new(manifest, name, protos));
            let text = renderer.render("worker/src/routes.rs.tera", &ctx)?;
            plan.put(
                service_dir(name).join("src/routes.rs"),
                text,
                Ownership::Generated,
            );
        }
    }
    plan_members(plan, renderer, manifest)?;
    Ok(())
}

/// The REST services that others depend on, with their APIs read from openapi.yaml.
fn rest_peers(plan: &WritePlan, manifest: &Manifest) -> Result<Vec<RestPeer>> {
    let apis = RestApis::read(plan.root(), manifest, plan);
    let mut peers = Vec::new();
    for (name, svc) in &manifest.services {
        let depended_on = manifest
            .services
            .values()
            .any(|s| s.depends_on.contains(name));
        if svc.kind != Kind::Rest || !depended_on {
            continue;
        }
        peers.push(RestPeer {
            names: NameForms::new(name),
            port: svc.port.unwrap_or(0),
            api: apis.for_client(name)?.clone(),
        });
    }
    Ok(peers)
}

/// Sets `workspace.members` of the root Cargo.toml the plan holds.
fn plan_members(plan: &mut WritePlan, renderer: &Renderer, manifest: &Manifest) -> Result<()> {
    let rel = Path::new("Cargo.toml");
    let text = if let Some(t) = plan.read_text(rel) {
        t
    } else {
        let ctx = workspace_context(manifest, &BTreeMap::new());
        renderer.render("workspace/Cargo.toml.tera", &ctx)?
    };
    let mut doc = text.parse::<toml_edit::DocumentMut>().map_err(|e| {
        Error::new(format!("the workspace's Cargo.toml is not valid TOML: {e}"))
            .at(Location::file(plan.root().join(rel)))
            .hint("fix it; msvc keeps its `[workspace] members` list in step with services.toml")
    })?;
    let Some(ws) = doc.get_mut("workspace").and_then(|w| w.as_table_like_mut()) else {
        return Err(
            Error::new("the workspace's Cargo.toml has no [workspace] table")
                .at(Location::file(plan.root().join(rel)))
                .hint("add `[workspace]` with `members = []`; msvc fills in the members"),
        );
    };
    let mut members = toml_edit::Array::new();
    members.push(CONTRACTS_DIR);
    for (name, svc) in &manifest.services {
        if svc.kind != Kind::Process {
            members.push(format!("services/{name}"));
        }
    }
    for v in members.iter_mut() {
        v.decor_mut().set_prefix("\n    ");
    }
    members.set_trailing(",\n");
    members.set_trailing_comma(false);
    let existing = ws.get("members").and_then(|m| m.as_array());
    let same = existing.is_some_and(|old| {
        old.iter().map(|v| v.as_str()).collect::<Vec<_>>()
            == members.iter().map(|v| v.as_str()).collect::<Vec<_>>()
    });
    if !same {
        ws.insert("members", toml_edit::value(members));
    }
    plan.put(rel, doc.to_string(), Ownership::Generated);
    Ok(())
}
