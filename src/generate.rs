//! The one code path that rewrites msvc-owned files: `new`, `link`, `rm`, `sync` and
//! `deploy` all end in [`plan_generated`], so a hand edit of services.toml is one
//! `msvc sync` away from consistent files.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Location, Result};
use crate::plan::{Ownership, WritePlan};
use crate::render::context::{self, ServiceContext, WorkspaceContext};
use crate::render::{CONTRACTS_DIR, RUNTIME_DIR, Renderer, render_dirs, workspace_context};
use crate::workspace::model::{Kind, Manifest, TEMPLATE_VERSION};
use crate::workspace::names::QueueForms;
use crate::workspace::openapi::RestApis;
use crate::workspace::proto::ProtoInfo;
use crate::workspace::service_dir;
use crate::workspace::source::Files as _;

/// Rewrites every msvc-owned file from the manifest: compose, the contracts crate, the
/// workspace member list, and deploy/k8s/base and deploy/prometheus once `msvc deploy`
/// has written them. The one path `new`, `rm` and `sync` share.
pub fn plan_generated(
    plan: &mut WritePlan,
    renderer: &Renderer,
    manifest: &Manifest,
    protos: &BTreeMap<String, ProtoInfo>,
) -> Result<()> {
    same_template_version(manifest)?;
    let mut ws_ctx = WorkspaceContext::new(manifest, protos);
    ws_ctx.rest_peers = rest_peers(plan, manifest)?;
    let mut ctx = tera::Context::new();
    ctx.insert("ws", &ws_ctx);
    for (rel, text) in render_dirs(renderer, &["contracts"], &ctx)? {
        plan.put(
            Path::new(CONTRACTS_DIR).join(rel),
            text,
            Ownership::Generated,
        );
    }
    // Message types are the user's to shape: written once per queue, then left alone.
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
    for (rel, text) in render_dirs(renderer, &["deploy"], &ctx)? {
        plan.put(rel, text, Ownership::Generated);
    }
    // A service's wiring (ports, peers, publisher) follows its manifest entry, and a
    // worker's routes its `consumes` list, so they are msvc's to rewrite. The workspace
    // part of the context is built once: per service it would make the render quadratic
    // in the number of services.
    let mut ws_only: Option<tera::Context> = None;
    // Whether a service's code uses its database (not at a template version before it).
    let mut with_sqlx = false;
    for (name, svc) in &manifest.services {
        if svc.kind == Kind::Process {
            continue;
        }
        let mut ctx = ws_only
            .get_or_insert_with(|| workspace_context(manifest, protos))
            .clone();
        ctx.insert("service", &ServiceContext::new(manifest, name, protos));
        let text = renderer.render("wiring/wiring.rs.tera", &ctx)?;
        plan.put(
            service_dir(name).join("src/wiring.rs"),
            text,
            Ownership::Generated,
        );
        // A service with a database is built again when its migrations change (a
        // template version without one renders nothing).
        if svc.database.is_some() {
            let text = renderer.render("database/build.rs.tera", &ctx)?;
            if !text.is_empty() {
                plan.put(
                    service_dir(name).join("build.rs"),
                    text,
                    Ownership::Generated,
                );
                plan_database_of(plan, renderer, &ctx, name)?;
                with_sqlx = true;
            }
        }
        if svc.kind == Kind::Worker {
            let text = renderer.render("worker/src/routes.rs.tera", &ctx)?;
            plan.put(
                service_dir(name).join("src/routes.rs"),
                text,
                Ownership::Generated,
            );
        }
    }
    for (rel, text) in crate::render::runtime::files() {
        plan.put(
            Path::new(RUNTIME_DIR).join(rel),
            text.to_owned(),
            Ownership::Generated,
        );
    }
    plan_members(plan, renderer, manifest, with_sqlx)?;
    crate::deploy::plan_existing(plan, renderer, manifest)?;
    // Last, over everything the command rendered (service files planned before too),
    // unless the templates' own layout is already rustfmt's for what they were given.
    if !renderer.output_is_formatted(plan.root()) {
        plan.format_rust();
    }
    Ok(())
}

/// Files of one template version do not mix with another's: a workspace made by an older
/// msvc is upgraded first, one made by a newer msvc needs that msvc.
fn same_template_version(manifest: &Manifest) -> Result<()> {
    let version = manifest.workspace.template_version;
    match version.cmp(&TEMPLATE_VERSION) {
        std::cmp::Ordering::Equal => Ok(()),
        std::cmp::Ordering::Less => Err(Error::new(format!(
            "this workspace has template version {version} (services.toml `[workspace] \
             template_version`); this msvc writes version {TEMPLATE_VERSION}"
        ))
        .hint("run `msvc upgrade` to bring it forward first (`msvc upgrade --dry-run` shows what it would change)")),
        std::cmp::Ordering::Greater => Err(Error::new(format!(
            "this workspace has template version {version}, newer than this msvc's {TEMPLATE_VERSION}"
        ))
        .hint("update msvc (`cargo install --locked msvc`), or use the msvc that made the workspace")),
    }
}

/// The REST services that others depend on, with their APIs read from openapi.yaml.
fn rest_peers(plan: &WritePlan, manifest: &Manifest) -> Result<Vec<context::RestPeer>> {
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
        peers.push(context::RestPeer {
            names: crate::workspace::names::NameForms::new(name),
            port: svc.port.unwrap_or(0),
            api: apis.for_client(name)?.clone(),
        });
    }
    Ok(peers)
}

/// Sets `workspace.members` of the root Cargo.toml, keeping everything else the user
/// wrote, and adds the dependencies msvc's code needs when missing (sqlx when
/// `with_sqlx`, for the services whose code uses their database).
fn plan_members(
    plan: &mut WritePlan,
    renderer: &Renderer,
    manifest: &Manifest,
    with_sqlx: bool,
) -> Result<()> {
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
    if doc
        .get("workspace")
        .and_then(|w| w.as_table_like())
        .is_none()
    {
        return Err(
            Error::new("the workspace's Cargo.toml has no [workspace] table")
                .at(Location::file(plan.root().join(rel)))
                .hint("add `[workspace]` with `members = []`; msvc fills in the members"),
        );
    }
    ensure_runtime_dependency(&mut doc, &plan.root().join(rel))?;
    if with_sqlx {
        ensure_sqlx_dependency(&mut doc);
    }
    let ws = doc
        .get_mut("workspace")
        .and_then(|w| w.as_table_like_mut())
        .expect("checked above");
    let mut members = toml_edit::Array::new();
    members.push(CONTRACTS_DIR);
    members.push(RUNTIME_DIR);
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

/// What the wiring of a service with a database needs in the service's own files, for
/// one that did not have a database when it was made (`msvc link NAME --db postgres`, or
/// `database` written into services.toml): `sqlx` among its dependencies, and a first
/// migration when `migrations/` has none.
fn plan_database_of(
    plan: &mut WritePlan,
    renderer: &Renderer,
    ctx: &tera::Context,
    name: &str,
) -> Result<()> {
    let dir = service_dir(name);
    let manifest_rel = dir.join("Cargo.toml");
    if let Some(text) = plan.read_text(&manifest_rel) {
        let mut doc = text.parse::<toml_edit::DocumentMut>().map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            Error::new(format!(
                "{} is not valid TOML: {}",
                manifest_rel.display(),
                e.message()
            ))
            .at(Location::from_span(&manifest_rel, &text, span))
            .hint("fix it; msvc adds `sqlx.workspace = true` to a service with a database")
        })?;
        let deps = doc
            .entry("dependencies")
            .or_insert_with(toml_edit::table)
            .as_table_like_mut();
        if let Some(deps) = deps
            && deps.get("sqlx").is_none()
        {
            let mut sqlx = toml_edit::Table::new();
            sqlx.set_dotted(true);
            sqlx.insert("workspace", toml_edit::value(true));
            deps.insert("sqlx", toml_edit::Item::Table(sqlx));
            plan.put(manifest_rel, doc.to_string(), Ownership::Generated);
        }
    }
    let migrations = dir.join("migrations");
    let planned = plan.files().iter().any(|f| f.path.starts_with(&migrations));
    let on_disk = fs_err::read_dir(plan.root().join(&migrations))
        .is_ok_and(|mut entries| entries.next().is_some());
    if !planned && !on_disk {
        let text = renderer.render("database/0001_init.sql.tera", ctx)?;
        plan.put(
            migrations.join("0001_init.sql"),
            text,
            Ownership::ScaffoldedOnce,
        );
    }
    Ok(())
}

/// Adds sqlx, as the template has it, to `[workspace.dependencies]` when a service has a
/// database and the workspace lacks it (`ensure_runtime_dependency` made sure of the
/// table).
fn ensure_sqlx_dependency(doc: &mut toml_edit::DocumentMut) {
    let deps = doc
        .get_mut("workspace")
        .and_then(|w| w.get_mut("dependencies"))
        .and_then(|d| d.as_table_like_mut());
    if let Some(deps) = deps
        && deps.get("sqlx").is_none()
    {
        let mut dep = toml_edit::InlineTable::new();
        dep.insert("version", "0.8.6".into());
        dep.insert("default-features", false.into());
        let features = ["postgres", "runtime-tokio", "migrate", "macros", "json"];
        dep.insert("features", toml_edit::Array::from_iter(features).into());
        deps.insert("sqlx", toml_edit::value(dep));
    }
}

/// Adds `msvc-runtime = { path = "crates/msvc-runtime" }` to `[workspace.dependencies]`
/// when it is missing, where every service's `msvc-runtime.workspace = true` finds it.
fn ensure_runtime_dependency(doc: &mut toml_edit::DocumentMut, path: &Path) -> Result<()> {
    let deps = doc
        .get_mut("workspace")
        .and_then(|w| w.as_table_like_mut())
        .and_then(|w| {
            if w.get("dependencies").is_none() {
                w.insert("dependencies", toml_edit::table());
            }
            w.get_mut("dependencies")
        })
        .and_then(|d| d.as_table_like_mut())
        .ok_or_else(|| {
            Error::new("`[workspace.dependencies]` of the workspace's Cargo.toml is not a table")
                .at(Location::file(path))
                .hint("make it a table; msvc adds `msvc-runtime` to it")
        })?;
    if deps.get("msvc-runtime").is_none() {
        let mut dep = toml_edit::InlineTable::new();
        dep.insert("path", RUNTIME_DIR.into());
        deps.insert("msvc-runtime", toml_edit::value(dep));
    }
    Ok(())
}
