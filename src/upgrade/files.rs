//! A template version's render of a workspace: every file it writes, with its owner.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::plan::{Ownership, WritePlan};
use crate::workspace::MANIFEST_FILE;

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
