//! The layer order of msvc's modules, as `src/lib.rs` lists it, holds in every file.

use std::path::{Path, PathBuf};

/// The layers, lowest first, from the `text` block of `src/lib.rs`'s module docs.
fn layers(lib: &str) -> Vec<String> {
    lib.lines()
        .map_while(|l| l.strip_prefix("//!"))
        .skip_while(|l| l.trim() != "```text")
        .skip(1)
        .take_while(|l| l.trim() != "```")
        // An indented line continues the description above it.
        .filter(|l| !l.trim_start_matches(' ').is_empty() && !l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs_err::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every `crate::NAME` in `text`, with its 1-based line.
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(i) = rest.find("crate::") {
            let before = rest[..i].chars().next_back();
            rest = &rest[i + "crate::".len()..];
            // `msvc_crate::x` or `$crate::x` are not paths into this crate.
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
                continue;
            }
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            found.push((n + 1, name));
        }
    }
    found
}

/// The problems of one file of module `module` against the layer order.
fn violations(file: &str, module: &str, text: &str, order: &[String]) -> Vec<String> {
    let Some(rank) = order.iter().position(|m| m == module) else {
        return vec![format!(
            "{file}: module `{module}` is not in the layer list of src/lib.rs; add it there"
        )];
    };
    crate_paths(text)
        .into_iter()
        .filter(|(_, target)| target != module)
        .filter_map(|(line, target)| match order.iter().position(|m| *m == target) {
            Some(r) if r < rank => None,
            Some(_) => Some(format!(
                "{file}:{line}: `{module}` imports `crate::{target}`, which is not below it in src/lib.rs's layer list"
            )),
            None => Some(format!(
                "{file}:{line}: `crate::{target}` is not a layer listed in src/lib.rs"
            )),
        })
        .collect()
}

#[test]
fn modules_import_only_the_layers_below_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let order = layers(&fs_err::read_to_string(src.join("lib.rs")).unwrap());
    assert!(
        order.len() > 5 && order[0] == "error",
        "src/lib.rs lists no layers: {order:?}"
    );
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut problems = Vec::new();
    for path in files {
        let rel = path.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs");
        if module == "lib" || module == "main" {
            continue;
        }
        let shown = format!("src/{}", rel.to_string_lossy().replace('\\', "/"));
        let text = fs_err::read_to_string(&path).unwrap();
        problems.extend(violations(&shown, module, &text, &order));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn an_upward_import_is_named_with_its_file_and_line() {
    let order: Vec<String> = ["error", "workspace", "render"].map(String::from).to_vec();
    let text = "use crate::error::Result;\n\nuse crate::render::Renderer;\n";
    assert_eq!(
        violations("src/workspace/x.rs", "workspace", text, &order),
        [
            "src/workspace/x.rs:3: `workspace` imports `crate::render`, which is not below it in src/lib.rs's layer list"
        ]
    );
    assert_eq!(
        violations("src/extra.rs", "extra", "", &order),
        ["src/extra.rs: module `extra` is not in the layer list of src/lib.rs; add it there"]
    );
    let lib = "//! x\n//!\n//! ```text\n//! error  the first\n//!        and more of it\n//! workspace  next\n//! ```\nuse a;";
    assert_eq!(layers(lib), ["error", "workspace"]);
}
