//! The workspace's protos at a git revision, for `msvc check --against REF`: every proto
//! under proto/ at REF and every proto the workspace has now, read with one
//! `git cat-file --batch` and parsed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};

use prost_types::FileDescriptorProto;

use super::protos::{PROTO_DIR, ProtoSet};
use crate::error::{Error, Result};

/// The protos of a revision.
pub struct ProtosAt {
    /// The protos under proto/ at the revision, by path relative to the workspace root.
    pub listed: BTreeSet<String>,
    /// Every proto that exists at the revision and parses there, by path: those listed and
    /// those the workspace has now.
    pub files: BTreeMap<String, FileDescriptorProto>,
}

impl ProtosAt {
    /// Reads the protos at `rev` of the git repository the workspace at `root` is in.
    pub fn read(root: &Path, rev: &str, now: &ProtoSet) -> Result<Self> {
        let git = Git::new(root, rev)?;
        let listed: BTreeSet<String> = git.ls_tree(PROTO_DIR, "proto")?.into_iter().collect();
        let mut paths = listed.clone();
        paths.extend(now.files.keys().cloned());
        let files = git
            .cat_files(&paths)?
            .into_iter()
            // A proto broken at REF has nothing to compare with.
            .filter_map(|(path, text)| {
                Some((path.clone(), protox_parse::parse(&path, &text).ok()?))
            })
            .collect();
        Ok(Self { listed, files })
    }
}

/// The files under `dir` (relative to the workspace root) whose names end in `.ext`, as
/// they are at `rev` of the git repository the workspace at `root` is in.
pub fn files_at(root: &Path, rev: &str, dir: &str, ext: &str) -> Result<BTreeMap<String, String>> {
    let git = Git::new(root, rev)?;
    let listed: BTreeSet<String> = git.ls_tree(dir, ext)?.into_iter().collect();
    Ok(git.cat_files(&listed)?.into_iter().collect())
}

/// The git repository around the workspace, at one revision.
struct Git<'a> {
    root: &'a Path,
    rev: String,
    /// The workspace root relative to the repository's top level (`shop/` or empty).
    prefix: String,
}

impl<'a> Git<'a> {
    fn new(root: &'a Path, rev: &str) -> Result<Self> {
        let prefix = Self::run(root, &["rev-parse", "--show-prefix"]).map_err(|e| {
            Error::new(format!("--against needs a git repository: {e}"))
                .hint("run msvc check --against inside a git checkout of the workspace")
        })?;
        if rev.starts_with('-')
            || Self::run(
                root,
                &[
                    "rev-parse",
                    "--verify",
                    "--quiet",
                    &format!("{rev}^{{commit}}"),
                ],
            )
            .is_err()
        {
            return Err(
                Error::new(format!("`{rev}` is not a commit of this repository")).hint(
                    "pass a branch, tag or commit, e.g. `--against main` or `--against HEAD~1`",
                ),
            );
        }
        Ok(Self {
            root,
            rev: rev.to_string(),
            prefix: prefix.trim().to_string(),
        })
    }

    fn run(root: &Path, args: &[&str]) -> std::result::Result<String, String> {
        let out = Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run git: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }

    /// Files under `dir` ending in `.ext` at the revision, relative to the workspace root.
    fn ls_tree(&self, dir: &str, ext: &str) -> Result<Vec<String>> {
        let text = Self::run(
            self.root,
            &["ls-tree", "-r", "--name-only", "-z", &self.rev, "--", dir],
        )
        .map_err(|e| Error::new(format!("git ls-tree failed: {e}")))?;
        Ok(text
            .split('\0')
            .filter(|p| Path::new(p).extension().is_some_and(|e| e == ext))
            .map(ToString::to_string)
            .collect())
    }

    /// The contents of `paths` at the revision; paths that do not exist there are absent.
    fn cat_files(&self, paths: &BTreeSet<String>) -> Result<HashMap<String, String>> {
        let paths: Vec<&String> = paths.iter().filter(|p| !p.contains('\n')).collect();
        let mut child = Command::new("git")
            .arg("-C")
            .arg(self.root)
            .args(["cat-file", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Error::new(format!("cannot run git: {e}")))?;
        let mut stdin = child.stdin.take().expect("piped");
        let mut input = String::new();
        for p in &paths {
            let _ = writeln!(input, "{}:{}{p}", self.rev, self.prefix);
        }
        // Write from another thread: git answers while it reads, and a full pipe would
        // block both sides.
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
        });
        let mut reader = BufReader::new(child.stdout.take().expect("piped"));
        let mut out = HashMap::new();
        for path in paths {
            let mut header = String::new();
            if reader
                .read_line(&mut header)
                .map_err(|e| Error::new(format!("git cat-file: {e}")))?
                == 0
            {
                break;
            }
            let fields: Vec<&str> = header.split_whitespace().collect();
            let [_, kind, size] = fields[..] else {
                continue;
            };
            let Ok(size) = size.parse::<usize>() else {
                continue;
            };
            let mut body = vec![0; size + 1];
            reader
                .read_exact(&mut body)
                .map_err(|e| Error::new(format!("git cat-file: {e}")))?;
            body.pop();
            if kind == "blob" {
                out.insert(path.clone(), String::from_utf8_lossy(&body).into_owned());
            }
        }
        let _ = writer.join();
        let _ = child.wait();
        Ok(out)
    }
}
