//! `WritePlan`: every file a command would write, decided in memory, then written all or none.

pub mod rustfmt;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::workspace::source::{Disk, Files};

/// Who owns a file, which decides what happens when it already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ownership {
    /// msvc's: rewritten from the manifest whenever it differs.
    Generated,
    /// The user's after the first render: a different existing file is a conflict.
    Scaffolded,
    /// The user's after the first render: an existing file is kept as it is, silently.
    ScaffoldedOnce,
    /// services.toml, edited in place.
    Manifest,
}

/// What applying the plan does to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Create,
    Update,
    Unchanged,
    /// A user-owned file exists and is left alone.
    Keep,
    /// A user-owned file exists with other content; refused without `--force`.
    Conflict,
    Delete,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlannedFile {
    pub path: PathBuf,
    pub action: Action,
    pub ownership: Ownership,
    #[serde(skip)]
    pub old: Option<String>,
    #[serde(skip)]
    pub new: Option<String>,
}

impl PlannedFile {
    /// A unified diff of the planned content against what is on disk.
    pub fn unified_diff(&self) -> String {
        let old = self.old.as_deref().unwrap_or("");
        let new = self.new.as_deref().unwrap_or("");
        let name = self.path.display().to_string();
        similar::TextDiff::from_lines(old, new)
            .unified_diff()
            .context_radius(3)
            .header(
                &if self.old.is_some() {
                    format!("a/{name}")
                } else {
                    "/dev/null".to_string()
                },
                &format!("b/{name}"),
            )
            .to_string()
    }
}

/// The files a command writes, relative to `root`.
#[derive(Debug, Clone)]
pub struct WritePlan {
    root: PathBuf,
    files: Vec<PlannedFile>,
    force: bool,
}

impl WritePlan {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            files: Vec::new(),
            force: false,
        }
    }

    /// Lets scaffolded files overwrite what exists.
    #[must_use]
    pub fn force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn files(&self) -> &[PlannedFile] {
        &self.files
    }

    /// Adds a file with the content it should have. A later `put` of the same path wins.
    pub fn put(&mut self, rel: impl Into<PathBuf>, content: String, ownership: Ownership) {
        let rel = rel.into();
        let old = read_regular(&self.root.join(&rel));
        let action = decide(old.as_deref(), &content, ownership, self.force);
        self.files.retain(|f| f.path != rel);
        self.files.push(PlannedFile {
            path: rel,
            action,
            ownership,
            old,
            new: Some(content),
        });
    }

    /// Runs the Rust sources that would be written through rustfmt (see
    /// [`crate::plan::rustfmt`]) and decides their actions again on the result.
    pub fn format_rust(&mut self) {
        let pending: Vec<usize> = (0..self.files.len())
            .filter(|&i| {
                let f = &self.files[i];
                f.path.extension().is_some_and(|e| e == "rs")
                    // msvc's own crate is written byte for byte, formatted as it is.
                    && !f.path.starts_with(crate::workspace::RUNTIME_DIR)
                    && f.new.is_some()
                    && matches!(f.action, Action::Create | Action::Update | Action::Conflict)
            })
            .collect();
        let sources: Vec<(&Path, &str)> = pending
            .iter()
            .map(|&i| {
                let f = &self.files[i];
                (f.path.as_path(), f.new.as_deref().unwrap_or_default())
            })
            .collect();
        let formatted = crate::plan::rustfmt::format_sources(&self.root, &sources);
        for (i, text) in pending.into_iter().zip(formatted) {
            if let Some(text) = text {
                let f = &mut self.files[i];
                f.action = decide(f.old.as_deref(), &text, f.ownership, self.force);
                f.new = Some(text);
            }
        }
    }

    /// Adds a file (or a whole directory) to delete.
    pub fn delete(&mut self, rel: impl Into<PathBuf>) {
        let rel = rel.into();
        if self.root.join(&rel).exists() {
            self.files.retain(|f| f.path != rel);
            self.files.push(PlannedFile {
                path: rel,
                action: Action::Delete,
                ownership: Ownership::Scaffolded,
                old: None,
                new: None,
            });
        }
    }

    pub fn get(&self, rel: &Path) -> Option<&PlannedFile> {
        self.files.iter().find(|f| f.path == rel)
    }

    /// Whether applying would change anything on disk.
    pub fn has_changes(&self) -> bool {
        self.files
            .iter()
            .any(|f| matches!(f.action, Action::Create | Action::Update | Action::Delete))
    }

    /// The files that would be refused, with a ready-made error.
    pub fn conflicts(&self) -> Result<()> {
        let conflicts: Vec<&PlannedFile> = self
            .files
            .iter()
            .filter(|f| f.action == Action::Conflict)
            .collect();
        if conflicts.is_empty() {
            return Ok(());
        }
        let list = conflicts
            .iter()
            .map(|f| format!("  {}", f.path.display()))
            .collect::<Vec<_>>()
            .join("\n");
        Err(Error::new(format!(
            "{} file(s) already exist with other content and belong to you:\n{list}",
            conflicts.len()
        ))
        .hint("nothing was written; pass --force to overwrite them, or move them away first"))
    }

    /// Writes every change, or none: on any failure, restores what was there before.
    pub fn apply(&self) -> Result<()> {
        self.conflicts()?;
        let mut created_dirs: Vec<PathBuf> = Vec::new();
        let mut staged: Vec<(tempfile::NamedTempFile, &PlannedFile)> = Vec::new();
        let mut trashed: Vec<(PathBuf, tempfile::TempDir)> = Vec::new();

        // Stage every new content beside its target first: nothing visible changes yet.
        let mut result = Ok(());
        for file in &self.files {
            if matches!(file.action, Action::Create | Action::Update) {
                match self.stage(&mut created_dirs, file) {
                    Ok(tmp) => staged.push((tmp, file)),
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
        }
        // Move deleted paths aside (same filesystem, so a rename) so they can come back.
        if result.is_ok() {
            for file in self.files.iter().filter(|f| f.action == Action::Delete) {
                let path = self.root.join(&file.path);
                let parent = path.parent().unwrap_or(&self.root);
                let trash = match tempfile::Builder::new()
                    .prefix(".msvc-trash-")
                    .tempdir_in(parent)
                {
                    Ok(t) => t,
                    Err(e) => {
                        result = Err(io_error(parent, &e));
                        break;
                    }
                };
                let dest = trash.path().join("x");
                if let Err(e) = fs_err::rename(&path, &dest) {
                    result = Err(e.into());
                    break;
                }
                trashed.push((path, trash));
            }
        }
        // Then rename each into place; a failure rolls back the ones already renamed.
        let mut committed: Vec<&PlannedFile> = Vec::new();
        if result.is_ok() {
            for (tmp, file) in staged.drain(..) {
                let path = self.root.join(&file.path);
                if let Err(e) = tmp.persist(&path) {
                    result = Err(io_error(&path, &e.error));
                    break;
                }
                committed.push(file);
            }
        }
        if let Err(err) = result {
            for file in committed {
                let path = self.root.join(&file.path);
                match &file.old {
                    Some(old) => {
                        let _ = fs_err::write(&path, old);
                    }
                    None => {
                        let _ = fs_err::remove_file(&path);
                    }
                }
            }
            for (path, trash) in trashed {
                let _ = fs_err::rename(trash.path().join("x"), &path);
            }
            for dir in created_dirs.iter().rev() {
                let _ = std::fs::remove_dir(dir);
            }
            return Err(err.hint("nothing was changed"));
        }
        Ok(())
    }
}

impl WritePlan {
    /// Writes a file's new content to a temporary file beside its target.
    fn stage(
        &self,
        created_dirs: &mut Vec<PathBuf>,
        file: &PlannedFile,
    ) -> Result<tempfile::NamedTempFile> {
        let path = self.root.join(&file.path);
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        create_dirs(&dir, created_dirs)?;
        // Keep an existing file's mode; new files get the usual 0644, not tempfile's 0600.
        let permissions =
            fs_err::metadata(&path).map_or_else(|_| default_permissions(), |m| m.permissions());
        let mut tmp = tempfile::Builder::new()
            .prefix(".msvc-")
            .permissions(permissions)
            .tempfile_in(&dir)
            .map_err(|e| io_error(&dir, &e))?;
        std::io::Write::write_all(&mut tmp, file.new.as_deref().unwrap_or("").as_bytes())
            .map_err(|e| io_error(&path, &e))?;
        Ok(tmp)
    }
}

/// A file's text, when it is a regular file that reads: reading a named pipe would block.
/// What writing `content` does to a file that holds `old` (if it exists).
fn decide(old: Option<&str>, content: &str, ownership: Ownership, force: bool) -> Action {
    match (old, ownership) {
        (None, _) => Action::Create,
        (Some(o), _) if o == content => Action::Unchanged,
        (Some(_), Ownership::ScaffoldedOnce) => Action::Keep,
        (Some(_), Ownership::Scaffolded) if !force => Action::Conflict,
        (Some(_), _) => Action::Update,
    }
}

/// What the workspace's readers see: the plan's pending content over the disk.
impl Files for WritePlan {
    fn read(&self, rel: &Path) -> std::io::Result<Vec<u8>> {
        match self.get(rel) {
            Some(f) => f.new.clone().map(String::into_bytes).ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, "deleted by the plan")
            }),
            None => Disk(&self.root).read(rel),
        }
    }

    fn exists(&self, rel: &Path) -> bool {
        match self.get(rel) {
            Some(f) => f.new.is_some(),
            None => Disk(&self.root).exists(rel),
        }
    }
}

pub fn read_regular(path: &Path) -> Option<String> {
    if !path.is_file() {
        return None;
    }
    fs_err::read_to_string(path).ok()
}

#[cfg(unix)]
fn default_permissions() -> std::fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    std::fs::Permissions::from_mode(0o644)
}

#[cfg(not(unix))]
fn default_permissions() -> std::fs::Permissions {
    tempfile::NamedTempFile::new()
        .and_then(|f| f.as_file().metadata())
        .map(|m| m.permissions())
        .expect("a temporary file can be created")
}

fn create_dirs(dir: &Path, created: &mut Vec<PathBuf>) -> Result<()> {
    let mut missing = Vec::new();
    let mut d = Some(dir);
    while let Some(p) = d {
        if p.exists() {
            break;
        }
        missing.push(p.to_path_buf());
        d = p.parent();
    }
    for p in missing.into_iter().rev() {
        fs_err::create_dir(&p)?;
        created.push(p);
    }
    Ok(())
}

fn io_error(path: &Path, err: &std::io::Error) -> Error {
    let mut e = Error::new(format!("cannot write `{}`: {err}", path.display()));
    if err.kind() == std::io::ErrorKind::PermissionDenied {
        e = e.hint("check the directory's permissions");
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_written_when_a_rename_fails() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(dir.path().join("a.txt"), "old").unwrap();
        // A directory where a file should go makes the rename fail.
        fs_err::create_dir_all(dir.path().join("z.txt")).unwrap();
        let mut plan = WritePlan::new(dir.path());
        plan.put("a.txt", "new".into(), Ownership::Generated);
        plan.put("sub/b.txt", "b".into(), Ownership::Generated);
        plan.put("z.txt", "z".into(), Ownership::Generated);
        assert!(plan.apply().is_err());
        assert_eq!(
            fs_err::read_to_string(dir.path().join("a.txt")).unwrap(),
            "old"
        );
        assert!(!dir.path().join("sub").exists());
        let leftovers: Vec<_> = fs_err::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 2, "{leftovers:?}");
    }

    #[test]
    fn user_files_conflict_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(dir.path().join("main.rs"), "mine").unwrap();
        let mut plan = WritePlan::new(dir.path());
        plan.put("main.rs", "template".into(), Ownership::Scaffolded);
        assert_eq!(plan.files()[0].action, Action::Conflict);
        assert!(plan.apply().is_err());
        let mut forced = WritePlan::new(dir.path()).force(true);
        forced.put("main.rs", "template".into(), Ownership::Scaffolded);
        forced.apply().unwrap();
        assert_eq!(
            fs_err::read_to_string(dir.path().join("main.rs")).unwrap(),
            "template"
        );
    }
}
