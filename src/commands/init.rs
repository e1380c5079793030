//! `msvc init`: create a workspace.

use std::collections::BTreeMap;
use std::path::Path;

use heck::ToKebabCase;

use crate::cli::InitArgs;
use crate::error::{Error, Result};
use crate::manifest::model::{Manifest, TEMPLATE_VERSION, WorkspaceSection};
use crate::manifest::names::validate_workspace_name;
use crate::manifest::{MANIFEST_FILE, Workspace};
use crate::printer::Printer;
use crate::render::plan::WritePlan;
use crate::render::{self, Renderer};

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
        services: BTreeMap::new(),
    };
    let renderer = Renderer::new(crate::render::templates::TemplateSet::embedded())?;
    let mut plan = WritePlan::new(&target).force(args.force);
    render::plan_workspace(&mut plan, &renderer, &manifest)?;
    // The rendered manifest must be one msvc can read back.
    let text = plan
        .get(Path::new(MANIFEST_FILE))
        .and_then(|f| f.new.clone())
        .expect("workspace templates include services.toml");
    let manifest = Workspace::parse(&target.join(MANIFEST_FILE), &text)?;
    render::plan_generated(&mut plan, &renderer, &manifest, &BTreeMap::new())?;
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
    printer.line(&format!(
        "\nNext:\n  {cd}msvc new user-service --grpc\n  msvc new user-api --rest --depends-on user-service\n  msvc doctor"
    ));
    Ok(0)
}
