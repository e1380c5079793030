//! The `calls` entries of services.toml: one grammar, parsed and resolved against the
//! peer's contract here, for `msvc link`, `msvc check` and `msvc test` alike.
//!
//! ```text
//! call   = peer "/" target
//! target = rpc                     for a gRPC peer
//!        | method " " route        for a REST peer
//! rpc    = [package "."] Service "." Method
//!                                  UserService.GetUser, user_service.v1.UserService.GetUser
//! method = GET | POST | PUT | PATCH | DELETE | HEAD | OPTIONS   (any case)
//! route  = "/" ...                 /user/{id}; a `{name}` segment matches any value
//! ```
//!
//! An RPC resolves when the peer's proto declares it (the service by its short or its full
//! name); a route when the peer's openapi.yaml declares the method on it, HEAD also where
//! GET is declared. A `process` peer has no contract: its entries need only the shape of one
//! or the other.

use std::collections::BTreeMap;

use super::model::{Kind, Manifest};
use super::names::NameForms;
use super::openapi::RestApi;
use super::proto::ProtoInfo;
use super::validate::did_you_mean;

/// The HTTP methods a REST call may name.
pub const HTTP_METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// A `calls` entry split into the peer and what is called there.
pub fn split(entry: &str) -> Option<(&str, &str)> {
    entry.split_once('/')
}

/// `Service.Method` (the service possibly package-qualified) as (`Service`, `Method`).
pub fn parse_rpc(target: &str) -> Option<(&str, &str)> {
    target
        .rsplit_once('.')
        .filter(|(s, m)| !s.is_empty() && !m.is_empty())
}

/// `GET /user/{id}` as (`GET`, `/user/{id}`); the method in any case.
pub fn parse_route(target: &str) -> Option<(String, &str)> {
    let (method, route) = target.split_once(' ')?;
    let method = method.to_ascii_uppercase();
    let route = route.trim();
    (HTTP_METHODS.contains(&method.as_str()) && route.starts_with('/')).then_some((method, route))
}

/// Whether a declared route (`/user/{id}`) matches a called one (`/user/{id}`, `/user/1`).
pub fn route_matches(declared: &str, called: &str) -> bool {
    let called = called.split(['?', '#']).next().unwrap_or(called);
    let d: Vec<&str> = declared.trim_end_matches('/').split('/').collect();
    let c: Vec<&str> = called.trim_end_matches('/').split('/').collect();
    d.len() == c.len()
        && d.iter()
            .zip(&c)
            .all(|(d, c)| d == c || (d.starts_with('{') && d.ends_with('}') && !c.is_empty()))
}

/// What a resolved entry calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target<'a> {
    /// A gRPC method: `service` as written (short or package-qualified).
    Rpc { service: &'a str, method: &'a str },
    /// A REST route, the method upper case.
    Route { method: String, route: &'a str },
    /// A call to a `process` peer, which has no contract to check it against.
    Unchecked,
}

/// A `calls` entry that names a peer and a target its contract has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call<'a> {
    pub peer: &'a str,
    pub target: Target<'a>,
}

/// Why an entry does not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallProblem {
    /// `CALL_INVALID` (the entry's shape, or a peer that cannot be called),
    /// `CALL_UNKNOWN_RPC` or `CALL_UNKNOWN_ROUTE`.
    pub id: &'static str,
    pub message: String,
    pub hint: String,
    /// The peer is not a service of the manifest.
    pub unknown_peer: bool,
}

impl CallProblem {
    fn new(id: &'static str, message: String, hint: impl Into<String>) -> Self {
        Self {
            id,
            message,
            hint: hint.into(),
            unknown_peer: false,
        }
    }

    fn invalid(message: String, hint: impl Into<String>) -> Self {
        Self::new("CALL_INVALID", message, hint)
    }
}

/// What calls are resolved against: the peers' protos (by the manifest's `proto` path) and
/// their APIs. A peer whose contract did not read resolves on shape alone.
pub struct Contracts<'a> {
    pub protos: &'a BTreeMap<String, ProtoInfo>,
    pub apis: &'a dyn Fn(&str) -> Option<&'a RestApi>,
}

/// Resolves `entry`, a `calls` entry of `caller`.
pub fn resolve<'e>(
    manifest: &Manifest,
    contracts: &Contracts<'_>,
    caller: &str,
    entry: &'e str,
) -> Result<Call<'e>, CallProblem> {
    let Some((peer, target)) = split(entry) else {
        return Err(CallProblem::invalid(
            format!("`{entry}` is not a call: it names no peer"),
            "write `peer/Service.Method` for a gRPC peer or `peer/METHOD /path` for a REST peer",
        ));
    };
    let Some(peer_svc) = manifest.services.get(peer) else {
        let hint = did_you_mean(peer, manifest.services.keys())
            .unwrap_or_else(|| format!("add it with `msvc new {peer}`, or fix the name"));
        return Err(CallProblem {
            unknown_peer: true,
            ..CallProblem::invalid(
                format!("`{caller}` calls `{peer}`, which is not a service of the manifest"),
                hint,
            )
        });
    };
    if peer == caller {
        return Err(CallProblem::invalid(
            format!("`{caller}` calls itself"),
            "call the code directly; `calls` lists other services",
        ));
    }
    let target = match peer_svc.kind {
        Kind::Grpc => {
            let proto = peer_svc
                .proto
                .as_deref()
                .and_then(|p| contracts.protos.get(p));
            grpc_target(peer, target, proto)?
        }
        Kind::Rest => rest_target(peer, target, (contracts.apis)(peer))?,
        Kind::Process => {
            if !target.contains('.') && parse_route(target).is_none() {
                return Err(CallProblem::invalid(
                    format!("`{entry}` names neither an RPC nor a route"),
                    "write `peer/Service.Method` or `peer/METHOD /path`",
                ));
            }
            Target::Unchecked
        }
        Kind::Worker => {
            return Err(CallProblem::invalid(
                format!("`{peer}` is a worker and serves no calls"),
                "publish to a queue it consumes instead (`publishes`)",
            ));
        }
    };
    Ok(Call { peer, target })
}

/// `Service.Method` against the peer's proto, when it read.
fn grpc_target<'t>(
    peer: &str,
    target: &'t str,
    proto: Option<&ProtoInfo>,
) -> Result<Target<'t>, CallProblem> {
    let Some((service, method)) = parse_rpc(target) else {
        return Err(CallProblem::invalid(
            format!("`{peer}/{target}`: a call to a gRPC peer is `{peer}/Service.Method`"),
            format!(
                "e.g. `{peer}/{}.GetUser`",
                NameForms::new(peer).grpc_service
            ),
        ));
    };
    let found = Target::Rpc { service, method };
    let Some(info) = proto else {
        return Ok(found);
    };
    let mut rpcs = Vec::new();
    for s in &info.services {
        for r in &s.rpcs {
            if r.name == method && (s.name == service || s.full_name == service) {
                return Ok(found);
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
    Err(CallProblem::new(
        "CALL_UNKNOWN_RPC",
        format!("`{peer}` has no RPC `{target}` in {}", info.path),
        hint,
    ))
}

/// `METHOD /path` against the peer's openapi.yaml, when it read.
fn rest_target<'t>(
    peer: &str,
    target: &'t str,
    api: Option<&RestApi>,
) -> Result<Target<'t>, CallProblem> {
    let Some((method, route)) = parse_route(target) else {
        return Err(CallProblem::invalid(
            format!("`{peer}/{target}`: a call to a REST peer is `{peer}/METHOD /path`"),
            format!(
                "e.g. `{peer}/GET /user/{{id}}`; methods: {}",
                HTTP_METHODS.join(", ")
            ),
        ));
    };
    let Some(api) = api else {
        return Ok(Target::Route { method, route });
    };
    let matching: Vec<&(String, String)> = api
        .routes
        .iter()
        .filter(|(_, path)| route_matches(path, route))
        .collect();
    // A server answers HEAD wherever it answers GET (RFC 9110, and axum does).
    let serves = |m: &str| matching.iter().any(|(declared, _)| declared == m);
    if serves(&method) || (method == "HEAD" && serves("GET")) {
        return Ok(Target::Route { method, route });
    }
    let routes: Vec<String> = api
        .routes
        .iter()
        .map(|(method, path)| format!("{method} {path}"))
        .collect();
    if matching.is_empty() {
        let hint = did_you_mean(&format!("{method} {route}"), routes.iter()).unwrap_or_else(|| {
            if routes.is_empty() {
                "its openapi.yaml declares no route".to_string()
            } else {
                format!("its routes: {}", list(&routes))
            }
        });
        return Err(CallProblem::new(
            "CALL_UNKNOWN_ROUTE",
            format!("`{peer}` has no route `{route}` in its openapi.yaml"),
            hint,
        ));
    }
    let methods: Vec<&str> = matching.iter().map(|(m, _)| m.as_str()).collect();
    Err(CallProblem::new(
        "CALL_UNKNOWN_ROUTE",
        format!("`{peer}` does not serve {method} on `{route}`"),
        format!("`{}` serves {}", matching[0].1, methods.join(", ")),
    ))
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

    #[test]
    fn every_documented_method_and_both_rpc_forms_parse() {
        for method in HTTP_METHODS {
            let target = format!("{} /user/{{id}}", method.to_ascii_lowercase());
            assert_eq!(
                parse_route(&target),
                Some(((*method).to_string(), "/user/{id}"))
            );
        }
        assert_eq!(
            parse_rpc("UserService.GetUser"),
            Some(("UserService", "GetUser"))
        );
        assert_eq!(
            parse_rpc("user_service.v1.UserService.GetUser"),
            Some(("user_service.v1.UserService", "GetUser"))
        );
        assert_eq!(parse_rpc("GetUser"), None);
        assert_eq!(parse_rpc("UserService."), None);
        assert_eq!(split("a/b/c"), Some(("a", "b/c")));
    }
}
