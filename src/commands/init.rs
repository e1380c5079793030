//! `msvc init`: create a workspace.

use std::collections::BTreeMap;
use std::path::Path;

use heck::ToKebabCase;

use crate::cli::InitArgs;
use crate::error::{Error, Result};
use crate::plan::{Ownership, WritePlan};
use crate::printer::Printer;
use crate::render::{self, Renderer};
use crate::workspace::edit::ManifestEdit;
use crate::workspace::model::{Kind, Service};
use crate::workspace::model::{Manifest, TEMPLATE_VERSION, WorkspaceSection};
use crate::workspace::names::validate_workspace_name;
use crate::workspace::proto;
use crate::workspace::protos::ProtoSet;
use crate::workspace::{MANIFEST_FILE, Workspace};

pub fn run(cwd: &Path, args: &InitArgs, printer: &Printer) -> Result<i32> {
    let (target, name) = if let Some(name) = &args.name {
        validate_workspace_name(name).map_err(|e| {
            Error::new(format!("invalid workspace name `{name}`: {}", e.reason)).hint(e.hint)
        })?;
        (cwd.join(name), name.clone())
    } else {
        let abs = std::path::absolute(cwd)?;
        let base = abs
            .file_name()
            .map(|n| n.to_string_lossy().to_kebab_case())
            .unwrap_or_default();
        let name = if validate_workspace_name(&base).is_ok() {
            base
        } else {
            "workspace".to_string()
        };
        (cwd.to_path_buf(), name)
    };
    if target.join(MANIFEST_FILE).exists() && !args.force {
        return Err(Error::new(format!(
            "`{}` already holds a workspace ({MANIFEST_FILE} exists)",
            target.display()
        ))
        .hint("add services with `msvc new NAME --rest|--grpc|--worker`"));
    }
    if target.exists() && !target.is_dir() {
        return Err(Error::new(format!(
            "`{}` exists and is not a directory",
            target.display()
        ))
        .hint("choose another name"));
    }
    if target.is_dir() && !args.force {
        let mut entries = fs_err::read_dir(&target)?
            .filter_map(std::result::Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            // A fresh `git init` is as good as empty.
            .filter(|n| n != ".git");
        if let Some(first) = entries.next() {
            return Err(Error::new(format!(
                "`{}` is not empty (it holds `{first}`)",
                target.display()
            ))
            .hint("choose a new directory, or pass --force to write into this one"));
        }
    }
    let manifest = Manifest {
        workspace: WorkspaceSection {
            name: name.clone(),
            template_version: TEMPLATE_VERSION,
            templates: None,
            shutdown_grace: None,
        },
        broker: None,
        database: None,
        deploy: None,
        services: BTreeMap::new(),
        checks: BTreeMap::new(),
    };
    let renderer = Renderer::new(crate::render::templates::TemplateSet::embedded())?;
    let mut plan = WritePlan::new(&target).force(args.force);
    render::plan_workspace(&mut plan, &renderer, &manifest)?;
    // The rendered manifest must be one msvc can read back.
    let text = plan
        .get(Path::new(MANIFEST_FILE))
        .and_then(|f| f.new.clone())
        .expect("workspace templates include services.toml");
    let mut manifest = Workspace::parse(&target.join(MANIFEST_FILE), &text)?;
    if args.example {
        manifest = plan_example(&mut plan, &renderer, &target, &text)?;
    }
    let protos = new_protos(&plan, &manifest)?;
    crate::generate::plan_generated(&mut plan, &renderer, &manifest, &protos)?;
    plan.apply()?;

    printer.json(&serde_json::json!({
        "workspace": name,
        "path": target,
        "files": plan.files(),
    }));
    printer.status(
        "Created",
        &format!("workspace `{name}` in {}", target.display()),
    );
    let cd = if args.name.is_some() {
        format!("cd {name} && ")
    } else {
        String::new()
    };
    if args.example {
        printer.line(&format!(
            "\nThe example system: user-api (REST :5000) calls user-service (gRPC :50051) and\npublishes to the user_message queue, which email-worker consumes.\n\nNext:\n  {cd}msvc up          builds once, starts the broker and the three services in order\n  curl localhost:5000/user/1   (from another terminal)\n  msvc test        every service's tests, then the contract tests against the running system"
        ));
        return Ok(0);
    }
    printer.line(&format!(
        "\nNext:\n  {cd}msvc new user-service --grpc\n  msvc new user-api --rest --depends-on user-service\n  msvc doctor"
    ));
    Ok(0)
}

/// The services of the example system, in the order they are added.
fn example_services() -> Vec<(&'static str, Service)> {
    let mut user_service = Service::new(Kind::Grpc);
    user_service.port = Some(50051);
    user_service.admin_port = Some(9100);
    user_service.proto = Some(proto::default_proto_path("user_service"));

    let mut user_api = Service::new(Kind::Rest);
    user_api.port = Some(5000);
    user_api.depends_on = vec!["user-service".into()];
    user_api.calls = vec!["user-service/UserService.GetUser".into()];
    user_api.publishes = vec!["user_message".into()];

    let mut email_worker = Service::new(Kind::Worker);
    email_worker.admin_port = Some(9101);
    email_worker.consumes = vec!["user_message".into()];

    vec![
        ("user-service", user_service),
        ("user-api", user_api),
        ("email-worker", email_worker),
    ]
}

/// Adds the example system to the plan and returns the manifest it ends with.
fn plan_example(
    plan: &mut WritePlan,
    renderer: &Renderer,
    root: &Path,
    manifest_text: &str,
) -> Result<Manifest> {
    let mut edit = ManifestEdit::parse(manifest_text)?;
    edit.ensure_broker();
    for (name, svc) in example_services() {
        edit.add_service(name, &svc);
    }
    let text = edit.finish();
    let manifest = Workspace::parse(&root.join(MANIFEST_FILE), &text)?;
    plan.put(MANIFEST_FILE, text, Ownership::Scaffolded);
    render::plan_default_proto(plan, renderer, &manifest, "user-service")?;
    let protos = new_protos(plan, &manifest)?;
    for (name, _) in example_services() {
        render::plan_example_service(plan, renderer, &manifest, name, &protos)?;
    }
    Ok(manifest)
}

/// The protos of a workspace that is not on disk yet: those the plan holds.
fn new_protos(
    plan: &WritePlan,
    manifest: &Manifest,
) -> Result<BTreeMap<String, crate::workspace::proto::ProtoInfo>> {
    let manifest_file = plan.root().join(MANIFEST_FILE);
    ProtoSet::read(plan.root(), manifest, plan, &|_| {
        crate::error::Location::file(&manifest_file)
    })
    .into_infos()
}
