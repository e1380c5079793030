//! Rendered Rust goes through the user's rustfmt before it is written, so that generated
//! code passes `cargo fmt --check` whatever the length of the names in it: templates are
//! laid out for typical names, and a long one pushes lines past rustfmt's widths.

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Stdio};

/// The edition the workspace template declares; rustfmt's style follows it.
const EDITION: &str = "2024";

/// Config files rustfmt reads from the workspace root, carried over so that a user's
/// settings apply to what msvc writes too.
const CONFIG_FILES: [&str; 2] = ["rustfmt.toml", ".rustfmt.toml"];

fn rustfmt() -> OsString {
    // The variable cargo fmt honours, so both use the same binary.
    std::env::var_os("RUSTFMT").unwrap_or_else(|| "rustfmt".into())
}

/// Formats `sources` (paths relative to `root`, with their text). Returns the formatted
/// text of each, or `None` where rustfmt is missing or refused the file (the rendered
/// text is then kept: a build shows what is wrong far better than msvc could).
pub fn format_sources(root: &Path, sources: &[(&Path, &str)]) -> Vec<Option<String>> {
    if sources.is_empty() {
        return Vec::new();
    }
    batch(root, sources).unwrap_or_else(|| sources.iter().map(|(_, text)| one(text)).collect())
}

/// One rustfmt run over a copy of the files, laid out as in the workspace so that `mod`
/// declarations resolve. `None` when any file failed, so each is tried on its own.
fn batch(root: &Path, sources: &[(&Path, &str)]) -> Option<Vec<Option<String>>> {
    let dir = tempfile::tempdir().ok()?;
    for name in CONFIG_FILES {
        if let Ok(text) = fs_err::read_to_string(root.join(name)) {
            fs_err::write(dir.path().join(name), text).ok()?;
        }
    }
    let mut paths = Vec::with_capacity(sources.len());
    for (rel, text) in sources {
        let path = dir.path().join(rel);
        fs_err::create_dir_all(path.parent()?).ok()?;
        fs_err::write(&path, text).ok()?;
        paths.push(path);
    }
    let status = Command::new(rustfmt())
        .args(["--edition", EDITION])
        .args(&paths)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    if !status.success() {
        return None;
    }
    Some(
        paths
            .iter()
            .map(|p| fs_err::read_to_string(p).ok())
            .collect(),
    )
}

/// rustfmt on one text through stdin, where no `mod` is followed.
fn one(text: &str) -> Option<String> {
    use std::io::Write as _;
    let mut child = Command::new(rustfmt())
        .args(["--edition", EDITION, "--emit", "stdout"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take()?;
    let input = text.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().ok()?;
    writer.join().ok()?.ok()?;
    if !output.status.success() {
        return None;
    }
    String::from_utf8(output.stdout).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn have_rustfmt() -> bool {
        Command::new(rustfmt())
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    }

    #[test]
    fn long_lines_are_wrapped_and_a_missing_module_falls_back_to_each_file() {
        if !have_rustfmt() {
            eprintln!("SKIPPED: rustfmt is not installed");
            return;
        }
        let root = tempfile::tempdir().unwrap();
        let long = format!("pub type T = {}::{}<u8>;\n", "a".repeat(45), "B".repeat(45));
        let broken = "mod not_there;\nfn  f( ) {}\n";
        let out = format_sources(
            root.path(),
            &[
                (Path::new("src/lib.rs"), &long),
                (Path::new("src/x.rs"), broken),
            ],
        );
        let lib = out[0].as_deref().expect("formatted");
        assert!(lib.lines().all(|l| l.len() <= 100), "{lib}");
        assert!(lib.starts_with("pub type T =\n"), "{lib}");
        assert_eq!(out[1].as_deref(), Some("mod not_there;\nfn f() {}\n"));
    }
}
