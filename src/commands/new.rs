//! `msvc new`: add a service to the workspace.

use std::path::Path;

use crate::cli::NewArgs;
use crate::error::{Error, Result};
use crate::plan::{Ownership, WritePlan};
use crate::printer::Printer;
use crate::render::{self, COMPOSE_FILE, Renderer};
use crate::workspace::edit::ManifestEdit;
use crate::workspace::model::{DatabaseKind, Kind, Manifest, Service};
use crate::workspace::names::{
    NameForms, default_resource, validate_queue_name, validate_resource, validate_service_name,
};
use crate::workspace::ports::{ADMIN_PORT_BASE, GRPC_PORT_BASE, PortPicker, REST_PORT_BASE};
use crate::workspace::validate::did_you_mean;
use crate::workspace::{MANIFEST_FILE, Workspace};
use crate::workspace::{proto, protos};

pub fn run(cwd: &Path, args: &NewArgs, printer: &Printer) -> Result<i32> {
    let root = Workspace::find(cwd)?;
    let ws = Workspace::load(&root)?;
    let kind = if args.rest {
        Kind::Rest
    } else if args.grpc {
        Kind::Grpc
    } else {
        Kind::Worker
    };
    let name = args.name.as_str();
    validate_service_name(name).map_err(|e| {
        Error::new(format!("invalid service name `{name}`: {}", e.reason)).hint(e.hint)
    })?;
    if ws.manifest.services.contains_key(name) {
        return Err(
            Error::new(format!("a service named `{name}` already exists"))
                .at(ws.locate(&["services", name]))
                .hint(format!(
                    "choose another name, or remove it first with `msvc rm {name}`"
                )),
        );
    }
    // Paths on the command line are relative to where msvc runs (after -C).
    let proto_file = args.proto.as_ref().map(|f| cwd.join(f));
    let svc = service_from_args(&ws, args, kind, proto_file.as_deref())?;

    // The manifest as it will be: edited text first, so comments and layout survive.
    let mut edit = ManifestEdit::parse(&ws.text)?;
    edit.add_service(name, &svc);
    let broker_added = if svc.publishes.is_empty() && svc.consumes.is_empty() {
        false
    } else {
        edit.ensure_broker()
    };
    if svc.database.is_some() {
        edit.ensure_database();
    }
    let new_text = edit.finish();
    let manifest = Workspace::parse(&ws.manifest_path, &new_text)?;

    let renderer = Renderer::for_workspace(&root, &manifest)?;
    let mut plan = WritePlan::new(&root).force(args.force);
    plan.put(MANIFEST_FILE, new_text, Ownership::Manifest);
    if kind == Kind::Grpc {
        match &proto_file {
            Some(file) => {
                let (rel, text) = protos::user_proto(file, svc.proto.as_deref())?;
                plan.put(rel, text, Ownership::Scaffolded);
            }
            None => render::plan_default_proto(&mut plan, &renderer, &manifest, name)?,
        }
    }
    let protos = ws.service_protos(&manifest, &plan)?;
    render::plan_service(&mut plan, &renderer, &manifest, name, &protos)?;
    crate::generate::plan_generated(&mut plan, &renderer, &manifest, &protos)?;

    if args.dry_run {
        printer.line(&format!(
            "Plan for `msvc new {name}` (dry run, nothing written):"
        ));
        printer.plan(&plan, &[MANIFEST_FILE, COMPOSE_FILE]);
        return Ok(0);
    }
    plan.conflicts()?;
    plan.apply()?;

    printer.json(&serde_json::json!({
        "service": name,
        "kind": kind,
        "port": svc.port,
        "admin_port": svc.admin_port,
        "proto": svc.proto,
        "files": plan.files(),
    }));
    let mut ports = Vec::new();
    if let Some(p) = svc.port {
        ports.push(format!("port {p}"));
    }
    if let Some(p) = svc.admin_port {
        ports.push(format!("admin port {p}"));
    }
    printer.status(
        "Added",
        &format!(
            "{kind} service `{name}` ({}) in services/{name}",
            ports.join(", ")
        ),
    );
    if broker_added {
        printer.status("Added", "[broker] (RabbitMQ) to services.toml");
    }
    if let Some(p) = &svc.proto {
        printer.status("Proto", p);
    }
    printer.status(
        "Updated",
        "services.toml, docker-compose.yml, crates/contracts",
    );
    if kind == Kind::Worker && args.consumes.is_empty() {
        printer.status(
            "Consumes",
            &format!(
                "{}, named after the worker (pass --consumes QUEUE to choose the queue)",
                svc.consumes.join(", ")
            ),
        );
    }
    warn_unpaired(&manifest, name, *printer);
    printer.line(&format!("\nRun it:\n  cargo run -p {name}"));
    Ok(0)
}

/// A queue the new service consumes that nothing publishes, or publishes that nothing
/// consumes: what `msvc check` would warn about later, said now.
fn warn_unpaired(manifest: &Manifest, name: &str, printer: Printer) {
    let svc = &manifest.services[name];
    let others = || manifest.services.iter().filter(|(n, _)| n.as_str() != name);
    for q in &svc.consumes {
        if !others().any(|(_, s)| s.publishes.contains(q)) {
            printer.warn(&format!(
                "no service publishes to `{q}` yet, so `{name}` will wait: `msvc link SERVICE --publishes {q}`"
            ));
        }
    }
    for q in &svc.publishes {
        if !others().any(|(_, s)| s.consumes.contains(q)) {
            printer.warn(&format!(
                "no service consumes `{q}` yet: `msvc new {}-worker --worker --consumes {q}`",
                q.replace(['_', '.'], "-")
            ));
        }
    }
}

/// The manifest entry for the new service, with defaults filled in and every value checked.
fn service_from_args(
    ws: &Workspace,
    args: &NewArgs,
    kind: Kind,
    proto_file: Option<&Path>,
) -> Result<Service> {
    let m = &ws.manifest;
    let mut svc = Service::new(kind);
    let forms = NameForms::new(&args.name);

    if kind == Kind::Worker && args.port.is_some() {
        return Err(
            Error::new("a worker has no main port, so --port does not apply")
                .hint("use --admin-port for its /healthz, /readyz and /metrics port"),
        );
    }
    if kind == Kind::Rest && args.admin_port.is_some() {
        return Err(Error::new("a REST service serves /healthz and /metrics on its main port, so --admin-port does not apply")
            .hint("use --port"));
    }
    if kind != Kind::Grpc && args.proto.is_some() {
        return Err(Error::new("--proto only applies to gRPC services").hint("add --grpc"));
    }
    if kind != Kind::Rest && args.resource.is_some() {
        return Err(Error::new("--resource only applies to REST services").hint("add --rest"));
    }

    let mut ports = PortPicker::new(ws);
    match kind {
        Kind::Rest => svc.port = Some(ports.pick(args.port, REST_PORT_BASE, "--port")?),
        Kind::Grpc => {
            svc.port = Some(ports.pick(args.port, GRPC_PORT_BASE, "--port")?);
            svc.admin_port = Some(ports.pick(args.admin_port, ADMIN_PORT_BASE, "--admin-port")?);
        }
        Kind::Worker => {
            svc.admin_port = Some(ports.pick(args.admin_port, ADMIN_PORT_BASE, "--admin-port")?);
        }
        Kind::Process => unreachable!("`new` has no flag for process services"),
    }

    for dep in &args.depends_on {
        if dep == &args.name {
            return Err(Error::new(format!("`{dep}` cannot depend on itself"))
                .hint("remove it from --depends-on"));
        }
        if !m.services.contains_key(dep) {
            let hint = did_you_mean(dep, m.services.keys()).unwrap_or_else(|| {
                if m.services.is_empty() {
                    format!("the workspace has no services yet; add it first with `msvc new {dep} --grpc` (or --rest)")
                } else {
                    format!(
                        "known services: {}; add it first with `msvc new {dep}`",
                        m.services.keys().cloned().collect::<Vec<_>>().join(", ")
                    )
                }
            });
            return Err(Error::new(format!(
                "--depends-on names `{dep}`, which is not a service of this workspace"
            ))
            .hint(hint));
        }
        if !svc.depends_on.contains(dep) {
            svc.depends_on.push(dep.clone());
        }
    }
    for (list, flag, out) in [
        (&args.publishes, "--publishes", &mut svc.publishes),
        (&args.consumes, "--consumes", &mut svc.consumes),
    ] {
        for q in list {
            validate_queue_name(q)
                .map_err(|e| Error::new(format!("{flag}: {}", e.reason)).hint(e.hint))?;
            if !out.contains(q) {
                out.push(q.clone());
            }
        }
    }
    if kind == Kind::Worker && svc.consumes.is_empty() {
        // A worker exists to consume; name its queue after it so it runs at once.
        let stem = args.name.strip_suffix("-worker").unwrap_or(&args.name);
        svc.consumes.push(format!(
            "{}_message",
            heck::ToSnakeCase::to_snake_case(stem)
        ));
    }
    if kind == Kind::Rest {
        let resource = args
            .resource
            .clone()
            .unwrap_or_else(|| default_resource(&args.name));
        validate_resource(&resource)
            .map_err(|e| Error::new(format!("--resource: {}", e.reason)).hint(e.hint))?;
        if args.resource.is_some() {
            svc.resource = Some(resource);
        }
    }
    svc.database = args.db.map(|db| match db {
        crate::cli::DbArg::Postgres => DatabaseKind::Postgres,
    });
    if kind == Kind::Grpc {
        svc.proto = Some(match proto_file {
            Some(file) => protos::user_proto_destination(&ws.root, file)?,
            None => proto::default_proto_path(&forms.snake),
        });
    }
    Ok(svc)
}
