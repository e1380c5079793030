//! Rebuilds msvc when a template changes: they are embedded with `include_dir!`, which
//! cannot tell cargo about files added to or removed from the directory.

fn main() {
    println!("cargo:rerun-if-changed=templates");
    println!("cargo:rerun-if-changed=templates-v1");
}
