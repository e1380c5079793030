//! `msvc rm`: take a service out of the manifest and the generated files.

use std::path::Path;

use crate::cli::RmArgs;
use crate::error::{Error, Result};
use crate::plan::{Ownership, WritePlan};
use crate::printer::Printer;
use crate::render::{COMPOSE_FILE, Renderer};
use crate::workspace::edit::ManifestEdit;
use crate::workspace::validate::did_you_mean;
use crate::workspace::{MANIFEST_FILE, Workspace};

pub fn run(cwd: &Path, args: &RmArgs, printer: &Printer) -> Result<i32> {
    let root = Workspace::find(cwd)?;
    let ws = Workspace::load(&root)?;
    let name = args.name.as_str();
    let Some(svc) = ws.manifest.services.get(name) else {
        let hint = did_you_mean(name, ws.manifest.services.keys()).unwrap_or_else(|| {
            format!(
                "services in this workspace: {}",
                ws.manifest
                    .services
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        });
        return Err(Error::new(format!("no service named `{name}` in {MANIFEST_FILE}")).hint(hint));
    };
    let dependents: Vec<&String> = ws
        .manifest
        .services
        .iter()
        .filter(|(_, s)| s.depends_on.iter().any(|d| d == name))
        .map(|(n, _)| n)
        .collect();

    let mut edit = ManifestEdit::parse(&ws.text)?;
    edit.remove_service(name);
    let new_text = edit.finish();
    let manifest = Workspace::parse(&ws.manifest_path, &new_text)?;

    let renderer = Renderer::for_workspace(&root, &manifest)?;
    let mut plan = WritePlan::new(&root);
    plan.put(MANIFEST_FILE, new_text, Ownership::Manifest);
    let protos = ws.service_protos(&manifest, &plan)?;
    crate::generate::plan_generated(&mut plan, &renderer, &manifest, &protos)?;
    if args.delete {
        plan.delete(crate::workspace::service_dir(name));
        // The proto goes too, unless another service still uses it.
        if let Some(proto) = &svc.proto
            && !manifest
                .services
                .values()
                .any(|s| s.proto.as_ref() == Some(proto))
        {
            plan.delete(proto);
        }
    }

    if args.dry_run {
        printer.line(&format!(
            "Plan for `msvc rm {name}` (dry run, nothing written):"
        ));
        printer.plan(&plan, &[MANIFEST_FILE, COMPOSE_FILE]);
        warn_left_behind(&root, name, &dependents, *printer);
        return Ok(0);
    }
    plan.apply()?;
    printer.json(&serde_json::json!({
        "removed": name,
        "dependents_updated": dependents,
        "deleted_directory": args.delete,
        "files": plan.files(),
    }));
    printer.status(
        "Removed",
        &format!("`{name}` from services.toml and the generated files"),
    );
    warn_left_behind(&root, name, &dependents, *printer);
    if !args.delete && root.join(crate::workspace::service_dir(name)).exists() {
        printer.line(&format!(
            "services/{name}/ was kept; delete it with `msvc rm {name} --delete` next time, or by hand"
        ));
    }
    Ok(0)
}

/// What still refers to the removed service and is the user's to change.
fn warn_left_behind(root: &Path, name: &str, dependents: &[&String], printer: Printer) {
    for d in dependents {
        printer.warn(&format!(
            "`{d}` depended on `{name}`; the dependency was removed from services.toml, but its code may still call it"
        ));
    }
    for overlay in crate::deploy::k8s::overlays_patching(root, name) {
        printer.warn(&format!(
            "{overlay} still patches `{name}` (it is yours, so msvc leaves it): remove `patches/{name}.yaml` and its `images:` entry, or `kubectl kustomize` fails"
        ));
    }
}
