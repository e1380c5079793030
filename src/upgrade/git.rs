//! Whether the workspace's git work tree has uncommitted changes, which an upgrade would
//! mix with its own (so `git diff` could no longer show what the upgrade did).

use std::path::Path;
use std::process::{Command, Stdio};

/// A file with uncommitted changes, relative to the workspace root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirtyFile {
    pub path: String,
    /// `dirty` (changed in the work tree), `staged` or `untracked`, as cargo fix says it.
    pub state: &'static str,
}

/// The files under `root` with uncommitted changes; `None` when `root` is not in a git work
/// tree or git cannot be run, where there is nothing to compare with.
pub fn dirty_files(root: &Path) -> Option<Vec<DirtyFile>> {
    let prefix = git(root, &["rev-parse", "--show-prefix"])?;
    let prefix = prefix.trim_end_matches('\n');
    let status = git(
        root,
        &[
            "status",
            "--porcelain=v1",
            "-z",
            "--untracked-files=all",
            "--",
            ".",
        ],
    )?;
    let mut files = Vec::new();
    let mut entries = status.split('\0').filter(|e| !e.is_empty());
    while let Some(entry) = entries.next() {
        let (Some(code), Some(path)) = (entry.get(..2), entry.get(3..)) else {
            continue;
        };
        // A rename or copy is followed by the path it came from.
        if code.starts_with(['R', 'C']) {
            entries.next();
        }
        let state = match code.as_bytes() {
            b"??" => "untracked",
            [_, b' '] => "staged",
            _ => "dirty",
        };
        files.push(DirtyFile {
            path: path.strip_prefix(prefix).unwrap_or(path).to_string(),
            state,
        });
    }
    Some(files)
}

fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(root)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8(out.stdout).ok()
}
