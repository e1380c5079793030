//! Proto checks: every `.proto` under proto/ (and every proto the manifest names) compiles
//! with its imports, as crates/contracts' build compiles them; a gRPC service's proto
//! exists, has a package and declares a service.

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path};

use miette::Diagnostic as _;
use prost_types::FileDescriptorProto;
use protox::file::{File, FileResolver, GoogleFileResolver};

use super::Context;
use super::diagnostic::Diagnostic;
use crate::error::{Location, SourceText, slash_path};
use crate::workspace::model::Kind;
use crate::workspace::proto::{self, ProtoInfo};

/// The directory protos live in, and imports are relative to.
pub const PROTO_DIR: &str = "proto";

/// One proto file as read from disk.
#[derive(Debug)]
pub struct ProtoFile {
    /// Path relative to the workspace root, `/`-separated.
    pub path: String,
    /// The name imports use: relative to proto/ (or to the root for a file outside it).
    pub name: String,
    pub text: String,
    /// The parsed file, when it parses.
    pub descriptor: Option<FileDescriptorProto>,
}

/// Every proto the workspace has, and what code generation reads from the gRPC ones.
#[derive(Debug, Default)]
pub struct ProtoSet {
    /// By path relative to the root.
    pub files: BTreeMap<String, ProtoFile>,
    /// The protos of gRPC services that parse, by the manifest's `proto` path.
    pub infos: BTreeMap<String, ProtoInfo>,
    /// Whether every proto a service names exists and parses (so generated code can be
    /// rendered and compared).
    pub complete: bool,
}

pub fn check(ctx: &Context<'_>, out: &mut Vec<Diagnostic>) -> ProtoSet {
    let mut set = ProtoSet {
        complete: true,
        ..ProtoSet::default()
    };
    let mut paths = Vec::new();
    walk_protos(&ctx.root.join(PROTO_DIR), PROTO_DIR, &mut paths);
    // Protos the manifest names, wherever they are (inside the workspace).
    for (name, svc) in &ctx.ws.manifest.services {
        let Some(p) = &svc.proto else { continue };
        let Some(rel) = normalize(p) else {
            out.push(
                Diagnostic::new(
                    "PROTO_MISSING",
                    format!("the proto of `{name}` must be a path inside the workspace, not `{p}`"),
                )
                .at(ctx.locate(&["services", name, "proto"]))
                .hint(
                    "put the proto under proto/ and give its path relative to the workspace root",
                ),
            );
            set.complete = false;
            continue;
        };
        let full = ctx.root.join(&rel);
        if !full.is_file() {
            if svc.kind == Kind::Grpc {
                out.push(
                    Diagnostic::new(
                        "PROTO_MISSING",
                        format!("proto `{p}` of service `{name}` does not exist"),
                    )
                    .at(ctx.locate(&["services", name, "proto"]))
                    .hint("restore the file, or fix the `proto` path in services.toml"),
                );
            }
            set.complete = false;
            continue;
        }
        if !paths.contains(&rel) {
            paths.push(rel);
        }
    }

    for path in paths {
        let full = ctx.root.join(&path);
        let text = match fs_err::read(&full) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(t) => t,
                Err(e) => {
                    let valid = e.utf8_error().valid_up_to();
                    let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
                    out.push(
                        Diagnostic::new("PROTO_COMPILE", "the proto is not valid UTF-8")
                            .at(SourceText::new(&path, &lossy).location(valid..valid + 1))
                            .hint("save the file as UTF-8"),
                    );
                    continue;
                }
            },
            Err(e) => {
                out.push(
                    Diagnostic::new(
                        "PROTO_COMPILE",
                        format!("cannot read the proto: {}", e.kind()),
                    )
                    .at(Location::file(&path))
                    .hint("check the file's permissions"),
                );
                continue;
            }
        };
        let name = path
            .strip_prefix("proto/")
            .map_or_else(|| path.clone(), ToString::to_string);
        let descriptor = protox_parse::parse(&name, &text).ok();
        set.files.insert(
            path.clone(),
            ProtoFile {
                path,
                name,
                text,
                descriptor,
            },
        );
    }

    for (name, svc) in &ctx.ws.manifest.services {
        let Some(p) = &svc.proto else { continue };
        let Some(file) = normalize(p).and_then(|rel| set.files.get(&rel)) else {
            continue;
        };
        let Ok(info) = proto::parse(ctx.root, p, &file.text) else {
            // PROTO_COMPILE reports it at its line.
            set.complete = false;
            continue;
        };
        if svc.kind == Kind::Grpc {
            // The contracts crate cannot be generated from such a proto either: comparing
            // it would only repeat the problem.
            if info.services.is_empty() || info.package.is_empty() {
                set.complete = false;
            }
            if info.services.is_empty() {
                out.push(
                    Diagnostic::new(
                        "PROTO_NO_SERVICE",
                        format!("proto `{p}` of gRPC service `{name}` declares no `service`"),
                    )
                    .at(ctx.locate(&["services", name, "proto"]))
                    .hint("add a `service` with at least one `rpc` to the proto, or point `proto` at the right file"),
                );
            }
            if info.package.is_empty() {
                out.push(
                    Diagnostic::new(
                        "PROTO_NO_PACKAGE",
                        format!("proto `{p}` of gRPC service `{name}` has no `package`"),
                    )
                    .at(ctx.locate(&["services", name, "proto"]))
                    .hint(format!(
                        "add a versioned package to the proto, e.g. `package {}.v1;`",
                        heck::ToSnakeCase::to_snake_case(name.as_str())
                    )),
                );
            }
        }
        set.infos.insert(p.clone(), info);
    }
    set
}

/// Compiles every file with its imports, as crates/contracts' build does, and reports
/// each error once, in the file it is in. The slowest check: it runs on its own thread.
pub fn compile(set: &ProtoSet) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let by_name: HashMap<&str, &ProtoFile> =
        set.files.values().map(|f| (f.name.as_str(), f)).collect();
    // protox keeps its resolver for good ('static), so it gets its own copy of the texts.
    let resolver = Sources {
        by_name: set
            .files
            .values()
            .map(|f| (f.name.clone(), f.text.clone()))
            .collect(),
        google: GoogleFileResolver::new(),
    };
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    let mut seen = std::collections::HashSet::new();
    for file in set.files.values() {
        let Err(err) = compiler.open_file(&file.name) else {
            continue;
        };
        let in_file = err
            .file()
            .and_then(|n| by_name.get(n).copied())
            .unwrap_or(file);
        let source = SourceText::new(&in_file.path, &in_file.text);
        let mut found: Vec<(String, Option<std::ops::Range<usize>>)> = Vec::new();
        let first_span = err
            .labels()
            .and_then(|mut l| l.next())
            .map(|l| l.offset()..l.offset() + l.len());
        found.push((err.to_string(), first_span));
        if let Some(related) = err.related() {
            for r in related {
                let span = r
                    .labels()
                    .and_then(|mut l| l.next())
                    .map(|l| l.offset()..l.offset() + l.len());
                found.push((r.to_string(), span));
            }
        }
        for (message, span) in found {
            let location =
                span.map_or_else(|| Location::file(&in_file.path), |s| source.location(s));
            let key = (
                in_file.path.clone(),
                location.line,
                location.column,
                message.clone(),
            );
            if !seen.insert(key) {
                continue;
            }
            out.push(
                Diagnostic::new("PROTO_COMPILE", proto_message(&message))
                    .at(location)
                    .hint(compile_hint(&message)),
            );
        }
    }
    out
}

/// protox's message, with its file-name prefix dropped (the location names the file).
fn proto_message(message: &str) -> String {
    let first = message.lines().next().unwrap_or(message);
    format!("proto does not compile: {first}")
}

fn compile_hint(message: &str) -> String {
    if message.contains("import") && message.contains("not found") {
        "imports are relative to proto/ (`import \"user_service/v1/user_service.proto\";`); `google/protobuf/*.proto` are built in".into()
    } else if message.contains("not defined") || message.contains("not found") {
        "define the type, import the file that defines it, or qualify its name with its package"
            .into()
    } else {
        "fix the proto at the location above; crates/contracts compiles it the same way".into()
    }
}

/// Serves the workspace's protos from memory, and Google's well-known types.
struct Sources {
    by_name: HashMap<String, String>,
    google: GoogleFileResolver,
}

impl FileResolver for Sources {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match self.by_name.get(name) {
            Some(text) => File::from_source(name, text),
            None => self.google.open_file(name),
        }
    }
}

/// Every `.proto` under `dir`, as paths relative to the root, without following symlinked
/// directories (a link loop must not hang the check).
fn walk_protos(dir: &Path, rel: &str, out: &mut Vec<String>) {
    let Ok(entries) = fs_err::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(fs_err::DirEntry::file_name);
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let child = format!("{rel}/{name}");
        if kind.is_dir() {
            walk_protos(&entry.path(), &child, out);
        } else if Path::new(&name).extension().is_some_and(|e| e == "proto")
            && entry.path().is_file()
        {
            out.push(child);
        }
    }
}

/// A manifest path as `a/b/c.proto`, when it stays inside the workspace.
pub fn normalize(path: &str) -> Option<String> {
    let p = Path::new(path);
    let mut parts = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            Component::CurDir => {}
            _ => return None,
        }
    }
    if parts.is_empty() {
        return None;
    }
    Some(slash_path(Path::new(&parts.join("/"))))
}
