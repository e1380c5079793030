//! `msvc deploy k8s|prometheus`: write deployment files generated from services.toml.

use std::path::Path;

use crate::cli::{DeployArgs, DeployCommand};
use crate::deploy::{k8s, prometheus};
use crate::error::Result;
use crate::plan::{Action, WritePlan};
use crate::printer::Printer;
use crate::render::Renderer;
use crate::workspace::Workspace;

pub fn run(cwd: &Path, cmd: &DeployCommand, printer: &Printer) -> Result<i32> {
    let root = Workspace::find(cwd)?;
    let ws = Workspace::load(&root)?;
    let manifest = &ws.manifest;
    let renderer = Renderer::for_workspace(&root, manifest)?;
    let mut plan = WritePlan::new(&root);
    let (what, args, skipped) = match cmd {
        DeployCommand::K8s(args) => {
            let k8s = k8s::plan_all(&mut plan, &renderer, manifest)?;
            ("k8s", args, k8s.skipped)
        }
        DeployCommand::Prometheus(args) => {
            prometheus::plan(&mut plan, &renderer, manifest)?;
            ("prometheus", args, Vec::new())
        }
    };
    finish(&plan, what, args, &skipped, *printer)
}

fn finish(
    plan: &WritePlan,
    what: &str,
    args: &DeployArgs,
    skipped: &[String],
    printer: Printer,
) -> Result<i32> {
    let notes: Vec<String> = skipped
        .iter()
        .map(|s| format!("`{s}` is a process service: it has no image, so it gets no manifests"))
        .collect();
    if args.dry_run {
        printer.line(&format!(
            "Plan for `msvc deploy {what}` (dry run, nothing written):"
        ));
        printer.plan(plan, &[]);
        for n in &notes {
            printer.line(&format!("note: {n}"));
        }
        return Ok(0);
    }
    plan.apply()?;
    printer.json(&serde_json::json!({
        "files": plan.files(),
        "skipped": skipped,
    }));
    for f in plan.files() {
        let verb = match f.action {
            Action::Create => "Created",
            Action::Update => "Updated",
            Action::Delete => "Deleted",
            Action::Keep => "Kept",
            Action::Unchanged | Action::Conflict => continue,
        };
        printer.status(verb, &f.path.display().to_string());
    }
    if !plan.has_changes() {
        printer.status("Fresh", "every file matches services.toml");
    }
    for n in &notes {
        printer.warn(n);
    }
    Ok(0)
}
