//! One `cargo build` of every service binary the plan runs, with a progress line from
//! cargo's JSON messages; on a compile error, cargo's diagnostics in full.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Deserialize;

use crate::error::{EXIT_FAILURE, Error, Result};

/// What a build produced: each binary's path, by target name.
#[derive(Debug, Clone, Default)]
pub struct Built {
    pub executables: BTreeMap<String, PathBuf>,
    pub elapsed: Duration,
    pub compiled: usize,
}

/// How to build.
#[derive(Debug, Clone)]
pub struct BuildRequest<'a> {
    pub root: &'a Path,
    /// Packages to build; the whole workspace when `all`.
    pub packages: &'a [String],
    pub all: bool,
    pub release: bool,
    /// Show a progress line on stderr (hidden anyway when it is not a terminal).
    pub progress: bool,
}

#[derive(Deserialize)]
struct Message {
    reason: String,
    #[serde(default)]
    target: Option<Target>,
    #[serde(default)]
    executable: Option<PathBuf>,
    #[serde(default)]
    fresh: bool,
    #[serde(default)]
    success: Option<bool>,
}

#[derive(Deserialize)]
struct Target {
    name: String,
    kind: Vec<String>,
}

/// The cargo msvc was run by (`CARGO`), else the one on PATH.
fn cargo() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// Builds; the error's message holds cargo's diagnostics.
pub fn build(req: &BuildRequest<'_>) -> Result<Built> {
    let start = Instant::now();
    let mut cmd = Command::new(cargo());
    cmd.arg("build")
        .arg("--bins")
        .args(["--message-format", "json-render-diagnostics"])
        .current_dir(req.root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if req.all {
        cmd.arg("--workspace");
    } else {
        for p in req.packages {
            cmd.args(["-p", p]);
        }
    }
    if req.release {
        cmd.arg("--release");
    }
    let mut child = cmd.spawn().map_err(|e| {
        Error::new(format!("cannot run cargo: {e}"))
            .hint("install Rust with rustup (https://rustup.rs), or check PATH")
    })?;
    let mut stderr = child.stderr.take().expect("piped stderr");
    let diagnostics = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });

    let bar = if req.progress {
        ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner:.green} {prefix:>10.green.bold} {pos} crates  {wide_msg}",
        )
        .expect("valid template"),
    );
    bar.set_prefix("Building");
    bar.enable_steady_tick(Duration::from_millis(120));

    let mut built = Built::default();
    let mut success = false;
    let stdout = child.stdout.take().expect("piped stdout");
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let Ok(msg) = serde_json::from_str::<Message>(&line) else {
            continue;
        };
        match msg.reason.as_str() {
            "compiler-artifact" => {
                if let Some(target) = &msg.target {
                    if !msg.fresh {
                        built.compiled += 1;
                    }
                    bar.inc(1);
                    bar.set_message(target.name.clone());
                    if target.kind.iter().any(|k| k == "bin")
                        && let Some(exe) = msg.executable
                    {
                        built.executables.insert(target.name.clone(), exe);
                    }
                }
            }
            "build-finished" => success = msg.success.unwrap_or(false),
            _ => {}
        }
    }
    let status = child.wait()?;
    bar.finish_and_clear();
    let diagnostics = without_progress(&diagnostics.join().unwrap_or_default());
    built.elapsed = start.elapsed();
    if !(success && status.success()) {
        return Err(Error::new(format!(
            "the build failed, so nothing was started\n{}",
            diagnostics.trim_end()
        ))
        .hint("fix the errors above, then run `msvc up` again")
        .exit_code(EXIT_FAILURE));
    }
    Ok(built)
}

/// Cargo's stderr without its progress lines (`Compiling x v1.0`), which the progress
/// line replaced: what is left are the diagnostics.
fn without_progress(text: &str) -> String {
    const VERBS: [&str; 9] = [
        "Compiling",
        "Checking",
        "Building",
        "Blocking",
        "Downloaded",
        "Downloading",
        "Locking",
        "Adding",
        "Updating",
    ];
    text.lines()
        .filter(|l| {
            let t = l.trim_start();
            !(l.starts_with(' ') && VERBS.iter().any(|v| t.starts_with(v)))
        })
        .fold(String::new(), |mut out, l| {
            out.push_str(l);
            out.push('\n');
            out
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn progress_lines_are_dropped() {
        let text = "   Compiling foo v0.1.0 (/x)\nerror[E0425]: cannot find value `x`\n --> src/main.rs:1:1\n";
        assert_eq!(
            super::without_progress(text),
            "error[E0425]: cannot find value `x`\n --> src/main.rs:1:1\n"
        );
    }
}
