//! `msvc upgrade`: brings a workspace from the template version its services.toml records
//! to the current one. msvc-owned files are rewritten from the current render; each
//! user-owned file is merged three ways (base: the file as the recorded version rendered
//! it, ours: the file on disk, theirs: the current render), conflicts written inline with
//! git-style markers. Everything goes through one `WritePlan`: all or nothing.

mod current;
pub mod files;
pub mod v1;

use std::collections::BTreeMap;

pub use self::current::render_current;
pub use self::files::{FileSet, RenderedFile, Shape};
use crate::workspace::proto::ProtoInfo;

/// The protos of a workspace's gRPC services, by path.
pub type Protos = BTreeMap<String, ProtoInfo>;
