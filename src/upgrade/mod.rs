//! `msvc upgrade`: brings a workspace from the template version its services.toml records
//! to the current one. msvc-owned files are rewritten from the current render; each
//! user-owned file is merged three ways (base: the file as the recorded version rendered
//! it, ours: the file on disk, theirs: the current render), conflicts written inline with
//! git-style markers. Everything goes through one `WritePlan`: all or nothing.

mod current;
pub mod files;
mod git;
pub mod merge;
pub mod v1;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use self::current::render_current;
pub use self::files::{FileSet, RenderedFile, Shape};
use self::merge::{Labels, merge};
use crate::error::{Error, Result};
use crate::plan::{Ownership, WritePlan, read_regular};
use crate::render::templates::TemplateSet;
use crate::render::{self, Renderer};
use crate::workspace::edit::ManifestEdit;
use crate::workspace::model::TEMPLATE_VERSION;
use crate::workspace::proto::ProtoInfo;
use crate::workspace::source::Disk;
use crate::workspace::{MANIFEST_FILE, Workspace};

/// The protos of a workspace's gRPC services, by path.
pub type Protos = BTreeMap<String, ProtoInfo>;

/// How many of the files with uncommitted changes a refusal names.
const DIRTY_SHOWN: usize = 5;

/// The workspace Cargo.toml: msvc keeps its `members` but everything else is the user's,
/// so it is merged like a user-owned file although msvc rewrites it.
const CARGO_TOML: &str = "Cargo.toml";

/// What the command line asks of an upgrade.
#[derive(Debug, Clone, Copy, Default)]
pub struct Settings {
    /// Decide everything, write nothing.
    pub dry_run: bool,
    /// Upgrade even when the git work tree has uncommitted changes.
    pub allow_dirty: bool,
}

/// What an upgrade does to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileAction {
    /// msvc-owned: rewritten from the current render.
    Rewritten,
    /// New in the current version and not on disk: written.
    Created,
    /// User-owned: the template's changes merged into the user's file without conflict.
    Merged,
    /// User-owned: merged, with conflicts marked inline for the user to resolve.
    Conflict,
    /// Gone from the current version and never changed by the user: deleted.
    Removed,
    /// Gone from the current version but changed by the user: left as it is.
    Kept,
    /// Deleted by the user and changed by the current version: stays deleted.
    LeftDeleted,
}

/// One file an upgrade changes, or leaves alone with something to say.
#[derive(Debug, Clone, Serialize)]
pub struct FileChange {
    pub path: PathBuf,
    pub action: FileAction,
    pub ownership: Ownership,
    /// The 1-based line of each conflict's `<<<<<<<` marker.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<usize>,
}

/// An upgrade decided: what happens to every file, and the plan that writes it.
#[derive(Debug, Clone)]
pub struct Upgrade {
    pub workspace: String,
    pub from: u32,
    pub to: u32,
    pub changes: Vec<FileChange>,
    pub plan: WritePlan,
}

impl Upgrade {
    /// 1 when conflicts are left for the user to resolve, else 0.
    pub fn exit_code(&self) -> i32 {
        if self
            .changes
            .iter()
            .any(|c| c.action == FileAction::Conflict)
        {
            crate::error::EXIT_FAILURE
        } else {
            0
        }
    }

    /// `file:line` of every conflict, in file order.
    pub fn conflict_places(&self) -> Vec<String> {
        self.changes
            .iter()
            .flat_map(|c| {
                c.conflicts
                    .iter()
                    .map(|line| format!("{}:{line}", crate::error::slash_path(&c.path)))
            })
            .collect()
    }
}

/// What `msvc upgrade` came to.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The workspace is at the version already: nothing to do.
    Current { workspace: String, version: u32 },
    /// The upgrade, written unless it was a dry run.
    Upgraded(Upgrade),
}

/// The two renders an upgrade merges between.
#[derive(Debug, Clone)]
pub struct Renders {
    /// The workspace's files as its recorded template version rendered them.
    pub base: FileSet,
    /// The files of the version it goes to.
    pub current: FileSet,
    /// Whether msvc-owned files are generated again from the merged files (as `msvc
    /// sync` would), so that they follow what the merge made of the user's files.
    pub regenerate: bool,
}

/// Upgrades the workspace at `root` to [`TEMPLATE_VERSION`].
pub fn run(root: &Path, settings: &Settings) -> Result<Outcome> {
    upgrade_with(root, TEMPLATE_VERSION, settings, |ws, protos| {
        let from = ws.manifest.workspace.template_version;
        let (base, shape) = render_version(from, ws, protos)?;
        let current = render_current(&ws.root, &ws.manifest, protos, &shape)?;
        Ok(Renders {
            base,
            current,
            regenerate: true,
        })
    })
}

/// The files template version `version` writes for the workspace, and the shape it most
/// likely gave it: version 1 with its frozen renderer, later ones with their templates
/// through the live render code.
pub fn render_version(version: u32, ws: &Workspace, protos: &Protos) -> Result<(FileSet, Shape)> {
    match version {
        v1::VERSION => {
            let shape = v1::shape(&ws.root, &ws.manifest, protos)?;
            Ok((v1::render(&ws.root, &ws.manifest, protos, &shape)?, shape))
        }
        _ if version < TEMPLATE_VERSION => {
            let Some(set) = TemplateSet::of_version(version) else {
                return Err(unknown_version(version, ws));
            };
            let manifest = &ws.manifest;
            let renderer = Renderer::for_workspace_with(&ws.root, manifest, set.clone())?;
            // The services with templates of their own under `example/` in that version.
            let names: BTreeSet<&str> = set
                .iter()
                .filter_map(|t| t.name.strip_prefix("example/")?.split('/').next())
                .collect();
            let names: Vec<&str> = names.into_iter().collect();
            let shape = Shape::detect(&ws.root, manifest, &names, |name, example| {
                let mut plan = WritePlan::new(&ws.root);
                if example {
                    render::plan_example_service(&mut plan, &renderer, manifest, name, protos)?;
                } else {
                    render::plan_service(&mut plan, &renderer, manifest, name, protos)?;
                }
                Ok(plan)
            })?;
            let base = current::render_with(&ws.root, manifest, protos, &shape, set)?;
            Ok((base, shape))
        }
        _ => Err(unknown_version(version, ws)),
    }
}

/// The error for a recorded version msvc has no templates of.
fn unknown_version(version: u32, ws: &Workspace) -> Error {
    Error::new(format!(
            "msvc cannot render template version {version}, so it cannot tell your changes from the template's"
        ))
        .at(ws.locate(&["workspace", "template_version"]))
        .hint(format!(
            "set `template_version` to the version the workspace was created with ({} to {TEMPLATE_VERSION} are known)",
            v1::VERSION
        ))
}

/// Upgrades the workspace at `root` to version `to`, merging between the renders `renders`
/// gives for it: [`run`] passes the frozen renderer of the recorded version and
/// [`render_current`]; tests pass made-up ones.
pub fn upgrade_with(
    root: &Path,
    to: u32,
    settings: &Settings,
    renders: impl FnOnce(&Workspace, &Protos) -> Result<Renders>,
) -> Result<Outcome> {
    refuse_newer(root, to)?;
    let ws = Workspace::load(root)?;
    let from = ws.manifest.workspace.template_version;
    let workspace = ws.manifest.workspace.name.clone();
    if from == to {
        return Ok(Outcome::Current {
            workspace,
            version: to,
        });
    }
    if !settings.allow_dirty && !settings.dry_run {
        refuse_dirty(root)?;
    }
    let protos = ws.service_protos(&ws.manifest, &Disk(root))?;
    let Renders {
        base,
        current,
        regenerate,
    } = renders(&ws, &protos)?;
    let (mut changes, mut plan) = plan_changes(root, &base, &current, &Labels::upgrade(from, to));
    let mut edit = ManifestEdit::parse(&ws.text)?;
    edit.set_template_version(to)?;
    let text = edit.finish();
    plan.put(MANIFEST_FILE, text.clone(), Ownership::Manifest);
    if regenerate {
        regenerate_owned(&ws, &text, &mut plan, &mut changes)?;
    }
    if !settings.dry_run {
        plan.apply()?;
    }
    Ok(Outcome::Upgraded(Upgrade {
        workspace,
        from,
        to,
        changes,
        plan,
    }))
}

/// Generates msvc's files again over the merged ones: the current render made them from
/// the user's files as they were on disk, and a merged `openapi.yaml` (a sample route
/// the new version added) changes its callers' typed client. Those that change only
/// here join the report as rewritten.
fn regenerate_owned(
    ws: &Workspace,
    manifest_text: &str,
    plan: &mut WritePlan,
    changes: &mut Vec<FileChange>,
) -> Result<()> {
    let manifest = Workspace::parse(&ws.manifest_path, manifest_text)?;
    let renderer = Renderer::for_workspace(&ws.root, &manifest)?;
    let protos = ws.service_protos(&manifest, &*plan)?;
    let reported: BTreeSet<PathBuf> = changes.iter().map(|c| c.path.clone()).collect();
    crate::generate::plan_generated(plan, &renderer, &manifest, &protos)?;
    for f in plan.files() {
        let Some(text) = &f.new else { continue };
        if f.path == Path::new(MANIFEST_FILE) || reported.contains(&f.path) {
            continue;
        }
        if read_regular(&ws.root.join(&f.path)).as_deref() != Some(text.as_str()) {
            changes.push(FileChange {
                path: f.path.clone(),
                action: FileAction::Rewritten,
                ownership: Ownership::Generated,
                conflicts: Vec::new(),
            });
        }
    }
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(())
}

/// A services.toml from a newer msvc may not even parse here: its version is read first.
fn refuse_newer(root: &Path, to: u32) -> Result<()> {
    let path = root.join(MANIFEST_FILE);
    let text = fs_err::read_to_string(&path)?;
    let Ok(doc) = text.parse::<toml_edit::DocumentMut>() else {
        // Unreadable: loading it says why, with the place.
        return Ok(());
    };
    let recorded = doc
        .get("workspace")
        .and_then(|w| w.get("template_version"))
        .and_then(toml_edit::Item::as_integer);
    match recorded {
        Some(v) if v > i64::from(to) => Err(Error::new(format!(
            "the workspace is at template version {v}, newer than this msvc's ({to})"
        ))
        .at(crate::workspace::locate_in(
            &path,
            &text,
            &["workspace", "template_version"],
        ))
        .hint("a newer msvc wrote it: update msvc (`cargo install msvc`) and run it again")),
        _ => Ok(()),
    }
}

/// Refuses when the git work tree has uncommitted changes under `root`, as cargo fix does:
/// the upgrade's changes would be mixed with them.
fn refuse_dirty(root: &Path) -> Result<()> {
    let Some(dirty) = git::dirty_files(root) else {
        return Ok(());
    };
    if dirty.is_empty() {
        return Ok(());
    }
    let mut list: Vec<String> = dirty
        .iter()
        .take(DIRTY_SHOWN)
        .map(|f| format!("  {} ({})", f.path, f.state))
        .collect();
    if dirty.len() > DIRTY_SHOWN {
        list.push(format!("  and {} more", dirty.len() - DIRTY_SHOWN));
    }
    Err(Error::new(format!(
        "the workspace has uncommitted changes, which the upgrade would mix with its own:\n{}",
        list.join("\n")
    ))
    .hint("commit or stash them first, so `git diff` shows what the upgrade did; or pass --allow-dirty"))
}

/// Decides what happens to every file of either render, reading the user's files from
/// disk, and the plan that does it (with `force`, so merged files overwrite).
pub fn plan_changes(
    root: &Path,
    base: &FileSet,
    current: &FileSet,
    labels: &Labels,
) -> (Vec<FileChange>, WritePlan) {
    let mut plan = WritePlan::new(root).force(true);
    let mut changes = Vec::new();
    let paths: BTreeSet<&Path> = base.paths().union(&current.paths()).copied().collect();
    for rel in paths {
        let disk = read_regular(&root.join(rel));
        let Some(decision) = decide(
            rel,
            base.get(rel),
            disk.as_deref(),
            current.get(rel),
            labels,
        ) else {
            continue;
        };
        match (&decision.text, decision.action) {
            (_, FileAction::Removed) => plan.delete(rel),
            (Some(text), _) => plan.put(rel, text.clone(), Ownership::Scaffolded),
            (None, _) => {}
        }
        let ownership = current
            .get(rel)
            .or_else(|| base.get(rel))
            .map(|f| owner(rel, f.ownership))
            .expect("a path of either set");
        changes.push(FileChange {
            path: rel.to_path_buf(),
            action: decision.action,
            ownership,
            conflicts: decision.conflicts,
        });
    }
    changes.sort_by(|a, b| (a.action, &a.path).cmp(&(b.action, &b.path)));
    (changes, plan)
}

/// Who owns a file as far as an upgrade is concerned.
fn owner(rel: &Path, ownership: Ownership) -> Ownership {
    if rel == Path::new(CARGO_TOML) {
        Ownership::Scaffolded
    } else {
        ownership
    }
}

struct Decision {
    action: FileAction,
    /// What the file is to hold, when the upgrade writes it.
    text: Option<String>,
    conflicts: Vec<usize>,
}

impl Decision {
    fn write(action: FileAction, text: &str) -> Self {
        Self {
            action,
            text: Some(text.to_string()),
            conflicts: Vec::new(),
        }
    }

    fn report(action: FileAction) -> Self {
        Self {
            action,
            text: None,
            conflicts: Vec::new(),
        }
    }
}

/// The rules for one file; `None` when the upgrade neither changes it nor has anything
/// to say about it.
fn decide(
    rel: &Path,
    base: Option<&RenderedFile>,
    disk: Option<&str>,
    current: Option<&RenderedFile>,
    labels: &Labels,
) -> Option<Decision> {
    let Some(current) = current else {
        // Gone from the new version: deleted unless the user changed it.
        let base = base?;
        return match disk {
            None => None,
            Some(d) if d == base.text => Some(Decision::report(FileAction::Removed)),
            Some(_) => Some(Decision::report(FileAction::Kept)),
        };
    };
    let msvc_owned = owner(rel, current.ownership) == Ownership::Generated;
    match (disk, base) {
        (Some(d), _) if d == current.text => None,
        (None, _) if msvc_owned => Some(Decision::write(FileAction::Created, &current.text)),
        (Some(_), _) if msvc_owned => Some(Decision::write(FileAction::Rewritten, &current.text)),
        // Deleted by the user: never brought back.
        (None, Some(base)) if base.text == current.text => None,
        (None, Some(_)) => Some(Decision::report(FileAction::LeftDeleted)),
        (None, None) => Some(Decision::write(FileAction::Created, &current.text)),
        (Some(d), base) => {
            let base = base.map_or("", |b| b.text.as_str());
            let merged = merge(base, d, &current.text, labels);
            if merged.text == d {
                return None;
            }
            let action = if merged.conflicts.is_empty() {
                FileAction::Merged
            } else {
                FileAction::Conflict
            };
            Some(Decision {
                action,
                text: Some(merged.text),
                conflicts: merged.conflicts,
            })
        }
    }
}

#[cfg(test)]
mod tests;
