//! Wiring checks: every `calls` entry names an RPC the gRPC peer's proto declares or a
//! route the REST peer's openapi.yaml declares, and the peer is a dependency; REST
//! services' openapi.yaml files read.

use std::collections::BTreeMap;
use std::path::Path;

use super::Context;
use super::diagnostic::Diagnostic;
use super::protos::ProtoSet;
use crate::error::Location;
use crate::error::SourceText;
use crate::render::service_dir;
use crate::workspace::model::Kind;
use crate::workspace::openapi::{self, RestApi};
use crate::workspace::validate::did_you_mean;

const HTTP_METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

pub fn check(ctx: &Context<'_>, protos: &ProtoSet, out: &mut Vec<Diagnostic>) {
    let apis = read_openapis(ctx, out);
    let services = &ctx.ws.manifest.services;
    for (name, svc) in services {
        for (i, call) in svc.calls.iter().enumerate() {
            let index = i.to_string();
            let keys = ["services", name.as_str(), "calls", index.as_str()];
            let invalid = |message: String, hint: &str| {
                Diagnostic::new("CALL_INVALID", message)
                    .at(ctx.locate(&keys))
                    .hint(hint)
            };
            let Some((peer, target)) = call.split_once('/') else {
                out.push(invalid(
                    format!("`{call}` is not a call: it names no peer"),
                    "write `peer/Service.Method` for a gRPC peer or `peer/METHOD /path` for a REST peer",
                ));
                continue;
            };
            let Some(peer_svc) = services.get(peer) else {
                if ctx.broken.contains(peer) {
                    continue;
                }
                let hint = did_you_mean(peer, services.keys())
                    .unwrap_or_else(|| format!("add it with `msvc new {peer}`, or fix the name"));
                out.push(invalid(
                    format!("`{name}` calls `{peer}`, which is not a service of the manifest"),
                    &hint,
                ));
                continue;
            };
            if peer == name {
                out.push(invalid(
                    format!("`{name}` calls itself"),
                    "call the code directly; `calls` lists other services",
                ));
                continue;
            }
            let problem = match peer_svc.kind {
                Kind::Grpc => grpc_call(protos, peer, peer_svc.proto.as_deref(), target),
                Kind::Rest => rest_call(peer, target, apis.get(peer)),
                // No contract to check against; only the shape of the entry.
                Kind::Process => {
                    (!target.contains('.') && parse_route(target).is_none()).then(|| {
                        Diagnostic::new(
                            "CALL_INVALID",
                            format!("`{call}` names neither an RPC nor a route"),
                        )
                        .hint("write `peer/Service.Method` or `peer/METHOD /path`")
                    })
                }
                Kind::Worker => Some(
                    Diagnostic::new(
                        "CALL_INVALID",
                        format!("`{peer}` is a worker and serves no calls"),
                    )
                    .hint("publish to a queue it consumes instead (`publishes`)"),
                ),
            };
            let invalid_call = problem.as_ref().is_some_and(|d| d.id == "CALL_INVALID");
            if let Some(d) = problem {
                out.push(d.at(ctx.locate(&keys)));
            }
            if invalid_call {
                continue;
            }
            if !svc.depends_on.iter().any(|d| d == peer) {
                out.push(
                    Diagnostic::new(
                        "CALL_WITHOUT_DEPENDENCY",
                        format!("`{name}` calls `{peer}` but does not depend on it"),
                    )
                    .at(ctx.locate(&keys))
                    .hint(format!(
                        "add it to depends_on, which gives `{name}` the client and {}: `msvc link {name} --depends-on {peer}`",
                        crate::workspace::names::NameForms::new(peer).env_url
                    )),
                );
            }
        }
    }
}

/// Checks `Service.Method` against the peer's proto; `None` when it is there (or the
/// proto cannot be read, which `PROTO_MISSING` or `PROTO_COMPILE` report).
fn grpc_call(
    protos: &ProtoSet,
    peer: &str,
    proto: Option<&str>,
    target: &str,
) -> Option<Diagnostic> {
    let Some((service, method)) = target
        .rsplit_once('.')
        .filter(|(s, m)| !s.is_empty() && !m.is_empty())
    else {
        return Some(
            Diagnostic::new(
                "CALL_INVALID",
                format!("`{peer}/{target}`: a call to a gRPC peer is `{peer}/Service.Method`"),
            )
            .hint(format!(
                "e.g. `{peer}/{}.GetUser`",
                crate::workspace::names::NameForms::new(peer).grpc_service
            )),
        );
    };
    let info = protos.infos.get(proto?)?;
    let mut rpcs = Vec::new();
    for s in &info.services {
        for r in &s.rpcs {
            if r.name == method && (s.name == service || s.full_name == service) {
                return None;
            }
            rpcs.push(format!("{}.{}", s.name, r.name));
        }
    }
    let hint = did_you_mean(target, rpcs.iter()).unwrap_or_else(|| {
        if rpcs.is_empty() {
            "its proto declares no RPC".to_string()
        } else {
            format!("its RPCs: {}", list(&rpcs))
        }
    });
    Some(
        Diagnostic::new(
            "CALL_UNKNOWN_RPC",
            format!("`{peer}` has no RPC `{target}` in {}", info.path),
        )
        .hint(hint),
    )
}

/// Checks `METHOD /path` against the peer's openapi.yaml.
fn rest_call(peer: &str, target: &str, api: Option<&RestApi>) -> Option<Diagnostic> {
    let Some((method, route)) = parse_route(target) else {
        return Some(
            Diagnostic::new(
                "CALL_INVALID",
                format!("`{peer}/{target}`: a call to a REST peer is `{peer}/METHOD /path`"),
            )
            .hint(format!(
                "e.g. `{peer}/GET /user/{{id}}`; methods: {}",
                HTTP_METHODS.join(", ")
            )),
        );
    };
    let api = api?;
    let matching: Vec<&openapi::Operation> = api
        .operations
        .iter()
        .filter(|op| route_matches(&op.path, route))
        .collect();
    if matching.iter().any(|op| op.http_method == method) {
        return None;
    }
    let routes: Vec<String> = api
        .operations
        .iter()
        .map(|op| format!("{} {}", op.http_method, op.path))
        .collect();
    if matching.is_empty() {
        let hint = did_you_mean(&format!("{method} {route}"), routes.iter()).unwrap_or_else(|| {
            if routes.is_empty() {
                "its openapi.yaml declares no route".to_string()
            } else {
                format!("its routes: {}", list(&routes))
            }
        });
        return Some(
            Diagnostic::new(
                "CALL_UNKNOWN_ROUTE",
                format!("`{peer}` has no route `{route}` in its openapi.yaml"),
            )
            .hint(hint),
        );
    }
    let methods: Vec<&str> = matching.iter().map(|op| op.http_method.as_str()).collect();
    Some(
        Diagnostic::new(
            "CALL_UNKNOWN_ROUTE",
            format!("`{peer}` does not serve {method} on `{route}`"),
        )
        .hint(format!(
            "`{}` serves {}",
            matching[0].path,
            methods.join(", ")
        )),
    )
}

/// `GET /user/{id}` as (`GET`, `/user/{id}`); the method in any case.
fn parse_route(target: &str) -> Option<(String, &str)> {
    let (method, route) = target.split_once(' ')?;
    let method = method.to_ascii_uppercase();
    let route = route.trim();
    (HTTP_METHODS.contains(&method.as_str()) && route.starts_with('/')).then_some((method, route))
}

/// Whether a declared route (`/user/{id}`) matches a called one (`/user/{id}`, `/user/1`).
fn route_matches(declared: &str, called: &str) -> bool {
    let called = called.split(['?', '#']).next().unwrap_or(called);
    let d: Vec<&str> = declared.trim_end_matches('/').split('/').collect();
    let c: Vec<&str> = called.trim_end_matches('/').split('/').collect();
    d.len() == c.len()
        && d.iter()
            .zip(&c)
            .all(|(d, c)| d == c || (d.starts_with('{') && d.ends_with('}') && !c.is_empty()))
}

fn list(items: &[String]) -> String {
    const MAX: usize = 8;
    if items.len() <= MAX {
        items.join(", ")
    } else {
        format!(
            "{}, and {} more",
            items[..MAX].join(", "),
            items.len() - MAX
        )
    }
}

/// The openapi.yaml of every REST service with a directory, reporting the ones that do not
/// read (or are missing while another service depends on or calls the service).
fn read_openapis<'a>(ctx: &Context<'a>, out: &mut Vec<Diagnostic>) -> BTreeMap<&'a str, RestApi> {
    let services = &ctx.ws.manifest.services;
    let mut apis = BTreeMap::new();
    // Services some other service depends on or calls.
    let called: std::collections::BTreeSet<&str> = services
        .values()
        .flat_map(|s| {
            s.depends_on.iter().map(String::as_str).chain(
                s.calls
                    .iter()
                    .filter_map(|c| c.split_once('/').map(|(p, _)| p)),
            )
        })
        .collect();
    for (name, svc) in services {
        if svc.kind != Kind::Rest || !ctx.root.join(service_dir(name)).is_dir() {
            continue;
        }
        let rel = service_dir(name).join("openapi.yaml");
        let shown = crate::error::slash_path(&rel);
        let full = ctx.root.join(&rel);
        let used = called.contains(name.as_str());
        let text = if full.is_file() {
            fs_err::read(&full)
                .ok()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
        } else {
            None
        };
        let Some(text) = text else {
            if used {
                out.push(
                    Diagnostic::new(
                        "OPENAPI_INVALID",
                        format!("`{shown}` does not exist, and other services call `{name}`"),
                    )
                    .at(Location::file(&rel))
                    .hint("restore the file: the typed client of its callers is generated from it"),
                );
            }
            continue;
        };
        let err = match openapi::parse(Path::new(""), &shown, &text) {
            Ok(api) => {
                apis.insert(name.as_str(), api);
                continue;
            }
            Err(err) => err,
        };
        // openapi::parse fails only on YAML that does not read; point at where.
        let source = SourceText::new(&rel, &text);
        let location = err.location.as_ref().filter(|l| l.line > 0).map_or_else(
            || Location::file(&rel),
            |l| {
                let offset = source.offset(l.line - 1, l.column.saturating_sub(1));
                source.location(offset..offset + 1)
            },
        );
        let cause = std::error::Error::source(&err)
            .map(ToString::to_string)
            .unwrap_or_default();
        let cause = cause.split(" at line ").next().unwrap_or(&cause);
        out.push(
            Diagnostic::new(
                "OPENAPI_INVALID",
                format!("`{shown}` is not valid YAML: {cause}"),
            )
            .at(location)
            .hint("fix the YAML; the typed client of the service's callers is generated from it"),
        );
    }
    apis
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_by_segment() {
        assert!(route_matches("/user/{id}", "/user/{id}"));
        assert!(route_matches("/user/{id}", "/user/{user_id}"));
        assert!(route_matches("/user/{id}", "/user/1"));
        assert!(route_matches("/user/{id}/", "/user/1?x=1"));
        assert!(!route_matches("/user/{id}", "/users/1"));
        assert!(!route_matches("/user/{id}", "/user"));
        assert!(!route_matches("/user", "/user/1"));
        assert_eq!(parse_route("get /x"), Some(("GET".into(), "/x")));
        assert_eq!(parse_route("FETCH /x"), None);
        assert_eq!(parse_route("GET x"), None);
    }
}
