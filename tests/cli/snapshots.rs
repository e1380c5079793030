//! Snapshots of every template variant's rendered files, reviewed as diffs.

use crate::support::{EMAIL_WORKER, Scratch, USER_API, dump_tree, stdout};

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("../snapshots");
    s.set_prepend_module_to_snapshot(false);
    s
}

#[test]
fn workspace_init() {
    let s = Scratch::with_workspace();
    settings().bind(|| {
        insta::assert_snapshot!("init", dump_tree(&s.ws(), &[""]));
    });
}

#[test]
fn rest_service() {
    let s = Scratch::with_workspace();
    s.ok(&["new", "user-api", "--rest", "--port", "5000"]);
    settings().bind(|| {
        insta::assert_snapshot!("rest", dump_tree(&s.ws(), &["services/user-api/"]));
    });
}

/// A REST service made with a peer and a queue: its routes show a call of the peer and a
/// publish, its openapi.yaml declares them and its tests cover both.
#[test]
fn rest_service_with_samples() {
    let s = Scratch::with_workspace();
    s.ok(&["new", "user-service", "--grpc"]);
    s.ok(&[
        "new",
        "orders",
        "--rest",
        "--depends-on",
        "user-service",
        "--publishes",
        "order_created",
    ]);
    settings().bind(|| {
        insta::assert_snapshot!(
            "rest_with_samples",
            dump_tree(&s.ws(), &["services/orders/"])
        );
    });
}

#[test]
fn grpc_service() {
    let s = Scratch::with_workspace();
    s.ok(&["new", "user-service", "--grpc"]);
    settings().bind(|| {
        insta::assert_snapshot!(
            "grpc",
            dump_tree(
                &s.ws(),
                &["services/user-service/", "proto/", "crates/contracts/"]
            )
        );
    });
}

#[test]
fn grpc_service_from_proto() {
    let s = Scratch::with_workspace();
    s.write(
        "proto/billing/v2/billing.proto",
        "syntax = \"proto3\";\npackage billing.v2;\nimport \"google/protobuf/empty.proto\";\nservice Billing {\n  rpc Charge(ChargeRequest) returns (ChargeReply);\n  rpc Watch(google.protobuf.Empty) returns (stream ChargeReply);\n  rpc Upload(stream ChargeRequest) returns (google.protobuf.Empty);\n}\nmessage ChargeRequest { int64 cents = 1; }\nmessage ChargeReply { string id = 1; }\n",
    );
    s.ok(&[
        "new",
        "billing",
        "--grpc",
        "--proto",
        "proto/billing/v2/billing.proto",
    ]);
    settings().bind(|| {
        insta::assert_snapshot!(
            "grpc_from_proto",
            dump_tree(
                &s.ws(),
                &["services/billing/src/", "crates/contracts/src/lib.rs"]
            )
        );
    });
}

#[test]
fn worker_service() {
    let s = Scratch::with_workspace();
    s.ok(&[
        "new",
        "email-worker",
        "--worker",
        "--consumes",
        "user_message",
    ]);
    settings().bind(|| {
        insta::assert_snapshot!(
            "worker",
            dump_tree(&s.ws(), &["services/email-worker/", "crates/contracts/"])
        );
    });
}

/// Each kind made with `--db postgres`: its store on a table of its database, the
/// migration that creates it, the wiring that migrates at start, the outbox behind the
/// REST service's publish and the inbox behind the worker's handler, and tests on a
/// database of their own.
#[test]
fn services_with_a_database() {
    let s = Scratch::with_workspace();
    s.ok(&["new", "user-service", "--grpc", "--db", "postgres"]);
    s.ok(&[
        "new",
        "orders",
        "--rest",
        "--db",
        "postgres",
        "--publishes",
        "order_created",
    ]);
    s.ok(&[
        "new",
        "mailer",
        "--worker",
        "--db",
        "postgres",
        "--consumes",
        "order_created",
    ]);
    settings().bind(|| {
        insta::assert_snapshot!(
            "with_database",
            dump_tree(
                &s.ws(),
                &[
                    "services/",
                    "crates/contracts/Cargo.toml",
                    "Cargo.toml",
                    "services.toml",
                    "docker-compose.yml"
                ]
            )
        );
    });
}

#[test]
fn manifest_and_compose_diffs() {
    let s = Scratch::with_workspace();
    s.ok(&["new", "user-service", "--grpc"]);
    let out = s.ok(&[&USER_API[..], &["--dry-run"]].concat());
    settings().bind(|| {
        insta::assert_snapshot!("new_dry_run", stdout(&out));
    });
    s.ok(&USER_API);
    s.ok(&EMAIL_WORKER);
    settings().bind(|| {
        insta::assert_snapshot!("compose", s.read("docker-compose.yml"));
        insta::assert_snapshot!("manifest", s.read("services.toml"));
    });
}

#[test]
fn example_workspace() {
    let s = Scratch::new();
    s.run_in(s.path(), &["init", "shop", "--example"]);
    settings().bind(|| {
        insta::assert_snapshot!(
            "example",
            dump_tree(
                &s.ws(),
                &[
                    "services.toml",
                    "buf.yaml",
                    "services/user-api/",
                    "crates/contracts/src/"
                ]
            )
        );
    });
}

#[test]
fn rest_client_from_openapi() {
    let s = Scratch::with_workspace();
    s.ok(&["new", "user-api", "--rest"]);
    s.ok(&["new", "front", "--rest", "--depends-on", "user-api"]);
    settings().bind(|| {
        insta::assert_snapshot!("rest_client", s.read("crates/contracts/src/rest.rs"));
    });
}
