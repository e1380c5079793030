//! The user's own contract cases: `contracts.toml` beside services.toml, read once here
//! for `msvc test`, which runs them, and `msvc check`, which reports a file that does not.
//!
//! ```toml
//! [[case]]
//! service = "user-api"
//! request = "GET /user/1"
//! status = 200
//! json = { id = 1, name = "Alice" }    # fields the JSON response must have, with these values
//!
//! [[case]]
//! service = "user-api"
//! request = "POST /user/1/messages"
//! body = { message = "hi" }            # sent as JSON
//! status = 202
//! ```

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::Workspace;
use super::calls::HTTP_METHODS;
use super::model::Kind;
use super::validate::did_you_mean;
use crate::error::{Error, Location, Result};

pub const FILE: &str = "contracts.toml";

/// One request to send and what its answer must be.
#[derive(Debug, Clone, PartialEq)]
pub struct UserCase {
    pub service: String,
    pub method: String,
    pub path: String,
    pub body: Option<serde_json::Value>,
    pub status: Option<u16>,
    /// Fields the JSON response must contain, with these values.
    pub json: Option<serde_json::Value>,
    /// `contracts.toml:3`, to say where a failing case comes from.
    pub origin: String,
}

impl UserCase {
    pub fn name(&self) -> String {
        format!("{} {} ({})", self.method, self.path, self.origin)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    case: Vec<Spanned<RawCase>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    service: Spanned<String>,
    request: Spanned<String>,
    status: Option<u16>,
    json: Option<toml::Value>,
    body: Option<toml::Value>,
}

/// Reads `contracts.toml` of the workspace; none when there is no such file.
pub fn load(ws: &Workspace) -> Result<Vec<UserCase>> {
    let path = ws.root.join(FILE);
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let text = fs_err::read_to_string(&path)?;
    parse(ws, &path, &text)
}

/// Reads the cases of `text`, the file at `path` (as messages name it).
pub fn parse(ws: &Workspace, path: &Path, text: &str) -> Result<Vec<UserCase>> {
    let file: RawFile = toml::from_str(text).map_err(|e| {
        let location = e.span().map_or_else(
            || Location::file(path),
            |span| Location::from_span(path, text, span),
        );
        Error::new(format!("cannot read {FILE}: {}", e.message()))
            .at(location)
            .hint("each case is a `[[case]]` table with `service`, `request` (\"GET /path\"), and `status`, `json` or `body`")
    })?;
    let mut cases = Vec::new();
    for raw in file.case {
        let line = Location::from_span(path, text, raw.span()).line;
        let raw = raw.into_inner();
        let at = |span: std::ops::Range<usize>| Location::from_span(path, text, span);
        let service = raw.service.get_ref();
        let Some(svc) = ws.manifest.services.get(service) else {
            let hint = did_you_mean(service, ws.manifest.services.keys())
                .unwrap_or_else(|| "name a service of services.toml".to_string());
            return Err(
                Error::new(format!("no service `{service}` in services.toml"))
                    .at(at(raw.service.span()))
                    .hint(hint),
            );
        };
        if svc.kind != Kind::Rest {
            return Err(Error::new(format!(
                "`{service}` is a {} service; contract cases send HTTP requests to REST services",
                svc.kind
            ))
            .at(at(raw.service.span()))
            .hint("name a service of kind \"rest\""));
        }
        let request = raw.request.get_ref().trim();
        let (method, target) = request.split_once(' ').unwrap_or((request, ""));
        let target = target.trim();
        if !HTTP_METHODS.contains(&method) || !target.starts_with('/') {
            return Err(Error::new(format!("cannot read request `{request}`"))
                .at(at(raw.request.span()))
                .hint(
                    "write the method in capitals and the path from `/`: request = \"GET /user/1\"",
                ));
        }
        if raw.status.is_none() && raw.json.is_none() {
            return Err(Error::new("this case expects nothing")
                .at(at(raw.request.span()))
                .hint("add `status = 200` or `json = { field = value }`"));
        }
        let to_json = |v: toml::Value| serde_json::to_value(v).unwrap_or_default();
        cases.push(UserCase {
            service: service.clone(),
            method: method.to_string(),
            path: target.to_string(),
            body: raw.body.map(to_json),
            status: raw.status,
            json: raw.json.map(to_json),
            origin: format!("{FILE}:{line}"),
        });
    }
    Ok(cases)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace() -> Workspace {
        let path = Path::new("/ws/services.toml");
        let text = "[workspace]\nname = \"shop\"\n[services.user-api]\nkind = \"rest\"\nport = 5000\n[services.mail]\nkind = \"worker\"\nadmin_port = 9101\n";
        Workspace {
            root: "/ws".into(),
            manifest_path: path.into(),
            text: text.into(),
            manifest: Workspace::parse(path, text).unwrap(),
        }
    }

    #[test]
    fn reads_cases_and_points_at_mistakes() {
        let ws = workspace();
        let path = Path::new("/ws/contracts.toml");
        let cases = parse(
            &ws,
            path,
            "[[case]]\nservice = \"user-api\"\nrequest = \"GET /user/1\"\nstatus = 200\njson = { id = 1 }\n",
        )
        .unwrap();
        assert_eq!(cases.len(), 1);
        assert_eq!(cases[0].name(), "GET /user/1 (contracts.toml:1)");
        assert_eq!(cases[0].json, Some(serde_json::json!({"id": 1})));

        let err = parse(
            &ws,
            path,
            "[[case]]\nservice = \"user-apu\"\nrequest = \"GET /\"\nstatus = 200\n",
        )
        .unwrap_err();
        assert_eq!(err.hint.as_deref(), Some("did you mean `user-api`?"));
        assert_eq!(err.location.as_ref().unwrap().line, 2);

        let err = parse(
            &ws,
            path,
            "[[case]]\nservice = \"user-api\"\nrequest = \"get user\"\nstatus = 200\n",
        )
        .unwrap_err();
        assert_eq!(err.location.as_ref().unwrap().line, 3);

        let err = parse(
            &ws,
            path,
            "[[case]]\nservice = \"mail\"\nrequest = \"GET /\"\nstatus = 200\n",
        )
        .unwrap_err();
        assert!(err.message.contains("worker"), "{}", err.message);

        let err = parse(
            &ws,
            path,
            "[[case]]\nservice = \"user-api\"\nrequest = \"GET /\"\nstatus = \"ok\"\n",
        )
        .unwrap_err();
        assert_eq!(err.location.as_ref().unwrap().line, 4);
    }
}
