//! services.toml: finding it, loading it with source locations, validating it, editing it.

pub mod calls;
pub mod cases;
pub mod collect;
pub mod diagnostic;
pub mod edit;
pub mod graph;
pub mod model;
pub mod names;
pub mod openapi;
pub mod ports;
pub mod proto;
pub mod protos;
pub mod revision;
pub mod source;
pub mod url;
pub mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use model::{Kind, Manifest, Service};

use crate::error::{Error, Location, Result};

/// The manifest's file name.
pub const MANIFEST_FILE: &str = "services.toml";
/// Where msvc's runtime crate lives in a workspace: msvc-owned, byte for byte msvc's own.
pub const RUNTIME_DIR: &str = "crates/msvc-runtime";

/// A loaded workspace: where it is, the manifest's text and its parsed model.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub root: PathBuf,
    pub manifest_path: PathBuf,
    pub text: String,
    pub manifest: Manifest,
}

impl Workspace {
    /// Finds services.toml in `start` or the nearest parent, like cargo finds Cargo.toml.
    pub fn find(start: &Path) -> Result<PathBuf> {
        let start = std::path::absolute(start)?;
        let mut dir = Some(start.as_path());
        while let Some(d) = dir {
            let candidate = d.join(MANIFEST_FILE);
            if candidate.is_file() {
                return Ok(d.to_path_buf());
            }
            dir = d.parent();
        }
        Err(Error::new(format!(
            "no {MANIFEST_FILE} found in `{}` or any parent directory",
            start.display()
        ))
        .hint("run `msvc init NAME` to create a workspace, or pass `-C DIR` to point at one"))
    }

    /// Loads and validates the workspace rooted at `root`; any problem is an error (exit 2).
    pub fn load(root: &Path) -> Result<Self> {
        let ws = Self::load_unchecked(root)?;
        let problems = validate::validate(&ws);
        if let Some(first) = problems.into_iter().next() {
            return Err(first.into_error(&ws));
        }
        Ok(ws)
    }

    /// Loads the workspace; schema errors fail, semantic problems are left to the caller.
    pub fn load_unchecked(root: &Path) -> Result<Self> {
        let manifest_path = root.join(MANIFEST_FILE);
        let text = fs_err::read_to_string(&manifest_path)?;
        let manifest = Self::parse(&manifest_path, &text)?;
        Ok(Self {
            root: root.to_path_buf(),
            manifest_path,
            text,
            manifest,
        })
    }

    /// Parses manifest text; errors carry the file, line and column.
    pub fn parse(path: &Path, text: &str) -> Result<Manifest> {
        toml::from_str::<Manifest>(text).map_err(|err| {
            let unclosed = err
                .span()
                .and_then(|span| unclosed_at(text, err.message(), &span));
            let message = match unclosed {
                Some(_) => UNCLOSED_ARRAY,
                None => err.message().trim_end_matches('\n'),
            };
            let mut e = Error::new(format!("invalid manifest: {message}"));
            e = match unclosed.or(err.span()) {
                Some(span) => e.at(Location::from_span(path, text, span)),
                None => e.at(Location::file(path)),
            };
            e = e.hint(
                unknown_field_hint(err.message()).unwrap_or_else(|| schema_hint(err.message())),
            );
            // serde stops at one problem, not always the first in the file: name the others.
            let at = e.location.as_ref().map(|l| (l.line, l.column));
            let mut others = Vec::new();
            collect::load(text, &mut others);
            let others: Vec<String> = others
                .iter()
                .filter(|d| {
                    d.location.as_ref().map(|l| (l.line, l.column)) != at
                        && !(d.id == "MANIFEST_SYNTAX" && at.is_some())
                })
                .filter_map(|d| {
                    let l = d.location.as_ref()?;
                    Some(format!(
                        "{}:{}:{}: {}",
                        l.path.display(),
                        l.line,
                        l.column,
                        d.message
                    ))
                })
                .collect();
            if !others.is_empty() {
                e = e.note(format!(
                    "services.toml also has {}:\n{}\n`msvc check` reports every problem at once",
                    if others.len() == 1 {
                        "this problem".to_string()
                    } else {
                        format!("these {} problems", others.len())
                    },
                    others.join("\n")
                ));
            }
            e
        })
    }

    /// The location of a key in the manifest (`["services", "user-api", "port"]`), as
    /// precise as the file allows: the key's value, else the nearest table that exists.
    pub fn locate(&self, keys: &[&str]) -> Location {
        locate_in(&self.manifest_path, &self.text, keys)
    }

    /// The protos of the gRPC services of `manifest` (this workspace's, or the one a command
    /// is about to write), as `files` has them: what code generation reads.
    pub fn service_protos(
        &self,
        manifest: &Manifest,
        files: &dyn source::Files,
    ) -> Result<BTreeMap<String, proto::ProtoInfo>> {
        protos::ProtoSet::read(&self.root, manifest, files, &|keys| self.locate(keys)).into_infos()
    }

    /// The path of a file relative to the workspace root, for messages.
    pub fn relative<'a>(&self, path: &'a Path) -> &'a Path {
        path.strip_prefix(&self.root).unwrap_or(path)
    }
}

/// Where the services' crates live, relative to the root.
pub const SERVICES_DIR: &str = "services";

/// Where a service's crate lives, relative to the root.
pub fn service_dir(name: &str) -> PathBuf {
    Path::new(SERVICES_DIR).join(name)
}

/// Where a TOML syntax error is: the parser notices an unclosed array only at the next
/// token, often lines below; the `]` belongs at the end of the line the array is open on.
/// `None` when the error is where the parser says.
pub fn unclosed_at(
    text: &str,
    message: &str,
    span: &std::ops::Range<usize>,
) -> Option<std::ops::Range<usize>> {
    if !message.contains("array") && !message.contains("expected `]`") {
        return None;
    }
    let start = crate::error::floor_char_boundary(text, span.start);
    let before = &text[..start];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    if !before[line_start..].trim().is_empty() {
        return None;
    }
    // The last line with content before the error, if an array is open there.
    let mut end = line_start;
    while end > 0 {
        let prev_start = text[..end - 1].rfind('\n').map_or(0, |i| i + 1);
        let line = text[prev_start..end - 1].trim_end();
        let code = line.split('#').next().unwrap_or(line).trim_end();
        if code.is_empty() {
            end = prev_start;
            continue;
        }
        if code.matches('[').count() > code.matches(']').count() && code.contains('=') {
            let at = prev_start + code.len();
            return Some(at..at);
        }
        break;
    }
    None
}

/// The message of a TOML syntax error at the place [`unclosed_at`] moved it to.
pub const UNCLOSED_ARRAY: &str = "an array is not closed: expected `]` at the end of the line";

/// Finds `keys` in TOML `text` and returns the location of the deepest one found.
pub fn locate_in(path: &Path, text: &str, keys: &[&str]) -> Location {
    let Ok(doc) = toml_edit::Document::parse(text) else {
        return Location::file(path);
    };
    let mut span = None;
    let mut item: &toml_edit::Item = doc.as_item();
    for key in keys {
        if let (Some(array), Ok(index)) = (item.as_array(), key.parse::<usize>()) {
            if let Some(s) = array.get(index).and_then(toml_edit::Value::span) {
                span = Some(s);
            }
            break;
        }
        let Some((k, v)) = item.as_table_like().and_then(|t| t.get_key_value(key)) else {
            break;
        };
        // Point at the value for leaves and at the key for tables.
        let s = if v.is_table_like() {
            k.span()
        } else {
            v.span()
        };
        if s.is_some() {
            span = s;
        }
        item = v;
    }
    match span {
        Some(s) => Location::from_span(path, text, s),
        None => Location::file(path),
    }
}

/// The word given and the words expected in serde's "unknown field `x`, expected `a`,
/// `b` or `c`" (`what` = "field") or "unknown variant `x`, expected one of `a`, `b`".
pub fn serde_expected<'m>(message: &'m str, what: &str) -> Option<(&'m str, Vec<String>)> {
    let rest = message.strip_prefix(&format!("unknown {what} `"))?;
    let (given, expected) = rest.split_once('`')?;
    let candidates = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(ToString::to_string)
        .collect();
    Some((given, candidates))
}

/// "did you mean" for serde's "unknown field `x`, expected `a`, `b` or `c`".
pub fn unknown_field_hint(message: &str) -> Option<String> {
    let (given, candidates) = serde_expected(message, "field")?;
    validate::did_you_mean(given, candidates.iter())
        .or_else(|| Some(format!("the keys here are: {}", candidates.join(", "))))
}

fn schema_hint(message: &str) -> String {
    if message.contains("expected u32") || message.contains("expected u16") {
        return "use a whole number that is not negative".into();
    }
    if message.contains("unknown field") {
        "remove the key or fix its spelling; the keys each table accepts are listed above".into()
    } else if message.contains("unknown variant") {
        "use one of the values listed above".into()
    } else if message.contains("missing field") {
        "add the missing key".into()
    } else {
        "fix the TOML at the location above; see README.md for the manifest's schema".into()
    }
}
