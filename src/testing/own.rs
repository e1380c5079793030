//! The services' own tests: one `cargo test` for the workspace, its results attributed
//! to services by package.
//!
//! cargo runs with `--message-format json-render-diagnostics`, stdout and stderr into
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

/// Runs `cargo test` for `packages` (the whole workspace when `all`).
pub fn run(root: &Path, packages: &[String], all: bool, release: bool) -> Result<OwnTests> {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.arg("test")
        .args([
            "--no-fail-fast",
            "--message-format",
            "json-render-diagnostics",
        ])
        .current_dir(root)
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
    if !own.success {
        own.cases.extend(compile_failures(&text));
    }
    if !own.success && !own.cases.iter().any(|c| c.outcome == Outcome::Failed) {
        let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('{')).collect();
        let tail = &lines[lines.len().saturating_sub(20)..];
        own.cases.push(Case {
            service: "workspace".to_string(),
            suite: Suite::Unit,
            name: "cargo test".to_string(),
            outcome: Outcome::Failed,
            message: Some(format!(
                "cargo test failed ({status}):\n{}",
                tail.join("\n")
            )),
            time: Duration::ZERO,
        });
    }
    Ok(own)
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
        let got: Vec<(&str, &str, Outcome)> = own
            .cases
            .iter()
            .map(|c| (c.service.as_str(), c.name.as_str(), c.outcome))
            .collect();
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
