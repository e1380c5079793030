//! Contract cases derived from the manifest: every REST service's routes answer, and
//! every gRPC method named in a `calls` entry is served by the peer (reflection) and
//! implemented.
//!
//! A route *answers* when the service returns an HTTP response that is not a 5xx, not
//! 405, and not the service's "unknown route" 404 (msvc first asks for a path no service
//! has and remembers that 404 body; a 404 with another body, such as
//! `{"error":"user not found"}`, is the route answering). Path parameters are filled in
//! with `1`. Only `GET` routes are sent: other methods may change data, so they are
//! reported as skipped; a case in `contracts.toml` tests them.

use std::time::{Duration, Instant};

use crate::error::slash_path;
use crate::supervisor::plan::RunPlan;
use crate::workspace::Workspace;
use crate::workspace::calls;
use crate::workspace::model::Kind;
use crate::workspace::openapi::{RestApis, openapi_path};
use crate::workspace::proto::ProtoInfo;
use crate::workspace::source::Disk;

use super::grpc;
use super::grpc_call::GrpcCall;
use super::http::{excerpt, http};
use super::report::{Case, Outcome};

const UNKNOWN_ROUTE: &str = "/msvc-test/no-such-route";

/// The routes of each REST service of the plan, from its `openapi.yaml`.
pub fn rest_routes(ws: &Workspace, plan: &RunPlan, running: &[String]) -> Vec<Case> {
    let mut cases = Vec::new();
    let apis = RestApis::read(&ws.root, &ws.manifest, &Disk(&ws.root));
    for service in &plan.order {
        let Some(api) = apis.api(service) else {
            continue;
        };
        let api = match api {
            Ok(api) => api,
            Err(e) => {
                cases.push(Case::contract(
                    service,
                    &slash_path(&openapi_path(service)),
                    Outcome::Failed,
                    Some(e.message),
                    Duration::ZERO,
                ));
                continue;
            }
        };
        let port = plan
            .instances
            .iter()
            .find(|i| &i.service == service)
            .and_then(|i| i.port);
        for op in &api.operations {
            let name = format!("route {} {}", op.http_method, op.path);
            if !running.contains(service) {
                cases.push(Case::contract_skipped(
                    service,
                    &name,
                    format!("{service} is not running"),
                ));
                continue;
            }
            if op.http_method != "GET" {
                cases.push(Case::contract_skipped(
                    service,
                    &name,
                    format!(
                        "not sent: a {} may change data; a case in contracts.toml can test it",
                        op.http_method
                    ),
                ));
                continue;
            }
            let Some(port) = port else { continue };
            let path = fill_params(&op.path);
            let start = Instant::now();
            let unknown = http(port, "GET", UNKNOWN_ROUTE, None)
                .ok()
                .filter(|(s, _)| *s == 404)
                .map(|(_, body)| body);
            let (outcome, message) = match http(port, "GET", &path, None) {
                Err(e) => (
                    Outcome::Failed,
                    Some(format!("GET {path} on port {port}: no answer ({e})")),
                ),
                Ok((status, body)) if status >= 500 || status == 405 => (
                    Outcome::Failed,
                    Some(format!("GET {path} answered {status}: {}", excerpt(&body))),
                ),
                Ok((404, body)) if unknown.as_deref() == Some(body.as_str()) => (
                    Outcome::Failed,
                    Some(format!(
                        "GET {path} answered 404 like an unknown route ({}): {service} does not serve the route of its openapi.yaml",
                        excerpt(&body)
                    )),
                ),
                Ok(_) => (Outcome::Passed, None),
            };
            cases.push(Case::contract(
                service,
                &name,
                outcome,
                message,
                start.elapsed(),
            ));
        }
    }
    cases
}

/// Every gRPC method named in a `calls` entry, against each running instance of the
/// peer: server reflection must show the method on the peer's service, and a call of it
/// with an empty request must answer anything but `UNIMPLEMENTED`. The case belongs to
/// the calling service.
pub fn grpc_calls(ws: &Workspace, plan: &RunPlan, running: &[String]) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut client: Option<std::result::Result<grpc::Client, String>> = None;
    // A proto that does not read is `msvc check`'s to report; names stay as written.
    let protos = ws
        .service_protos(&ws.manifest, &Disk(&ws.root))
        .unwrap_or_default();
    for caller in &plan.order {
        for call in &ws.manifest.services[caller].calls {
            let Some((peer, target)) = calls::split(call) else {
                continue;
            };
            let Some(peer_svc) = ws.manifest.services.get(peer) else {
                continue;
            };
            // A malformed entry is `msvc check`'s to report (CALL_INVALID).
            let Some((service, method)) = calls::parse_rpc(target) else {
                continue;
            };
            if peer_svc.kind != Kind::Grpc {
                continue;
            }
            let name = format!("calls {call}");
            let skip = |why: String| Case::contract_skipped(caller, &name, why);
            if !plan.order.iter().any(|s| s == peer) {
                cases.push(skip(format!(
                    "{peer} is not part of this run (add it to {caller}'s depends_on)"
                )));
                continue;
            }
            if !running.iter().any(|s| s == peer) {
                cases.push(skip(format!("{peer} is not running")));
                continue;
            }
            let instances: Vec<(&str, u16)> = plan
                .instances
                .iter()
                .filter(|i| i.service == peer)
                .filter_map(|i| i.port.map(|p| (i.label.as_str(), p)))
                .collect();
            if instances.is_empty() {
                cases.push(skip(format!("{peer} has no port")));
                continue;
            }
            let client = client.get_or_insert_with(|| {
                grpc::Client::new().map_err(|e| format!("cannot start the gRPC client: {e}"))
            });
            let client = match client {
                Ok(c) => c,
                Err(e) => {
                    cases.push(Case::contract(
                        caller,
                        &name,
                        Outcome::Failed,
                        Some(e.clone()),
                        Duration::ZERO,
                    ));
                    continue;
                }
            };
            let proto = peer_svc.proto.as_ref().and_then(|p| protos.get(p));
            let symbol = full_service_name(proto, service);
            let start = Instant::now();
            let mut seen = Vec::new();
            let mut failures = Vec::new();
            for (label, port) in instances {
                let call = GrpcCall {
                    caller,
                    call,
                    label,
                    port,
                    symbol: &symbol,
                    method,
                };
                match call.check(client) {
                    Ok(note) => seen.push(note),
                    Err(e) => failures.push(e),
                }
            }
            let (outcome, message) = if failures.is_empty() {
                (Outcome::Passed, Some(seen.join("\n")))
            } else {
                (Outcome::Failed, Some(failures.join("\n")))
            };
            cases.push(Case::contract(
                caller,
                &name,
                outcome,
                message,
                start.elapsed(),
            ));
        }
    }
    cases
}

/// `user_service.v1.UserService` for `UserService`, from the peer's proto; a name that
/// is already qualified, or one the proto does not declare, as the package makes it.
fn full_service_name(proto: Option<&ProtoInfo>, service: &str) -> String {
    let Some(info) = proto else {
        return service.to_string();
    };
    if let Some(s) = info
        .services
        .iter()
        .find(|s| s.name == service || s.full_name == service)
    {
        return s.full_name.clone();
    }
    if service.contains('.') || info.package.is_empty() {
        service.to_string()
    } else {
        format!("{}.{service}", info.package)
    }
}

/// `/user/{id}` -> `/user/1`.
fn fill_params(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => in_param = true,
            '}' if in_param => {
                in_param = false;
                out.push('1');
            }
            _ if in_param => {}
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_path_parameters() {
        assert_eq!(fill_params("/user/{id}/messages"), "/user/1/messages");
        assert_eq!(fill_params("/a/{x}/{y}"), "/a/1/1");
        assert_eq!(fill_params("/healthz"), "/healthz");
    }
}
