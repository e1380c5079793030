//! The runtime crate as generated workspaces compile it: with only the features their
//! services use (the contracts crate always enables `grpc` and `rest-client`, `amqp`
//! comes with queues, `postgres` with a database). msvc's own build turns every feature
//! on, so code that only some of them use is linted here, set by set, as a user's
//! `cargo clippy -- -D warnings` would see it.

use std::path::Path;
use std::process::Command;

const FEATURE_SETS: &[&str] = &[
    "grpc,rest-client",
    "grpc,rest-client,amqp",
    "grpc,rest-client,postgres",
];

#[test]
fn the_runtime_lints_clean_with_each_feature_set_a_workspace_uses() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for features in FEATURE_SETS {
        let out = Command::new(env!("CARGO"))
            .args([
                "clippy",
                "--quiet",
                "-p",
                "msvc-runtime",
                "--lib",
                "--features",
                features,
            ])
            .args(["--", "-D", "warnings"])
            .env("CARGO_TARGET_DIR", root.join("target/runtime-features"))
            .current_dir(root)
            .output()
            .expect("cargo runs");
        assert!(
            out.status.success(),
            "msvc-runtime with features {features} does not lint clean:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
