//! `msvc sync`: regenerate every msvc-owned file from services.toml.

use std::path::Path;

use crate::cli::SyncArgs;
use crate::error::Result;
use crate::plan::{Action, WritePlan};
use crate::printer::Printer;
use crate::render::{self, COMPOSE_FILE, Renderer};
use crate::workspace::Workspace;
use crate::workspace::model::Kind;

pub fn run(cwd: &Path, args: &SyncArgs, printer: &Printer) -> Result<i32> {
    let root = Workspace::find(cwd)?;
    let ws = Workspace::load(&root)?;
    let manifest = &ws.manifest;
    let renderer = Renderer::for_workspace(&root, manifest)?;
    let mut plan = WritePlan::new(&root);

    // Services added to the manifest by hand get their code, as `new` would give it.
    let missing: Vec<&String> = manifest
        .services
        .iter()
        .filter(|(n, s)| {
            s.kind != Kind::Process && !root.join(crate::workspace::service_dir(n)).exists()
        })
        .map(|(n, _)| n)
        .collect();
    for name in &missing {
        let svc = &manifest.services[*name];
        if let Some(p) = &svc.proto
            && !root.join(p).exists()
        {
            render::plan_default_proto(&mut plan, &renderer, manifest, name)?;
        }
    }
    let protos = ws.service_protos(manifest, &plan)?;
    for name in &missing {
        render::plan_service(&mut plan, &renderer, manifest, name, &protos)?;
    }
    crate::generate::plan_generated(&mut plan, &renderer, manifest, &protos)?;

    let changed: Vec<String> = plan
        .files()
        .iter()
        .filter(|f| matches!(f.action, Action::Create | Action::Update))
        .map(|f| f.path.display().to_string())
        .collect();
    if args.dry_run {
        printer.line("Plan for `msvc sync` (dry run, nothing written):");
        let diffs: Vec<&str> = plan
            .files()
            .iter()
            .filter(|f| f.action == Action::Update || f.path.as_os_str() == COMPOSE_FILE)
            .filter_map(|f| f.path.to_str())
            .collect();
        printer.plan(&plan, &diffs);
        return Ok(0);
    }
    plan.apply()?;
    printer.json(&serde_json::json!({ "changed": changed, "scaffolded": missing }));
    for name in &missing {
        printer.status("Scaffolded", &format!("services/{name}"));
    }
    if changed.is_empty() {
        printer.status("Fresh", "every generated file matches services.toml");
    } else {
        for path in &changed {
            printer.status("Wrote", path);
        }
    }
    Ok(0)
}
