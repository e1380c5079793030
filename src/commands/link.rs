//! `msvc link`: add relations (peers, calls, queues) to an existing service.

use std::path::Path;

use crate::cli::LinkArgs;
use crate::error::{Error, Result};
use crate::plan::{Ownership, WritePlan};
use crate::printer::Printer;
use crate::render::{COMPOSE_FILE, Renderer};
use crate::workspace::calls::{self, Contracts};
use crate::workspace::edit::ManifestEdit;
use crate::workspace::model::{DatabaseKind, Kind};
use crate::workspace::names::{NameForms, validate_queue_name};
use crate::workspace::openapi::RestApis;
use crate::workspace::source::Disk;
use crate::workspace::validate::{did_you_mean, validate};
use crate::workspace::{MANIFEST_FILE, Workspace};

pub fn run(cwd: &Path, args: &LinkArgs, printer: &Printer) -> Result<i32> {
    let root = Workspace::find(cwd)?;
    let ws = Workspace::load(&root)?;
    let name = args.name.as_str();
    let m = &ws.manifest;
    let Some(svc) = m.services.get(name) else {
        let hint = did_you_mean(name, m.services.keys())
            .unwrap_or_else(|| format!("add it first with `msvc new {name}`"));
        return Err(Error::new(format!("no service named `{name}` in {MANIFEST_FILE}")).hint(hint));
    };
    if args.depends_on.is_empty()
        && args.calls.is_empty()
        && args.publishes.is_empty()
        && args.consumes.is_empty()
        && args.db.is_none()
    {
        return Err(Error::new("nothing to link").hint(
            "pass --depends-on, --calls, --publishes, --consumes or --db; see `msvc link --help`",
        ));
    }

    let mut peers: Vec<String> = Vec::new();
    for dep in &args.depends_on {
        check_peer(&ws, name, dep, "--depends-on")?;
        peers.push(dep.clone());
    }
    for call in &args.calls {
        let peer = check_call(&ws, name, call)?;
        peers.push(peer);
    }
    for q in args.publishes.iter().chain(&args.consumes) {
        validate_queue_name(q).map_err(|e| Error::new(e.reason).hint(e.hint))?;
    }
    if !args.consumes.is_empty() && svc.kind != Kind::Worker {
        return Err(Error::new(format!(
            "`{name}` is a {} service; only workers get a generated consumer",
            svc.kind
        ))
        .hint(format!(
            "add a worker: `msvc new {name}-worker --worker --consumes {}`",
            args.consumes.join(",")
        )));
    }

    let mut edit = ManifestEdit::parse(&ws.text)?;
    let mut added: Vec<String> = Vec::new();
    for peer in &peers {
        if edit.add_to_list(name, "depends_on", peer)? {
            added.push(format!("depends_on {peer}"));
        }
    }
    for call in &args.calls {
        if edit.add_to_list(name, "calls", call)? {
            added.push(format!("calls {call}"));
        }
    }
    for (key, list) in [("publishes", &args.publishes), ("consumes", &args.consumes)] {
        for q in list {
            if edit.add_to_list(name, key, q)? {
                added.push(format!("{key} {q}"));
            }
        }
    }
    if !args.publishes.is_empty() || !args.consumes.is_empty() {
        edit.ensure_broker();
    }
    if let Some(crate::cli::DbArg::Postgres) = args.db {
        if edit.set_database(name, DatabaseKind::Postgres)? {
            added.push("database postgres".to_owned());
        }
        edit.ensure_database();
    }
    let text = edit.finish();
    let manifest = Workspace::parse(&ws.manifest_path, &text)?;
    let next = Workspace {
        manifest: manifest.clone(),
        text: text.clone(),
        ..ws.clone()
    };
    if let Some(problem) = validate(&next).into_iter().next() {
        let mut err = Error::new(format!(
            "linking would break the manifest: {}",
            problem.message
        ));
        if let Some(h) = problem.hint {
            err = err.hint(h);
        }
        return Err(err);
    }

    let renderer = Renderer::for_workspace(&root, &manifest)?;
    let mut plan = WritePlan::new(&root);
    plan.put(MANIFEST_FILE, text, Ownership::Manifest);
    let protos = ws.service_protos(&manifest, &plan)?;
    crate::generate::plan_generated(&mut plan, &renderer, &manifest, &protos)?;

    if args.dry_run {
        printer.line(&format!(
            "Plan for `msvc link {name}` (dry run, nothing written):"
        ));
        printer.plan(&plan, &[MANIFEST_FILE, COMPOSE_FILE]);
        return Ok(0);
    }
    plan.apply()?;
    printer.json(&serde_json::json!({ "service": name, "added": added, "files": plan.files() }));
    if added.is_empty() {
        printer.status(
            "Fresh",
            &format!("`{name}` already had every relation given"),
        );
        return Ok(0);
    }
    for a in &added {
        printer.status("Linked", &format!("{name} {a}"));
    }
    for peer in &peers {
        let forms = NameForms::new(peer);
        let kind = manifest.services[peer].kind;
        printer.line(&format!(
            "  {name} reaches {peer} at ${} (default: the manifest's port on 127.0.0.1); client: contracts::peers::{}::client(){}",
            forms.env_url,
            forms.snake,
            if kind == Kind::Rest { " (typed from its openapi.yaml)" } else { "" }
        ));
    }
    for q in &args.publishes {
        printer.line(&format!(
            "  {name} publishes {q}: contracts::amqp::Publisher::publish(&contracts::messages::{})",
            crate::workspace::names::QueueForms::new(q).type_name
        ));
    }
    if added.iter().any(|a| a == "database postgres") {
        let url = manifest.service_database_url(name).unwrap_or_default();
        printer.line(&format!(
            "  {name} keeps its data in {url} (DATABASE_URL): migrations in services/{name}/migrations/ run at start, /readyz waits for them, and the pool is `Peers::db` in its wiring; tests that expect it ready need a database of their own (msvc_runtime::testing::TestDb)"
        ));
    }
    for q in &args.consumes {
        let forms = crate::workspace::names::QueueForms::new(q);
        printer.line(&format!(
            "  {name} consumes {q}: add `pub async fn {}(msg: &{}) -> Result<(), HandlerError>` to services/{name}/src/handler.rs",
            forms.module, forms.type_name
        ));
    }
    Ok(0)
}

fn check_peer(ws: &Workspace, name: &str, dep: &str, flag: &str) -> Result<()> {
    if dep == name {
        return Err(Error::new(format!("`{name}` cannot depend on itself"))
            .hint(format!("remove it from {flag}")));
    }
    if !ws.manifest.services.contains_key(dep) {
        let hint = did_you_mean(dep, ws.manifest.services.keys())
            .unwrap_or_else(|| format!("add it first with `msvc new {dep}`"));
        return Err(Error::new(format!(
            "{flag} names `{dep}`, which is not a service of this workspace"
        ))
        .hint(hint));
    }
    Ok(())
}

/// Checks a `calls` entry against the peer's contract; returns the peer.
fn check_call(ws: &Workspace, name: &str, call: &str) -> Result<String> {
    let Some((peer, _)) = calls::split(call) else {
        return Err(
            Error::new(format!("`{call}` is not a call: it names no peer"))
                .hint("write `peer/Service.Method` for gRPC or `peer/GET /path` for REST"),
        );
    };
    check_peer(ws, name, peer, "--calls")?;
    let files = Disk(&ws.root);
    let protos = ws.service_protos(&ws.manifest, &files)?;
    let apis = RestApis::read(&ws.root, &ws.manifest, &files);
    let contracts = Contracts {
        protos: &protos,
        apis: &|peer| apis.get(peer),
    };
    let resolved = calls::resolve(&ws.manifest, &contracts, name, call)
        .map_err(|problem| Error::new(problem.message).hint(problem.hint))?;
    Ok(resolved.peer.to_string())
}
