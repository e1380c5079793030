//! Version 1's renderer against what msvc at template version 1 really wrote.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::{render, shape};
use crate::upgrade::files::FileSet;
use crate::upgrade::render_current;
use crate::workspace::model::TEMPLATE_VERSION;
use crate::workspace::source::Disk;
use crate::workspace::{MANIFEST_FILE, Workspace};

/// `msvc init shop --example`, and `msvc init plain` with one service of each kind and
/// `msvc deploy k8s` and `msvc deploy prometheus`, as msvc at template version 1 wrote them.
pub const FIXTURES: [&str; 2] = ["shop", "plain"];

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/upgrade/v1")
        .join(name)
}

/// Generated Rust went through rustfmt; without it the render cannot match.
pub fn have_rustfmt() -> bool {
    std::process::Command::new("rustfmt")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Every file under `root` but services.toml, by path relative to it.
fn files_on_disk(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs_err::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_path_buf();
                if rel != Path::new(MANIFEST_FILE) {
                    out.insert(rel, fs_err::read_to_string(&path).unwrap());
                }
            }
        }
    }
    out
}

/// Where a render and the files on disk differ: missing, extra, and a diff of each
/// file whose text differs.
pub(crate) fn differences(root: &Path, rendered: &FileSet) -> Vec<String> {
    let disk = files_on_disk(root);
    let mut problems = Vec::new();
    let paths: BTreeSet<&Path> = disk
        .keys()
        .map(PathBuf::as_path)
        .chain(rendered.paths())
        .collect();
    for rel in paths {
        match (disk.get(rel), rendered.get(rel)) {
            (Some(_), None) => problems.push(format!("not rendered: {}", rel.display())),
            (None, Some(_)) => problems.push(format!("rendered, not on disk: {}", rel.display())),
            (Some(d), Some(r)) if *d != r.text => problems.push(format!(
                "differs: {}\n{}",
                rel.display(),
                similar::TextDiff::from_lines(d.as_str(), r.text.as_str())
                    .unified_diff()
                    .header("on disk", "rendered")
            )),
            _ => {}
        }
    }
    problems
}

pub(crate) fn load(root: &Path) -> (Workspace, crate::upgrade::Protos) {
    let ws = Workspace::load(root).unwrap();
    let protos = ws.service_protos(&ws.manifest, &Disk(root)).unwrap();
    (ws, protos)
}

#[test]
fn version_1_renders_each_fixture_byte_for_byte() {
    if !have_rustfmt() {
        eprintln!("SKIPPED: rustfmt is not installed");
        return;
    }
    for name in FIXTURES {
        let root = fixture(name);
        let (ws, protos) = load(&root);
        let shape = shape(&root, &ws.manifest, &protos).unwrap();
        let rendered = render(&root, &ws.manifest, &protos, &shape).unwrap();
        let problems = differences(&root, &rendered);
        assert!(
            problems.is_empty(),
            "version 1 no longer renders the `{name}` fixture as msvc wrote it:\n{}",
            problems.join("\n")
        );
    }
}

#[test]
fn the_shape_of_each_fixture_is_found_from_its_files() {
    let (shop, protos) = load(&fixture("shop"));
    let examples = shape(&shop.root, &shop.manifest, &protos).unwrap().examples;
    // user-service and email-worker have no example templates of their own.
    assert_eq!(examples, BTreeSet::from(["user-api".to_string()]));
    let (plain, protos) = load(&fixture("plain"));
    let examples = shape(&plain.root, &plain.manifest, &protos)
        .unwrap()
        .examples;
    assert!(examples.is_empty(), "{examples:?}");
}

#[test]
fn the_live_templates_are_version_1_while_template_version_is_1() {
    if TEMPLATE_VERSION != super::VERSION || !have_rustfmt() {
        return;
    }
    for name in FIXTURES {
        let root = fixture(name);
        let (ws, protos) = load(&root);
        let shape = shape(&root, &ws.manifest, &protos).unwrap();
        let current = render_current(&root, &ws.manifest, &protos, &shape).unwrap();
        let problems = differences(&root, &current);
        assert!(
            problems.is_empty(),
            "templates/ and the render code no longer write what template version 1 wrote, \
             but TEMPLATE_VERSION is still 1: bump it in src/workspace/model.rs, so that \
             `msvc upgrade` brings version 1 workspaces forward. In `{name}`:\n{}",
            problems.join("\n")
        );
    }
}
