//! The template set: embedded in the binary, overridable file by file from a workspace dir.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use include_dir::{Dir, DirEntry, include_dir};

use crate::error::{Error, Location, Result};
use crate::workspace::model::TEMPLATE_VERSION;

static EMBEDDED: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates");

/// The templates of earlier versions that the live render code can still render, each as
/// the files that differ from the next version's: version `v` is version `v + 1` with
/// the files of `templates-v{v}/` in place of its own. (Version 1 rendered with other
/// code and has a frozen renderer of its own, in `upgrade::v1`.) A template a version
/// did not have is an empty file in its delta: it renders nothing, so writes nothing.
static DELTAS: &[(u32, Dir<'static>)] = &[
    (2, include_dir!("$CARGO_MANIFEST_DIR/templates-v2")),
    (3, include_dir!("$CARGO_MANIFEST_DIR/templates-v3")),
];

/// Suffix every template file carries; stripped from the destination path.
pub const TEMPLATE_SUFFIX: &str = ".tera";

/// Where a template's text came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Embedded,
    Override(PathBuf),
}

/// One template: its name (a `/`-separated path under templates/) and text.
#[derive(Debug, Clone)]
pub struct Template {
    pub name: String,
    pub text: String,
    pub origin: Origin,
}

/// All templates, embedded ones replaced by a workspace's overrides where present.
#[derive(Debug, Clone)]
pub struct TemplateSet {
    templates: BTreeMap<String, Template>,
}

impl TemplateSet {
    /// The templates compiled into msvc.
    pub fn embedded() -> Self {
        let mut templates = BTreeMap::new();
        collect(&EMBEDDED, &mut templates);
        Self { templates }
    }

    /// The templates template version `version` had, when the live render code renders
    /// it: the current version, or an earlier one with its deltas applied.
    pub fn of_version(version: u32) -> Option<Self> {
        let oldest = DELTAS
            .iter()
            .map(|(v, _)| *v)
            .min()
            .unwrap_or(TEMPLATE_VERSION);
        if !(oldest..=TEMPLATE_VERSION).contains(&version) {
            return None;
        }
        let mut set = Self::embedded();
        // Newest delta first: each takes its version back one step.
        let mut deltas: Vec<&(u32, Dir<'static>)> = DELTAS.iter().collect();
        deltas.sort_by_key(|(v, _)| std::cmp::Reverse(*v));
        for (_, delta) in deltas.into_iter().filter(|(v, _)| *v >= version) {
            let mut files = BTreeMap::new();
            collect(delta, &mut files);
            set.templates.extend(files);
        }
        Some(set)
    }

    /// The embedded templates with every file found under `dir` taking precedence.
    pub fn with_overrides(dir: &Path) -> Result<Self> {
        Self::embedded().overridden_by(dir)
    }

    /// This set with every file found under `dir` taking precedence.
    pub fn overridden_by(self, dir: &Path) -> Result<Self> {
        let mut set = self;
        if !dir.is_dir() {
            return Err(Error::new(format!(
                "template directory `{}` does not exist",
                dir.display()
            ))
            .hint("create it with `msvc templates export DIR`, or remove `templates` from [workspace]"));
        }
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in fs_err::read_dir(&d)? {
                let entry = entry?;
                let path = entry.path();
                // Symlinked directories are not followed: a link loop would never end.
                if entry.file_type()?.is_dir() {
                    stack.push(path);
                    continue;
                }
                let rel = path.strip_prefix(dir).expect("walked from dir");
                let name = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                if !name.ends_with(TEMPLATE_SUFFIX) {
                    continue;
                }
                if !set.templates.contains_key(&name) {
                    return Err(Error::new(format!(
                        "template override `{name}` does not replace any template msvc knows"
                    ))
                    .at(Location::file(&path))
                    .hint("run `msvc templates export DIR` to see the template names; rename or delete this file"));
                }
                let text = fs_err::read_to_string(&path)?;
                set.templates.insert(
                    name.clone(),
                    Template {
                        name,
                        text,
                        origin: Origin::Override(path),
                    },
                );
            }
        }
        Ok(set)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Template> {
        self.templates.values()
    }

    pub fn get(&self, name: &str) -> Option<&Template> {
        self.templates.get(name)
    }

    /// Templates under a directory of the set (`rest/`), with names relative to it.
    pub fn under<'a>(&'a self, dir: &'a str) -> impl Iterator<Item = (&'a str, &'a Template)> {
        let prefix = format!("{dir}/");
        self.templates.iter().filter_map(move |(name, t)| {
            name.strip_prefix(&prefix).map(|rel| {
                // `rel` borrows `name`, which lives as long as the set.
                (rel, t)
            })
        })
    }
}

fn collect(dir: &Dir<'static>, out: &mut BTreeMap<String, Template>) {
    for entry in dir.entries() {
        match entry {
            DirEntry::Dir(d) => collect(d, out),
            DirEntry::File(f) => {
                let name = f.path().to_string_lossy().replace('\\', "/");
                if !name.ends_with(TEMPLATE_SUFFIX) {
                    continue;
                }
                let text = f
                    .contents_utf8()
                    .expect("embedded templates are UTF-8")
                    .to_string();
                out.insert(
                    name.clone(),
                    Template {
                        name,
                        text,
                        origin: Origin::Embedded,
                    },
                );
            }
        }
    }
}

/// Writes every embedded template under `dir`, refusing to overwrite unless `force`.
pub fn export(dir: &Path, force: bool) -> Result<Vec<PathBuf>> {
    let set = TemplateSet::embedded();
    let mut written = Vec::new();
    let mut existing = Vec::new();
    for t in set.iter() {
        let path = dir.join(&t.name);
        if path.exists() && !force {
            existing.push(path.clone());
        }
        written.push((path, t.text.clone()));
    }
    if let Some(first) = existing.first() {
        return Err(Error::new(format!(
            "{} template file(s) already exist in `{}`, e.g. `{}`",
            existing.len(),
            dir.display(),
            first.display()
        ))
        .hint("pass --force to overwrite them, or export to another directory"));
    }
    let mut plan = crate::plan::WritePlan::new(dir);
    for (path, text) in written {
        let rel = path.strip_prefix(dir).expect("joined above").to_path_buf();
        plan.put(rel, text, crate::plan::Ownership::Generated);
    }
    plan.apply()?;
    Ok(set.iter().map(|t| dir.join(&t.name)).collect())
}
