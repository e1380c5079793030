//! Drift checks: the msvc-owned files (docker-compose.yml, crates/contracts, workers'
//! routes.rs, the workspace members, deploy/k8s/base, deploy/prometheus) are rendered in memory by the same code path
//! `msvc sync` uses, and compared with the disk. Nothing is written.

use std::fmt::Write as _;
use std::path::Path;

use super::Context;
use crate::deploy::k8s::{BASE_DIR, K8S_DIR};
use crate::deploy::prometheus::PROMETHEUS_DIR;
use crate::error::Error;
use crate::error::{Location, SourceText, slash_path};
use crate::plan::read_regular;
use crate::plan::{Action, PlannedFile, WritePlan};
use crate::render::{COMPOSE_FILE, CONTRACTS_DIR, Renderer};
use crate::workspace::diagnostic::Diagnostic;
use crate::workspace::model::Kind;
use crate::workspace::protos::ProtoSet;

/// Lines of diff shown per file; the rest is summarised.
const MAX_DIFF_LINES: usize = 40;

/// `blocked`: an earlier error (a proto or openapi.yaml that does not read) already
/// explains why the generated files cannot be rendered.
pub fn check(ctx: &Context<'_>, protos: &ProtoSet, blocked: bool, out: &mut Vec<Diagnostic>) {
    overlays(ctx, out);
    if !DRIFT_IDS.iter().any(|id| ctx.levels.enabled(id)) {
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
        crate::generate::plan_generated(&mut plan, &renderer, manifest, &protos.infos)?;
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
        let path = slash_path(&f.path);
        let id = drift_id(&path);
        if !ctx.levels.enabled(id) {
            continue;
        }
        match f.action {
            Action::Create | Action::Update => {}
            // base/ is msvc's alone: a file there for no service is stale.
            Action::Delete if id == "K8S_DRIFT" => {
                out.push(
                    Diagnostic::new(
                        id,
                        format!("{path} belongs to no service of services.toml"),
                    )
                    .at(Location::file(&f.path))
                    .hint("run `msvc sync` to delete it (the service was removed from services.toml)"),
                );
                continue;
            }
            _ => continue,
        }
        // The contracts crate follows the protos; when one does not read, it cannot be
        // compared (PROTO_MISSING or PROTO_COMPILE says why).
        // A service's wiring names its gRPC peers' clients, which come from their protos.
        if !protos.complete
            && (path.starts_with(&format!("{CONTRACTS_DIR}/")) || path.ends_with("/src/wiring.rs"))
        {
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
        out.push(drift(f, &path, id));
    }
}

/// The checks that compare msvc-owned files with what the manifest generates.
const DRIFT_IDS: [&str; 4] = [
    "COMPOSE_DRIFT",
    "GENERATED_DRIFT",
    "K8S_DRIFT",
    "PROMETHEUS_DRIFT",
];

/// Which drift check a generated file belongs to.
fn drift_id(path: &str) -> &'static str {
    if path == COMPOSE_FILE {
        "COMPOSE_DRIFT"
    } else if path.starts_with(&format!("{K8S_DIR}/")) {
        "K8S_DRIFT"
    } else if path.starts_with(&format!("{PROMETHEUS_DIR}/")) {
        "PROMETHEUS_DRIFT"
    } else {
        "GENERATED_DRIFT"
    }
}

fn drift(f: &PlannedFile, path: &str, id: &'static str) -> Diagnostic {
    let Some(old) = &f.old else {
        let service = path
            .strip_prefix(&format!("{BASE_DIR}/"))
            .and_then(|n| n.strip_suffix(".yaml"))
            .filter(|n| *n != "kustomization");
        let message = match service {
            Some(s) => format!("{path} is missing: service `{s}` has no Kubernetes manifests"),
            None => format!("{path} is missing"),
        };
        return Diagnostic::new(id, message)
            .at(Location::file(&f.path))
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
        Location::file(&f.path)
    } else {
        source.location(start..line_start + line_text.trim_end().len().max(start - line_start))
    };
    let diff = f.unified_diff();
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
    let what = if matches!(id, "K8S_DRIFT" | "PROMETHEUS_DRIFT") {
        what_differs(line_text, new.lines().nth(line).unwrap_or(""))
    } else {
        None
    };
    let message = match what {
        Some(what) => format!(
            "{path} differs from what services.toml generates: {what} (edited by hand, or stale)"
        ),
        None => {
            format!("{path} differs from what services.toml generates (edited by hand, or stale)")
        }
    };
    Diagnostic::new(id, message)
    .at(location)
    .note(note)
    .hint(format!(
        "run `msvc sync` to regenerate it; make lasting changes in services.toml{}",
        match id {
            "COMPOSE_DRIFT" => " (`env`, `replicas`, ports) or a template override",
            "K8S_DRIFT" =>
                " ([deploy], `replicas`, `resources`, ports) or as patches in deploy/k8s/overlays/",
            _ => "",
        }
    ))
}

/// Names what a differing line of a deployment file is about, when it is one of the
/// values a user would look for: a port, a peer address, an image, a replica count.
fn what_differs(old: &str, new: &str) -> Option<String> {
    let (old, new) = (old.trim(), new.trim());
    let value = |line: &str| {
        line.split_once(": ")
            .map_or(line, |(_, v)| v)
            .trim_matches(|c| matches!(c, '"' | '[' | ']'))
            .to_string()
    };
    let about = if old.starts_with("image:") {
        "the image"
    } else if old.contains("http://") {
        "a peer address"
    } else if old.starts_with("replicas:") {
        "the replica count"
    } else if old.contains("Port:") || old.starts_with("port:") || old.contains("127.0.0.1:") {
        "a port"
    } else {
        return None;
    };
    Some(format!(
        "{about} is `{}`, services.toml gives `{}`",
        value(old),
        value(new)
    ))
}

/// `K8S_IMAGE_TAG_MISSING`: each overlay's `images:` names every service's image;
/// `K8S_OVERLAY_STALE`: and patches or pins no service the base no longer has.
fn overlays(ctx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    let manifest = &ctx.ws.manifest;
    let Ok(entries) = fs_err::read_dir(ctx.root.join(K8S_DIR).join("overlays")) else {
        return;
    };
    let mut overlays: Vec<String> = entries
        .filter_map(std::result::Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    overlays.sort();
    for overlay in overlays {
        let rel = Path::new(K8S_DIR)
            .join("overlays")
            .join(&overlay)
            .join("kustomization.yaml");
        let Some(text) = read_regular(&ctx.root.join(&rel)) else {
            continue;
        };
        // A file kustomize cannot read either is kustomize's to report.
        let Ok(doc) = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&text) else {
            continue;
        };
        stale_overlay(ctx, &rel, &overlay, &text, &doc, out);
        if !ctx.levels.enabled("K8S_IMAGE_TAG_MISSING") {
            continue;
        }
        let names: Vec<&str> = doc
            .get("images")
            .and_then(serde_yaml_ng::Value::as_sequence)
            .map(|images| {
                images
                    .iter()
                    .filter(|i| i.get("newTag").is_some() || i.get("digest").is_some())
                    .filter_map(|i| i.get("name").and_then(serde_yaml_ng::Value::as_str))
                    .collect()
            })
            .unwrap_or_default();
        let source = SourceText::new(&rel, &text);
        let location = match text.lines().position(|l| l.starts_with("images:")) {
            Some(line) => {
                let start = source.offset(line, 0);
                source.location(start..start + "images:".len())
            }
            None => Location::file(&rel),
        };
        for (name, svc) in &manifest.services {
            if svc.kind == Kind::Process {
                continue;
            }
            let image = manifest.image_name(name);
            if names.contains(&image.as_str()) {
                continue;
            }
            out.push(
                Diagnostic::new(
                    "K8S_IMAGE_TAG_MISSING",
                    format!(
                        "overlay `{overlay}` does not set the image tag of `{name}` (no `images:` entry for `{image}`)"
                    ),
                )
                .at(location.clone())
                .hint(format!(
                    "add `- name: {image}` with `newTag: \"{}\"` under `images:` in {}",
                    manifest.image_tag(),
                    slash_path(&rel)
                )),
            );
        }
    }
}

/// `K8S_OVERLAY_STALE`: a patch of a service the manifest no longer has makes
/// `kubectl kustomize` fail (no Deployment to patch); a pinned image of one is dead weight
/// that hides the mistake.
fn stale_overlay(
    ctx: &Context<'_>,
    rel: &Path,
    overlay: &str,
    text: &str,
    doc: &serde_yaml_ng::Value,
    out: &mut Vec<Diagnostic>,
) {
    let manifest = &ctx.ws.manifest;
    let deployed = |name: &str| {
        manifest
            .services
            .get(name)
            .is_some_and(|s| s.kind != Kind::Process)
            || ctx.broken.contains(name)
    };
    let source = SourceText::new(rel, text);
    let at = |needle: &str| match text.find(needle) {
        Some(start) => source.location(start..start + needle.len()),
        None => Location::file(rel),
    };
    let shown = slash_path(rel);
    let patches = doc
        .get("patches")
        .and_then(serde_yaml_ng::Value::as_sequence)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("path").and_then(serde_yaml_ng::Value::as_str));
    for path in patches {
        let Some(service) = path
            .strip_prefix("patches/")
            .and_then(|p| p.strip_suffix(".yaml"))
        else {
            continue;
        };
        if deployed(service) {
            continue;
        }
        out.push(
            Diagnostic::new(
                "K8S_OVERLAY_STALE",
                format!(
                    "overlay `{overlay}` patches `{service}`, which is not a service of services.toml, so `kubectl kustomize` fails"
                ),
            )
            .at(at(path))
            .hint(format!(
                "remove `- path: {path}` (and the file) from {shown}, and its `images:` entry"
            )),
        );
    }
    let images = doc
        .get("images")
        .and_then(serde_yaml_ng::Value::as_sequence)
        .into_iter()
        .flatten()
        .filter_map(|i| i.get("name").and_then(serde_yaml_ng::Value::as_str));
    let wanted: Vec<String> = manifest
        .services
        .keys()
        .map(|name| manifest.image_name(name))
        .collect();
    for image in images {
        let service = image.rsplit('/').next().unwrap_or(image);
        if wanted.iter().any(|w| w == image) || deployed(service) {
            continue;
        }
        out.push(
            Diagnostic::new(
                "K8S_OVERLAY_STALE",
                format!(
                    "overlay `{overlay}` pins image `{image}`, which no service of services.toml has"
                ),
            )
            .at(at(&format!("name: {image}")))
            .hint(format!("remove its entry from `images:` in {shown}")),
        );
    }
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
