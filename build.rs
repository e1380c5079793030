//! Rebuilds msvc when a template or the runtime crate changes: they are embedded with
//! `include_dir!`, which cannot tell cargo about files added to or removed from a
//! directory.

fn main() {
    println!("cargo:rerun-if-changed=templates");
    println!("cargo:rerun-if-changed=templates-v1");
    println!("cargo:rerun-if-changed=templates-v2");
    println!("cargo:rerun-if-changed=runtime/Cargo.toml");
    println!("cargo:rerun-if-changed=runtime/src");
}
