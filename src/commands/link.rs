//! `msvc link`: add relations (peers, calls, queues) to an existing service.

use std::path::Path;

use crate::cli::LinkArgs;
use crate::error::{Error, Result};
use crate::plan::{Ownership, WritePlan};
use crate::printer::Printer;
use crate::render::{self, COMPOSE_FILE, Renderer};
use crate::workspace::edit::ManifestEdit;
use crate::workspace::model::Kind;
use crate::workspace::names::{NameForms, validate_queue_name};
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
    {
        return Err(Error::new("nothing to link").hint(
            "pass --depends-on, --calls, --publishes or --consumes; see `msvc link --help`",
        ));
    }

    let mut peers: Vec<String> = Vec::new();
    for dep in &args.depends_on {
        check_peer(&ws, name, dep, "--depends-on")?;
        peers.push(dep.clone());
    }
    for call in &args.calls {
        let peer = check_call(&ws, &root, name, call)?;
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
    let protos = render::collect_protos(&plan, &ws, &manifest)?;
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
fn check_call(ws: &Workspace, root: &Path, name: &str, call: &str) -> Result<String> {
    let Some((peer, target)) = call.split_once('/') else {
        return Err(Error::new(format!("`{call}` is not a call"))
            .hint("write `peer/Service.Method` for gRPC or `peer/GET /path` for REST"));
    };
    check_peer(ws, name, peer, "--calls")?;
    let svc = &ws.manifest.services[peer];
    match svc.kind {
        Kind::Grpc => {
            let Some((service, method)) = target.split_once('.') else {
                return Err(Error::new(format!(
                    "`{call}`: a gRPC call is `{peer}/Service.Method`"
                ))
                .hint("e.g. `user-service/UserService.GetUser`"));
            };
            let path = svc.proto.clone().unwrap_or_default();
            let text = fs_err::read_to_string(root.join(&path))?;
            let info = crate::workspace::proto::parse(root, &path, &text)?;
            let rpcs: Vec<String> = info
                .services
                .iter()
                .flat_map(|s| s.rpcs.iter().map(move |r| format!("{}.{}", s.name, r.name)))
                .collect();
            if !rpcs.iter().any(|r| r == &format!("{service}.{method}")) {
                let hint = did_you_mean(target, rpcs.iter())
                    .unwrap_or_else(|| format!("its RPCs: {}", rpcs.join(", ")));
                return Err(
                    Error::new(format!("`{peer}` has no RPC `{target}` in {path}")).hint(hint),
                );
            }
        }
        Kind::Rest | Kind::Process => {
            let ok = target.split_once(' ').is_some_and(|(method, route)| {
                ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method)
                    && route.starts_with('/')
            });
            if !ok {
                return Err(
                    Error::new(format!("`{call}`: a REST call is `{peer}/METHOD /path`"))
                        .hint(format!("e.g. `{peer}/GET /user/{{id}}`")),
                );
            }
        }
        Kind::Worker => {
            return Err(
                Error::new(format!("`{peer}` is a worker and serves no calls"))
                    .hint("publish to a queue it consumes instead: --publishes"),
            );
        }
    }
    Ok(peer.to_string())
}
