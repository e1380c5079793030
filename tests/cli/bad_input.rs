//! Every kind of bad input: a clear error, exit code 2, and the workspace untouched.

use crate::support::{Scratch, snapshot_tree, stderr, stdout};

/// Runs `args` in a workspace prepared by `setup` and checks the refusal.
fn refused(setup: impl Fn(&Scratch), args: &[&str], expect: &[&str]) {
    let s = Scratch::with_workspace();
    s.ok(&["new", "user-service", "--grpc"]);
    setup(&s);
    let before = snapshot_tree(s.path());
    let out = s.run(args);
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "msvc {args:?} should exit 2:\n{err}"
    );
    for e in expect {
        assert!(err.contains(e), "msvc {args:?}: expected {e:?} in:\n{err}");
    }
    assert!(err.contains("hint:"), "msvc {args:?}: no hint in:\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        before,
        snapshot_tree(s.path()),
        "msvc {args:?} changed files"
    );
}

fn nothing(_: &Scratch) {}

#[test]
fn invalid_service_names() {
    let long = "a".repeat(64);
    let cases: &[(&[&str], &str)] = &[
        (&["new", "UserApi", "--rest"], "must be lowercase"),
        (&["new", "user_api", "--rest"], "cannot contain `_`"),
        (
            &["new", "1user", "--rest"],
            "must start with a lowercase letter",
        ),
        (
            &["new", "--rest", "--", "-user"],
            "must start with a lowercase letter",
        ),
        (&["new", "user-", "--rest"], "cannot end with `-`"),
        (&["new", "..", "--rest"], "path separators"),
        (&["new", "a/b", "--rest"], "path separators"),
        (&["new", "type", "--rest"], "Rust keyword"),
        (&["new", "self", "--rest"], "Rust keyword"),
        (&["new", &long, "--rest"], "at most 63 characters"),
        (&["new", "user-service", "--rest"], "already exists"),
    ];
    for (args, msg) in cases {
        refused(nothing, args, &[msg]);
    }
}

#[test]
fn name_already_used_points_at_the_manifest() {
    refused(
        nothing,
        &["new", "user-service", "--worker"],
        &[
            "already exists",
            "services.toml:",
            "[services.user-service]",
        ],
    );
}

#[test]
fn unknown_dependency_suggests_a_name() {
    refused(
        nothing,
        &["new", "user-api", "--rest", "--depends-on", "user-servise"],
        &[
            "`user-servise`, which is not a service",
            "did you mean `user-service`?",
        ],
    );
}

#[test]
fn taken_port_names_its_owner_and_line() {
    refused(
        nothing,
        &["new", "user-api", "--rest", "--port", "50051"],
        &[
            "port 50051 is already used by `user-service` (port)",
            "services.toml:",
            "port = 50051",
        ],
    );
}

#[test]
fn malformed_manifest_names_line_and_column() {
    refused(
        |s| {
            let text = s
                .read("services.toml")
                .replace("kind = \"grpc\"", "kind = grpc");
            s.write("services.toml", &text);
        },
        &["new", "user-api", "--rest"],
        &["invalid manifest", "services.toml:", "kind = grpc"],
    );
}

#[test]
fn unknown_manifest_key_is_refused() {
    refused(
        |s| {
            let text = s
                .read("services.toml")
                .replace("port = 50051", "prot = 50051");
            s.write("services.toml", &text);
        },
        &["new", "user-api", "--rest"],
        &["unknown field `prot`", "services.toml:"],
    );
}

#[test]
fn bad_queue_and_flag_combinations() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["new", "w", "--worker", "--consumes", "Bad Queue"],
            "not a valid queue name",
        ),
        (
            &["new", "w", "--worker", "--port", "7000"],
            "a worker has no main port",
        ),
        (
            &["new", "r", "--rest", "--proto", "x.proto"],
            "--proto only applies to gRPC",
        ),
        (
            &["new", "g", "--grpc", "--resource", "x"],
            "--resource only applies to REST",
        ),
        (
            &["new", "g", "--grpc", "--proto", "missing.proto"],
            "cannot read proto",
        ),
    ];
    for (args, msg) in cases {
        refused(nothing, args, &[msg]);
    }
}

#[test]
fn broken_proto_is_reported_at_its_line() {
    refused(
        |s| {
            s.write(
                "bad.proto",
                "syntax = \"proto3\";\nservice X {\n  rpc A(B) returns;\n}\n",
            );
        },
        &["new", "billing", "--grpc", "--proto", "bad.proto"],
        &["cannot parse proto", "bad.proto:3:"],
    );
}

#[test]
fn proto_without_a_service_or_package() {
    refused(
        |s| {
            s.write(
                "msgs.proto",
                "syntax = \"proto3\";\npackage m.v1;\nmessage A { int64 id = 1; }\n",
            );
        },
        &["new", "billing", "--grpc", "--proto", "msgs.proto"],
        &["declares no service"],
    );
    refused(
        |s| {
            s.write(
                "nopkg.proto",
                "syntax = \"proto3\";\nservice S { rpc A(B) returns (B); }\nmessage B {}\n",
            );
        },
        &["new", "billing", "--grpc", "--proto", "nopkg.proto"],
        &["has no `package`"],
    );
}

#[test]
fn no_workspace_found() {
    let s = Scratch::new();
    let out = s.run(&["new", "user-api", "--rest"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("no services.toml found"), "{err}");
    assert!(err.contains("msvc init"), "{err}");
    assert!(snapshot_tree(s.path()).is_empty());
}

#[test]
fn init_refuses_a_non_empty_directory() {
    let s = Scratch::new();
    fs_err::create_dir(s.path().join("shop")).unwrap();
    fs_err::write(s.path().join("shop/notes.txt"), "mine").unwrap();
    let out = s.run_in(s.path(), &["init", "shop"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is not empty"), "{}", stderr(&out));
    assert!(stderr(&out).contains("--force"));
    assert_eq!(snapshot_tree(&s.path().join("shop")).len(), 1);
}

#[test]
fn failure_halfway_leaves_the_workspace_as_it_was() {
    // A directory where the service's Cargo.toml should go makes one write fail late,
    // after services.toml and others were staged.
    refused(
        |s| fs_err::create_dir_all(s.ws().join("services/user-api/Cargo.toml/x")).unwrap(),
        &["new", "user-api", "--rest"],
        &["services/user-api/Cargo.toml", "nothing was changed"],
    );
}

#[test]
fn unwritable_directory() {
    let s = Scratch::with_workspace();
    let before = snapshot_tree(s.path());
    let guard = ReadOnly::new(&s.ws());
    let out = s.run(&["new", "user-api", "--rest"]);
    drop(guard);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot write") || err.contains("ermission") || err.contains("not permitted"),
        "{err}"
    );
    assert_eq!(before, snapshot_tree(s.path()));
}

/// Makes a directory unwritable, even for root (immutable attribute), until dropped.
struct ReadOnly(std::path::PathBuf, bool);

impl ReadOnly {
    fn new(dir: &std::path::Path) -> Self {
        let chattr = std::process::Command::new("chattr")
            .arg("+i")
            .arg(dir)
            .status();
        if chattr.is_ok_and(|s| s.success()) {
            return Self(dir.to_path_buf(), true);
        }
        let mut perms = fs_err::metadata(dir).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o555);
        fs_err::set_permissions(dir, perms).unwrap();
        Self(dir.to_path_buf(), false)
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        if self.1 {
            let _ = std::process::Command::new("chattr")
                .arg("-i")
                .arg(&self.0)
                .status();
        } else if let Ok(meta) = fs_err::metadata(&self.0) {
            let mut perms = meta.permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
            let _ = fs_err::set_permissions(&self.0, perms);
        }
    }
}

/// Appends TOML to services.toml (the `[deploy]` table or a service's keys).
fn with_manifest(find: &'static str, with: &'static str) -> impl Fn(&Scratch) {
    move |s: &Scratch| {
        let text = s.read("services.toml");
        let text = if find.is_empty() {
            format!("{text}{with}")
        } else {
            text.replacen(find, with, 1)
        };
        s.write("services.toml", &text);
    }
}

#[test]
fn bad_deploy_values_are_refused_with_their_line() {
    refused(
        with_manifest("", "\n[deploy]\nregistry = \"GHCR.io/Acme\"\n"),
        &["deploy", "k8s"],
        &[
            "`GHCR.io/Acme` is not an image registry",
            "services.toml:",
            "registry = \"GHCR.io/Acme\"",
        ],
    );
    refused(
        with_manifest("", "\n[deploy]\ntag = \"v1:2\"\n"),
        &["deploy", "k8s"],
        &["`v1:2` is not an image tag", "tag = \"v1:2\""],
    );
    refused(
        with_manifest("admin_port = 9100\n", "admin_port = 9100\nreplicas = -2\n"),
        &["deploy", "k8s"],
        &[
            "services.toml:",
            "replicas = -2",
            "a whole number that is not negative",
        ],
    );
    refused(
        with_manifest(
            "admin_port = 9100\n",
            "admin_port = 9100\nresources = { cpu = \"fast\" }\n",
        ),
        &["deploy", "k8s"],
        &[
            "`cpu = \"fast\"` of `user-service` is not a CPU quantity",
            "services.toml:",
        ],
    );
    refused(
        with_manifest(
            "admin_port = 9100\n",
            "admin_port = 9100\nautoscale = { min = 0, max = 3 }\n",
        ),
        &["deploy", "prometheus"],
        &["`min` must be at least 1", "services.toml:"],
    );
}

#[test]
fn unknown_deploy_key_suggests_the_right_one() {
    refused(
        with_manifest("", "\n[deploy]\nregsitry = \"ghcr.io/acme\"\n"),
        &["deploy", "k8s"],
        &[
            "unknown field `regsitry`",
            "services.toml:",
            "did you mean `registry`?",
        ],
    );
    refused(
        with_manifest(
            "admin_port = 9100\n",
            "admin_port = 9100\nautoscale = { min = 1, maxx = 3 }\n",
        ),
        &["deploy", "k8s"],
        &["unknown field `maxx`", "did you mean `max`?"],
    );
}

#[test]
fn init_with_a_path_says_where_to_run_it() {
    let s = Scratch::new();
    let inner = s.path().join("inner");
    fs_err::create_dir(&inner).unwrap();
    let out = s.run_in(&inner, &["init", "../shop", "--example"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("a workspace name cannot contain path separators"),
        "{err}"
    );
    assert!(err.contains("cd .. && msvc init shop"), "{err}");
    assert!(!s.ws().exists());
    assert_eq!(fs_err::read_dir(&inner).unwrap().count(), 0);
}

#[test]
fn an_unclosed_array_is_reported_on_its_own_line() {
    let s = Scratch::with_workspace();
    s.ok(&["new", "user-service", "--grpc"]);
    s.ok(&["new", "user-api", "--rest", "--depends-on", "user-service"]);
    let m = s.read("services.toml");
    let line = m
        .lines()
        .position(|l| l == "depends_on = [\"user-service\"]")
        .expect("user-api depends on user-service")
        + 1;
    s.write(
        "services.toml",
        // The parser notices only at the next key, two lines down.
        &m.replace(
            "depends_on = [\"user-service\"]",
            "depends_on = [\"user-service\"\n\nreplicas = 1",
        ),
    );
    for args in [&["check"][..], &["sync"][..]] {
        let out = s.run(args);
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert!(all.contains("an array is not closed"), "{args:?}: {all}");
        assert!(
            all.contains(&format!("services.toml:{line}:29")),
            "{args:?}: {all}"
        );
    }
}

#[test]
fn every_misspelled_key_is_named_not_only_one() {
    refused(
        |s| {
            s.ok(&["new", "user-api", "--rest"]);
            let text = s
                .read("services.toml")
                .replace("port = 50051", "prot = 50051")
                .replace("port = 8080", "pord = 8080");
            s.write("services.toml", &text);
        },
        &["sync"],
        &[
            "unknown field `pord`",
            "unknown key `prot` in service `user-service`",
        ],
    );
}
