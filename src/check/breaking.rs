//! Proto breaking changes against a git revision (`msvc check --against REF`): every
//! proto is compared with its version at REF (read by [`ProtosAt`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;

use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, EnumDescriptorProto, FileDescriptorProto};

use super::Context;
use crate::error::SourceText;
use crate::error::{Location, Result};
use crate::workspace::diagnostic::Diagnostic;
use crate::workspace::protos::ProtoSet;
use crate::workspace::revision::ProtosAt;

pub fn check(
    ctx: &Context<'_>,
    protos: &ProtoSet,
    rev: &str,
    out: &mut Vec<Diagnostic>,
) -> Result<()> {
    let old = ProtosAt::read(ctx.root, rev, protos)?;
    // New since REF, or broken at REF: nothing to compare with.
    for (path, old_fd) in &old.files {
        match protos.files.get(path) {
            None if old.listed.contains(path) => {
                if old_fd.service.is_empty()
                    && old_fd.message_type.is_empty()
                    && old_fd.enum_type.is_empty()
                {
                    continue;
                }
                out.push(
                    Diagnostic::new("PROTO_BREAKING", format!("`{path}` was deleted (it exists at {rev})"))
                        .at(Location::file(path))
                        .hint(format!("restore it from {rev} (`git checkout {rev} -- {path}`), or publish its replacement in a new package version")),
                );
            }
            None => {}
            Some(file) => {
                let Some(new_fd) = &file.descriptor else {
                    continue;
                };
                let source = SourceText::new(path, &file.text);
                Compare::new(rev, old_fd, new_fd, &source, out).files();
            }
        }
    }
    Ok(())
}

/// The comparison of one file's old and new descriptors.
struct Compare<'a> {
    rev: &'a str,
    old: &'a FileDescriptorProto,
    new: &'a FileDescriptorProto,
    source: &'a SourceText<'a>,
    spans: HashMap<Vec<i32>, Vec<i32>>,
    /// The messages and enums each version declares, relative to the package.
    old_types: BTreeSet<String>,
    new_types: BTreeSet<String>,
    out: &'a mut Vec<Diagnostic>,
}

/// A message, enum or service, with its path in the descriptor (for source spans).
struct Named<'a, T> {
    path: Vec<i32>,
    item: &'a T,
}

impl<'a> Compare<'a> {
    fn new(
        rev: &'a str,
        old: &'a FileDescriptorProto,
        new: &'a FileDescriptorProto,
        source: &'a SourceText<'a>,
        out: &'a mut Vec<Diagnostic>,
    ) -> Self {
        let spans = new
            .source_code_info
            .as_ref()
            .map(|info| {
                info.location
                    .iter()
                    .map(|l| (l.path.clone(), l.span.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let types = |file: &FileDescriptorProto| -> BTreeSet<String> {
            messages(file)
                .into_keys()
                .chain(enums(file).into_keys())
                .collect()
        };
        Self {
            rev,
            old,
            new,
            source,
            spans,
            old_types: types(old),
            new_types: types(new),
            out,
        }
    }

    /// The span of the element at `path` in the new file: its name when it has one.
    fn span(&self, path: &[i32]) -> Option<Range<usize>> {
        let mut named = path.to_vec();
        named.push(1);
        let s = self.spans.get(&named).or_else(|| self.spans.get(path))?;
        let (start_line, start_col, end_line, end_col) = match s.as_slice() {
            [l, c, ec] => (*l, *c, *l, *ec),
            [l, c, el, ec] => (*l, *c, *el, *ec),
            _ => return None,
        };
        let to_usize = |v: i32| usize::try_from(v).unwrap_or(0);
        let start = self
            .source
            .offset(to_usize(start_line), to_usize(start_col));
        let end = self.source.offset(to_usize(end_line), to_usize(end_col));
        Some(start..end.max(start))
    }

    fn report(&mut self, path: &[i32], message: String, hint: &str) {
        // Deleted elements point at their parent, or at the package statement.
        let span = self.span(path).or_else(|| self.span(&[2]));
        let location = span.map_or_else(
            || Location::file(self.source.path()),
            |s| self.source.location(s),
        );
        self.out.push(
            Diagnostic::new("PROTO_BREAKING", message)
                .at(location)
                .hint(hint),
        );
    }

    fn files(mut self) {
        let (old_pkg, new_pkg) = (self.old.package(), self.new.package());
        if old_pkg != new_pkg {
            self.report(
                &[2],
                format!("package changed from `{old_pkg}` to `{new_pkg}` since {}", self.rev),
                "every type and service moved, so every client breaks; keep the old package, and put the new version in a new file",
            );
            return;
        }
        let old_msgs = messages(self.old);
        let new_msgs = messages(self.new);
        for (name, old) in &old_msgs {
            match new_msgs.get(name) {
                None => {
                    let parent = parent_path(name, &new_msgs);
                    self.report(
                        &parent,
                        format!("message `{name}` was deleted since {}", self.rev),
                        "keep the message; deprecate it with `option deprecated = true;` instead",
                    );
                }
                Some(new) => self.message(name, old, new),
            }
        }
        let old_enums = enums(self.old);
        let new_enums = enums(self.new);
        for (name, old) in &old_enums {
            match new_enums.get(name) {
                None => {
                    let parent = parent_path(name, &new_msgs);
                    self.report(
                        &parent,
                        format!("enum `{name}` was deleted since {}", self.rev),
                        "keep the enum; deprecate it instead",
                    );
                }
                Some(new) => self.enumeration(name, old, new),
            }
        }
        self.services();
    }

    fn message(
        &mut self,
        name: &str,
        old: &Named<'_, DescriptorProto>,
        new: &Named<'_, DescriptorProto>,
    ) {
        let pkg = self.old.package().to_string();
        for of in &old.item.field {
            let by_name = new
                .item
                .field
                .iter()
                .enumerate()
                .find(|(_, f)| f.name() == of.name());
            match by_name {
                None => {
                    let number = of.number();
                    let reserved = new
                        .item
                        .reserved_range
                        .iter()
                        .any(|r| r.start() <= number && number < r.end());
                    if reserved {
                        continue;
                    }
                    let reused = new
                        .item
                        .field
                        .iter()
                        .find(|f| f.number() == number)
                        .map(|f| format!("; number {number} is now `{}`", f.name()))
                        .unwrap_or_default();
                    self.report(
                        &new.path,
                        format!("field `{}` = {number} of `{name}` was deleted since {}{reused}", of.name(), self.rev),
                        &format!("keep the field, or reserve it so it is never reused: `reserved {number}; reserved \"{}\";`", of.name()),
                    );
                }
                Some((i, nf)) => {
                    let mut path = new.path.clone();
                    path.extend([2, i32::try_from(i).unwrap_or(i32::MAX)]);
                    if nf.number() != of.number() {
                        self.report(
                            &path,
                            format!(
                                "field `{}` of `{name}` changed number from {} to {} since {}",
                                of.name(),
                                of.number(),
                                nf.number(),
                                self.rev
                            ),
                            "put the old number back: the number is what is on the wire",
                        );
                    }
                    let (ot, nt) = (
                        field_type(of, &pkg, name, &self.old_types),
                        field_type(nf, &pkg, name, &self.new_types),
                    );
                    if ot != nt {
                        self.report(
                            &path,
                            format!("field `{}` of `{name}` changed type from `{ot}` to `{nt}` since {}", of.name(), self.rev),
                            "keep the old type; add a new field (with a new number) for the new one",
                        );
                    } else if (of.label() == Label::Repeated) != (nf.label() == Label::Repeated) {
                        self.report(
                            &path,
                            format!(
                                "field `{}` of `{name}` changed from {} to {} since {}",
                                of.name(),
                                label(of.label()),
                                label(nf.label()),
                                self.rev
                            ),
                            "keep the old label; add a new field for the new shape",
                        );
                    }
                }
            }
        }
    }

    fn enumeration(
        &mut self,
        name: &str,
        old: &Named<'_, EnumDescriptorProto>,
        new: &Named<'_, EnumDescriptorProto>,
    ) {
        for ov in &old.item.value {
            match new
                .item
                .value
                .iter()
                .enumerate()
                .find(|(_, v)| v.name() == ov.name())
            {
                None => {
                    let number = ov.number();
                    let reserved = new
                        .item
                        .reserved_range
                        .iter()
                        .any(|r| r.start() <= number && number <= r.end());
                    if !reserved {
                        self.report(
                            &new.path,
                            format!("value `{}` = {number} of enum `{name}` was deleted since {}", ov.name(), self.rev),
                            &format!("keep the value, or reserve it: `reserved {number}; reserved \"{}\";`", ov.name()),
                        );
                    }
                }
                Some((i, nv)) if nv.number() != ov.number() => {
                    let mut path = new.path.clone();
                    path.extend([2, i32::try_from(i).unwrap_or(i32::MAX)]);
                    self.report(
                        &path,
                        format!(
                            "value `{}` of enum `{name}` changed number from {} to {} since {}",
                            ov.name(),
                            ov.number(),
                            nv.number(),
                            self.rev
                        ),
                        "put the old number back",
                    );
                }
                Some(_) => {}
            }
        }
    }

    fn services(&mut self) {
        let pkg = self.old.package().to_string();
        for os in &self.old.service {
            let Some((si, ns)) = self
                .new
                .service
                .iter()
                .enumerate()
                .find(|(_, s)| s.name() == os.name())
            else {
                self.report(
                    &[2],
                    format!("service `{}` was deleted since {}", os.name(), self.rev),
                    "keep the service; its clients call it by name",
                );
                continue;
            };
            let service_path = vec![6, i32::try_from(si).unwrap_or(i32::MAX)];
            for om in &os.method {
                let Some((mi, nm)) = ns
                    .method
                    .iter()
                    .enumerate()
                    .find(|(_, m)| m.name() == om.name())
                else {
                    self.report(
                        &service_path,
                        format!("RPC `{}.{}` was deleted since {}", os.name(), om.name(), self.rev),
                        "keep the RPC (answer UNIMPLEMENTED or deprecate it); its clients still call it",
                    );
                    continue;
                };
                let mut path = service_path.clone();
                path.extend([2, i32::try_from(mi).unwrap_or(i32::MAX)]);
                let rpc = format!("{}.{}", os.name(), om.name());
                for (what, o, n) in [
                    ("request", om.input_type(), nm.input_type()),
                    ("response", om.output_type(), nm.output_type()),
                ] {
                    let (o, n) = (
                        resolve(o, &pkg, "", &self.old_types),
                        resolve(n, &pkg, "", &self.new_types),
                    );
                    if o != n {
                        self.report(
                            &path,
                            format!(
                                "RPC `{rpc}` changed its {what} type from `{o}` to `{n}` since {}",
                                self.rev
                            ),
                            "keep the old type; add a new RPC for the new one",
                        );
                    }
                }
                for (what, o, n) in [
                    ("client", om.client_streaming(), nm.client_streaming()),
                    ("server", om.server_streaming(), nm.server_streaming()),
                ] {
                    if o != n {
                        self.report(
                            &path,
                            format!(
                                "RPC `{rpc}` {} {what} streaming since {}",
                                if n { "started" } else { "stopped" },
                                self.rev
                            ),
                            "keep the old shape; add a new RPC for the streaming one",
                        );
                    }
                }
            }
        }
    }
}

fn label(l: Label) -> &'static str {
    if l == Label::Repeated {
        "repeated"
    } else {
        "singular"
    }
}

/// A field's type: a scalar's name, or the message or enum it names, resolved from
/// `scope` (the message it is in) as protoc resolves names, relative to the package.
fn field_type(
    f: &prost_types::FieldDescriptorProto,
    pkg: &str,
    scope: &str,
    types: &BTreeSet<String>,
) -> String {
    if f.type_name.as_deref().is_some_and(|t| !t.is_empty()) {
        return resolve(f.type_name(), pkg, scope, types);
    }
    Type::try_from(f.r#type.unwrap_or(0)).map_or_else(
        |_| "unknown".into(),
        |t| {
            t.as_str_name()
                .trim_start_matches("TYPE_")
                .to_ascii_lowercase()
        },
    )
}

/// A type name as written (`Kind`, `Item.Kind`, `.shop.v1.Item.Kind`) as the name of a
/// type of the file relative to its package (`Item.Kind`), searching the enclosing scopes
/// innermost first; names of other files keep their spelling.
fn resolve(name: &str, pkg: &str, scope: &str, types: &BTreeSet<String>) -> String {
    if name.starts_with('.') {
        return relative(name, pkg);
    }
    let mut scope = scope;
    loop {
        let candidate = if scope.is_empty() {
            name.to_string()
        } else {
            format!("{scope}.{name}")
        };
        if types.contains(&candidate) {
            return candidate;
        }
        if scope.is_empty() {
            return relative(name, pkg);
        }
        scope = scope.rsplit_once('.').map_or("", |(parent, _)| parent);
    }
}

fn relative(name: &str, pkg: &str) -> String {
    let name = name.trim_start_matches('.');
    if pkg.is_empty() {
        return name.to_string();
    }
    name.strip_prefix(pkg)
        .and_then(|r| r.strip_prefix('.'))
        .unwrap_or(name)
        .to_string()
}

/// Every message of a file, nested ones too, by name relative to the package.
fn messages(file: &FileDescriptorProto) -> BTreeMap<String, Named<'_, DescriptorProto>> {
    fn walk<'a>(
        prefix: &str,
        path: &[i32],
        field: i32,
        msgs: &'a [DescriptorProto],
        out: &mut BTreeMap<String, Named<'a, DescriptorProto>>,
    ) {
        for (i, m) in msgs.iter().enumerate() {
            let name = if prefix.is_empty() {
                m.name().to_string()
            } else {
                format!("{prefix}.{}", m.name())
            };
            let mut p = path.to_vec();
            p.extend([field, i32::try_from(i).unwrap_or(i32::MAX)]);
            walk(&name, &p, 3, &m.nested_type, out);
            out.insert(name, Named { path: p, item: m });
        }
    }
    let mut out = BTreeMap::new();
    walk("", &[], 4, &file.message_type, &mut out);
    out
}

/// Every enum of a file, nested ones too.
fn enums(file: &FileDescriptorProto) -> BTreeMap<String, Named<'_, EnumDescriptorProto>> {
    let mut out = BTreeMap::new();
    for (i, e) in file.enum_type.iter().enumerate() {
        out.insert(
            e.name().to_string(),
            Named {
                path: vec![5, i32::try_from(i).unwrap_or(i32::MAX)],
                item: e,
            },
        );
    }
    for (name, m) in messages(file) {
        for (i, e) in m.item.enum_type.iter().enumerate() {
            let mut p = m.path.clone();
            p.extend([4, i32::try_from(i).unwrap_or(i32::MAX)]);
            out.insert(format!("{name}.{}", e.name()), Named { path: p, item: e });
        }
    }
    out
}

/// The path of the nearest enclosing message that still exists, or the package statement.
fn parent_path(name: &str, msgs: &BTreeMap<String, Named<'_, DescriptorProto>>) -> Vec<i32> {
    let mut n = name;
    while let Some((parent, _)) = n.rsplit_once('.') {
        if let Some(m) = msgs.get(parent) {
            return m.path.clone();
        }
        n = parent;
    }
    vec![2]
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = r#"syntax = "proto3";
package shop.v1;
service Shop {
  rpc Get(GetRequest) returns (Item);
  rpc List(GetRequest) returns (stream Item);
}
message GetRequest { int64 id = 1; }
message Item {
  int64 id = 1;
  string name = 2;
  repeated string tags = 3;
  Kind kind = 4;
  message Part { string sku = 1; }
  enum Kind { KIND_UNSPECIFIED = 0; KIND_BOOK = 1; }
}
enum Color { COLOR_UNSPECIFIED = 0; COLOR_RED = 1; }
"#;

    fn breaks(new: &str) -> Vec<String> {
        let old = protox_parse::parse("a.proto", OLD).unwrap();
        let new_fd = protox_parse::parse("a.proto", new).unwrap();
        let source = SourceText::new("a.proto", new);
        let mut out = Vec::new();
        Compare::new("main", &old, &new_fd, &source, &mut out).files();
        out.into_iter().map(|d| d.message).collect()
    }

    #[test]
    fn the_same_file_does_not_break() {
        assert_eq!(breaks(OLD), Vec::<String>::new());
        // Additions and a qualified spelling of the same type are fine.
        let new = OLD
            .replace(
                "  Kind kind = 4;",
                "  .shop.v1.Item.Kind kind = 4;\n  string extra = 5;",
            )
            .replace(
                "rpc List(",
                "rpc Watch(GetRequest) returns (Item);\n  rpc List(",
            );
        assert_eq!(breaks(&new), Vec::<String>::new());
    }

    #[test]
    fn deletions_and_changes_break() {
        let new = OLD
            .replace("  rpc List(GetRequest) returns (stream Item);\n", "")
            .replace(
                "rpc Get(GetRequest) returns (Item)",
                "rpc Get(GetRequest) returns (stream GetRequest)",
            )
            .replace("  string name = 2;\n", "")
            .replace("repeated string tags = 3;", "string tags = 3;")
            .replace("int64 id = 1;\n  string", "string id = 1;\n  string")
            .replace("  message Part { string sku = 1; }\n", "")
            .replace(" KIND_BOOK = 1;", " KIND_BOOK = 2;")
            .replace(" COLOR_RED = 1;", "");
        assert_eq!(
            breaks(&new),
            [
                "field `id` of `Item` changed type from `int64` to `string` since main",
                "field `name` = 2 of `Item` was deleted since main",
                "field `tags` of `Item` changed from repeated to singular since main",
                "message `Item.Part` was deleted since main",
                "value `COLOR_RED` = 1 of enum `Color` was deleted since main",
                "value `KIND_BOOK` of enum `Item.Kind` changed number from 1 to 2 since main",
                "RPC `Shop.Get` changed its response type from `Item` to `GetRequest` since main",
                "RPC `Shop.Get` started server streaming since main",
                "RPC `Shop.List` was deleted since main",
            ]
        );
    }

    #[test]
    fn reserved_numbers_retire_fields_and_a_new_package_moves_everything() {
        let new = OLD.replace(
            "  string name = 2;\n",
            "  reserved 2;\n  reserved \"name\";\n",
        );
        assert_eq!(breaks(&new), Vec::<String>::new());
        let new = OLD.replace("package shop.v1;", "package shop.v2;");
        assert_eq!(
            breaks(&new),
            ["package changed from `shop.v1` to `shop.v2` since main"]
        );
        let new = OLD.replace("service Shop {", "service Store {");
        assert_eq!(breaks(&new), ["service `Shop` was deleted since main"]);
    }
}
