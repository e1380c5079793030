//! The services' own tests: one `cargo nextest run` (when cargo-nextest is installed)
//! or `cargo test` for the workspace, its results attributed to services by package.
//!
//! nextest writes a `JUnit` report (a profile of msvc's, from a tool config file, with the
//! store in a temporary directory), whose test suites are named after packages. It runs
//! no doctests. `MSVC_TEST_RUNNER=cargo` chooses `cargo test` even with nextest there.
//!
//! `cargo test` runs with `--message-format json-render-diagnostics`, stdout and stderr into
//! one file, so the artifact messages (executable -> package), cargo's `Running` and
//! `Doc-tests` lines and libtest's output come in the order they happened.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::error::{Error, Result};

use super::report::{Case, Outcome, Suite};

/// What `cargo test` reported, per package.
#[derive(Debug, Default)]
pub struct OwnTests {
    pub cases: Vec<Case>,
    /// cargo's exit status was a success.
    pub success: bool,
}

/// Which runner [`run`] uses: `cargo nextest` or `cargo test`.
pub fn uses_nextest() -> bool {
    if std::env::var("MSVC_TEST_RUNNER").is_ok_and(|v| v == "cargo") {
        return false;
    }
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["nextest", "--version"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs the tests of `packages` (the whole workspace when `all`) with nextest (see
/// [`uses_nextest`]) or `cargo test`.
pub fn run(
    root: &Path,
    packages: &[String],
    all: bool,
    release: bool,
    nextest: bool,
) -> Result<OwnTests> {
    if nextest {
        run_nextest(root, packages, all, release)
    } else {
        run_cargo_test(root, packages, all, release)
    }
}

/// What both runners share: where they run, which packages, which profile.
fn select(cmd: &mut Command, root: &Path, packages: &[String], all: bool, release: bool) {
    cmd.current_dir(root)
        .stdin(Stdio::null())
        .env("CARGO_TERM_COLOR", "never");
    if all {
        cmd.arg("--workspace");
    } else {
        for p in packages {
            cmd.args(["-p", p]);
        }
    }
    if release {
        cmd.arg("--release");
    }
}

fn temp_error(e: std::io::Error) -> Error {
    Error::new("cannot create a temporary file").source(e)
}

fn run_nextest(root: &Path, packages: &[String], all: bool, release: bool) -> Result<OwnTests> {
    let dir = tempfile::tempdir().map_err(temp_error)?;
    let store = dir.path().join("store");
    let config = dir.path().join("nextest.toml");
    fs_err::write(
        &config,
        format!(
            "[store]\ndir = {:?}\n\n[profile.default-msvc-test]\nfail-fast = false\n\n[profile.default-msvc-test.junit]\npath = \"junit.xml\"\n",
            store.display().to_string()
        ),
    )?;
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.args(["nextest", "run", "--no-fail-fast", "--no-tests", "pass"])
        .arg("--tool-config-file")
        .arg(format!("msvc:{}", config.display()))
        .args(["--profile", "default-msvc-test"]);
    select(&mut cmd, root, packages, all, release);
    let log = fs_err::File::create(dir.path().join("output.txt"))?
        .into_parts()
        .0;
    cmd.stdout(Stdio::from(log.try_clone().map_err(temp_error)?))
        .stderr(Stdio::from(log));
    let status = cmd.status().map_err(|e| {
        Error::new("cannot run `cargo nextest`")
            .source(e)
            .hint("set MSVC_TEST_RUNNER=cargo to use `cargo test`")
    })?;
    let output = fs_err::read_to_string(dir.path().join("output.txt"))?;
    let junit = store.join("default-msvc-test").join("junit.xml");
    let mut own = match fs_err::read_to_string(&junit) {
        Ok(xml) => parse_junit(&xml),
        Err(_) => OwnTests::default(),
    };
    own.success = status.success();
    finish(
        &mut own,
        &output,
        &format!("cargo nextest run failed ({status})"),
    );
    Ok(own)
}

/// Cases from nextest's `JUnit` report: suites are `package` or `package::binary`.
pub fn parse_junit(xml: &str) -> OwnTests {
    let mut own = OwnTests::default();
    let Ok(doc) = roxmltree::Document::parse(xml) else {
        return own;
    };
    for suite in doc.descendants().filter(|n| n.has_tag_name("testsuite")) {
        let name = suite.attribute("name").unwrap_or("workspace");
        let package = name.split("::").next().unwrap_or(name).to_string();
        for case in suite.children().filter(|n| n.has_tag_name("testcase")) {
            let child = |tag: &str| case.children().find(|n| n.has_tag_name(tag));
            let failure = child("failure").or_else(|| child("error"));
            let outcome = if failure.is_some() {
                Outcome::Failed
            } else if child("skipped").is_some() {
                Outcome::Skipped
            } else {
                Outcome::Passed
            };
            let message = failure.map(|f| {
                let output = ["system-err", "system-out"]
                    .iter()
                    .filter_map(|t| child(t).and_then(|n| n.text()))
                    .find(|t| t.contains("panicked"))
                    .or_else(|| f.text())
                    .unwrap_or_else(|| f.attribute("message").unwrap_or("failed"));
                output.trim().to_string()
            });
            own.cases.push(Case {
                service: package.clone(),
                suite: Suite::Unit,
                name: case.attribute("name").unwrap_or("").to_string(),
                outcome,
                message,
                time: case
                    .attribute("time")
                    .and_then(|t| t.parse::<f64>().ok())
                    .map_or(Duration::ZERO, |t| Duration::from_secs_f64(t.max(0.0))),
            });
        }
    }
    own
}

fn run_cargo_test(root: &Path, packages: &[String], all: bool, release: bool) -> Result<OwnTests> {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.arg("test").args([
        "--no-fail-fast",
        "--message-format",
        "json-render-diagnostics",
    ]);
    select(&mut cmd, root, packages, all, release);
    // The file is read back through a second handle: the child's two share its offset.
    let (file, path) = tempfile::NamedTempFile::new()
        .map_err(|e| Error::new("cannot create a temporary file").source(e))?
        .into_parts();
    cmd.stdout(Stdio::from(file.try_clone().map_err(|e| {
        Error::new("cannot create a temporary file").source(e)
    })?))
    .stderr(Stdio::from(file));
    let status = cmd.status().map_err(|e| {
        Error::new("cannot run `cargo test`")
            .source(e)
            .hint("install Rust with rustup: https://rustup.rs")
    })?;
    let text = fs_err::read_to_string(&*path)?;
    let mut own = parse(&text, &package_dirs(root, packages));
    own.success = status.success();
    finish(&mut own, &text, &format!("cargo test failed ({status})"));
    Ok(own)
}

/// After a failed run: compile errors become failed `builds` cases, and a failure
/// nothing explains gets a case with the runner's last lines.
fn finish(own: &mut OwnTests, output: &str, headline: &str) {
    if own.success {
        return;
    }
    own.cases.extend(compile_failures(output));
    if !own.cases.iter().any(|c| c.outcome == Outcome::Failed) {
        let lines: Vec<&str> = output.lines().filter(|l| !l.starts_with('{')).collect();
        let tail = &lines[lines.len().saturating_sub(20)..];
        own.cases.push(Case {
            service: "workspace".to_string(),
            suite: Suite::Unit,
            name: "tests".to_string(),
            outcome: Outcome::Failed,
            message: Some(format!("{headline}:\n{}", tail.join("\n"))),
            time: Duration::ZERO,
        });
    }
}

/// Package directories (`services/<name>`) by package name; the rest is `contracts` or
/// named after its directory.
fn package_dirs(root: &Path, packages: &[String]) -> BTreeMap<PathBuf, String> {
    packages
        .iter()
        .map(|p| (root.join("services").join(p), p.clone()))
        .collect()
}

/// The package a `manifest_path` belongs to.
fn package_of(manifest: &str, dirs: &BTreeMap<PathBuf, String>) -> String {
    let dir = Path::new(manifest).parent().unwrap_or(Path::new(""));
    if let Some(name) = dirs.get(dir) {
        return name.clone();
    }
    dir.file_name().map_or_else(
        || "workspace".to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Reads cargo's merged output into cases, one per test, attributed to packages.
pub fn parse(text: &str, dirs: &BTreeMap<PathBuf, String>) -> OwnTests {
    let mut executables: BTreeMap<String, String> = BTreeMap::new();
    let mut crates: BTreeMap<String, String> = BTreeMap::new();
    let mut cases: Vec<Case> = Vec::new();
    let mut current = "workspace".to_string();
    let mut binary_start = 0;
    let mut failure_text: BTreeMap<String, String> = BTreeMap::new();
    let mut in_failure: Option<String> = None;
    for line in text.lines() {
        if line.starts_with('{') {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
                let manifest = v["manifest_path"].as_str().unwrap_or("");
                let package = package_of(manifest, dirs);
                if let Some(exe) = v["executable"].as_str() {
                    executables.insert(exe.to_string(), package.clone());
                }
                if let Some(name) = v["target"]["name"].as_str() {
                    crates.insert(name.replace('-', "_"), package);
                }
            }
            continue;
        }
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix("Running ") {
            attach_failures(&mut cases[binary_start..], &mut failure_text);
            binary_start = cases.len();
            in_failure = None;
            // `Running unittests src/lib.rs (target/debug/deps/x-hash)`
            let exe = rest
                .rsplit_once('(')
                .map_or("", |(_, e)| e.trim_end_matches(')'));
            current = executables
                .iter()
                .find(|(path, _)| path.ends_with(exe) || exe.ends_with(path.as_str()))
                .map_or_else(|| "workspace".to_string(), |(_, p)| p.clone());
            continue;
        }
        if let Some(name) = trimmed.strip_prefix("Doc-tests ") {
            attach_failures(&mut cases[binary_start..], &mut failure_text);
            binary_start = cases.len();
            in_failure = None;
            current = crates
                .get(name.trim())
                .cloned()
                .unwrap_or_else(|| name.trim().replace('_', "-"));
            continue;
        }
        if let Some(name) = line
            .strip_prefix("---- ")
            .and_then(|l| l.strip_suffix(" stdout ----"))
        {
            in_failure = Some(name.to_string());
            continue;
        }
        if let Some(name) = &in_failure {
            if line == "failures:" {
                in_failure = None;
            } else {
                let text = failure_text.entry(name.clone()).or_default();
                text.push_str(line);
                text.push('\n');
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("test ")
            && let Some((name, result)) = rest.rsplit_once(" ... ")
        {
            let outcome = match result.trim() {
                "ok" => Outcome::Passed,
                r if r.starts_with("ignored") => Outcome::Skipped,
                r if r.starts_with("FAILED") => Outcome::Failed,
                _ => continue,
            };
            cases.push(Case {
                service: current.clone(),
                suite: Suite::Unit,
                name: name.to_string(),
                outcome,
                message: None,
                time: Duration::ZERO,
            });
            continue;
        }
        if let Some(rest) = line.strip_prefix("test result: ")
            && let Some(secs) = rest
                .rsplit_once("finished in ")
                .and_then(|(_, t)| t.trim().strip_suffix('s'))
                .and_then(|t| t.parse::<f64>().ok())
        {
            // libtest gives one time per binary: it is spread over the binary's tests.
            let n = cases.len() - binary_start;
            if n > 0 {
                let each =
                    Duration::from_secs_f64(secs.max(0.0)) / u32::try_from(n).unwrap_or(u32::MAX);
                for c in &mut cases[binary_start..] {
                    c.time = each;
                }
            }
        }
    }
    attach_failures(&mut cases[binary_start..], &mut failure_text);
    OwnTests {
        cases,
        success: true,
    }
}

/// A failed case `builds` for each package cargo could not compile, with the errors
/// located in that package (`error: ...` and its `--> services/NAME/...` line).
fn compile_failures(text: &str) -> Vec<Case> {
    let mut errors: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut headline: Option<&str> = None;
    let mut cases = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('{')) {
        if let Some(rest) = line.strip_prefix("error: could not compile `") {
            let name = rest.split('`').next().unwrap_or("").to_string();
            let found = errors.remove(&name).unwrap_or_default();
            let message = if found.is_empty() {
                line.to_string()
            } else {
                found.join("\n")
            };
            cases.push(Case {
                service: name,
                suite: Suite::Unit,
                name: "builds".to_string(),
                outcome: Outcome::Failed,
                message: Some(message),
                time: Duration::ZERO,
            });
            continue;
        }
        if line.starts_with("error") {
            headline = Some(line);
        } else if let Some(path) = line.trim_start().strip_prefix("--> ")
            && let Some(head) = headline.take()
        {
            let package = path
                .strip_prefix("services/")
                .and_then(|p| p.split('/').next())
                .unwrap_or("workspace");
            errors
                .entry(package.to_string())
                .or_default()
                .push(format!("{head}\n  --> {path}"));
        }
    }
    cases
}

fn attach_failures(cases: &mut [Case], texts: &mut BTreeMap<String, String>) {
    for case in cases.iter_mut().filter(|c| c.outcome == Outcome::Failed) {
        if let Some(text) = texts.remove(&case.name) {
            case.message = Some(text.trim_end().to_string());
        }
    }
    texts.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Service, name and outcome of each case.
    fn outcomes(own: &OwnTests) -> Vec<(&str, &str, Outcome)> {
        own.cases
            .iter()
            .map(|c| (c.service.as_str(), c.name.as_str(), c.outcome))
            .collect()
    }

    #[test]
    fn reads_nextest_junit() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="nextest-run" tests="3" failures="1">
  <testsuite name="user-api" tests="1"><testcase name="store::finds" classname="user-api" time="0.250"/></testsuite>
  <testsuite name="user-api::api" tests="2">
    <testcase name="get_user" classname="user-api::api" time="0.5"><failure type="test failure">thread 'get_user' panicked at tests/api.rs:3:5:
boom</failure><system-err>thread 'get_user' panicked at tests/api.rs:3:5:
boom
</system-err></testcase>
    <testcase name="slow" classname="user-api::api" time="0"><skipped/></testcase>
  </testsuite>
</testsuites>"#;
        let own = parse_junit(xml);
        let got = outcomes(&own);
        assert_eq!(
            got,
            [
                ("user-api", "store::finds", Outcome::Passed),
                ("user-api", "get_user", Outcome::Failed),
                ("user-api", "slow", Outcome::Skipped),
            ]
        );
        assert_eq!(
            own.cases[1].message.as_deref(),
            Some("thread 'get_user' panicked at tests/api.rs:3:5:\nboom")
        );
        assert_eq!(own.cases[0].time, Duration::from_millis(250));
    }

    #[test]
    fn compile_errors_fail_their_package() {
        let text = "   Compiling user-service v0.1.0\nerror[E0407]: method `get_user` is not a member of trait `UserService`\n  --> services/user-service/src/service.rs:40:5\n   |\nerror: could not compile `user-service` (lib) due to 1 previous error\n";
        let cases = compile_failures(text);
        assert_eq!(cases.len(), 1);
        assert_eq!(cases[0].service, "user-service");
        assert_eq!(cases[0].name, "builds");
        assert_eq!(
            cases[0].message.as_deref(),
            Some(
                "error[E0407]: method `get_user` is not a member of trait `UserService`\n  --> services/user-service/src/service.rs:40:5"
            )
        );
    }

    #[test]
    fn attributes_tests_to_packages() {
        let text = r#"{"reason":"compiler-artifact","manifest_path":"/ws/services/user-api/Cargo.toml","target":{"name":"user_api"},"executable":"/ws/target/debug/deps/user_api-1"}
{"reason":"compiler-artifact","manifest_path":"/ws/services/user-api/Cargo.toml","target":{"name":"api"},"executable":"/ws/target/debug/deps/api-2"}
{"reason":"compiler-artifact","manifest_path":"/ws/crates/contracts/Cargo.toml","target":{"name":"contracts"},"executable":"/ws/target/debug/deps/contracts-3"}
     Running unittests src/lib.rs (target/debug/deps/user_api-1)

running 2 tests
test store::finds ... ok
test store::slow ... ignored
test result: ok. 1 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.50s

     Running tests/api.rs (target/debug/deps/api-2)

running 2 tests
test get_user ... ok
test post_message ... FAILED

failures:

---- post_message stdout ----
thread 'post_message' panicked at tests/api.rs:9:5:
assertion failed

failures:
    post_message

test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.00s

     Running unittests src/lib.rs (target/debug/deps/contracts-3)
test amqp::url ... ok
   Doc-tests user_api
test services/user-api/src/lib.rs - run (line 3) ... ok
"#;
        let dirs = package_dirs(Path::new("/ws"), &["user-api".to_string()]);
        let own = parse(text, &dirs);
        let got = outcomes(&own);
        assert_eq!(
            got,
            [
                ("user-api", "store::finds", Outcome::Passed),
                ("user-api", "store::slow", Outcome::Skipped),
                ("user-api", "get_user", Outcome::Passed),
                ("user-api", "post_message", Outcome::Failed),
                ("contracts", "amqp::url", Outcome::Passed),
                (
                    "user-api",
                    "services/user-api/src/lib.rs - run (line 3)",
                    Outcome::Passed
                ),
            ]
        );
        assert_eq!(
            own.cases[3].message.as_deref(),
            Some("thread 'post_message' panicked at tests/api.rs:9:5:\nassertion failed")
        );
        assert_eq!(own.cases[2].time, Duration::from_millis(500));
    }
}
