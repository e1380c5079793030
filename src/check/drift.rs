//! Drift checks: the msvc-owned files (docker-compose.yml, crates/contracts, workers'
//! routes.rs, the workspace members) are rendered in memory by the same code path
//! `msvc sync` uses, and compared with the disk. Nothing is written.

use std::fmt::Write as _;
use std::path::Path;

use super::Context;
use super::diagnostic::{Diagnostic, SourceText, file_location, slash_path};
use super::protos::ProtoSet;
use crate::error::Error;
use crate::render::plan::{Action, PlannedFile, WritePlan};
use crate::render::{self, COMPOSE_FILE, CONTRACTS_DIR, Renderer};

/// Lines of diff shown per file; the rest is summarised.
const MAX_DIFF_LINES: usize = 40;

/// `blocked`: an earlier error (a proto or openapi.yaml that does not read) already
/// explains why the generated files cannot be rendered.
pub fn check(ctx: &Context<'_>, protos: &ProtoSet, blocked: bool, out: &mut Vec<Diagnostic>) {
    let compose = ctx.levels.enabled("COMPOSE_DRIFT");
    let generated = ctx.levels.enabled("GENERATED_DRIFT");
    if !compose && !generated {
        return;
    }
    let manifest = &ctx.ws.manifest;
    if let Some(dir) = &manifest.workspace.templates
        && let Some(d) = oversized_template_dir(ctx, dir)
    {
        out.push(d);
        return;
    }
    let rendered = Renderer::for_workspace(ctx.root, manifest).and_then(|renderer| {
        let mut plan = WritePlan::new(ctx.root);
        render::plan_generated(&mut plan, &renderer, manifest, &protos.infos)?;
        Ok(plan)
    });
    let plan = match rendered {
        Ok(plan) => plan,
        Err(err) => {
            if !blocked {
                out.push(from_error(ctx.root, &err));
            }
            return;
        }
    };
    for f in plan.files() {
        if !matches!(f.action, Action::Create | Action::Update) {
            continue;
        }
        let path = slash_path(&f.path);
        let is_compose = path == COMPOSE_FILE;
        if (is_compose && !compose) || (!is_compose && !generated) {
            continue;
        }
        // The contracts crate follows the protos; when one does not read, it cannot be
        // compared (PROTO_MISSING or PROTO_COMPILE says why).
        if !protos.complete && path.starts_with(&format!("{CONTRACTS_DIR}/")) {
            continue;
        }
        // A service without its directory is SERVICE_DIR_MISSING's to report.
        if let Some(service) = path
            .strip_prefix("services/")
            .and_then(|p| p.split('/').next())
            && !ctx.root.join("services").join(service).is_dir()
        {
            continue;
        }
        out.push(drift(f, &path, is_compose));
    }
}

fn drift(f: &PlannedFile, path: &str, is_compose: bool) -> Diagnostic {
    let id = if is_compose {
        "COMPOSE_DRIFT"
    } else {
        "GENERATED_DRIFT"
    };
    let Some(old) = &f.old else {
        return Diagnostic::new(id, format!("{path} is missing"))
            .at(file_location(&f.path))
            .hint("run `msvc sync` to write it");
    };
    let new = f.new.as_deref().unwrap_or("");
    // Point at the first line that differs.
    let line = old
        .lines()
        .zip(new.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| old.lines().count().min(new.lines().count()));
    let source = SourceText::new(&f.path, old);
    let line_start = source.offset(line, 0);
    let line_text = &old[line_start..];
    let line_text = &line_text[..line_text.find('\n').unwrap_or(line_text.len())];
    // Underline the line's text, not its indentation.
    let start = line_start + (line_text.len() - line_text.trim_start().len());
    let location = if old.is_empty() {
        file_location(&f.path)
    } else {
        source.location(start..line_start + line_text.trim_end().len().max(start - line_start))
    };
    let diff = crate::printer::unified_diff(f);
    let mut lines: Vec<&str> = diff.lines().collect();
    let more = lines.len().saturating_sub(MAX_DIFF_LINES);
    lines.truncate(MAX_DIFF_LINES);
    let mut note = format!("what `msvc sync` would change:\n{}", lines.join("\n"));
    if more > 0 {
        let _ = write!(
            note,
            "\n... {more} more lines (`msvc sync --dry-run` shows the whole diff)"
        );
    }
    Diagnostic::new(
        id,
        format!("{path} differs from what services.toml generates (edited by hand, or stale)"),
    )
    .at(location)
    .note(note)
    .hint(format!(
        "run `msvc sync` to regenerate it; make lasting changes in services.toml{}",
        if is_compose {
            " (`env`, `replicas`, ports) or a template override"
        } else {
            ""
        }
    ))
}

/// A render error (a broken template override, an unreadable Cargo.toml) as a diagnostic.
fn from_error(root: &Path, err: &Error) -> Diagnostic {
    let mut message = format!("the generated files cannot be rendered: {}", err.message);
    if let Some(cause) = std::error::Error::source(err) {
        let first = cause.to_string();
        let _ = write!(message, " ({})", first.lines().next().unwrap_or(""));
    }
    let mut d = Diagnostic::new("GENERATED_DRIFT", message);
    if let Some(loc) = &err.location {
        let mut loc = (**loc).clone();
        loc.path = loc
            .path
            .strip_prefix(root)
            .unwrap_or(&loc.path)
            .to_path_buf();
        d = d.at(loc);
    }
    d.hint(
        err.hint
            .clone()
            .unwrap_or_else(|| "fix the cause above, then run `msvc sync`".into()),
    )
}

/// Most entries a template directory may hold before the check refuses to read it: a
/// `templates` that points at `/` must not make the check walk the whole disk.
const MAX_TEMPLATE_ENTRIES: usize = 10_000;

/// A diagnostic when `templates` names a directory far larger than a template set.
fn oversized_template_dir(ctx: &Context<'_>, dir: &str) -> Option<Diagnostic> {
    let mut stack = vec![ctx.root.join(dir)];
    let mut seen = 0;
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs_err::read_dir(&d) else {
            continue;
        };
        for entry in entries.filter_map(std::result::Result::ok) {
            seen += 1;
            if seen > MAX_TEMPLATE_ENTRIES {
                return Some(
                    Diagnostic::new(
                        "GENERATED_DRIFT",
                        format!(
                            "the template directory `{dir}` holds more than {MAX_TEMPLATE_ENTRIES} files, so the generated files were not compared"
                        ),
                    )
                    .at(ctx.locate(&["workspace", "templates"]))
                    .hint("point `templates` at the directory `msvc templates export DIR` wrote"),
                );
            }
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(entry.path());
            }
        }
    }
    None
}
