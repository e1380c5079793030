//! Contract tests against the running system, derived from the manifest: every service
//! passes its health check, every REST service's routes answer, every gRPC method named
//! in a `calls` entry is served by the peer (reflection) and implemented, and the user's
//! own cases from `contracts.toml` get the answers they expect.
//!
//! A route *answers* when the service returns an HTTP response that is not a 5xx, not
//! 405, and not the service's "unknown route" 404 (msvc first asks for a path no service
//! has and remembers that 404 body; a 404 with another body, such as
//! `{"error":"user not found"}`, is the route answering). Path parameters are filled in
//! with `1`. Only `GET` routes are sent: other methods may change data, so they are
//! reported as skipped; a case in `contracts.toml` tests them.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::supervisor::plan::RunPlan;
use crate::supervisor::run::Settled;
use crate::workspace::Workspace;
use crate::workspace::model::Kind;
use crate::workspace::openapi;
use crate::workspace::validate::did_you_mean;

use super::cases::{UserCase, json_matches};
use super::grpc;
use super::report::{Case, Outcome, Suite};

const TIMEOUT: Duration = Duration::from_secs(10);
const UNKNOWN_ROUTE: &str = "/msvc-test/no-such-route";

/// One case per service: did all its instances start and pass their health check.
pub fn health(settled: &Settled, took: Duration) -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    for i in &settled.instances {
        let service = if i.is_broker { "broker" } else { &i.service };
        if cases.iter().any(|c| c.service == service) {
            // One case per service: its first instance that is not ready decides.
            if let Some(c) = cases.iter_mut().find(|c| c.service == service)
                && c.outcome == Outcome::Passed
                && !i.ready
            {
                *c = health_case(service, i, took);
            }
            continue;
        }
        cases.push(health_case(service, i, took));
    }
    cases
}

fn health_case(service: &str, i: &crate::supervisor::run::InstanceOutcome, took: Duration) -> Case {
    let problem = i.problem.clone().unwrap_or_default();
    let (outcome, message) = if i.ready {
        (Outcome::Passed, None)
    } else if let Some(why) = problem.strip_prefix("not started: ") {
        (
            Outcome::Skipped,
            Some(format!("{} was not started: {why}", i.label)),
        )
    } else {
        (
            Outcome::Failed,
            Some(format!(
                "{} did not start: it {problem} before passing its health check",
                i.label
            )),
        )
    };
    Case {
        service: service.to_string(),
        suite: Suite::Contract,
        name: "starts and passes its health check".to_string(),
        outcome,
        message,
        time: took,
    }
}

/// The routes of each REST service of the plan, from its `openapi.yaml`.
pub fn rest_routes(ws: &Workspace, plan: &RunPlan, running: &[String]) -> Vec<Case> {
    let mut cases = Vec::new();
    for service in &plan.order {
        let svc = &ws.manifest.services[service];
        if svc.kind != Kind::Rest {
            continue;
        }
        let rel = format!("services/{service}/openapi.yaml");
        let Ok(text) = fs_err::read_to_string(ws.root.join(&rel)) else {
            continue;
        };
        let api = match openapi::parse(&ws.root, &rel, &text) {
            Ok(api) => api,
            Err(e) => {
                cases.push(contract(
                    service,
                    &rel,
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
                cases.push(skipped(service, &name, format!("{service} is not running")));
                continue;
            }
            if op.http_method != "GET" {
                cases.push(skipped(
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
            cases.push(contract(service, &name, outcome, message, start.elapsed()));
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
    for caller in &plan.order {
        for call in &ws.manifest.services[caller].calls {
            let Some((peer, target)) = call.split_once('/') else {
                continue;
            };
            let Some(peer_svc) = ws.manifest.services.get(peer) else {
                continue;
            };
            // A malformed entry is `msvc check`'s to report (CALL_INVALID).
            let Some((service, method)) = target
                .rsplit_once('.')
                .filter(|(s, m)| !s.is_empty() && !m.is_empty())
            else {
                continue;
            };
            if peer_svc.kind != Kind::Grpc {
                continue;
            }
            let name = format!("calls {call}");
            let skip = |why: String| skipped(caller, &name, why);
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
                    cases.push(contract(
                        caller,
                        &name,
                        Outcome::Failed,
                        Some(e.clone()),
                        Duration::ZERO,
                    ));
                    continue;
                }
            };
            let symbol = full_service_name(ws, peer_svc.proto.as_deref(), service);
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
            cases.push(contract(caller, &name, outcome, message, start.elapsed()));
        }
    }
    cases
}

/// `user_service.v1.UserService` for `UserService`, from the peer's proto; a name that
/// is already qualified, or one the proto does not declare, as the package makes it.
fn full_service_name(ws: &Workspace, proto: Option<&str>, service: &str) -> String {
    let info = proto.and_then(|rel| {
        let text = fs_err::read_to_string(ws.root.join(rel)).ok()?;
        crate::workspace::proto::parse(&ws.root, rel, &text).ok()
    });
    let Some(info) = info else {
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

/// One `calls` entry against one instance of the peer.
struct GrpcCall<'a> {
    caller: &'a str,
    call: &'a str,
    label: &'a str,
    port: u16,
    /// `user_service.v1.UserService`
    symbol: &'a str,
    method: &'a str,
}

impl GrpcCall<'_> {
    /// What the instance answered, or why the call does not hold.
    fn check(&self, client: &grpc::Client) -> std::result::Result<String, String> {
        use grpc::reflection::MessageRequest;
        use grpc::{Reflection, describe_status};
        let Self {
            caller,
            call,
            label,
            port,
            symbol,
            method,
        } = *self;
        let broken =
            |why: String| format!("{caller} calls `{call}`, but {label} (port {port}) {why}");
        let reflected = client
            .reflect(
                port,
                MessageRequest::FileContainingSymbol(symbol.to_string()),
            )
            .map_err(|e| broken(format!("did not answer server reflection: {e}")))?;
        let mut note = String::new();
        match reflected {
            Reflection::Unavailable => {
                note = " (it serves no reflection, so only the call was checked)".to_string();
            }
            Reflection::Files(files) => {
                let methods = files.iter().find_map(|f| {
                    f.service
                        .iter()
                        .find(|s| qualified(f.package(), s.name()) == symbol)
                        .map(|s| {
                            s.method
                                .iter()
                                .map(|m| m.name().to_string())
                                .collect::<Vec<_>>()
                        })
                });
                match methods {
                    Some(methods) if methods.iter().any(|m| m == method) => {}
                    Some(methods) => {
                        let mut why = format!("has no method `{method}` on `{symbol}`: ");
                        if methods.is_empty() {
                            why.push_str("the service has no methods");
                        } else {
                            let _ = write!(why, "its methods are {}", backticked(&methods));
                        }
                        if let Some(hint) = did_you_mean(method, &methods) {
                            let _ = write!(why, "; {hint}");
                        }
                        return Err(broken(why));
                    }
                    None => {
                        return Err(broken(
                            self.no_service(client, "its reflection files declare it not"),
                        ));
                    }
                }
            }
            Reflection::Error { code, message } => {
                return Err(broken(self.no_service(
                    client,
                    &format!("reflection: {}", describe_status(code, &message)),
                )));
            }
            Reflection::Services(_) => {
                return Err(broken(
                    "answered reflection with a list of services, not files".to_string(),
                ));
            }
        }
        let path = format!("/{symbol}/{method}");
        let answer = client
            .call(port, &path, &[Vec::new()])
            .map_err(|e| broken(format!("did not answer {path}: {e}")))?;
        if answer.status == grpc::UNIMPLEMENTED {
            return Err(broken(format!(
                "answers {path} with {}: the method is declared but not implemented",
                describe_status(answer.status, &answer.message)
            )));
        }
        Ok(format!(
            "{label} answered an empty {method} request with {}{note}",
            describe_status(answer.status, &answer.message)
        ))
    }

    /// Why the instance does not serve the service, and the services it does serve.
    fn no_service(&self, client: &grpc::Client, why: &str) -> String {
        let symbol = self.symbol;
        let mut out = format!("does not serve `{symbol}` ({why})");
        if let Ok(grpc::Reflection::Services(services)) = client.reflect(
            self.port,
            grpc::reflection::MessageRequest::ListServices(String::new()),
        ) {
            let services: Vec<String> = services
                .into_iter()
                .filter(|s| !s.starts_with("grpc."))
                .collect();
            if !services.is_empty() {
                let _ = write!(out, "; it serves {}", backticked(&services));
            }
            if let Some(hint) = did_you_mean(symbol, &services) {
                let _ = write!(out, "; {hint}");
            }
        }
        out
    }
}

/// `` `a`, `b` ``
fn backticked(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn qualified(package: &str, name: &str) -> String {
    if package.is_empty() {
        name.to_string()
    } else {
        format!("{package}.{name}")
    }
}

/// The user's cases from `contracts.toml`.
pub fn user_cases(cases: &[UserCase], plan: &RunPlan, running: &[String]) -> Vec<Case> {
    cases
        .iter()
        .map(|c| {
            let name = c.name();
            if !running.contains(&c.service) {
                return skipped(&c.service, &name, format!("{} is not running", c.service));
            }
            let Some(port) = plan
                .instances
                .iter()
                .find(|i| i.service == c.service)
                .and_then(|i| i.port)
            else {
                return skipped(&c.service, &name, format!("{} has no port", c.service));
            };
            let start = Instant::now();
            let body = c.body.as_ref().map(ToString::to_string);
            let (outcome, message) = match http(port, &c.method, &c.path, body.as_deref()) {
                Err(e) => (
                    Outcome::Failed,
                    Some(format!("{} {}: no answer ({e})", c.method, c.path)),
                ),
                Ok((status, text)) => check_answer(c, status, &text),
            };
            contract(&c.service, &name, outcome, message, start.elapsed())
        })
        .collect()
}

fn check_answer(c: &UserCase, status: u16, text: &str) -> (Outcome, Option<String>) {
    if let Some(want) = c.status
        && want != status
    {
        return (
            Outcome::Failed,
            Some(format!(
                "{} {}: expected status {want}, got {status}: {}",
                c.method,
                c.path,
                excerpt(text)
            )),
        );
    }
    if let Some(want) = &c.json {
        let got: serde_json::Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(_) => {
                return (
                    Outcome::Failed,
                    Some(format!(
                        "{} {}: expected JSON, got: {}",
                        c.method,
                        c.path,
                        excerpt(text)
                    )),
                );
            }
        };
        if !json_matches(want, &got) {
            return (
                Outcome::Failed,
                Some(format!(
                    "{} {}: expected JSON with {want}, got {got}",
                    c.method, c.path
                )),
            );
        }
    }
    (Outcome::Passed, None)
}

fn contract(
    service: &str,
    name: &str,
    outcome: Outcome,
    message: Option<String>,
    time: Duration,
) -> Case {
    Case {
        service: service.to_string(),
        suite: Suite::Contract,
        name: name.to_string(),
        outcome,
        message,
        time,
    }
}

/// A case not run, and why.
fn skipped(service: &str, name: &str, why: String) -> Case {
    contract(service, name, Outcome::Skipped, Some(why), Duration::ZERO)
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

fn excerpt(body: &str) -> String {
    let body = body.trim();
    if body.is_empty() {
        return "(empty body)".to_string();
    }
    let mut end = body.len().min(200);
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    if end < body.len() {
        format!("{}...", &body[..end])
    } else {
        body.to_string()
    }
}

/// One HTTP/1.1 exchange with `127.0.0.1:port`: status and body.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nUser-Agent: msvc-test\r\nAccept: application/json\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let response = String::from_utf8_lossy(&response);
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP response");
    let (head, rest) = response.split_once("\r\n\r\n").ok_or_else(bad)?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    Ok((
        status,
        if chunked {
            dechunk(rest)
        } else {
            rest.to_string()
        },
    ))
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

/// The header that marks msvc's probe messages; the worker template answers them.
pub const PROBE_HEADER: &str = "x-msvc-probe";
/// How long the consumers of a queue get to answer its probes.
const PROBE_TIMEOUT: Duration = Duration::from_secs(15);
/// A probe nobody took leaves the queue after this long.
const PROBE_EXPIRATION_MS: u64 = 10_000;

/// For every queue of the plan, each consuming service takes a probe published to it:
/// msvc publishes probe messages (marked by [`PROBE_HEADER`], with a `reply_to` queue of
/// its own) until every running consumer instance has answered, or time is up.
pub fn queue_probes(
    ws: &Workspace,
    plan: &RunPlan,
    settled: &Settled,
    running: &[String],
    amqp_url: Option<&str>,
) -> Vec<Case> {
    let mut queues: std::collections::BTreeMap<&str, Vec<&str>> = std::collections::BTreeMap::new();
    for service in &plan.order {
        for q in &ws.manifest.services[service].consumes {
            queues.entry(q.as_str()).or_default().push(service.as_str());
        }
    }
    let mut cases = Vec::new();
    for (queue, consumers) in queues {
        let name = format!("takes a probe message from queue `{queue}`");
        let mut want: Vec<(&str, String, i32)> = Vec::new();
        for service in &consumers {
            if !running.iter().any(|r| r == service) {
                cases.push(skipped(service, &name, format!("{service} is not running")));
                continue;
            }
            for i in settled
                .instances
                .iter()
                .filter(|i| i.service == *service && !i.is_broker)
            {
                if let Some(pid) = i.pid {
                    want.push((service, i.label.clone(), pid));
                }
            }
        }
        if want.is_empty() {
            continue;
        }
        let start = Instant::now();
        let answered = match amqp_url {
            Some(url) => probe_queue(url, queue, &want),
            None => Err("no broker URL".to_string()),
        };
        for service in consumers.iter().filter(|s| want.iter().any(|w| w.0 == **s)) {
            let (outcome, message) = match &answered {
                Err(e) => (
                    Outcome::Failed,
                    Some(format!("cannot probe queue `{queue}`: {e}")),
                ),
                Ok((pids, published)) => {
                    let silent: Vec<String> = want
                        .iter()
                        .filter(|w| w.0 == *service && !pids.contains(&w.2))
                        .map(|w| format!("{} (pid {})", w.1, w.2))
                        .collect();
                    if silent.is_empty() {
                        (Outcome::Passed, None)
                    } else {
                        (
                            Outcome::Failed,
                            Some(format!(
                                "{} did not answer any of the {published} probe messages msvc published to `{queue}` within {}s: it does not consume the queue, or its consumer does not answer probes (src/probe.rs of the worker template)",
                                silent.join(", "),
                                PROBE_TIMEOUT.as_secs()
                            )),
                        )
                    }
                }
            };
            cases.push(contract(service, &name, outcome, message, start.elapsed()));
        }
    }
    cases
}

/// Publishes probes to `queue` until every pid of `want` answered or time is up;
/// returns the pids that answered and how many probes were published.
fn probe_queue(
    url: &str,
    queue: &str,
    want: &[(&str, String, i32)],
) -> std::result::Result<(Vec<i32>, usize), String> {
    use super::amqp::AmqpClient;
    use crate::workspace::url::AmqpUrl;
    // lapin is built here with no certificate store, so it could not verify a TLS
    // broker; the probe speaks plain AMQP only.
    let parsed = AmqpUrl::parse(url)
        .filter(|u| !u.tls)
        .ok_or_else(|| "the broker URL does not read as amqp://".to_string())?;
    let mut client =
        AmqpClient::connect(&parsed, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    let reply_to = client.declare("").map_err(|e| e.to_string())?;
    client.declare(queue).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + PROBE_TIMEOUT;
    let mut answered: Vec<i32> = Vec::new();
    let mut published = 0;
    let body = br#"{"msvc_probe":true}"#;
    while Instant::now() < deadline && !want.iter().all(|w| answered.contains(&w.2)) {
        published += 1;
        let id = format!("msvc-test-{}-{published}", std::process::id());
        client
            .publish(
                queue,
                body,
                &[(PROBE_HEADER, "1")],
                &reply_to,
                &id,
                PROBE_EXPIRATION_MS,
            )
            .map_err(|e| e.to_string())?;
        // Each round gives the consumers a second to answer before the next probe.
        let round = Instant::now() + Duration::from_secs(1);
        while Instant::now() < round {
            match client.get(&reply_to).map_err(|e| e.to_string())? {
                Some(reply) => {
                    if let Some(pid) = serde_json::from_slice::<serde_json::Value>(&reply)
                        .ok()
                        .and_then(|v| v["pid"].as_i64())
                        .and_then(|p| i32::try_from(p).ok())
                        && !answered.contains(&pid)
                    {
                        answered.push(pid);
                    }
                }
                None => std::thread::sleep(Duration::from_millis(50)),
            }
            if want.iter().all(|w| answered.contains(&w.2)) {
                break;
            }
        }
    }
    client.close();
    Ok((answered, published))
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

    /// A peer serving `a.v1.Svc` with `Get` (answers `NOT_FOUND`) and `List`
    /// (answers `UNIMPLEMENTED`), and reflection v1.
    fn peer(path: &str, request: &[u8]) -> grpc::fake::Reply {
        use grpc::fake::Reply;
        use grpc::reflection::{
            ErrorResponse, FileDescriptorResponse, ListServiceResponse, MessageRequest,
            MessageResponse, ServerReflectionRequest, ServerReflectionResponse, ServiceResponse,
        };
        use prost::Message;
        use prost_types::{FileDescriptorProto, MethodDescriptorProto, ServiceDescriptorProto};
        let method = |name: &str| MethodDescriptorProto {
            name: Some(name.into()),
            ..Default::default()
        };
        match path {
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo" => {
                let request = ServerReflectionRequest::decode(request).unwrap();
                let response = match request.message_request.unwrap() {
                    MessageRequest::FileContainingSymbol(s) if s == "a.v1.Svc" => {
                        let file = FileDescriptorProto {
                            name: Some("a/v1/svc.proto".into()),
                            package: Some("a.v1".into()),
                            service: vec![ServiceDescriptorProto {
                                name: Some("Svc".into()),
                                method: vec![method("Get"), method("List")],
                                ..Default::default()
                            }],
                            ..Default::default()
                        };
                        MessageResponse::FileDescriptorResponse(FileDescriptorResponse {
                            file_descriptor_proto: vec![file.encode_to_vec()],
                        })
                    }
                    MessageRequest::ListServices(_) => {
                        MessageResponse::ListServicesResponse(ListServiceResponse {
                            service: ["a.v1.Svc", "grpc.reflection.v1.ServerReflection"]
                                .into_iter()
                                .map(|n| ServiceResponse { name: n.into() })
                                .collect(),
                        })
                    }
                    _ => MessageResponse::ErrorResponse(ErrorResponse {
                        error_code: 5,
                        error_message: "symbol not found".into(),
                    }),
                };
                let response = ServerReflectionResponse {
                    message_response: Some(response),
                    ..Default::default()
                };
                Reply::Messages(vec![response.encode_to_vec()], 0)
            }
            "/a.v1.Svc/Get" => Reply::TrailersOnly(5, "user 0 not found"),
            _ => Reply::TrailersOnly(12, "not implemented yet"),
        }
    }

    #[test]
    fn grpc_calls_need_the_method_in_reflection_and_an_implementation() {
        let port = grpc::fake::serve(peer);
        let client = grpc::Client::new().unwrap();
        let check = |symbol: &str, method: &str| {
            let call = format!("svc/{symbol}.{method}");
            GrpcCall {
                caller: "api",
                call: &call,
                label: "svc",
                port,
                symbol,
                method,
            }
            .check(&client)
        };
        assert_eq!(
            check("a.v1.Svc", "Get"),
            Ok("svc answered an empty Get request with NOT_FOUND (\"user 0 not found\")".into())
        );
        assert_eq!(
            check("a.v1.Svc", "Gett"),
            Err(format!(
                "api calls `svc/a.v1.Svc.Gett`, but svc (port {port}) has no method `Gett` on `a.v1.Svc`: its methods are `Get`, `List`; did you mean `Get`?"
            ))
        );
        assert_eq!(
            check("a.v1.Svc", "List"),
            Err(format!(
                "api calls `svc/a.v1.Svc.List`, but svc (port {port}) answers /a.v1.Svc/List with UNIMPLEMENTED (\"not implemented yet\"): the method is declared but not implemented"
            ))
        );
        assert_eq!(
            check("a.v1.Svcs", "Get"),
            Err(format!(
                "api calls `svc/a.v1.Svcs.Get`, but svc (port {port}) does not serve `a.v1.Svcs` (reflection: NOT_FOUND (\"symbol not found\")); it serves `a.v1.Svc`; did you mean `a.v1.Svc`?"
            ))
        );
    }

    #[test]
    fn a_grpc_peer_without_reflection_gets_the_call_alone() {
        fn peer(path: &str, _: &[u8]) -> grpc::fake::Reply {
            match path {
                "/a.v1.Svc/Get" => grpc::fake::Reply::Messages(vec![Vec::new()], 0),
                _ => grpc::fake::Reply::TrailersOnly(12, ""),
            }
        }
        let port = grpc::fake::serve(peer);
        let client = grpc::Client::new().unwrap();
        let call = |method: &'static str| GrpcCall {
            caller: "api",
            call: "svc/Svc.Get",
            label: "svc",
            port,
            symbol: "a.v1.Svc",
            method,
        };
        assert_eq!(
            call("Get").check(&client),
            Ok("svc answered an empty Get request with OK (it serves no reflection, so only the call was checked)".into())
        );
        let e = call("Gone").check(&client).unwrap_err();
        assert!(
            e.contains("answers /a.v1.Svc/Gone with UNIMPLEMENTED"),
            "{e}"
        );
    }

    #[test]
    fn dechunks() {
        assert_eq!(
            dechunk("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
            "hello world"
        );
    }
}
