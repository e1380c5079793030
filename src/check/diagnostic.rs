//! A finding of `msvc check`, as the workspace's readers report it.

pub use crate::workspace::diagnostic::{Diagnostic, Level};
