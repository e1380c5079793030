//! The rendered Rust is rustfmt-clean as written, for every name length up to the limit
//! msvc skips its formatter for; beyond it, one rustfmt run per command formats it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::Scratch;

/// `CLEAN_NAMES_UP_TO` in src/render/mod.rs: up to it `msvc new` starts no formatter.
const CLEAN_NAMES_UP_TO: usize = 20;

/// A name of `len` characters starting with `first`; `kebab` puts a hyphen after the first
/// letter, as in `a-bc`, so the snake and Pascal forms differ in length.
fn name(first: char, len: usize, kebab: bool) -> String {
    let mut s = String::from(first);
    if kebab && len >= 3 {
        s.push('-');
    }
    while s.len() < len {
        s.push('x');
    }
    s
}

/// A proto with all four kinds of RPC, every identifier `len` characters long.
fn proto(len: usize) -> String {
    let id = |first: char| name(first, len, false);
    let pascal = |first: char| {
        let mut s = id(first);
        s[..1].make_ascii_uppercase();
        s
    };
    format!(
        "syntax = \"proto3\";\npackage {pkg}.v1;\n\nservice {svc} {{\n  rpc {u}({m}) returns ({r});\n  rpc {s}({m}) returns (stream {r});\n  rpc {c}(stream {m}) returns ({r});\n  rpc {b}(stream {m}) returns (stream {r});\n}}\n\nmessage {m} {{\n  int64 {f} = 1;\n  string {g} = 2;\n}}\n\nmessage {r} {{\n  repeated {m} {f} = 1;\n}}\n",
        pkg = id('p'),
        svc = pascal('s'),
        u = pascal('u'),
        s = pascal('v'),
        c = pascal('c'),
        b = pascal('b'),
        m = pascal('m'),
        r = pascal('r'),
        f = id('f'),
        g = id('g'),
    )
}

/// A stand-in for rustfmt that counts its runs in `log`, then runs the real one.
fn counting_rustfmt(dir: &Path) -> (PathBuf, PathBuf) {
    let log = dir.join("rustfmt-runs");
    let script = dir.join("rustfmt");
    fs_err::write(
        &script,
        format!(
            "#!/bin/sh\necho run >> '{}'\nexec rustfmt \"$@\"\n",
            log.display()
        ),
    )
    .unwrap();
    let mut perms = fs_err::metadata(&script).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    fs_err::set_permissions(&script, perms).unwrap();
    (script, log)
}

fn runs(log: &Path) -> usize {
    fs_err::read_to_string(log).map_or(0, |s| s.lines().count())
}

/// The systems the sweep renders, each with every name `len` long.
#[derive(Clone, Copy, Debug)]
enum System {
    /// A REST service made calling another REST service (the sample call of a REST
    /// peer), then linked to two queues.
    Rest,
    /// A gRPC service from the default proto (named `…-service`, as gRPC services
    /// usually are) and a REST service made calling it and publishing to two queues,
    /// so that it gets the sample call and publishes.
    Grpc,
    /// A gRPC service from a proto with all four kinds of RPC and a REST service
    /// calling it.
    GrpcProto,
    /// A worker consuming two queues.
    Worker,
    /// Each kind with a database: a gRPC service from the default proto, a REST
    /// service publishing to two queues through the outbox, a worker consuming them.
    Database,
}

impl System {
    /// The longest names whose render must start no formatter: their derived forms
    /// (`…_URL` variables, `…_server` modules) stay within `CLEAN_NAMES_UP_TO`.
    fn ordinary_up_to(self) -> usize {
        match self {
            Self::Rest | Self::Worker => CLEAN_NAMES_UP_TO - "_URL".len(),
            Self::Grpc | Self::GrpcProto | Self::Database => CLEAN_NAMES_UP_TO - "_server".len(),
        }
    }

    /// The longest names the sweep renders: well past the limit, and for services with
    /// a database short of the 63 characters of a database's name (`WORKSPACE_SERVICE`).
    fn longest(self) -> usize {
        match self {
            Self::Database => 30,
            _ => CLEAN_NAMES_UP_TO + 12,
        }
    }

    /// Renders the system into a new workspace under `root`; returns it and the number
    /// of msvc commands run.
    fn render(self, root: &Path, rustfmt: &Path, len: usize) -> (PathBuf, usize) {
        let msvc = |cwd: &Path, args: &[&str]| {
            let out = assert_cmd::Command::cargo_bin("msvc")
                .unwrap()
                .current_dir(cwd)
                .env("RUSTFMT", rustfmt)
                .args(args)
                .arg("-q")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "msvc {args:?} failed at length {len}:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        fs_err::create_dir_all(root).unwrap();
        let ws_name = name('w', len, true);
        msvc(root, &["init", &ws_name]);
        let ws = root.join(&ws_name);
        let queues = format!("{},{}", name('q', len, false), name('o', len, false));
        let caller = name('r', len, false);
        let commands: Vec<Vec<String>> = match self {
            Self::Rest => {
                let peer = name('a', len, true);
                vec![
                    args(&["new", &peer, "--rest"]),
                    args(&["new", &caller, "--rest", "--depends-on", &peer]),
                    args(&["link", &caller, "--publishes", &queues]),
                ]
            }
            Self::Database => {
                let grpc = grpc_name(len);
                let db = ["--db", "postgres"];
                vec![
                    args(&[&["new", &grpc, "--grpc"][..], &db].concat()),
                    args(&[&["new", &caller, "--rest", "--publishes", &queues][..], &db].concat()),
                    args(&[&["new", &name('k', len, true), "--worker"][..], &db].concat()),
                    args(&["link", &name('k', len, true), "--consumes", &queues]),
                ]
            }
            Self::Grpc => {
                let grpc = grpc_name(len);
                vec![
                    args(&["new", &grpc, "--grpc"]),
                    args(&[
                        "new",
                        &caller,
                        "--rest",
                        "--depends-on",
                        &grpc,
                        "--publishes",
                        &queues,
                    ]),
                ]
            }
            Self::GrpcProto => {
                let proto_path = root.join("streams.proto");
                fs_err::write(&proto_path, proto(len)).unwrap();
                let streams = name('s', len, false);
                let proto_arg = proto_path.to_str().unwrap();
                vec![
                    args(&["new", &streams, "--grpc", "--proto", proto_arg]),
                    args(&["new", &caller, "--rest", "--depends-on", &streams]),
                ]
            }
            Self::Worker => vec![args(&[
                "new",
                &name('k', len, true),
                "--worker",
                "--consumes",
                &queues,
            ])],
        };
        for command in &commands {
            let command: Vec<&str> = command.iter().map(String::as_str).collect();
            msvc(&ws, &command);
        }
        (ws, commands.len() + 1)
    }
}

/// `gx-service`: the proto's service is then `GxService`, not `…ServiceService`.
fn grpc_name(len: usize) -> String {
    if len < 10 {
        name('g', len, true)
    } else {
        format!("{}-service", name('g', len - "-service".len(), false))
    }
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|a| (*a).to_owned()).collect()
}

fn fmt_check(ws: &Path, what: &str) {
    let out = Command::new("cargo")
        .args(["fmt", "--all", "--check"])
        .current_dir(ws)
        .output()
        .expect("cargo fmt runs");
    assert!(
        out.status.success(),
        "{what} renders Rust rustfmt would change:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every length from 1 to well past the limit: the Rust msvc writes is rustfmt-clean at
/// each, without a formatter up to the system's ordinary length, and formatted by one
/// rustfmt run per command where it runs.
fn sweep(system: System) {
    let s = Scratch::new();
    let (rustfmt, log) = counting_rustfmt(s.path());
    for len in 1..=system.longest() {
        let before = runs(&log);
        let root = s.path().join(format!("len{len}"));
        let (ws, commands) = system.render(&root, &rustfmt, len);
        let ran = runs(&log) - before;
        fmt_check(&ws, &format!("{system:?} with names of {len} characters"));
        if len <= system.ordinary_up_to() {
            assert_eq!(
                ran, 0,
                "{system:?} with names of {len} characters started rustfmt"
            );
        }
        assert!(
            ran <= commands,
            "{commands} commands at length {len} ran rustfmt {ran} times"
        );
        fs_err::remove_dir_all(&root).unwrap();
    }
    assert!(runs(&log) > 0, "names past the limit are formatted");
}

#[test]
fn rest_services_render_rustfmt_clean_at_every_name_length() {
    sweep(System::Rest);
}

#[test]
fn grpc_services_render_rustfmt_clean_at_every_name_length() {
    sweep(System::Grpc);
}

#[test]
fn grpc_services_from_a_streaming_proto_render_rustfmt_clean_at_every_name_length() {
    sweep(System::GrpcProto);
}

#[test]
fn workers_render_rustfmt_clean_at_every_name_length() {
    sweep(System::Worker);
}

#[test]
fn services_with_a_database_render_rustfmt_clean_at_every_name_length() {
    sweep(System::Database);
}

#[test]
fn the_example_renders_rustfmt_clean_without_a_formatter() {
    let s = Scratch::new();
    let (rustfmt, log) = counting_rustfmt(s.path());
    let out = assert_cmd::Command::cargo_bin("msvc")
        .unwrap()
        .current_dir(s.path())
        .env("RUSTFMT", &rustfmt)
        .args(["init", "shop", "--example", "-q"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    fmt_check(&s.ws(), "init --example");
    assert_eq!(runs(&log), 0, "init --example started rustfmt");
}

#[test]
fn a_rustfmt_config_of_the_users_is_applied_to_what_msvc_writes() {
    let s = Scratch::with_workspace();
    s.write("rustfmt.toml", "hard_tabs = true\n");
    s.ok(&["new", "billing", "--rest"]);
    let lib = s.read("services/billing/src/lib.rs");
    assert!(lib.contains("\n\t"), "{lib}");
    assert!(!lib.contains("\n    "), "{lib}");
}
