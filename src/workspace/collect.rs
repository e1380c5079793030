//! services.toml read for `msvc check`: table by table, so that every problem is reported
//! (syntax, unknown keys with "did you mean", wrong types, duplicate services), then the
//! semantic validation other commands refuse a manifest for. The strict reader, which stops
//! at the first problem, is [`super::Workspace::load`].

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use serde::Deserialize;
use serde::de::{self, Visitor};
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::diagnostic::Diagnostic;
use super::model::{
    Broker, CheckLevel, DatabaseSection, DeploySection, Manifest, Service, WorkspaceSection,
};
use super::validate::{self, did_you_mean};
use super::{MANIFEST_FILE, Workspace};
use crate::error::Location;
use crate::error::SourceText;

/// The manifest as far as it could be read.
pub struct Loaded {
    pub manifest: Manifest,
    /// Services whose table could not be read: left out of `manifest`, but known by name,
    /// so that references to them and their directories are not reported again.
    pub broken: BTreeSet<String>,
    /// The queues each broken service still names where its lists read, so that a queue
    /// it publishes or consumes is not reported as unpaired.
    pub broken_queues: BTreeMap<String, BrokenQueues>,
    /// Whether any part of the manifest could not be read (schema errors).
    pub schema_errors: bool,
}

/// The `publishes` and `consumes` of a service whose table could not be read.
#[derive(Debug, Clone, Default)]
pub struct BrokenQueues {
    pub publishes: Vec<String>,
    pub consumes: Vec<String>,
}

/// Where keys of services.toml are, to point diagnostics at them.
pub struct ManifestIndex<'a> {
    pub source: SourceText<'a>,
    table: DeTable<'a>,
}

impl ManifestIndex<'_> {
    /// The location of a key path (`["services", "user-api", "depends_on", "0"]`): the
    /// value for leaves, the key for tables, else the deepest key that exists.
    pub fn locate(&self, keys: &[&str]) -> Location {
        match span_of(&self.table, keys) {
            Some(span) => self.source.location(span),
            None => Location::file(MANIFEST_FILE),
        }
    }

    /// The location of the last key of a key path itself, not its value.
    pub fn locate_key(&self, keys: &[&str]) -> Location {
        let (last, parents) = keys.split_last().expect("a key path names a key");
        let table = span_table(&self.table, parents);
        match table.and_then(|t| t.get_key_value(*last)) {
            Some((k, _)) => self.source.location(k.span()),
            None => self.locate(keys),
        }
    }

    pub fn location(&self, span: Range<usize>) -> Location {
        self.source.location(span)
    }
}

/// The table at a key path.
fn span_table<'t, 'a>(root: &'t DeTable<'a>, keys: &[&str]) -> Option<&'t DeTable<'a>> {
    let mut table = root;
    for key in keys {
        match table.get(*key)?.get_ref() {
            DeValue::Table(t) => table = t,
            _ => return None,
        }
    }
    Some(table)
}

fn span_of(root: &DeTable<'_>, keys: &[&str]) -> Option<Range<usize>> {
    let mut span = None;
    let mut table = root;
    let mut current: Option<&Spanned<DeValue<'_>>> = None;
    for key in keys {
        if let Some(v) = current {
            match v.get_ref() {
                DeValue::Table(t) => table = t,
                DeValue::Array(items) => {
                    if let Some(item) = key.parse::<usize>().ok().and_then(|i| items.get(i)) {
                        span = Some(item.span());
                    }
                    break;
                }
                _ => break,
            }
        }
        let Some((k, v)) = table.get_key_value(*key) else {
            break;
        };
        span = Some(if v.get_ref().is_table() {
            k.span()
        } else {
            v.span()
        });
        current = Some(v);
    }
    span
}

/// Reads services.toml. `None` when it is not valid TOML: then nothing else is checked.
pub fn load<'a>(text: &'a str, out: &mut Vec<Diagnostic>) -> (ManifestIndex<'a>, Option<Loaded>) {
    let source = SourceText::new(MANIFEST_FILE, text);
    let (root, errors) = DeTable::parse_recoverable(text);
    let index = ManifestIndex {
        source,
        table: root.into_inner(),
    };
    if !syntax(&index, &errors, out) {
        return (index, None);
    }
    let loaded = read_tables(&index, out);
    (index, Some(loaded))
}

/// Reports syntax errors; returns whether the rest of the manifest can be trusted.
fn syntax(
    index: &ManifestIndex<'_>,
    errors: &[toml::de::Error],
    out: &mut Vec<Diagnostic>,
) -> bool {
    let text = index.source.text();
    let mut ok = true;
    let mut first_syntax: Option<Diagnostic> = None;
    // The header line of the last duplicated table: keys under it repeat the same error.
    let mut duplicate_header: Option<usize> = None;
    let mut spans: Vec<(Range<usize>, &toml::de::Error)> = errors
        .iter()
        .map(|e| (e.span().unwrap_or(0..0), e))
        .collect();
    spans.sort_by_key(|(s, _)| s.start);
    for (span, err) in spans {
        let unclosed = super::unclosed_at(text, err.message(), &span);
        let message = match unclosed {
            Some(_) => super::UNCLOSED_ARRAY.to_string(),
            None => err.message().trim_end().to_string(),
        };
        let location = index.location(unclosed.unwrap_or_else(|| span.clone()));
        if message.starts_with("duplicate key") {
            let line = location.line;
            let line_text = location.source_line.clone().unwrap_or_default();
            let header_line = header_above(text, span.start);
            if line_text.trim_start().starts_with('[') {
                duplicate_header = Some(line);
                let key = text
                    .get(span.clone())
                    .unwrap_or_default()
                    .trim_matches('"')
                    .to_string();
                let in_services = line_text
                    .trim_start()
                    .trim_start_matches('[')
                    .trim_start()
                    .starts_with("services.");
                if in_services {
                    out.push(
                        Diagnostic::new(
                            "DUPLICATE_SERVICE",
                            format!("service `{key}` is defined twice"),
                        )
                        .at(location)
                        .hint("rename one of the services, or merge the two tables"),
                    );
                } else {
                    out.push(
                        Diagnostic::new(
                            "MANIFEST_SYNTAX",
                            format!("table `{key}` is defined twice"),
                        )
                        .at(location)
                        .hint("merge the two tables"),
                    );
                }
                continue;
            }
            if duplicate_header.is_some() && header_line == duplicate_header {
                continue;
            }
            out.push(
                Diagnostic::new("MANIFEST_SYNTAX", "a key is set twice")
                    .at(location)
                    .hint("remove one of the two"),
            );
            continue;
        }
        ok = false;
        if first_syntax.is_none() {
            first_syntax = Some(
                Diagnostic::new("MANIFEST_SYNTAX", format!("invalid TOML: {message}"))
                    .at(location)
                    .hint("fix the TOML at the location above; nothing else is checked until it parses"),
            );
        }
    }
    out.extend(first_syntax);
    ok
}

/// The 1-based line of the nearest table header (`[...]`) at or above `offset`.
fn header_above(text: &str, offset: usize) -> Option<usize> {
    let offset = crate::error::floor_char_boundary(text, offset);
    let before = &text[..offset];
    let mut line_no = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let current_line = text[line_start..].lines().next().unwrap_or("");
    if current_line.trim_start().starts_with('[') {
        return Some(line_no);
    }
    for line in before[..line_start].lines().rev() {
        line_no -= 1;
        if line.trim_start().starts_with('[') {
            return Some(line_no);
        }
    }
    None
}

/// Reads each table on its own, so one broken table does not hide the others' problems.
fn read_tables(index: &ManifestIndex<'_>, out: &mut Vec<Diagnostic>) -> Loaded {
    let root = &index.table;
    let mut schema_errors = false;
    let top: &[&str] = fields_of::<Manifest>();
    unknown_keys(index, root, top, "", out);

    let workspace = if let Some(v) = root.get("workspace") {
        read_struct::<WorkspaceSection>(
            index,
            &["workspace"],
            v,
            fields_of::<WorkspaceSection>(),
            "[workspace]",
            out,
        )
    } else {
        out.push(
            Diagnostic::new("MANIFEST_SCHEMA", "services.toml has no [workspace] table")
                .at(index.location(0..0))
                .hint("add `[workspace]` with `name = \"...\"` at the top"),
        );
        None
    };
    let workspace = workspace.unwrap_or_else(|| {
        schema_errors = true;
        WorkspaceSection {
            name: "workspace".into(),
            template_version: super::model::TEMPLATE_VERSION,
            templates: None,
            shutdown_grace: None,
        }
    });
    let broker =
        read_section::<Broker>(index, root.get("broker"), "broker", out, &mut schema_errors);
    let database = read_section::<DatabaseSection>(
        index,
        root.get("database"),
        "database",
        out,
        &mut schema_errors,
    );
    let deploy =
        read_section::<DeploySection>(index, root.get("deploy"), "deploy", out, &mut schema_errors);

    let mut services = BTreeMap::new();
    let mut unreadable = BTreeSet::new();
    let mut broken_queues = BTreeMap::new();
    if let Some(v) = root.get("services") {
        if let DeValue::Table(table) = v.get_ref() {
            for (name, value) in table {
                let name = name.get_ref().to_string();
                let what = format!("service `{name}`");
                if let Some(svc) = read_struct::<Service>(
                    index,
                    &["services", &name],
                    value,
                    fields_of::<Service>(),
                    &what,
                    out,
                ) {
                    services.insert(name, svc);
                } else {
                    schema_errors = true;
                    broken_queues.insert(name.clone(), queues_of(value));
                    unreadable.insert(name);
                }
            }
        } else {
            schema_errors = true;
            out.push(not_a_table(index, v, "services"));
        }
    }

    let mut checks = BTreeMap::new();
    if let Some(v) = root.get("checks") {
        if let DeValue::Table(table) = v.get_ref() {
            for (id, value) in table {
                let id_text = id.get_ref().to_string();
                let Ok(level) = CheckLevel::deserialize(ValueDeserializer::from(value.clone()))
                else {
                    schema_errors = true;
                    out.push(
                        Diagnostic::new(
                            "MANIFEST_SCHEMA",
                            format!(
                                "the level of check `{id_text}` must be \"off\", \"warning\" or \"error\""
                            ),
                        )
                        .at(index.location(value.span()))
                        .hint(format!(
                            "write `{id_text} = \"off\"`, `\"warning\"` or `\"error\"`"
                        )),
                    );
                    continue;
                };
                checks.insert(id_text, level);
            }
        } else {
            schema_errors = true;
            out.push(not_a_table(index, v, "checks"));
        }
    }

    Loaded {
        manifest: Manifest {
            workspace,
            broker,
            database,
            deploy,
            services,
            checks,
        },
        broken: unreadable,
        broken_queues,
        schema_errors,
    }
}

fn not_a_table(index: &ManifestIndex<'_>, v: &Spanned<DeValue<'_>>, key: &str) -> Diagnostic {
    Diagnostic::new(
        "MANIFEST_SCHEMA",
        format!("`{key}` must be a table, not {}", v.get_ref().type_str()),
    )
    .at(index.location(v.span()))
    .hint(format!("write it as a table: `[{key}.NAME]` headers"))
}

/// Reports keys of `table` that are not in `known`; `prefix` names the table in messages.
fn unknown_keys(
    index: &ManifestIndex<'_>,
    table: &DeTable<'_>,
    known: &[&str],
    what: &str,
    out: &mut Vec<Diagnostic>,
) -> Vec<String> {
    let mut unknown = Vec::new();
    for (key, _) in table {
        let k = key.get_ref();
        if known.contains(&k.as_ref()) {
            continue;
        }
        let candidates: Vec<String> = known.iter().map(ToString::to_string).collect();
        let hint = did_you_mean(k, candidates.iter())
            .unwrap_or_else(|| format!("the keys here are: {}", known.join(", ")));
        let place = if what.is_empty() {
            "at the top level".to_string()
        } else {
            format!("in {what}")
        };
        out.push(
            Diagnostic::new("MANIFEST_UNKNOWN_KEY", format!("unknown key `{k}` {place}"))
                .at(index.location(key.span()))
                .hint(hint),
        );
        unknown.push(k.to_string());
    }
    unknown
}

/// Reads one table as `T`, reporting unknown keys and the first schema error.
/// An optional top-level table, `[key]`, read on its own: `None` when it is absent or
/// does not read (which `schema_errors` then records).
fn read_section<'de, T: Deserialize<'de>>(
    index: &ManifestIndex<'de>,
    value: Option<&Spanned<DeValue<'de>>>,
    key: &str,
    out: &mut Vec<Diagnostic>,
    schema_errors: &mut bool,
) -> Option<T> {
    let read = read_struct::<T>(
        index,
        &[key],
        value?,
        fields_of::<T>(),
        &format!("[{key}]"),
        out,
    );
    *schema_errors |= read.is_none();
    read
}

fn read_struct<'de, T: Deserialize<'de>>(
    index: &ManifestIndex<'de>,
    table_keys: &[&str],
    value: &Spanned<DeValue<'de>>,
    known: &[&str],
    what: &str,
    out: &mut Vec<Diagnostic>,
) -> Option<T> {
    let DeValue::Table(table) = value.get_ref() else {
        out.push(
            Diagnostic::new(
                "MANIFEST_SCHEMA",
                format!("{what} must be a table, not {}", value.get_ref().type_str()),
            )
            .at(index.location(value.span()))
            .hint("write it as a table under its own `[...]` header"),
        );
        return None;
    };
    let unknown = unknown_keys(index, table, known, what, out);
    let value = if unknown.is_empty() {
        value.clone()
    } else {
        let mut cleaned = table.clone();
        for k in &unknown {
            cleaned.remove(k.as_str());
        }
        Spanned::new(value.span(), DeValue::Table(cleaned))
    };
    match T::deserialize(ValueDeserializer::from(value.clone())) {
        Ok(v) => Some(v),
        Err(err) => {
            let span = err.span().unwrap_or_else(|| value.span());
            // Name the key whose value is wrong, when the error points inside one.
            let key = table
                .iter()
                .find(|(_, v)| v.span().start <= span.start && span.end <= v.span().end)
                .map(|(k, _)| k.get_ref().to_string());
            let detail = err.message().trim_end().to_string();
            let message = match &key {
                Some(k) => format!("`{k}` of {what}: {detail}"),
                None => format!("{what}: {detail}"),
            };
            let hint = variant_hint(&detail)
                .or_else(|| crate::workspace::unknown_field_hint(&detail))
                .unwrap_or_else(|| {
                    if detail.starts_with("missing field") {
                        "add the missing key; README.md describes the manifest".to_string()
                    } else {
                        "give the key a value of the type named above".to_string()
                    }
                });
            // A missing key points at the table's name rather than its whole body.
            let location = if key.is_none() {
                index.locate(table_keys)
            } else {
                index.location(span)
            };
            out.push(
                Diagnostic::new("MANIFEST_SCHEMA", message)
                    .at(location)
                    .hint(hint),
            );
            None
        }
    }
}

/// The queue lists of a service table, each read on its own; one that does not read is empty.
fn queues_of(value: &Spanned<DeValue<'_>>) -> BrokenQueues {
    let DeValue::Table(table) = value.get_ref() else {
        return BrokenQueues::default();
    };
    let list = |key: &str| {
        table
            .get(key)
            .and_then(|v| Vec::<String>::deserialize(ValueDeserializer::from(v.clone())).ok())
            .unwrap_or_default()
    };
    BrokenQueues {
        publishes: list("publishes"),
        consumes: list("consumes"),
    }
}

/// "did you mean" for serde's "unknown variant `x`, expected one of `a`, `b`".
fn variant_hint(message: &str) -> Option<String> {
    let (given, candidates) = crate::workspace::serde_expected(message, "variant")?;
    did_you_mean(given, candidates.iter())
        .or_else(|| Some(format!("use one of: {}", candidates.join(", "))))
}

/// Semantic problems (the ones other commands refuse a manifest for), as diagnostics.
pub fn validate(
    ws: &Workspace,
    index: &ManifestIndex<'_>,
    broken: &BTreeSet<String>,
    out: &mut Vec<Diagnostic>,
) {
    for p in validate::validate(ws) {
        // A dependency on a service whose table could not be read is not unknown.
        if p.id == "UNKNOWN_DEPENDENCY"
            && p.keys.len() == 4
            && let Some(svc) = ws.manifest.services.get(&p.keys[1])
            && let Ok(i) = p.keys[3].parse::<usize>()
            && svc.depends_on.get(i).is_some_and(|d| broken.contains(d))
        {
            continue;
        }
        let keys: Vec<&str> = p.keys.iter().map(String::as_str).collect();
        let mut d = Diagnostic::new(p.id, p.message).at(index.locate(&keys));
        if let Some(h) = p.hint {
            d = d.hint(h);
        }
        out.push(d);
    }
}

/// The field names a struct deserializes, read from its `Deserialize` impl so the list of
/// known keys never falls behind the model.
fn fields_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    struct Introspect<'a>(&'a mut &'static [&'static str]);

    impl<'de> de::Deserializer<'de> for Introspect<'_> {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("fields read"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }

    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Introspect(&mut fields));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_keys_come_from_the_model() {
        assert_eq!(
            fields_of::<Manifest>(),
            [
                "workspace",
                "broker",
                "database",
                "deploy",
                "services",
                "checks"
            ]
        );
        assert!(fields_of::<Service>().contains(&"depends_on"));
        assert!(fields_of::<WorkspaceSection>().contains(&"shutdown_grace"));
    }

    fn ids(text: &str) -> Vec<(&'static str, String, usize)> {
        let mut out = Vec::new();
        let _ = load(text, &mut out);
        out.into_iter()
            .map(|d| (d.id, d.message, d.location.map_or(0, |l| l.line)))
            .collect()
    }

    #[test]
    fn every_table_is_read_on_its_own() {
        let found = ids(
            "[workspace]\nname = \"shop\"\n[services.a]\nkind = \"grcp\"\nprot = 1\n[services.b]\nkind = \"rest\"\nport = \"x\"\n[services.c]\nkind = \"rest\"\nport = 1\n[checks]\nPORT_CONFLIT = \"off\"\nDURATION = \"loud\"\n",
        );
        let ids: Vec<&str> = found.iter().map(|f| f.0).collect();
        assert_eq!(
            ids,
            [
                "MANIFEST_UNKNOWN_KEY",
                "MANIFEST_SCHEMA",
                "MANIFEST_SCHEMA",
                "MANIFEST_SCHEMA",
            ],
            "{found:?}; check IDs are `check`'s to know (its `unknown_checks`)"
        );
        assert_eq!(
            found[1].1,
            "`kind` of service `a`: unknown variant `grcp`, expected one of `rest`, `grpc`, `worker`, `process`"
        );
        assert_eq!(found[2].2, 8);
    }

    #[test]
    fn a_missing_key_points_at_its_table() {
        let found = ids("[workspace]\nname = \"s\"\n\n[services.a]\nport = 1\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].1, "service `a`: missing field `kind`");
        assert_eq!(found[0].2, 4);
        let found = ids("[services.a]\nkind = \"rest\"\n");
        assert_eq!(found[0].1, "services.toml has no [workspace] table");
    }

    #[test]
    fn duplicates_are_reported_once_per_table() {
        let found = ids(
            "[workspace]\nname = \"s\"\n[services.a]\nkind = \"rest\"\n[services.a]\nkind = \"rest\"\nport = 1\n",
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "DUPLICATE_SERVICE");
        assert_eq!(found[0].2, 5);
    }

    #[test]
    fn a_syntax_error_stops_and_is_reported_once() {
        let found = ids("[workspace]\nname = \"s\"\nx = [1,\n[w]\na=1\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "MANIFEST_SYNTAX");
    }
}
