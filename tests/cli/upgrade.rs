//! `msvc upgrade` on copies of what msvc at template versions 1 and 2 wrote
//! (tests/fixtures/upgrade/v1 and v2). The merge rules themselves are tested in the
//! library, on made-up versions (src/upgrade/tests.rs).

use std::path::Path;
use std::process::Command;

use msvc::workspace::model::TEMPLATE_VERSION;

use crate::support::{Scratch, snapshot_tree, stderr, stdout};

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

/// A copy of a version 1 fixture as the scratch directory's workspace, `shop/`.
fn fixture(name: &str) -> Scratch {
    let s = Scratch::new();
    let from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/upgrade/v1")
        .join(name);
    copy_dir(&from, &s.ws());
    s
}

fn set_version(s: &Scratch, version: u32) {
    let text = s.read("services.toml").replace(
        "template_version = 1",
        &format!("template_version = {version}"),
    );
    s.write("services.toml", &text);
}

#[test]
fn a_workspace_at_this_msvcs_version_is_left_alone() {
    if TEMPLATE_VERSION != 1 {
        // The fixtures are version 1: below this msvc's version they are upgraded.
        return;
    }
    for name in ["shop", "plain"] {
        let s = fixture(name);
        let before = snapshot_tree(&s.ws());
        let out = s.run(&["upgrade"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("is at template version 1, this msvc's; nothing to upgrade"),
            "{}",
            stderr(&out)
        );
        assert_eq!(snapshot_tree(&s.ws()), before);
    }
}

#[test]
fn the_json_of_a_workspace_at_this_version_has_no_files() {
    let s = fixture("shop");
    set_version(&s, TEMPLATE_VERSION);
    let out = s.ok(&["upgrade", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["from"], TEMPLATE_VERSION);
    assert_eq!(json["to"], TEMPLATE_VERSION);
    assert_eq!(json["files"], serde_json::json!([]));
    assert_eq!(json["conflicts"], serde_json::json!([]));
}

#[test]
fn a_workspace_from_a_newer_msvc_is_refused_with_a_hint_to_update() {
    let s = fixture("plain");
    let newer = TEMPLATE_VERSION + 1;
    set_version(&s, newer);
    // A newer msvc may write keys this one does not know: the version is read first.
    let text = s.read("services.toml").replace(
        "[workspace]\n",
        "[workspace]\nruntime = \"crates/runtime\"\n",
    );
    s.write("services.toml", &text);
    let before = snapshot_tree(&s.ws());
    let out = s.run(&["upgrade"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "the workspace is at template version {newer}, newer than this msvc's ({TEMPLATE_VERSION})"
        )),
        "{err}"
    );
    assert!(err.contains("services.toml:"), "{err}");
    assert!(err.contains("update msvc"), "{err}");
    assert_eq!(snapshot_tree(&s.ws()), before);
}

#[test]
fn a_dry_run_writes_nothing() {
    let s = fixture("shop");
    let before = snapshot_tree(&s.ws());
    let out = s.run(&["upgrade", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    if TEMPLATE_VERSION == 1 {
        assert!(
            stderr(&out).contains("nothing to upgrade"),
            "{}",
            stderr(&out)
        );
    } else {
        assert!(
            stdout(&out).contains("(dry run, nothing written)"),
            "{}",
            stdout(&out)
        );
        assert!(
            stdout(&out).contains("+++ b/services.toml"),
            "{}",
            stdout(&out)
        );
    }
    assert_eq!(snapshot_tree(&s.ws()), before);
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

#[test]
fn uncommitted_changes_are_named_and_refused_unless_allowed() {
    if Command::new("git").arg("--version").output().is_err() {
        eprintln!("SKIPPED: git is not installed");
        return;
    }
    let s = fixture("plain");
    // Older than any version this msvc has, so that there is something to upgrade; the
    // work tree is checked before anything is rendered.
    set_version(&s, 0);
    git(&s.ws(), &["init", "-q"]);
    git(&s.ws(), &["add", "."]);
    git(&s.ws(), &["commit", "-q", "-m", "version 1"]);
    s.write("services/user-api/src/routes.rs", "// mine\n");
    let before = snapshot_tree(&s.ws());

    let out = s.run(&["upgrade"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("uncommitted changes"), "{err}");
    assert!(
        err.contains("services/user-api/src/routes.rs (dirty)"),
        "{err}"
    );
    assert!(err.contains("--allow-dirty"), "{err}");
    assert_eq!(snapshot_tree(&s.ws()), before);

    // Allowed, it goes on to the version, which no renderer of this msvc knows.
    let out = s.run(&["upgrade", "--allow-dirty"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(!err.contains("uncommitted"), "{err}");
    assert!(
        err.contains("msvc cannot render template version 0"),
        "{err}"
    );
    assert_eq!(snapshot_tree(&s.ws()), before);
}

#[test]
fn help_shows_the_merge_rules_and_usage() {
    let s = Scratch::new();
    let out = s.ok(&["upgrade", "--help"]);
    let help = stdout(&out);
    for needle in [
        "--dry-run",
        "--allow-dirty",
        "<<<<<<< yours",
        "msvc upgrade --format json",
    ] {
        assert!(help.contains(needle), "{needle} missing from:\n{help}");
    }
}

/// The first upgrade, as a user has it: the example system as msvc wrote it at template
/// version 1, with edits to a handler, a route and its test, comes out thin over
/// msvc-runtime with every edit kept, builds, lints clean, passes its tests and `msvc
/// check`. The plain fixture (one service of each kind, both deploy targets) upgrades
/// without a conflict and lints clean too.
#[test]
fn example_from_template_version_1_upgrades_with_its_edits_and_passes() {
    let s = fixture("shop");
    let handler = "services/email-worker/src/handler.rs";
    let subject = "\n/// The subject line of the email sent for `msg`.\npub fn subject(msg: &UserMessage) -> String {\n    format!(\"A message for user {}\", msg.user_id)\n}\n";
    s.write(handler, &format!("{}{subject}", s.read(handler)));
    for file in [
        "services/user-api/src/routes.rs",
        "services/user-api/tests/api.rs",
    ] {
        let text = s.read(file);
        assert!(text.contains("\"user not found\""), "{file}");
        s.write(
            file,
            &text.replace("\"user not found\"", "\"no such user\""),
        );
    }

    let out = s.run(&["upgrade"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(!stderr(&out).contains("conflict"), "{}", stderr(&out));
    assert!(
        s.read("services.toml")
            .contains(&format!("template_version = {TEMPLATE_VERSION}"))
    );
    assert!(
        s.read(handler)
            .contains("pub fn subject(msg: &UserMessage)")
    );
    assert!(
        s.read("services/user-api/src/routes.rs")
            .contains("\"no such user\"")
    );
    // The machinery went to the runtime crate; the user's crates lost their copies.
    for gone in [
        "services/email-worker/src/consumer.rs",
        "services/user-api/src/metrics.rs",
        "services/user-service/src/shutdown.rs",
    ] {
        assert!(!s.ws().join(gone).exists(), "{gone} is still there");
    }
    assert!(
        s.ws()
            .join("crates/msvc-runtime/src/worker/consumer.rs")
            .is_file()
    );
    // A second run has nothing left to do.
    let again = s.run(&["upgrade"]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("nothing to upgrade"),
        "{}",
        stderr(&again)
    );

    let check = s.run(&["check"]);
    assert_eq!(check.status.code(), Some(0), "{}", stdout(&check));
    let ws = s.ws();
    crate::generated::fmt_and_clippy(&ws);
    crate::generated::cargo(&ws, &["test", "--workspace"]);

    let plain = fixture("plain");
    let out = plain.run(&["upgrade"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let check = plain.run(&["check"]);
    assert_eq!(check.status.code(), Some(0), "{}", stdout(&check));
    crate::generated::fmt_and_clippy(&plain.ws());
}

/// A copy of what msvc at template version 2 wrote (tests/fixtures/upgrade/v2/plain).
fn v2_fixture() -> Scratch {
    let s = Scratch::new();
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/upgrade/v2/plain");
    copy_dir(&from, &s.ws());
    s
}

/// Version 2 to this one: a user's edit stays, a file the user never changed takes the
/// new render (user-api's routes gain the samples of its relations), the runtime crate
/// the fixture leaves out is written, and the workspace checks clean.
#[test]
fn a_version_2_workspace_upgrades_keeping_its_edits() {
    let s = v2_fixture();
    let store = s.read("services/user-api/src/store.rs").replace(
        r#"format!("user {id}")"#,
        r#"format!("the user numbered {id}")"#,
    );
    assert!(store.contains("the user numbered"), "the edit applies");
    s.write("services/user-api/src/store.rs", &store);

    let out = s.run(&["upgrade"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        s.read("services.toml")
            .contains(&format!("template_version = {TEMPLATE_VERSION}")),
        "{}",
        s.read("services.toml")
    );
    assert_eq!(s.read("services/user-api/src/store.rs"), store);
    let routes = s.read("services/user-api/src/routes.rs");
    assert!(routes.contains("/peers/user-service/{id}"), "{routes}");
    assert!(s.ws().join("crates/msvc-runtime/src/lib.rs").is_file());

    let again = s.run(&["upgrade"]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("nothing to upgrade"),
        "{}",
        stderr(&again)
    );
    let check = s.run(&["check"]);
    assert_eq!(check.status.code(), Some(0), "{}", stdout(&check));
}

/// Version 3 to this one: the services that version 3 recorded `database = "postgres"`
/// for, with no code using it, get their store on a table, a first migration and the
/// wiring that runs it; the others keep what they had, and the workspace checks clean.
#[test]
fn a_version_3_workspace_gives_its_services_with_a_database_their_code() {
    let s = Scratch::new();
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/upgrade/v3/plain");
    copy_dir(&from, &s.ws());
    let out = s.run(&["upgrade"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let migration = s.read("services/orders/migrations/0001_init.sql");
    assert!(migration.contains("CREATE TABLE orders"), "{migration}");
    assert!(
        s.read("services/orders/src/store.rs")
            .contains("FROM orders WHERE id = $1")
    );
    assert!(
        s.read("services/orders/Cargo.toml")
            .contains("sqlx.workspace = true")
    );
    assert!(
        s.read("services/mailer/src/handler.rs")
            .contains("INSERT INTO received_messages")
    );
    assert!(
        s.read("services/users/src/wiring.rs")
            .contains("sqlx::migrate!()")
    );
    assert!(!s.ws().join("services/user-api/migrations").exists());
    assert!(!s.read("services/user-api/src/store.rs").contains("sqlx"));
    let check = s.run(&["check"]);
    assert_eq!(check.status.code(), Some(0), "{}", stdout(&check));
}
