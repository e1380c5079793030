//! msvc's runtime crate, embedded: the files written byte for byte into every workspace
//! as `crates/msvc-runtime/`.

use include_dir::{Dir, DirEntry, include_dir};

static RUNTIME: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/runtime");

/// Every file of the crate a workspace builds (its manifest and sources; its tests run in
/// msvc's own suite), as (path relative to the crate, text), sorted by path.
pub fn files() -> Vec<(String, &'static str)> {
    let mut out = Vec::new();
    collect(&RUNTIME, &mut out);
    out.retain(|(path, _)| path == "Cargo.toml" || path.starts_with("src/"));
    out.sort();
    out
}

fn collect(dir: &'static Dir<'static>, out: &mut Vec<(String, &'static str)>) {
    for entry in dir.entries() {
        match entry {
            DirEntry::Dir(d) => collect(d, out),
            DirEntry::File(f) => {
                let path = f.path().to_string_lossy().replace('\\', "/");
                let text = f.contents_utf8().expect("the runtime's sources are UTF-8");
                out.push((path, text));
            }
        }
    }
}
