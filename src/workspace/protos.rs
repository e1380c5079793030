//! The workspace's protos, read once per command: every `.proto` under proto/ and every
//! proto the manifest names, parsed (protox), with what code generation needs from the
//! gRPC services' ones; compiled with their imports for `msvc check`; and their versions at
//! a git revision, for `msvc check --against`. protox is used nowhere else.

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};

use miette::Diagnostic as _;
use prost_types::FileDescriptorProto;
use protox::file::{File, FileResolver, GoogleFileResolver};

use super::diagnostic::Diagnostic;
use super::model::{Kind, Manifest};
use super::proto::{self, ProtoInfo};
use super::source::Files;
use crate::error::{Error, Location, Result, SourceText, slash_path};

/// The directory protos live in, and imports are relative to.
pub const PROTO_DIR: &str = "proto";

/// One proto file as read.
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
    /// What is wrong, as `msvc check` reports it (compile errors come from [`Self::compile`]).
    pub problems: Vec<Diagnostic>,
    /// What is wrong, as the commands that generate code refuse it: the first one wins.
    errors: Vec<Error>,
}

impl ProtoSet {
    /// Reads the protos as `files` has them. `locate` finds a key of services.toml.
    pub fn read(
        root: &Path,
        manifest: &Manifest,
        files: &dyn Files,
        locate: &dyn Fn(&[&str]) -> Location,
    ) -> Self {
        let mut set = ProtoSet {
            complete: true,
            ..ProtoSet::default()
        };
        let mut paths = Vec::new();
        walk_protos(&root.join(PROTO_DIR), PROTO_DIR, &mut paths);
        // Protos the manifest names, wherever they are (inside the workspace).
        for (name, svc) in &manifest.services {
            let Some(p) = &svc.proto else { continue };
            let Some(rel) = normalize(p) else {
                set.problems.push(
                    Diagnostic::new(
                        "PROTO_MISSING",
                        format!("the proto of `{name}` must be a path inside the workspace, not `{p}`"),
                    )
                    .at(locate(&["services", name, "proto"]))
                    .hint(
                        "put the proto under proto/ and give its path relative to the workspace root",
                    ),
                );
                set.errors.push(missing(name, p, locate));
                set.complete = false;
                continue;
            };
            if !files.exists(Path::new(&rel)) {
                if svc.kind == Kind::Grpc {
                    set.problems.push(
                        Diagnostic::new(
                            "PROTO_MISSING",
                            format!("proto `{p}` of service `{name}` does not exist"),
                        )
                        .at(locate(&["services", name, "proto"]))
                        .hint("restore the file, or fix the `proto` path in services.toml"),
                    );
                }
                set.errors.push(missing(name, p, locate));
                set.complete = false;
                continue;
            }
            if !paths.contains(&rel) {
                paths.push(rel);
            }
        }
        // Files that could not be read; an error only for the commands that need them.
        let mut unread = HashMap::new();
        for path in paths {
            if let Err(err) = set.read_file(files, path.clone()) {
                unread.insert(path, err);
            }
        }
        for (name, svc) in &manifest.services {
            let Some(p) = &svc.proto else { continue };
            let Some(rel) = normalize(p) else { continue };
            let Some(file) = set.files.get(&rel) else {
                if let Some(err) = unread.remove(&rel) {
                    set.errors.push(err);
                }
                continue;
            };
            let info = match proto::parse(root, p, &file.text) {
                Ok(info) => info,
                Err(err) => {
                    // PROTO_COMPILE reports it at its line.
                    set.errors.push(err);
                    set.complete = false;
                    continue;
                }
            };
            if svc.kind == Kind::Grpc {
                set.service_problems(name, p, &info, locate);
            }
            set.infos.insert(p.clone(), info);
        }
        set
    }

    /// The gRPC services' protos for code generation, or the first reason there are none.
    pub fn into_infos(self) -> Result<BTreeMap<String, ProtoInfo>> {
        match self.errors.into_iter().next() {
            Some(err) => Err(err),
            None => Ok(self.infos),
        }
    }

    fn read_file(&mut self, files: &dyn Files, path: String) -> Result<()> {
        let text = match files.read(Path::new(&path)) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(t) => t,
                Err(e) => {
                    let valid = e.utf8_error().valid_up_to();
                    let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
                    self.problems.push(
                        Diagnostic::new("PROTO_COMPILE", "the proto is not valid UTF-8")
                            .at(SourceText::new(&path, &lossy).location(valid..valid + 1))
                            .hint("save the file as UTF-8"),
                    );
                    return Err(Error::new(format!("proto `{path}` is not valid UTF-8"))
                        .at(Location::file(&path))
                        .hint("save the file as UTF-8"));
                }
            },
            Err(e) => {
                self.problems.push(
                    Diagnostic::new(
                        "PROTO_COMPILE",
                        format!("cannot read the proto: {}", e.kind()),
                    )
                    .at(Location::file(&path))
                    .hint("check the file's permissions"),
                );
                return Err(Error::new(format!("cannot read proto `{path}`")).source(e));
            }
        };
        let name = path
            .strip_prefix("proto/")
            .map_or_else(|| path.clone(), ToString::to_string);
        let descriptor = protox_parse::parse(&name, &text).ok();
        self.files.insert(
            path.clone(),
            ProtoFile {
                path,
                name,
                text,
                descriptor,
            },
        );
        Ok(())
    }

    /// A gRPC service's proto must declare a service and a package.
    fn service_problems(
        &mut self,
        name: &str,
        p: &str,
        info: &ProtoInfo,
        locate: &dyn Fn(&[&str]) -> Location,
    ) {
        // The contracts crate cannot be generated from such a proto either: comparing
        // it would only repeat the problem.
        if info.services.is_empty() || info.package.is_empty() {
            self.complete = false;
        }
        if info.services.is_empty() {
            self.problems.push(
                Diagnostic::new(
                    "PROTO_NO_SERVICE",
                    format!("proto `{p}` of gRPC service `{name}` declares no `service`"),
                )
                .at(locate(&["services", name, "proto"]))
                .hint("add a `service` with at least one `rpc` to the proto, or point `proto` at the right file"),
            );
        }
        if info.package.is_empty() {
            self.problems.push(
                Diagnostic::new(
                    "PROTO_NO_PACKAGE",
                    format!("proto `{p}` of gRPC service `{name}` has no `package`"),
                )
                .at(locate(&["services", name, "proto"]))
                .hint(format!(
                    "add a versioned package to the proto, e.g. `package {}.v1;`",
                    heck::ToSnakeCase::to_snake_case(name)
                )),
            );
        }
    }

    /// Compiles every file with its imports, as crates/contracts' build does, and reports
    /// each error once, in the file it is in. The slowest check: it runs on its own thread.
    pub fn compile(&self) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        let by_name: HashMap<&str, &ProtoFile> =
            self.files.values().map(|f| (f.name.as_str(), f)).collect();
        // protox keeps its resolver for good ('static), so it gets its own copy of the texts.
        let resolver = Sources {
            by_name: self
                .files
                .values()
                .map(|f| (f.name.clone(), f.text.clone()))
                .collect(),
            google: GoogleFileResolver::new(),
        };
        let mut compiler = protox::Compiler::with_file_resolver(resolver);
        let mut seen = std::collections::HashSet::new();
        for file in self.files.values() {
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
}

/// Where a user's proto lives in the workspace: where it is when already under proto/,
/// else `proto/<package path>/<file name>`.
pub fn user_proto_destination(root: &Path, file: &Path) -> Result<String> {
    let abs = std::path::absolute(file)?;
    let proto_dir = std::path::absolute(root.join(PROTO_DIR))?;
    if let Ok(rel) = abs.strip_prefix(&proto_dir) {
        return Ok(format!("proto/{}", slash_path(rel)));
    }
    let text = read_proto(file)?;
    let info = proto::parse(Path::new(""), &file.display().to_string(), &text)?;
    let file_name = file.file_name().map_or_else(
        || "service.proto".into(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut dest = PathBuf::from("proto");
    for part in info.package.split('.').filter(|p| !p.is_empty()) {
        dest.push(part);
    }
    dest.push(file_name);
    Ok(slash_path(&dest))
}

/// The text of the proto a user hands to `msvc new --proto`, checked to declare a service
/// and a package, and where it goes.
pub fn user_proto(file: &Path, dest: Option<&str>) -> Result<(PathBuf, String)> {
    let text = read_proto(file)?;
    let dest = dest.expect("gRPC services have a proto path");
    // Parse now so a broken proto is reported against the user's file.
    let info = proto::parse(Path::new(""), &file.display().to_string(), &text)?;
    if info.services.is_empty() {
        return Err(Error::new(format!(
            "proto `{}` declares no service, so there is nothing to serve",
            file.display()
        ))
        .hint("add a `service` with at least one `rpc`, or use --rest / --worker"));
    }
    if info.package.is_empty() {
        return Err(
            Error::new(format!("proto `{}` has no `package`", file.display())).hint(
                "add a versioned package, e.g. `package billing.v1;`, so its code gets a module",
            ),
        );
    }
    Ok((PathBuf::from(dest), text))
}

fn read_proto(file: &Path) -> Result<String> {
    fs_err::read_to_string(file).map_err(|e| {
        Error::new(format!(
            "cannot read proto `{}`: {}",
            file.display(),
            e.kind()
        ))
        .hint("pass the path of an existing .proto file to --proto")
    })
}

/// The error of a command that needs the proto a service names.
fn missing(name: &str, path: &str, locate: &dyn Fn(&[&str]) -> Location) -> Error {
    Error::new(format!("proto `{path}` of service `{name}` does not exist"))
        .at(locate(&["services", name, "proto"]))
        .hint("restore the file, or fix the `proto` path in services.toml")
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
