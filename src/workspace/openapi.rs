//! A REST service's `openapi.yaml`, reduced to what a typed client needs: operations
//! with their path parameters, JSON bodies and responses, and the object schemas.
//!
//! msvc reads the subset of `OpenAPI` 3 its REST template writes (and what users typically
//! add to it): `paths` with `get`/`post`/`put`/`patch`/`delete`, path parameters, JSON
//! request and response bodies, and `components.schemas` objects with scalar, array and
//! `$ref` properties. Anything else is mapped to `serde_json::Value`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use heck::{ToPascalCase, ToSnakeCase};
use serde::Serialize;
use serde_yaml_ng::Value;

use super::diagnostic::Diagnostic;
use super::model::{Kind, Manifest};
use super::service_dir;
use super::source::Files;
use crate::error::{Error, Location, Result, SourceText, slash_path};

/// A typed client's worth of an API.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RestApi {
    pub schemas: Vec<Schema>,
    /// The operations a typed client has a function for.
    pub operations: Vec<Operation>,
    /// Every route with the methods it declares, `head` and `options` included, as
    /// (`HEAD`, `/user/{id}`): what `calls` entries are resolved against.
    #[serde(skip)]
    pub routes: Vec<(String, String)>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Schema {
    pub name: String,
    pub fields: Vec<Field>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Field {
    /// The Rust field name (raw identifier for keywords).
    pub name: String,
    /// The JSON name, when it differs from the Rust one.
    pub rename: Option<String>,
    pub ty: String,
    pub optional: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Operation {
    /// `get_user`
    pub method_name: String,
    /// `GET`
    pub http_method: String,
    /// `/user/{id}`
    pub path: String,
    /// `format!` argument building the path: `"/user/{id}"`.
    pub path_format: String,
    /// Whether the path has parameters (else it is a plain string, not a `format!`).
    pub has_params: bool,
    /// The `async fn` line(s), laid out as rustfmt would at one indent.
    pub signature: String,
    /// Rust type of the JSON body, if any.
    pub body: Option<String>,
    /// Rust type of the success response (`()` when it has no JSON body).
    pub response: String,
    pub summary: String,
}

const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use",
    "where", "while", "yield", "gen",
];

fn ident(name: &str) -> String {
    let snake = name.to_snake_case();
    if KEYWORDS.contains(&snake.as_str()) {
        format!("r#{snake}")
    } else if snake.starts_with(|c: char| c.is_ascii_digit()) || snake.is_empty() {
        format!("f_{snake}")
    } else {
        snake
    }
}

/// The file a REST service declares its routes in, relative to the workspace root.
pub fn openapi_path(service: &str) -> PathBuf {
    service_dir(service).join("openapi.yaml")
}

/// What one REST service's openapi.yaml gave.
#[derive(Debug)]
enum Read {
    Api(RestApi),
    Missing,
    /// Does not parse: the text (its error is made again for a command that needs the
    /// file, which then stops) and the diagnostic for `msvc check`.
    Invalid(String, Diagnostic),
}

/// The openapi.yaml of every REST service, read once.
#[derive(Debug, Default)]
pub struct RestApis {
    root: PathBuf,
    read: BTreeMap<String, Read>,
}

impl RestApis {
    /// Reads the openapi.yaml of every REST service of `manifest`, as `files` has them.
    pub fn read(root: &Path, manifest: &Manifest, files: &dyn Files) -> Self {
        let mut read = BTreeMap::new();
        for (name, svc) in &manifest.services {
            if svc.kind != Kind::Rest {
                continue;
            }
            let rel = openapi_path(name);
            let entry = match files.read(&rel) {
                Err(_) => Read::Missing,
                Ok(bytes) => {
                    let text = String::from_utf8_lossy(&bytes).into_owned();
                    let shown = slash_path(&rel);
                    match parse(root, &shown, &text) {
                        Ok(api) => Read::Api(api),
                        Err(err) => {
                            let problem = invalid(&rel, &text, &err);
                            Read::Invalid(text, problem)
                        }
                    }
                }
            };
            read.insert(name.clone(), entry);
        }
        Self {
            root: root.to_path_buf(),
            read,
        }
    }

    /// The API of a REST service, when its openapi.yaml reads.
    pub fn get(&self, service: &str) -> Option<&RestApi> {
        match self.read.get(service)? {
            Read::Api(api) => Some(api),
            _ => None,
        }
    }

    /// A REST service's API, or why its openapi.yaml does not read; `None` when there is
    /// no such file (or no such REST service).
    pub fn api(&self, service: &str) -> Option<Result<&RestApi>> {
        match self.read.get(service)? {
            Read::Api(api) => Some(Ok(api)),
            Read::Invalid(text, _) => Some(Err(parse(
                &self.root,
                &slash_path(&openapi_path(service)),
                text,
            )
            .expect_err("it did not parse when read"))),
            Read::Missing => None,
        }
    }

    /// The API its callers' typed client is generated from, or why there is none.
    pub fn for_client(&self, service: &str) -> Result<&RestApi> {
        self.api(service).unwrap_or_else(|| {
            Err(Error::new(format!(
                "`{}` does not exist, so the typed client of `{service}` cannot be generated",
                slash_path(&openapi_path(service))
            ))
            .hint("restore the file (msvc writes one with every REST service); its callers' client is generated from it"))
        })
    }

    /// What `msvc check` reports of a service's openapi.yaml: it does not read, or it is
    /// missing while `used` (other services depend on or call the service).
    pub fn problem(&self, service: &str, used: bool) -> Option<Diagnostic> {
        match self.read.get(service)? {
            Read::Api(_) => None,
            Read::Invalid(_, problem) => Some(problem.clone()),
            Read::Missing => used.then(|| {
                let rel = openapi_path(service);
                Diagnostic::new(
                    "OPENAPI_INVALID",
                    format!(
                        "`{}` does not exist, and other services call `{service}`",
                        slash_path(&rel)
                    ),
                )
                .at(Location::file(&rel))
                .hint("restore the file: the typed client of its callers is generated from it")
            }),
        }
    }
}

/// `OPENAPI_INVALID` for YAML that does not read, at the place it stops reading.
fn invalid(rel: &Path, text: &str, err: &Error) -> Diagnostic {
    let source = SourceText::new(rel, text);
    let location = err.location.as_ref().filter(|l| l.line > 0).map_or_else(
        || Location::file(rel),
        |l| {
            let offset = source.offset(l.line - 1, l.column.saturating_sub(1));
            source.location(offset..offset + 1)
        },
    );
    let cause = std::error::Error::source(err)
        .map(ToString::to_string)
        .unwrap_or_default();
    let cause = cause.split(" at line ").next().unwrap_or(&cause);
    Diagnostic::new(
        "OPENAPI_INVALID",
        format!("`{}` is not valid YAML: {cause}", slash_path(rel)),
    )
    .at(location)
    .hint("fix the YAML; the typed client of the service's callers is generated from it")
}

/// Parses `text`, the `openapi.yaml` at `path` (relative to `root`).
pub fn parse(root: &Path, path: &str, text: &str) -> Result<RestApi> {
    let doc: Value = serde_yaml_ng::from_str(text).map_err(|e| {
        let mut err = Error::new(format!("cannot parse `{path}`"));
        err = match e.location() {
            Some(loc) => err.at(Location::from_span(
                &root.join(path),
                text,
                loc.index()..loc.index() + 1,
            )),
            None => err.at(Location::file(root.join(path))),
        };
        err.source(e)
            .hint("fix the YAML; msvc reads it to generate the typed client its callers use")
    })?;
    let mut schemas = Vec::new();
    if let Some(map) = doc
        .get("components")
        .and_then(|c| c.get("schemas"))
        .and_then(Value::as_mapping)
    {
        for (name, schema) in map {
            let Some(name) = name.as_str() else { continue };
            schemas.push(Schema {
                name: name.to_pascal_case(),
                fields: fields(schema),
            });
        }
    }
    let mut operations = Vec::new();
    let mut routes = Vec::new();
    let mut used = BTreeMap::new();
    if let Some(paths) = doc.get("paths").and_then(Value::as_mapping) {
        for (route, item) in paths {
            let Some(route) = route.as_str() else {
                continue;
            };
            for method in ["get", "post", "put", "patch", "delete", "head", "options"] {
                let Some(op) = item.get(method) else { continue };
                routes.push((method.to_ascii_uppercase(), route.to_string()));
                if !matches!(method, "head" | "options") {
                    operations.push(operation(route, method, item, op, &mut used));
                }
            }
        }
    }
    Ok(RestApi {
        schemas,
        operations,
        routes,
    })
}

fn fields(schema: &Value) -> Vec<Field> {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_sequence)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(props) = schema.get("properties").and_then(Value::as_mapping) else {
        return Vec::new();
    };
    props
        .iter()
        .filter_map(|(k, v)| {
            let json = k.as_str()?;
            let name = ident(json);
            let bare = name.trim_start_matches("r#");
            Some(Field {
                rename: (bare != json).then(|| json.to_string()),
                name,
                ty: rust_type(v),
                optional: !required.contains(&json),
            })
        })
        .collect()
}

/// The Rust type of a schema.
fn rust_type(schema: &Value) -> String {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        return r.rsplit('/').next().unwrap_or(r).to_pascal_case();
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("integer") => match schema.get("format").and_then(Value::as_str) {
            Some("int32") => "i32".into(),
            _ => "i64".into(),
        },
        Some("number") => "f64".into(),
        Some("string") => "String".into(),
        Some("boolean") => "bool".into(),
        Some("array") => format!(
            "Vec<{}>",
            schema
                .get("items")
                .map_or_else(|| "serde_json::Value".to_string(), rust_type)
        ),
        _ => "serde_json::Value".into(),
    }
}

fn json_schema_of(v: &Value) -> Option<&Value> {
    v.get("content")?.get("application/json")?.get("schema")
}

fn operation(
    route: &str,
    method: &str,
    item: &Value,
    op: &Value,
    used: &mut BTreeMap<String, usize>,
) -> Operation {
    let base = op.get("operationId").and_then(Value::as_str).map_or_else(
        || {
            let words: String = route
                .split('/')
                .filter(|s| !s.is_empty() && !s.starts_with('{'))
                .collect::<Vec<_>>()
                .join("_");
            format!("{method}_{words}")
        },
        ToSnakeCase::to_snake_case,
    );
    let count = used.entry(base.clone()).or_insert(0);
    *count += 1;
    let method_name = if *count == 1 {
        ident(&base)
    } else {
        format!("{base}_{count}")
    };

    // Path parameters: from the operation and from the path item.
    let mut params: Vec<(String, String)> = Vec::new();
    for list in [item.get("parameters"), op.get("parameters")]
        .into_iter()
        .flatten()
    {
        for p in list.as_sequence().into_iter().flatten() {
            if p.get("in").and_then(Value::as_str) != Some("path") {
                continue;
            }
            let Some(name) = p.get("name").and_then(Value::as_str) else {
                continue;
            };
            let ty = p
                .get("schema")
                .map_or_else(|| "String".to_string(), rust_type);
            if !params.iter().any(|(n, _)| n == name) {
                params.push((name.to_string(), ty));
            }
        }
    }
    // A `{x}` in the path without a declared parameter is still an argument.
    let mut path_format = String::new();
    let mut rest = route;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        let name = &rest[open + 1..open + close];
        path_format.push_str(&rest[..open]);
        let _ = write!(path_format, "{{{}}}", ident(name).trim_start_matches("r#"));
        if !params.iter().any(|(n, _)| n == name) {
            params.push((name.to_string(), "String".into()));
        }
        rest = &rest[open + close + 1..];
    }
    path_format.push_str(rest);

    let body = op
        .get("requestBody")
        .and_then(json_schema_of)
        .map(rust_type);
    let response = op
        .get("responses")
        .and_then(Value::as_mapping)
        .and_then(|responses| {
            responses.iter().find_map(|(code, r)| {
                let code = match code {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => return None,
                };
                code.starts_with('2')
                    .then(|| json_schema_of(r).map_or_else(|| "()".into(), rust_type))
            })
        })
        .unwrap_or_else(|| "()".into());

    let mut args: Vec<String> = params
        .iter()
        .map(|(n, ty)| {
            let ty = if ty == "String" {
                "&str".to_string()
            } else {
                ty.clone()
            };
            format!("{}: {ty}", ident(n).trim_start_matches("r#"))
        })
        .collect();
    if let Some(b) = &body {
        args.push(format!("body: &{b}"));
    }
    let signature = signature(&method_name, &args, &response);
    Operation {
        method_name,
        http_method: method.to_uppercase(),
        path: route.to_string(),
        has_params: path_format.contains('{'),
        path_format,
        signature,
        body,
        response,
        summary: op
            .get("summary")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
    }
}

/// `pub async fn NAME(&self, ARGS) -> Result<R, ClientError> {` at two indents (inside
/// `mod` and `impl`), on one line when it fits in 100 columns (rustfmt's rule), else one
/// parameter per line.
fn signature(name: &str, args: &[String], response: &str) -> String {
    let mut all = vec!["&self".to_string()];
    all.extend(args.iter().cloned());
    let one_line = format!(
        "        pub async fn {name}({}) -> Result<{response}, ClientError> {{",
        all.join(", ")
    );
    if one_line.len() <= 100 {
        return one_line;
    }
    let mut out = format!("        pub async fn {name}(\n");
    for a in &all {
        let _ = writeln!(out, "            {a},");
    }
    let _ = write!(out, "        ) -> Result<{response}, ClientError> {{");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_rest_template_subset() {
        let text = r##"
openapi: 3.0.3
paths:
  /user/{id}:
    get:
      operationId: getUser
      parameters:
        - {name: id, in: path, required: true, schema: {type: integer, format: int64}}
      responses:
        "200": {content: {application/json: {schema: {$ref: "#/components/schemas/User"}}}}
        "404": {content: {application/json: {schema: {$ref: "#/components/schemas/Error"}}}}
  /user/{id}/messages:
    post:
      requestBody: {content: {application/json: {schema: {$ref: "#/components/schemas/NewMessage"}}}}
      responses:
        "202": {description: queued}
components:
  schemas:
    User:
      type: object
      required: [id, name]
      properties:
        id: {type: integer}
        name: {type: string}
        type: {type: string}
"##;
        let api = parse(Path::new("/"), "openapi.yaml", text).unwrap();
        let get = &api.operations[0];
        assert_eq!(get.method_name, "get_user");
        assert_eq!(get.path_format, "/user/{id}");
        assert_eq!(get.response, "User");
        assert_eq!(
            get.signature,
            "        pub async fn get_user(&self, id: i64) -> Result<User, ClientError> {"
        );
        let post = &api.operations[1];
        assert_eq!(post.method_name, "post_user_messages");
        assert_eq!(post.body.as_deref(), Some("NewMessage"));
        assert_eq!(post.response, "()");
        let user = &api.schemas[0];
        assert_eq!(user.fields[2].name, "r#type");
        assert!(user.fields[2].optional);
        assert!(!user.fields[0].optional);
    }
}
