//! `msvc check` and `msvc graph`: a fixture that triggers each check and one that does not,
//! the output formats, levels, exit codes and the graph of the example system.
//!
//! A fixture (tests/fixtures/check/<ID>/{trigger,pass}/) is a `fixture.toml` that says
//! what to do to a fresh `msvc init shop --example`, plus `files/` copied over it.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde::Deserialize;

use crate::support::{Scratch, example, stderr, stdout};

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("../snapshots");
    s.set_prepend_module_to_snapshot(false);
    s
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/check")
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fixture {
    /// Commit the example in a git repository before the edits (for `--against`).
    #[serde(default)]
    git: bool,
    /// Run `msvc sync` after the edits, so only the problem under test remains.
    #[serde(default)]
    sync: bool,
    /// msvc commands run before the edits, e.g. `[["deploy", "k8s"]]`.
    #[serde(default)]
    run: Vec<Vec<String>>,
    /// Extra arguments to `msvc check`.
    #[serde(default)]
    args: Vec<String>,
    /// Paths to delete (files or directories).
    #[serde(default)]
    delete: Vec<String>,
    #[serde(default)]
    replace: Vec<Replace>,
    #[serde(default)]
    append: Vec<Append>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Replace {
    file: String,
    find: String,
    with: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Append {
    file: String,
    text: String,
}

fn git(s: &Scratch, args: &[&str]) {
    let out = std::process::Command::new("git")
        .args(["-c", "user.name=msvc", "-c", "user.email=msvc@example.com"])
        .args(args)
        .current_dir(s.ws())
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", stderr(&out));
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in fs_err::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().unwrap();
        if kind.is_symlink() {
            let link = fs_err::read_link(entry.path()).unwrap();
            std::os::unix::fs::symlink(link, target).unwrap();
        } else if kind.is_dir() {
            fs_err::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            fs_err::copy(entry.path(), target).unwrap();
        }
    }
}

/// Sets up a fixture's workspace; returns it with the arguments for `msvc check`.
fn prepare(dir: &Path) -> (Scratch, Vec<String>) {
    let text = fs_err::read_to_string(dir.join("fixture.toml")).unwrap();
    let fixture: Fixture =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let s = example();
    for args in &fixture.run {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        s.ok(&args);
    }
    // The commit has what the fixture's commands made; its edits come after.
    if fixture.git {
        git(&s, &["init", "-q"]);
        git(&s, &["add", "-A"]);
        git(&s, &["commit", "-qm", "the example system"]);
    }
    if dir.join("files").is_dir() {
        copy_tree(&dir.join("files"), &s.ws());
    }
    for r in &fixture.replace {
        let old = s.read(&r.file);
        assert_eq!(
            old.matches(&r.find).count(),
            1,
            "{}: `{}` must occur once in {}",
            dir.display(),
            r.find,
            r.file
        );
        s.write(&r.file, &old.replacen(&r.find, &r.with, 1));
    }
    for a in &fixture.append {
        let old = s.read(&a.file);
        s.write(&a.file, &(old + &a.text));
    }
    for d in &fixture.delete {
        let path = s.ws().join(d);
        if path.is_dir() {
            fs_err::remove_dir_all(path).unwrap();
        } else {
            fs_err::remove_file(path).unwrap();
        }
    }
    if fixture.sync {
        s.ok(&["sync", "-q"]);
    }
    (s, fixture.args)
}

fn check(s: &Scratch, args: &[String], format: &str) -> Output {
    let mut all: Vec<&str> = vec!["check", "--format", format];
    all.extend(args.iter().map(String::as_str));
    s.run(&all)
}

/// The IDs of a JSON report's diagnostics.
fn ids(out: &Output) -> Vec<String> {
    let report: serde_json::Value = serde_json::from_str(&stdout(out))
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}{}", stdout(out), stderr(out)));
    report["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect()
}

fn no_crash(out: &Output) {
    let err = stderr(out);
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
}

/// Runs both fixtures of a check: the trigger reports it (snapshot of the text output),
/// the other fixture checks clean.
fn fixture_pair(id: &str) {
    let dir = fixtures_dir().join(id);
    let (s, args) = prepare(&dir.join("trigger"));
    let json = check(&s, &args, "json");
    no_crash(&json);
    let found = ids(&json);
    assert!(
        found.iter().any(|f| f == id),
        "{id} not reported by its trigger fixture: {found:?}\n{}",
        stderr(&json)
    );
    let text = check(&s, &args, "text");
    let snapshot = format!(
        "exit: {}\n{}",
        text.status.code().unwrap_or(-1),
        stdout(&text)
    );
    settings().bind(|| {
        insta::assert_snapshot!(format!("check_{}", id.to_ascii_lowercase()), snapshot);
    });

    let (s, args) = prepare(&dir.join("pass"));
    let json = check(&s, &args, "json");
    no_crash(&json);
    let found = ids(&json);
    assert!(
        found.is_empty(),
        "{id}: the pass fixture is not clean: {found:?}\n{}",
        stdout(&check(&s, &args, "text"))
    );
    assert_eq!(json.status.code(), Some(0), "{}", stderr(&json));
}

macro_rules! fixtures {
    ($($name:ident => $id:literal,)*) => {
        /// Every check with fixtures, to compare with the catalog.
        const WITH_FIXTURES: &[&str] = &[$($id),*];
        $(
            #[test]
            fn $name() {
                fixture_pair($id);
            }
        )*
    };
}

// Test names avoid the words the README's test filter excludes.
fixtures! {
    manifest_syntax => "MANIFEST_SYNTAX",
    manifest_unknown_key => "MANIFEST_UNKNOWN_KEY",
    manifest_schema => "MANIFEST_SCHEMA",
    duplicate_service => "DUPLICATE_SERVICE",
    workspace_name => "WORKSPACE_NAME",
    service_name => "SERVICE_NAME",
    duration => "DURATION",
    missing_port => "MISSING_PORT",
    missing_admin_port => "MISSING_ADMIN_PORT",
    missing_proto => "MISSING_PROTO",
    missing_command => "MISSING_COMMAND",
    resource_name => "RESOURCE_NAME",
    replicas => "REPLICAS",
    deploy_value => "DEPLOY_VALUE",
    port_zero => "PORT_ZERO",
    port_conflict => "PORT_CONFLICT",
    self_dependency => "SELF_DEPENDENCY",
    unknown_dependency => "UNKNOWN_DEPENDENCY",
    dependency_cycle => "DEPENDENCY_CYCLE",
    queue_name => "QUEUE_NAME",
    unknown_check => "UNKNOWN_CHECK",
    proto_missing => "PROTO_MISSING",
    proto_compile => "PROTO_COMPILE",
    proto_no_service => "PROTO_NO_SERVICE",
    proto_no_package => "PROTO_NO_PACKAGE",
    proto_breaking => "PROTO_BREAKING",
    migration_file => "MIGRATION_FILE",
    migration_version => "MIGRATION_VERSION",
    migration_edited => "MIGRATION_EDITED",
    call_invalid => "CALL_INVALID",
    call_unknown_rpc => "CALL_UNKNOWN_RPC",
    call_unknown_route => "CALL_UNKNOWN_ROUTE",
    call_without_dependency => "CALL_WITHOUT_DEPENDENCY",
    openapi_invalid => "OPENAPI_INVALID",
    queue_no_publisher => "QUEUE_NO_PUBLISHER",
    queue_no_consumer => "QUEUE_NO_CONSUMER",
    broker_missing => "BROKER_MISSING",
    compose_drift => "COMPOSE_DRIFT",
    owned_files_drift => "GENERATED_DRIFT",
    contracts_invalid => "CONTRACTS_INVALID",
    k8s_drift => "K8S_DRIFT",
    k8s_image_tag_missing => "K8S_IMAGE_TAG_MISSING",
    k8s_overlay_stale => "K8S_OVERLAY_STALE",
    prometheus_drift => "PROMETHEUS_DRIFT",
    service_dir_missing => "SERVICE_DIR_MISSING",
    service_dir_unlisted => "SERVICE_DIR_UNLISTED",
    dockerfile_missing => "DOCKERFILE_MISSING",
    dockerfile_root_user => "DOCKERFILE_ROOT_USER",
    dockerfile_no_healthcheck => "DOCKERFILE_NO_HEALTHCHECK",
    dockerfile_latest_tag => "DOCKERFILE_LATEST_TAG",
    database_url => "DATABASE_URL",
    database_name => "DATABASE_NAME",
}

#[test]
fn every_check_has_both_fixtures() {
    for c in msvc::check::catalog::CHECKS {
        assert!(
            WITH_FIXTURES.contains(&c.id),
            "{} has no fixture test",
            c.id
        );
        for kind in ["trigger", "pass"] {
            let f = fixtures_dir().join(c.id).join(kind).join("fixture.toml");
            assert!(f.is_file(), "{} missing", f.display());
        }
    }
    assert_eq!(WITH_FIXTURES.len(), msvc::check::catalog::CHECKS.len());
}

#[test]
fn checks_doc_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/checks.md");
    let want = msvc::check::catalog::markdown();
    if std::env::var_os("MSVC_BLESS").is_some() {
        fs_err::create_dir_all(path.parent().unwrap()).unwrap();
        fs_err::write(&path, &want).unwrap();
    }
    let have = fs_err::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/checks.md is out of date with src/check/catalog.rs; run `MSVC_BLESS=1 cargo nextest run checks_doc_is_current`"
    );
}

#[test]
fn example_workspace_checks_clean() {
    let s = example();
    let out = s.run(&["check", "--deny", "warnings"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(
        stdout(&out),
        format!(
            "msvc check: no problems (3 services, 1 proto, {} checks)\n",
            // Every check but those that run only with --against.
            msvc::check::catalog::CHECKS.len() - msvc::check::catalog::AGAINST_ONLY.len()
        )
    );
}

#[test]
fn services_added_one_command_at_a_time_check_clean() {
    let s = Scratch::with_system();
    let out = s.run(&["check", "--deny", "warnings"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let s = Scratch::with_workspace();
    let out = s.run(&["check", "--deny", "warnings"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}

/// A workspace with an error and a warning of each output's interest.
fn with_problems() -> Scratch {
    let s = example();
    let m = s
        .read("services.toml")
        .replace("\nport = 5000\n", "\nport = 9100\n");
    s.write("services.toml", &m);
    let d = s
        .read("services/user-api/Dockerfile")
        .replace("USER nonroot:nonroot", "USER root");
    s.write("services/user-api/Dockerfile", &d);
    fs_err::create_dir_all(s.ws().join("services/old-svc")).unwrap();
    s
}

#[test]
fn exit_codes_and_levels() {
    let s = with_problems();
    assert_eq!(s.run(&["check"]).status.code(), Some(1));

    // Only warnings: exit 0, unless --deny warnings.
    let m = s
        .read("services.toml")
        .replace("\nport = 9100\n", "\nport = 5000\n");
    s.write("services.toml", &m);
    let out = s.run(&["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("warning[DOCKERFILE_ROOT_USER]"));
    let out = s.run(&["check", "--deny", "warnings"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("error[DOCKERFILE_ROOT_USER]"),
        "{}",
        stdout(&out)
    );
    // --quiet leaves warnings out.
    assert_eq!(stdout(&s.run(&["check", "-q"])), "");

    // Levels from services.toml: off, and a warning made an error.
    s.write(
        "services.toml",
        &(m.clone()
            + "\n[checks]\nDOCKERFILE_ROOT_USER = \"off\"\nSERVICE_DIR_UNLISTED = \"error\"\n"),
    );
    let out = s.run(&["check", "--format", "json"]);
    assert_eq!(ids(&out), ["SERVICE_DIR_UNLISTED"]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["diagnostics"][0]["level"], "error");
    // Other commands accept the [checks] table.
    s.ok(&["sync", "--dry-run"]);
    // --list shows the levels in force.
    let list = stdout(&s.ok(&["check", "--list"]));
    assert!(list.contains("DOCKERFILE_ROOT_USER       off*"), "{list}");
    assert!(list.contains("SERVICE_DIR_UNLISTED       error*"), "{list}");
}

#[test]
fn a_broken_manifest_is_a_diagnostic_for_check_and_an_error_for_others() {
    let s = example();
    let m = s
        .read("services.toml")
        .replace("\nkind = \"grpc\"", "\nkind = grpc");
    s.write("services.toml", &m);
    let out = s.run(&["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("error[MANIFEST_SYNTAX]: invalid TOML"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("services.toml:27:8"),
        "{}",
        stdout(&out)
    );
    let out = s.run(&["sync"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn usage_and_io_errors_exit_2() {
    let s = Scratch::new();
    let out = s.run(&["check"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no services.toml found"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("hint:"));

    let s = example();
    let out = s.run(&["check", "--against", "HEAD"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("--against needs a git repository"),
        "{}",
        stderr(&out)
    );
    git(&s, &["init", "-q"]);
    git(&s, &["add", "-A"]);
    git(&s, &["commit", "-qm", "x"]);
    let out = s.run(&["check", "--against", "no-such-branch"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("`no-such-branch` is not a commit"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        s.run(&["check", "--against", "HEAD"]).status.code(),
        Some(0)
    );

    for (args, expect) in [
        // clap refuses a format the command does not have, naming the ones it has.
        (
            &["sync", "--format", "sarif"][..],
            "invalid value 'sarif' for '--format <FORMAT>'\n  [possible values: text, json]",
        ),
        (
            &["graph", "--format", "junit"][..],
            "invalid value 'junit' for '--format <FORMAT>'\n  [possible values: mermaid, dot, json]",
        ),
        (
            &["check", "--list", "--format", "sarif"][..],
            "`--format sarif` does not apply to `check --explain` and `check --list`\nhint: use one of: text, json",
        ),
        (
            &["check", "--explain", "PORT_CONFLIT"][..],
            "did you mean `PORT_CONFLICT`?",
        ),
        (&["check", "--deny", "errors"][..], "invalid value 'errors'"),
    ] {
        let out = s.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(expect), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn explain_a_check() {
    let s = Scratch::new();
    let out = s.run(&["check", "--explain", "port_conflict"]);
    assert!(out.status.success());
    settings().bind(|| insta::assert_snapshot!("check_explain", stdout(&out)));
    let out = s.run(&["check", "--explain", "MANIFEST_SYNTAX", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["level"], "error");
}

#[test]
fn paths_are_shown_from_the_current_directory() {
    let s = with_problems();
    let out = s.run_in(s.path(), &["-C", "shop", "check"]);
    assert!(
        stdout(&out).contains("--> shop/services.toml:29:14"),
        "{}",
        stdout(&out)
    );
    let out = s.run_in(&s.ws().join("services"), &["check"]);
    assert!(
        stdout(&out).contains("--> ../services.toml:29:14"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn json_and_github_formats() {
    let s = with_problems();
    let out = s.run(&["check", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["summary"]["errors"], 1);
    assert_eq!(v["summary"]["warnings"], 2);
    let first = &v["diagnostics"][0];
    assert_eq!(first["id"], "PORT_CONFLICT");
    assert_eq!(first["file"], "services.toml");
    assert_eq!(first["line"], 29);
    assert_eq!(first["column"], 14);
    assert_eq!(first["end_column"], 18);
    assert!(first["hint"].as_str().is_some());

    let out = s.run(&["check", "--format", "github"]);
    assert_eq!(out.status.code(), Some(1));
    settings().bind(|| insta::assert_snapshot!("check_github", stdout(&out)));
}

#[test]
fn junit_parses() {
    let s = with_problems();
    let out = s.run(&["check", "--format", "junit"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
    let suites = doc.root_element();
    assert_eq!(suites.tag_name().name(), "testsuites");
    let cases: Vec<_> = suites
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    // Every check but those that run only with --against.
    let all = msvc::check::catalog::CHECKS.len() - msvc::check::catalog::AGAINST_ONLY.len();
    assert_eq!(cases.len(), all);
    assert_eq!(suites.attribute("tests"), Some(all.to_string().as_str()));
    assert_eq!(suites.attribute("failures"), Some("1"));
    let failed: Vec<&str> = cases
        .iter()
        .filter(|c| c.children().any(|n| n.has_tag_name("failure")))
        .map(|c| c.attribute("name").unwrap())
        .collect();
    assert_eq!(failed, ["PORT_CONFLICT"]);
    let warned = cases
        .iter()
        .find(|c| c.attribute("name") == Some("DOCKERFILE_ROOT_USER"))
        .unwrap();
    let out_text = warned
        .children()
        .find(|n| n.has_tag_name("system-out"))
        .unwrap()
        .text()
        .unwrap();
    assert!(
        out_text.contains("warning[DOCKERFILE_ROOT_USER]"),
        "{out_text}"
    );
}

#[test]
fn sarif_has_the_shape_of_sarif_2_1_0() {
    let s = with_problems();
    let out = s.run(&["check", "--format", "sarif"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    sarif_structure(&v);
    let results = v["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["ruleId"], "PORT_CONFLICT");
    let region = &results[0]["locations"][0]["physicalLocation"]["region"];
    assert_eq!(region["startLine"], 29);
    assert_eq!(region["startColumn"], 14);
    assert_eq!(region["endColumn"], 18);
}

/// What the SARIF 2.1.0 schema requires of the parts msvc writes, checked by hand: the
/// required properties, their types and enumerations.
fn sarif_structure(v: &serde_json::Value) {
    assert_eq!(v["version"], "2.1.0");
    assert!(v["$schema"].as_str().unwrap().contains("sarif-2.1.0"));
    let runs = v["runs"].as_array().expect("runs is an array");
    assert_eq!(runs.len(), 1);
    let driver = &runs[0]["tool"]["driver"];
    assert!(driver["name"].is_string());
    let rules = driver["rules"].as_array().unwrap();
    let rule_ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    for r in rules {
        assert!(r["shortDescription"]["text"].is_string());
        assert!(r["fullDescription"]["text"].is_string());
        assert!(r["help"]["text"].is_string());
        let level = r["defaultConfiguration"]["level"].as_str().unwrap();
        assert!(["none", "note", "warning", "error"].contains(&level));
        assert!(r["defaultConfiguration"]["enabled"].is_boolean());
        if let Some(name) = r["name"].as_str() {
            assert!(!name.eq_ignore_ascii_case(r["id"].as_str().unwrap()));
        }
    }
    for res in runs[0]["results"].as_array().unwrap() {
        assert!(res["message"]["text"].is_string());
        let id = res["ruleId"].as_str().unwrap();
        let index = res["ruleIndex"].as_u64().unwrap();
        assert_eq!(rule_ids[usize::try_from(index).unwrap()], id);
        assert!(["none", "note", "warning", "error"].contains(&res["level"].as_str().unwrap()));
        for loc in res["locations"].as_array().into_iter().flatten() {
            let phys = &loc["physicalLocation"];
            let uri = phys["artifactLocation"]["uri"].as_str().unwrap();
            assert!(!uri.contains(' ') && !uri.contains('\\'), "{uri}");
            if let Some(region) = phys.get("region") {
                for key in ["startLine", "startColumn", "endLine", "endColumn"] {
                    assert!(region[key].as_u64().unwrap() >= 1, "{key}");
                }
            }
        }
    }
}

/// The SARIF validator of the SARIF SDK (`npm install @microsoft/sarif-multitool`), which
/// checks the log against the 2.1.0 schema and SARIF's own rules.
#[test]
fn sarif_validates_against_the_schema() {
    let local =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/tools/node_modules/.bin/sarif-multitool");
    let tool = Some(local)
        .filter(|p| p.is_file())
        .or_else(|| which("sarif-multitool"));
    let Some(tool) = tool else {
        let msg = "SKIPPED sarif_validates_against_the_schema: sarif-multitool not found (npm install @microsoft/sarif-multitool)";
        assert!(std::env::var_os("CI").is_none(), "{msg}");
        eprintln!("\n!!! {msg}\n");
        return;
    };
    let s = with_problems();
    let out = s.run(&["check", "--format", "sarif"]);
    let file = s.path().join("msvc.sarif");
    fs_err::write(&file, stdout(&out)).unwrap();
    let v = std::process::Command::new(&tool)
        .arg("validate")
        .arg(&file)
        .output()
        .expect("sarif-multitool runs");
    let report = format!("{}{}", stdout(&v), stderr(&v));
    assert!(v.status.success(), "{report}");
    let errors: Vec<&str> = report.lines().filter(|l| l.contains(": error ")).collect();
    assert!(errors.is_empty(), "{report}");
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

#[test]
fn graph_of_the_example() {
    let s = example();
    let mermaid = stdout(&s.ok(&["graph"]));
    let dot = stdout(&s.ok(&["graph", "--format", "dot"]));
    settings().bind(|| {
        insta::assert_snapshot!("graph_mermaid", mermaid);
        insta::assert_snapshot!("graph_dot", dot);
    });
    assert_eq!(stdout(&s.ok(&["graph", "--format", "mermaid"])), mermaid);
    let readme =
        fs_err::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    assert!(
        readme.contains(&format!("```mermaid\n{mermaid}```")),
        "README.md's graph of the example system is not what `msvc graph` prints:\n{mermaid}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&stdout(&s.ok(&["graph", "--format", "json"]))).unwrap();
    assert_eq!(v["nodes"].as_array().unwrap().len(), 4);
    let kinds: Vec<&str> = v["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["consumes", "depends_on", "publishes"]);
    assert_eq!(v["edges"][1]["calls"][0], "UserService.GetUser");
}

#[test]
fn graph_draws_a_manifest_that_does_not_validate() {
    let s = example();
    let m = s.read("services.toml").replace(
        "\nproto = \"proto/user_service/v1/user_service.proto\"\n",
        "\nproto = \"proto/user_service/v1/user_service.proto\"\ndepends_on = [\"user-api\", \"nowhere\"]\n",
    );
    s.write("services.toml", &m);
    let out = stdout(&s.ok(&["graph"]));
    assert!(out.contains("user_service --> user_api"), "{out}");
    assert!(!out.contains("nowhere"), "{out}");
}

/// Inputs the fuzzer (fuzz/) found troublesome, and hand-made nasty ones: check reports
/// them and never panics or hangs.
#[test]
fn odd_inputs_never_crash_check() {
    let dir = fixtures_dir().join("regressions");
    let mut cases: Vec<PathBuf> = fs_err::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    assert!(!cases.is_empty());
    for case in cases {
        let s = example();
        copy_tree(&case, &s.ws());
        let out = s.run(&["check"]);
        no_crash(&out);
        let code = out.status.code();
        assert!(
            code == Some(0) || code == Some(1),
            "{}: exit {code:?}\n{}",
            case.display(),
            stderr(&out)
        );
        for format in ["json", "github", "sarif", "junit"] {
            let out = s.run(&["check", "--format", format]);
            no_crash(&out);
        }
        no_crash(&s.run(&["graph"]));
    }
}

/// `--against` in a repository whose workspace is a subdirectory, with a deleted proto.
#[test]
fn breaking_changes_against_a_revision_of_a_parent_repository() {
    let s = example();
    s.write(
        "proto/shared/v1/audit.proto",
        "syntax = \"proto3\";\npackage shared.v1;\nmessage AuditEvent { string actor = 1; }\n",
    );
    let in_root = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(["-c", "user.name=msvc", "-c", "user.email=msvc@example.com"])
            .args(args)
            .current_dir(s.path())
            .output()
            .expect("git runs");
        assert!(out.status.success(), "git {args:?}: {}", stderr(&out));
    };
    in_root(&["init", "-q"]);
    in_root(&["add", "-A"]);
    in_root(&["commit", "-qm", "base"]);
    fs_err::remove_file(s.ws().join("proto/shared/v1/audit.proto")).unwrap();
    let proto = s
        .read("proto/user_service/v1/user_service.proto")
        .replace("  rpc GetUser(GetUserRequest) returns (User);\n", "");
    s.write("proto/user_service/v1/user_service.proto", &proto);
    let out = s.run(&["check", "--against", "HEAD", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let messages: Vec<&str> = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["id"] == "PROTO_BREAKING")
        .map(|d| d["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        [
            "`proto/shared/v1/audit.proto` was deleted (it exists at HEAD)",
            "RPC `UserService.GetUser` was deleted since HEAD"
        ],
        "{}",
        stdout(&out)
    );
}

/// A service table that does not read still counts as the publisher it says it is.
#[test]
fn a_broken_service_still_publishes_its_queues() {
    let s = example();
    let m = s.read("services.toml");
    let broken = m.replace("kind = \"rest\"", "kind = \"http\"");
    assert_ne!(m, broken, "the example has a REST service");
    s.write("services.toml", &broken);
    let out = s.run(&["check", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let found = ids(&out);
    assert!(found.iter().any(|id| id == "MANIFEST_SCHEMA"), "{found:?}");
    assert!(
        !found.iter().any(|id| id == "QUEUE_NO_PUBLISHER"),
        "{found:?}\n{}",
        stdout(&out)
    );
}
