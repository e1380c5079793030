//! A template version's render of a workspace: every file it writes, with its owner.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::plan::{Ownership, WritePlan};
use crate::workspace::MANIFEST_FILE;
use crate::workspace::model::{Kind, Manifest};

/// One file as a template version writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    pub text: String,
    pub ownership: Ownership,
}

/// Every file a template version writes for a workspace, by path relative to its root.
/// services.toml is not one of them: it is the user's manifest, which `msvc new` and
/// `msvc link` edit, not a render.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileSet {
    files: BTreeMap<PathBuf, RenderedFile>,
}

impl FileSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// The files a plan would write, later plans winning where two write one path.
    pub fn from_plans(plans: &[&WritePlan]) -> Self {
        let mut set = Self::new();
        for plan in plans {
            for f in plan.files() {
                if let Some(text) = &f.new {
                    set.insert(&f.path, text.clone(), f.ownership);
                }
            }
        }
        set
    }

    /// Adds a file, replacing one at the same path.
    pub fn insert(&mut self, rel: impl AsRef<Path>, text: String, ownership: Ownership) {
        let rel = rel.as_ref();
        if rel == Path::new(MANIFEST_FILE) {
            return;
        }
        self.files
            .insert(rel.to_path_buf(), RenderedFile { text, ownership });
    }

    pub fn get(&self, rel: &Path) -> Option<&RenderedFile> {
        self.files.get(rel)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Path, &RenderedFile)> {
        self.files.iter().map(|(p, f)| (p.as_path(), f))
    }

    pub fn paths(&self) -> BTreeSet<&Path> {
        self.files.keys().map(PathBuf::as_path).collect()
    }
}

/// What shaped a workspace besides its manifest, which the manifest does not record:
/// the services `msvc init --example` wrote from the example system's templates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shape {
    pub examples: BTreeSet<String>,
}

impl Shape {
    /// How a template version most likely shaped the workspace: a service of the
    /// example system (one of `names`) is taken as written by `init --example` when its
    /// example render, `render(name, true)`, is closer to the files on disk than its
    /// plain one (the manifest does not say which it was).
    pub fn detect(
        root: &Path,
        manifest: &Manifest,
        names: &[&str],
        render: impl Fn(&str, bool) -> Result<WritePlan>,
    ) -> Result<Self> {
        let mut examples = BTreeSet::new();
        for name in names {
            if manifest
                .services
                .get(*name)
                .is_none_or(|s| s.kind == Kind::Process)
            {
                continue;
            }
            let mut plain = render(name, false)?;
            let mut with_example = render(name, true)?;
            if same_files(&plain, &with_example) {
                continue;
            }
            plain.format_rust();
            with_example.format_rust();
            let paths: BTreeSet<&Path> = plain
                .files()
                .iter()
                .chain(with_example.files())
                .map(|f| f.path.as_path())
                .collect();
            if distance(root, &with_example, &paths) < distance(root, &plain, &paths) {
                examples.insert((*name).to_string());
            }
        }
        Ok(Self { examples })
    }
}

fn same_files(a: &WritePlan, b: &WritePlan) -> bool {
    a.files().len() == b.files().len()
        && a.files().iter().all(|f| {
            b.get(&f.path)
                .is_some_and(|g| g.new == f.new && g.ownership == f.ownership)
        })
}

/// How many lines the files on disk differ from a candidate render in, over `paths`: a
/// file one side lacks counts all the lines of the other.
fn distance(root: &Path, candidate: &WritePlan, paths: &BTreeSet<&Path>) -> usize {
    paths
        .iter()
        .map(|rel| {
            let disk = crate::plan::read_regular(&root.join(rel)).unwrap_or_default();
            let rendered = candidate
                .get(rel)
                .and_then(|f| f.new.as_deref())
                .unwrap_or_default();
            similar::TextDiff::from_lines(disk.as_str(), rendered)
                .iter_all_changes()
                .filter(|c| c.tag() != similar::ChangeTag::Equal)
                .count()
        })
        .sum()
}
