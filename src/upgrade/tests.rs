//! The merge rules of an upgrade, on made-up renders of a small workspace: the base (the
//! recorded version's files), the disk (the user's) and the current version's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;

const MANIFEST: &str = "# the user's comment\n[workspace]\nname = \"shop\"\ntemplate_version = 1\n";

/// A workspace at template version 1 holding `files` besides its manifest.
fn workspace(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs_err::write(dir.path().join(MANIFEST_FILE), MANIFEST).unwrap();
    for (rel, text) in files {
        write(dir.path(), rel, text);
    }
    dir
}

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    fs_err::create_dir_all(path.parent().unwrap()).unwrap();
    fs_err::write(path, text).unwrap();
}

fn read(root: &Path, rel: &str) -> Option<String> {
    read_regular(&root.join(rel))
}

fn set(files: &[(&str, &str, Ownership)]) -> FileSet {
    let mut set = FileSet::new();
    for (rel, text, ownership) in files {
        set.insert(rel, (*text).to_string(), *ownership);
    }
    set
}

/// Every file under `root` with its bytes.
fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs_err::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(path.clone(), fs_err::read(&path).unwrap());
            }
        }
    }
    out
}

fn upgrade(root: &Path, base: &FileSet, current: &FileSet, settings: Settings) -> Result<Outcome> {
    upgrade_with(root, 2, &settings, |_, _| {
        Ok(Renders {
            base: base.clone(),
            current: current.clone(),
            regenerate: false,
        })
    })
}

/// An upgrade that went ahead.
fn upgraded(root: &Path, base: &FileSet, current: &FileSet) -> Upgrade {
    match upgrade(root, base, current, Settings::default()).unwrap() {
        Outcome::Upgraded(up) => up,
        Outcome::Current { .. } => panic!("the workspace was taken as current"),
    }
}

fn action(up: &Upgrade, rel: &str) -> Option<FileAction> {
    up.changes
        .iter()
        .find(|c| c.path == Path::new(rel))
        .map(|c| c.action)
}

const S: Ownership = Ownership::Scaffolded;
const G: Ownership = Ownership::Generated;

#[test]
fn a_user_edit_and_a_template_change_merge_cleanly() {
    let base_text = "fn main() {\n    start();\n}\n\nfn start() {}\n";
    let mine = "fn main() {\n    start();\n    mine();\n}\n\nfn start() {}\n";
    let theirs = "fn main() {\n    start();\n}\n\nfn start() {\n    runtime::start();\n}\n";
    let ws = workspace(&[("src/main.rs", mine)]);
    let up = upgraded(
        ws.path(),
        &set(&[("src/main.rs", base_text, S)]),
        &set(&[("src/main.rs", theirs, S)]),
    );
    assert_eq!(
        read(ws.path(), "src/main.rs").unwrap(),
        "fn main() {\n    start();\n    mine();\n}\n\nfn start() {\n    runtime::start();\n}\n"
    );
    assert_eq!(action(&up, "src/main.rs"), Some(FileAction::Merged));
    assert_eq!(up.exit_code(), 0);
    assert_eq!(
        read(ws.path(), MANIFEST_FILE).unwrap(),
        MANIFEST.replace("template_version = 1", "template_version = 2")
    );
}

#[test]
fn a_file_the_user_never_changed_takes_the_new_template() {
    let ws = workspace(&[("src/lib.rs", "old\n")]);
    let up = upgraded(
        ws.path(),
        &set(&[("src/lib.rs", "old\n", S)]),
        &set(&[("src/lib.rs", "new\n", S)]),
    );
    assert_eq!(read(ws.path(), "src/lib.rs").unwrap(), "new\n");
    assert_eq!(action(&up, "src/lib.rs"), Some(FileAction::Merged));
}

#[test]
fn both_changing_a_line_writes_labelled_markers_lists_the_line_and_exits_1() {
    let ws = workspace(&[("src/lib.rs", "a\nmine\nc\n")]);
    let up = upgraded(
        ws.path(),
        &set(&[("src/lib.rs", "a\nb\nc\n", S)]),
        &set(&[("src/lib.rs", "a\nnew\nc\n", S)]),
    );
    assert_eq!(
        read(ws.path(), "src/lib.rs").unwrap(),
        "a\n<<<<<<< yours\nmine\n||||||| template version 1\nb\n=======\nnew\n>>>>>>> template version 2\nc\n"
    );
    assert_eq!(action(&up, "src/lib.rs"), Some(FileAction::Conflict));
    assert_eq!(up.conflict_places(), ["src/lib.rs:2"]);
    assert_eq!(up.exit_code(), 1);
    // Written, and the version moves on: the markers are what is left to do.
    assert!(
        read(ws.path(), MANIFEST_FILE)
            .unwrap()
            .contains("template_version = 2")
    );
    let leftovers: Vec<_> = tree(ws.path())
        .into_keys()
        .filter(|p| p.extension().is_some_and(|e| e == "rej" || e == "orig"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_file_gone_from_the_new_version_is_removed_when_unchanged_and_kept_when_edited() {
    let ws = workspace(&[
        ("src/telemetry.rs", "as rendered\n"),
        ("src/shutdown.rs", "as rendered\nand mine\n"),
    ]);
    let base = set(&[
        ("src/telemetry.rs", "as rendered\n", S),
        ("src/shutdown.rs", "as rendered\n", S),
    ]);
    let up = upgraded(ws.path(), &base, &FileSet::new());
    assert_eq!(read(ws.path(), "src/telemetry.rs"), None);
    assert_eq!(action(&up, "src/telemetry.rs"), Some(FileAction::Removed));
    assert_eq!(
        read(ws.path(), "src/shutdown.rs").unwrap(),
        "as rendered\nand mine\n"
    );
    assert_eq!(action(&up, "src/shutdown.rs"), Some(FileAction::Kept));
}

#[test]
fn a_file_the_user_deleted_stays_deleted() {
    let ws = workspace(&[]);
    let base = set(&[
        ("tests/api.rs", "old test\n", S),
        ("src/store.rs", "store\n", S),
    ]);
    let current = set(&[
        ("tests/api.rs", "new test\n", S),
        ("src/store.rs", "store\n", S),
    ]);
    let up = upgraded(ws.path(), &base, &current);
    assert_eq!(read(ws.path(), "tests/api.rs"), None);
    assert_eq!(read(ws.path(), "src/store.rs"), None);
    // Said when the new version changed it, so the user can take it back by hand.
    assert_eq!(action(&up, "tests/api.rs"), Some(FileAction::LeftDeleted));
    assert_eq!(action(&up, "src/store.rs"), None);
}

#[test]
fn a_new_file_is_created_and_one_the_user_already_has_is_merged_with_an_empty_base() {
    let ws = workspace(&[("src/same.rs", "same\n"), ("src/runtime.rs", "mine\n")]);
    let current = set(&[
        ("src/new.rs", "new\n", S),
        ("src/same.rs", "same\n", S),
        ("src/runtime.rs", "template's\n", S),
    ]);
    let up = upgraded(ws.path(), &FileSet::new(), &current);
    assert_eq!(read(ws.path(), "src/new.rs").unwrap(), "new\n");
    assert_eq!(action(&up, "src/new.rs"), Some(FileAction::Created));
    assert_eq!(action(&up, "src/same.rs"), None);
    let merged = read(ws.path(), "src/runtime.rs").unwrap();
    assert!(
        merged.contains("<<<<<<< yours\nmine\n") && merged.contains("template's\n>>>>>>>"),
        "{merged}"
    );
    assert_eq!(action(&up, "src/runtime.rs"), Some(FileAction::Conflict));
}

#[test]
fn msvc_owned_files_are_rewritten_but_the_workspace_cargo_toml_is_merged() {
    let cargo_base = "[workspace]\nmembers = [\"a\"]\n\n[workspace.dependencies]\ntokio = \"1\"\n\n[profile.release]\nstrip = true\n";
    let cargo_mine = cargo_base.replace("strip = true", "strip = false");
    let cargo_theirs = cargo_base.replace("tokio = \"1\"\n", "tokio = \"1\"\nruntime = \"1\"\n");
    let cargo_merged = cargo_theirs.replace("strip = true", "strip = false");
    let ws = workspace(&[
        ("docker-compose.yml", "edited by hand\n"),
        ("Cargo.toml", &cargo_mine),
    ]);
    let base = set(&[
        ("docker-compose.yml", "v1 compose\n", G),
        ("Cargo.toml", cargo_base, G),
    ]);
    let current = set(&[
        ("docker-compose.yml", "v2 compose\n", G),
        ("crates/runtime/src/lib.rs", "runtime\n", G),
        ("Cargo.toml", &cargo_theirs, G),
    ]);
    let up = upgraded(ws.path(), &base, &current);
    assert_eq!(
        read(ws.path(), "docker-compose.yml").unwrap(),
        "v2 compose\n"
    );
    assert_eq!(
        action(&up, "docker-compose.yml"),
        Some(FileAction::Rewritten)
    );
    assert_eq!(
        read(ws.path(), "crates/runtime/src/lib.rs").unwrap(),
        "runtime\n"
    );
    assert_eq!(read(ws.path(), "Cargo.toml").unwrap(), cargo_merged);
    assert_eq!(action(&up, "Cargo.toml"), Some(FileAction::Merged));
    let cargo = up
        .changes
        .iter()
        .find(|c| c.path == Path::new("Cargo.toml"));
    assert_eq!(cargo.unwrap().ownership, Ownership::Scaffolded);
}

#[test]
fn a_dry_run_writes_nothing_and_says_what_it_would_do() {
    let ws = workspace(&[("src/lib.rs", "a\nmine\nc\nd\ne\n"), ("src/gone.rs", "x\n")]);
    let before = tree(ws.path());
    let base = set(&[
        ("src/lib.rs", "a\nb\nc\nd\ne\n", S),
        ("src/gone.rs", "x\n", S),
    ]);
    let current = set(&[
        ("src/lib.rs", "a\nb\nc\nd\nnew\n", S),
        ("src/new.rs", "n\n", S),
    ]);
    let settings = Settings {
        dry_run: true,
        allow_dirty: false,
    };
    let Outcome::Upgraded(up) = upgrade(ws.path(), &base, &current, settings).unwrap() else {
        panic!("a dry run of an old workspace plans an upgrade");
    };
    assert_eq!(tree(ws.path()), before);
    assert_eq!(action(&up, "src/lib.rs"), Some(FileAction::Merged));
    assert_eq!(action(&up, "src/gone.rs"), Some(FileAction::Removed));
    assert_eq!(action(&up, "src/new.rs"), Some(FileAction::Created));
    let lib = up.plan.get(Path::new("src/lib.rs")).unwrap();
    assert!(
        lib.unified_diff().contains("-e\n+new\n"),
        "{}",
        lib.unified_diff()
    );
}

#[test]
fn a_second_run_changes_nothing_and_says_the_version() {
    let ws = workspace(&[("src/lib.rs", "a\nmine\nc\n"), ("src/gone.rs", "x\ny\n")]);
    let base = set(&[("src/lib.rs", "a\nb\nc\n", S), ("src/gone.rs", "x\n", S)]);
    let current = set(&[("src/lib.rs", "a\nnew\nc\n", S)]);
    upgraded(ws.path(), &base, &current);
    let after_first = tree(ws.path());
    let second = upgrade(ws.path(), &base, &current, Settings::default()).unwrap();
    assert!(
        matches!(second, Outcome::Current { version: 2, ref workspace } if workspace == "shop"),
        "{second:?}"
    );
    assert_eq!(tree(ws.path()), after_first);
}

#[test]
fn a_workspace_newer_than_the_version_upgraded_to_is_refused() {
    let ws = workspace(&[]);
    fs_err::write(
        ws.path().join(MANIFEST_FILE),
        MANIFEST.replace(
            "template_version = 1",
            "template_version = 3\nfuture_key = true",
        ),
    )
    .unwrap();
    let err = upgrade(
        ws.path(),
        &FileSet::new(),
        &FileSet::new(),
        Settings::default(),
    )
    .unwrap_err();
    assert!(
        err.message.contains("template version 3"),
        "{}",
        err.message
    );
    assert!(err.hint.unwrap().contains("update msvc"));
}

fn git(root: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(root)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

#[test]
fn uncommitted_changes_are_refused_by_name_unless_allowed() {
    if Command::new("git").arg("--version").output().is_err() {
        eprintln!("SKIPPED: git is not installed");
        return;
    }
    let ws = workspace(&[("src/lib.rs", "old\n")]);
    git(ws.path(), &["init", "-q"]);
    git(ws.path(), &["add", "."]);
    git(ws.path(), &["commit", "-q", "-m", "v1"]);
    write(ws.path(), "src/lib.rs", "old\nmine\n");
    write(ws.path(), "notes.txt", "new\n");
    let base = set(&[("src/lib.rs", "old\n", S)]);
    let current = set(&[("src/lib.rs", "new\n", S)]);

    let err = upgrade(ws.path(), &base, &current, Settings::default()).unwrap_err();
    assert!(
        err.message.contains("uncommitted changes"),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("src/lib.rs (dirty)"),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("notes.txt (untracked)"),
        "{}",
        err.message
    );
    assert!(err.hint.as_deref().unwrap().contains("--allow-dirty"));
    assert_eq!(read(ws.path(), "src/lib.rs").unwrap(), "old\nmine\n");
    assert!(
        read(ws.path(), MANIFEST_FILE)
            .unwrap()
            .contains("template_version = 1")
    );

    let allowed = Settings {
        dry_run: false,
        allow_dirty: true,
    };
    upgrade(ws.path(), &base, &current, allowed).unwrap();
    assert_eq!(
        read(ws.path(), "src/lib.rs").unwrap(),
        "<<<<<<< yours\nold\nmine\n||||||| template version 1\nold\n=======\nnew\n>>>>>>> template version 2\n"
    );
}

#[test]
fn a_clean_git_work_tree_and_a_directory_outside_git_proceed() {
    let base = set(&[("src/lib.rs", "old\n", S)]);
    let current = set(&[("src/lib.rs", "new\n", S)]);
    let outside = workspace(&[("src/lib.rs", "old\n")]);
    upgraded(outside.path(), &base, &current);
    assert_eq!(read(outside.path(), "src/lib.rs").unwrap(), "new\n");
    if Command::new("git").arg("--version").output().is_err() {
        return;
    }
    let clean = workspace(&[("src/lib.rs", "old\n")]);
    git(clean.path(), &["init", "-q"]);
    git(clean.path(), &["add", "."]);
    git(clean.path(), &["commit", "-q", "-m", "v1"]);
    upgraded(clean.path(), &base, &current);
    assert_eq!(read(clean.path(), "src/lib.rs").unwrap(), "new\n");
}

fn copy_dir(from: &Path, to: &Path) {
    fs_err::create_dir_all(to).unwrap();
    for entry in fs_err::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            fs_err::copy(entry.path(), dest).unwrap();
        }
    }
}

#[test]
fn version_1_fixtures_with_user_edits_merged_against_the_same_templates_keep_every_edit() {
    use super::v1::tests::{FIXTURES, fixture, have_rustfmt};
    if !have_rustfmt() {
        eprintln!("SKIPPED: rustfmt is not installed");
        return;
    }
    for name in FIXTURES {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join(name);
        copy_dir(&fixture(name), &root);
        let routes = "services/user-api/src/routes.rs";
        let edited = format!("{}// mine\n", read(&root, routes).unwrap());
        write(&root, routes, &edited);
        fs_err::remove_file(root.join("services/email-worker/tests/worker.rs")).unwrap();
        let cargo = format!(
            "{}\n[profile.dev]\ndebug = 0\n",
            read(&root, "Cargo.toml").unwrap()
        );
        write(&root, "Cargo.toml", &cargo);
        let before = tree(&root);

        let outcome = upgrade_with(&root, 2, &Settings::default(), |ws, protos| {
            let (base, shape) = render_version(1, ws, protos)?;
            let current = v1::render(&ws.root, &ws.manifest, protos, &shape)?;
            Ok(Renders {
                base,
                current,
                regenerate: false,
            })
        })
        .unwrap();
        let Outcome::Upgraded(up) = outcome else {
            panic!("version 1 is older than 2");
        };
        assert!(up.changes.is_empty(), "{name}: {:?}", up.changes);
        let mut after = tree(&root);
        let manifest = root.join(MANIFEST_FILE);
        let text = String::from_utf8(after.remove(&manifest).unwrap()).unwrap();
        assert!(text.contains("template_version = 2\n"), "{text}");
        let mut expected = before;
        expected.remove(&manifest);
        assert_eq!(after, expected, "{name}");
    }
}

/// A workspace made by msvc at template version 2 (one service of each kind, a REST
/// service calling the gRPC one and publishing, another calling it), without the runtime
/// crate, which is msvc's version rather than the template's.
/// The workspace msvc wrote at template `version`, under tests/fixtures/upgrade, without
/// its runtime crate (msvc's own, written whatever the version).
fn fixture_of(version: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/upgrade/v{version}/plain"))
}

/// Renders the fixture of `version` with that version's templates and checks it byte for
/// byte; returns the render, the shape, and the render of the current templates.
fn renders_its_fixture(version: u32) -> (FileSet, Shape, FileSet) {
    let root = fixture_of(version);
    let (ws, protos) = super::v1::tests::load(&root);
    let (base, shape) = render_version(version, &ws, &protos).unwrap();
    let mut without_runtime = FileSet::new();
    for (rel, f) in base.iter() {
        if !rel.starts_with(crate::render::RUNTIME_DIR) {
            without_runtime.insert(rel, f.text.clone(), f.ownership);
        }
    }
    let problems = super::v1::tests::differences(&root, &without_runtime);
    assert!(
        problems.is_empty(),
        "the templates of version {version} (templates/ with templates-v{version}/ in place) \
         no longer render what msvc at version {version} wrote:\n{}",
        problems.join("\n")
    );
    let current = render_current(&root, &ws.manifest, &protos, &shape).unwrap();
    (base, shape, current)
}

#[test]
fn version_2_renders_its_fixture_byte_for_byte_through_its_delta() {
    let (base, shape, current) = renders_its_fixture(2);
    assert!(shape.examples.is_empty(), "{shape:?}");
    // And the current templates do not: the version was raised for a reason.
    let changed: Vec<_> = current
        .iter()
        .filter(|(rel, f)| base.get(rel).is_some_and(|b| b.text != f.text))
        .map(|(rel, _)| rel.to_path_buf())
        .collect();
    assert!(
        changed.contains(&PathBuf::from("services/user-api/src/routes.rs")),
        "{changed:?}"
    );
}

/// Version 3 had `database = "postgres"` in the manifest and nothing in the code: its
/// delta (templates-v3/) holds the templates as they were, and empty files for those it
/// did not have (the migrations, a service's build.rs).
#[test]
fn version_3_renders_its_fixture_byte_for_byte_through_its_delta() {
    let (base, _, current) = renders_its_fixture(3);
    // The current templates give the services with a database their code.
    for added in [
        "services/orders/migrations/0001_init.sql",
        "services/orders/build.rs",
        "services/mailer/migrations/0001_init.sql",
    ] {
        assert!(
            current.get(Path::new(added)).is_some() && base.get(Path::new(added)).is_none(),
            "{added}"
        );
    }
}
