//! `msvc upgrade`: bring the workspace to the current template version.

use std::path::Path;

use serde::Serialize;

use crate::cli::UpgradeArgs;
use crate::error::{Result, slash_path};
use crate::plan::Action;
use crate::printer::Printer;
use crate::upgrade::{self, FileAction, FileChange, Outcome, Settings, Upgrade};
use crate::workspace::Workspace;

pub fn run(cwd: &Path, args: &UpgradeArgs, printer: &Printer) -> Result<i32> {
    let root = Workspace::find(cwd)?;
    let settings = Settings {
        dry_run: args.dry_run,
        allow_dirty: args.allow_dirty,
    };
    match upgrade::run(&root, &settings)? {
        Outcome::Current { workspace, version } => {
            printer.json(&serde_json::json!({
                "workspace": workspace,
                "from": version,
                "to": version,
                "dry_run": settings.dry_run,
                "files": [],
                "conflicts": [],
            }));
            printer.status(
                "Fresh",
                &format!("workspace `{workspace}` is at template version {version}, this msvc's; nothing to upgrade"),
            );
            Ok(0)
        }
        Outcome::Upgraded(up) => {
            print_json(&up, settings.dry_run, *printer);
            if settings.dry_run {
                print_dry_run(&up, *printer);
                return Ok(0);
            }
            print_report(&up, *printer);
            Ok(up.exit_code())
        }
    }
}

/// The JSON document of an upgrade.
#[derive(Serialize)]
struct Json<'a> {
    workspace: &'a str,
    from: u32,
    to: u32,
    dry_run: bool,
    files: &'a [FileChange],
    /// `file:line` of each conflict.
    conflicts: Vec<String>,
    /// Unified diffs of what would be written (dry run only).
    #[serde(skip_serializing_if = "Option::is_none")]
    diffs: Option<std::collections::BTreeMap<String, String>>,
}

fn print_json(up: &Upgrade, dry_run: bool, printer: Printer) {
    if !printer.is_json() {
        return;
    }
    let diffs = dry_run.then(|| {
        up.plan
            .files()
            .iter()
            .filter(|f| matches!(f.action, Action::Create | Action::Update | Action::Delete))
            .map(|f| (slash_path(&f.path), f.unified_diff()))
            .collect()
    });
    printer.json(&Json {
        workspace: &up.workspace,
        from: up.from,
        to: up.to,
        dry_run,
        files: &up.changes,
        conflicts: up.conflict_places(),
        diffs,
    });
}

/// The verbs of a report line (done, and to do in a dry run), and what follows them.
fn describe(change: &FileChange, to: u32) -> (&'static str, &'static str, String) {
    let path = slash_path(&change.path);
    let n = change.conflicts.len();
    match change.action {
        FileAction::Rewritten => ("Rewrote", "rewrite", path),
        FileAction::Created => ("Created", "create", path),
        FileAction::Merged => ("Merged", "merge", path),
        FileAction::Conflict => (
            "Conflict",
            "conflict",
            format!("{path} ({n} conflict{})", if n == 1 { "" } else { "s" }),
        ),
        FileAction::Removed => ("Removed", "remove", path),
        FileAction::Kept => (
            "Kept",
            "keep",
            format!("{path}: template version {to} no longer has it, but you changed it"),
        ),
        FileAction::LeftDeleted => (
            "Not restored",
            "skip",
            format!("{path}: you deleted it; template version {to} changes it"),
        ),
    }
}

/// The conflicts, one `file:line` a line, under what they are.
fn conflict_list(up: &Upgrade, places: &[String], verb: &str) -> String {
    let mut text = format!(
        "{} conflict{} {verb} where you and template version {} changed the same lines, between `<<<<<<< yours` and `>>>>>>> template version {}`:",
        places.len(),
        if places.len() == 1 { "" } else { "s" },
        up.to,
        up.to
    );
    for place in places {
        text.push_str("\n  ");
        text.push_str(place);
    }
    text
}

fn print_report(up: &Upgrade, printer: Printer) {
    if printer.is_json() {
        return;
    }
    printer.status(
        "Upgrading",
        &format!(
            "workspace `{}` from template version {} to {}",
            up.workspace, up.from, up.to
        ),
    );
    for change in &up.changes {
        let (verb, _, text) = describe(change, up.to);
        if change.action == FileAction::Conflict && !printer.quiet {
            Printer::event(verb, &text, true);
        } else {
            printer.status(verb, &text);
        }
    }
    printer.status(
        "Updated",
        &format!("services.toml: template_version = {}", up.to),
    );
    let places = up.conflict_places();
    if places.is_empty() {
        printer.line("\nNext:\n  cargo build\n  msvc check");
        return;
    }
    printer.warn(&conflict_list(up, &places, "marked"));
    printer.line("\nNext: resolve the conflicts (keep what you need, delete the markers), then\n  cargo build\n  msvc check");
}

fn print_dry_run(up: &Upgrade, printer: Printer) {
    if printer.is_json() {
        return;
    }
    printer.line(&format!(
        "Plan for `msvc upgrade` of `{}` from template version {} to {} (dry run, nothing written):",
        up.workspace, up.from, up.to
    ));
    for change in &up.changes {
        let (_, verb, text) = describe(change, up.to);
        printer.line(&format!("  {verb:<11} {text}"));
    }
    printer.line("  update      services.toml");
    let paths: Vec<String> = up
        .plan
        .files()
        .iter()
        .filter(|f| matches!(f.action, Action::Create | Action::Update))
        .map(|f| slash_path(&f.path))
        .collect();
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    printer.diffs(&up.plan, &paths);
    let places = up.conflict_places();
    if !places.is_empty() {
        printer.line(&format!(
            "\n{}",
            conflict_list(up, &places, "would be written")
        ));
    }
}
