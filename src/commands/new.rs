//! `msvc new`: add a service to the workspace.

use std::path::{Path, PathBuf};

use crate::cli::NewArgs;
use crate::error::slash_path;
use crate::error::{Error, Result};
use crate::plan::{Ownership, WritePlan};
use crate::printer::Printer;
use crate::render::{self, COMPOSE_FILE, Renderer};
use crate::workspace::edit::ManifestEdit;
use crate::workspace::model::{Kind, Service};
use crate::workspace::names::{
    NameForms, default_resource, validate_queue_name, validate_resource, validate_service_name,
};
use crate::workspace::proto;
use crate::workspace::validate::did_you_mean;
use crate::workspace::{MANIFEST_FILE, Workspace};

/// First ports `new` hands out, per role.
const REST_PORT_BASE: u16 = 8080;
const GRPC_PORT_BASE: u16 = 50051;
const ADMIN_PORT_BASE: u16 = 9100;

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
    let new_text = edit.finish();
    let manifest = Workspace::parse(&ws.manifest_path, &new_text)?;

    let renderer = Renderer::for_workspace(&root, &manifest)?;
    let mut plan = WritePlan::new(&root).force(args.force);
    plan.put(MANIFEST_FILE, new_text, Ownership::Manifest);
    if kind == Kind::Grpc {
        match &proto_file {
            Some(file) => {
                let (rel, text) = proto_from_file(file, svc.proto.as_deref())?;
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
    printer.line(&format!("\nRun it:\n  cargo run -p {name}"));
    Ok(0)
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

    let mut taken: Vec<u16> = m.used_ports().iter().map(|(p, _, _)| *p).collect();
    let mut pick = |given: Option<u16>, base: u16, flag: &str| -> Result<u16> {
        if let Some(port) = given {
            if port == 0 {
                return Err(Error::new(format!("{flag} 0 is not a fixed port"))
                    .hint("pick a port between 1024 and 65535"));
            }
            if let Some((_, owner, key)) = m.used_ports().into_iter().find(|(p, _, _)| *p == port) {
                return Err(Error::new(format!(
                    "port {port} is already used by `{owner}` ({key})"
                ))
                .at(ws.locate(&["services", owner, key]))
                .hint(format!(
                    "choose another port, or leave {flag} out to get the next free one"
                )));
            }
            if taken.contains(&port) {
                return Err(
                    Error::new(format!("--port and --admin-port are both {port}"))
                        .hint("give them different ports"),
                );
            }
            taken.push(port);
            return Ok(port);
        }
        let port = (base..=u16::MAX)
            .find(|p| !taken.contains(p))
            .ok_or_else(|| Error::new("no free port left above {base}"))?;
        taken.push(port);
        Ok(port)
    };
    match kind {
        Kind::Rest => svc.port = Some(pick(args.port, REST_PORT_BASE, "--port")?),
        Kind::Grpc => {
            svc.port = Some(pick(args.port, GRPC_PORT_BASE, "--port")?);
            svc.admin_port = Some(pick(args.admin_port, ADMIN_PORT_BASE, "--admin-port")?);
        }
        Kind::Worker => {
            svc.admin_port = Some(pick(args.admin_port, ADMIN_PORT_BASE, "--admin-port")?);
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
    if kind == Kind::Grpc {
        svc.proto = Some(match proto_file {
            Some(file) => proto_destination(&ws.root, file)?,
            None => proto::default_proto_path(&forms.snake),
        });
    }
    Ok(svc)
}

/// Where a user's proto lives in the workspace: where it is when already under proto/,
/// else `proto/<package path>/<file name>`.
fn proto_destination(root: &Path, file: &Path) -> Result<String> {
    let abs = std::path::absolute(file)?;
    let proto_dir = std::path::absolute(root.join("proto"))?;
    if let Ok(rel) = abs.strip_prefix(&proto_dir) {
        return Ok(format!("proto/{}", slash_path(rel)));
    }
    let text = read_proto(file)?;
    let info = proto::parse(Path::new(""), &file.display().to_string(), &text)?;
    let file_name = file.file_name().map_or_else(
        || "service.proto".into(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut dest = PathBuf::from("proto");
    for part in info.package.split('.').filter(|p| !p.is_empty()) {
        dest.push(part);
    }
    dest.push(file_name);
    Ok(slash_path(&dest))
}

fn proto_from_file(file: &Path, dest: Option<&str>) -> Result<(PathBuf, String)> {
    let text = read_proto(file)?;
    let dest = dest.expect("gRPC services have a proto path");
    // Parse now so a broken proto is reported against the user's file.
    let info = proto::parse(Path::new(""), &file.display().to_string(), &text)?;
    if info.services.is_empty() {
        return Err(Error::new(format!(
            "proto `{}` declares no service, so there is nothing to serve",
            file.display()
        ))
        .hint("add a `service` with at least one `rpc`, or use --rest / --worker"));
    }
    if info.package.is_empty() {
        return Err(
            Error::new(format!("proto `{}` has no `package`", file.display())).hint(
                "add a versioned package, e.g. `package billing.v1;`, so its code gets a module",
            ),
        );
    }
    Ok((PathBuf::from(dest), text))
}

fn read_proto(file: &Path) -> Result<String> {
    fs_err::read_to_string(file).map_err(|e| {
        Error::new(format!(
            "cannot read proto `{}`: {}",
            file.display(),
            e.kind()
        ))
        .hint("pass the path of an existing .proto file to --proto")
    })
}
