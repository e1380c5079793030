//! Rendered Rust goes through the user's rustfmt before it is written, so that generated
//! code passes `cargo fmt --check` whatever the length of the names in it: templates are
//! laid out for typical names, and a long one pushes lines past rustfmt's widths.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
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
    if let Some(config) = user_config(root) {
        fs_err::copy(&config, dir.path().join(config.file_name()?)).ok()?;
    }
    let mut paths = Vec::with_capacity(sources.len());
    for (rel, text) in sources {
        let path = dir.path().join(rel);
        fs_err::create_dir_all(path.parent()?).ok()?;
        fs_err::write(&path, text).ok()?;
        paths.push(path);
    }
    // rustfmt follows `mod name;` into name.rs or name/mod.rs and fails when neither is
    // there; modules outside the batch (the user's, or ones left unchanged) get an empty
    // stand-in, which formats to itself.
    for (path, (_, text)) in paths.iter().zip(sources) {
        for module in out_of_line_modules(text) {
            let dir = module_dir(path);
            let (file, nested) = (
                dir.join(format!("{module}.rs")),
                dir.join(module).join("mod.rs"),
            );
            if !file.exists() && !nested.exists() {
                fs_err::create_dir_all(&dir).ok()?;
                fs_err::write(&file, "").ok()?;
            }
        }
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

/// The rustfmt config that applies to the workspace at `root`: the nearest one in it or
/// in a directory above it, as cargo fmt finds it.
pub fn user_config(root: &Path) -> Option<PathBuf> {
    root.ancestors()
        .flat_map(|dir| CONFIG_FILES.iter().map(move |name| dir.join(name)))
        .find(|path| path.is_file())
}

/// The modules a file declares as `mod name;` (`pub`, `pub(crate)` and attributes on
/// lines of their own allowed).
fn out_of_line_modules(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter_map(|line| {
        let mut rest = line.trim();
        if let Some(after) = rest.strip_prefix("pub") {
            rest = match after.trim_start().strip_prefix('(') {
                Some(scoped) => scoped.split_once(')')?.1,
                None => after,
            }
            .trim_start();
        }
        let name = rest.strip_prefix("mod ")?.trim().strip_suffix(';')?.trim();
        name.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
            .then_some(name)
    })
}

/// Where a file's `mod name;` files live: beside a lib.rs, main.rs or mod.rs, else in a
/// directory named after the file.
fn module_dir(path: &Path) -> PathBuf {
    let parent = path.parent().unwrap_or(Path::new("")).to_path_buf();
    match path.file_name().and_then(|n| n.to_str()) {
        Some("lib.rs" | "main.rs" | "mod.rs") | None => parent,
        Some(_) => parent.join(path.file_stem().unwrap_or_default()),
    }
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
    fn long_lines_are_wrapped_in_one_run_whatever_modules_are_missing() {
        if !have_rustfmt() {
            eprintln!("SKIPPED: rustfmt is not installed");
            return;
        }
        let root = tempfile::tempdir().unwrap();
        let long = format!("pub type T = {}::{}<u8>;\n", "a".repeat(45), "B".repeat(45));
        // Modules of the user's, not in the batch: rustfmt must not fail on them.
        let lib = format!("pub mod messages;\npub(crate) mod store;\nmod x;\n{long}");
        let broken = "mod not_there;\nfn  f( ) {}\n";
        let sources = [
            (Path::new("src/lib.rs"), lib.as_str()),
            (Path::new("src/x.rs"), broken),
        ];
        let out = batch(root.path(), &sources).expect("one rustfmt run formats the batch");
        let lib = out[0].as_deref().expect("formatted");
        assert!(lib.lines().all(|l| l.len() <= 100), "{lib}");
        assert!(lib.contains("\npub type T =\n"), "{lib}");
        assert_eq!(out[1].as_deref(), Some("mod not_there;\nfn f() {}\n"));
        assert!(
            root.path().read_dir().unwrap().next().is_none(),
            "nothing written to the root"
        );
    }

    #[test]
    fn finds_out_of_line_modules_only() {
        let text = "mod a;\npub mod b;\npub(crate) mod c;\n  pub(super) mod d;\nmod e {\n}\n// mod f;\nuse mod_g;\n";
        assert_eq!(
            out_of_line_modules(text).collect::<Vec<_>>(),
            ["a", "b", "c", "d"]
        );
        assert_eq!(module_dir(Path::new("src/lib.rs")), Path::new("src"));
        assert_eq!(
            module_dir(Path::new("src/messages/mod.rs")),
            Path::new("src/messages")
        );
        assert_eq!(
            module_dir(Path::new("src/store.rs")),
            Path::new("src/store")
        );
    }
}
