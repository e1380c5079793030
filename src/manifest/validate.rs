//! Semantic validation of a parsed manifest: every problem found, each with its key path.

use std::collections::{BTreeMap, BTreeSet};

use super::Workspace;
use super::model::{Kind, parse_duration_ms};
use super::names::{
    validate_queue_name, validate_resource, validate_service_name, validate_workspace_name,
};
use crate::error::Error;

/// One problem in the manifest, located by its key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Stable identifier, `UPPER_SNAKE`.
    pub id: &'static str,
    pub message: String,
    pub keys: Vec<String>,
    pub hint: Option<String>,
}

impl Problem {
    fn new(id: &'static str, message: impl Into<String>, keys: &[&str]) -> Self {
        Self {
            id,
            message: message.into(),
            keys: keys.iter().map(ToString::to_string).collect(),
            hint: None,
        }
    }

    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The problem as an error with its location in services.toml.
    pub fn into_error(self, ws: &Workspace) -> Error {
        let keys: Vec<&str> = self.keys.iter().map(String::as_str).collect();
        let mut err = Error::new(self.message).at(ws.locate(&keys));
        if let Some(h) = self.hint {
            err = err.hint(h);
        }
        err
    }
}

/// Finds every semantic problem of the workspace's manifest.
pub fn validate(ws: &Workspace) -> Vec<Problem> {
    let m = &ws.manifest;
    let mut problems = Vec::new();

    if let Err(e) = validate_workspace_name(&m.workspace.name) {
        problems.push(
            Problem::new(
                "WORKSPACE_NAME",
                format!("workspace name `{}`: {}", m.workspace.name, e.reason),
                &["workspace", "name"],
            )
            .hint(e.hint),
        );
    }
    if let Some(grace) = &m.workspace.shutdown_grace
        && parse_duration_ms(grace).is_none()
    {
        problems.push(duration_problem(grace, &["workspace", "shutdown_grace"]));
    }

    let mut ports: BTreeMap<u16, (String, &'static str)> = BTreeMap::new();
    for (name, svc) in &m.services {
        let at = |key: &'static str| vec!["services", name.as_str(), key];
        if let Err(e) = validate_service_name(name) {
            problems.push(
                Problem::new(
                    "SERVICE_NAME",
                    format!("service name `{name}`: {}", e.reason),
                    &["services", name],
                )
                .hint(e.hint),
            );
        }
        if svc.kind.has_main_port() && svc.port.is_none() {
            problems.push(
                Problem::new(
                    "MISSING_PORT",
                    format!("service `{name}` ({}) has no `port`", svc.kind),
                    &["services", name],
                )
                .hint("add `port = N`, a port no other service uses"),
            );
        }
        if svc.kind.has_admin_port() && svc.admin_port.is_none() {
            problems.push(
                Problem::new(
                    "MISSING_ADMIN_PORT",
                    format!("service `{name}` ({}) has no `admin_port`", svc.kind),
                    &["services", name],
                )
                .hint("add `admin_port = N` for its /healthz, /readyz and /metrics"),
            );
        }
        if svc.kind == Kind::Grpc && svc.proto.is_none() {
            problems.push(
                Problem::new(
                    "MISSING_PROTO",
                    format!("gRPC service `{name}` has no `proto`"),
                    &["services", name],
                )
                .hint("add `proto = \"proto/<package>/v1/<name>.proto\"`"),
            );
        }
        if svc.kind == Kind::Process && svc.command.is_none() {
            problems.push(
                Problem::new(
                    "MISSING_COMMAND",
                    format!("process service `{name}` has no `command`"),
                    &["services", name],
                )
                .hint("add `command = \"python3 app.py\"` or similar"),
            );
        }
        if let Some(resource) = &svc.resource
            && let Err(e) = validate_resource(resource)
        {
            problems.push(Problem::new("RESOURCE_NAME", e.reason, &at("resource")).hint(e.hint));
        }
        if let Some(grace) = &svc.shutdown_grace
            && parse_duration_ms(grace).is_none()
        {
            problems.push(duration_problem(grace, &at("shutdown_grace")));
        }
        if svc.replicas == Some(0) {
            problems.push(
                Problem::new(
                    "REPLICAS",
                    format!("service `{name}` has `replicas = 0`"),
                    &at("replicas"),
                )
                .hint("use at least 1, or remove the service with `msvc rm`"),
            );
        }
        for (key, port) in [("port", svc.port), ("admin_port", svc.admin_port)] {
            let Some(port) = port else { continue };
            if port == 0 {
                problems.push(
                    Problem::new("PORT_ZERO", "port 0 is not a fixed port", &at(key))
                        .hint("pick a port between 1024 and 65535"),
                );
                continue;
            }
            if let Some((other, other_key)) = ports.get(&port) {
                problems.push(
                    Problem::new(
                        "PORT_CONFLICT",
                        format!(
                            "port {port} of `{name}` ({key}) is already used by `{other}` ({other_key})"
                        ),
                        &at(key),
                    )
                    .hint("give each service its own ports"),
                );
            } else {
                ports.insert(port, (name.clone(), key));
            }
        }
        for (i, dep) in svc.depends_on.iter().enumerate() {
            let index = i.to_string();
            let keys = ["services", name.as_str(), "depends_on", index.as_str()];
            if dep == name {
                problems.push(Problem::new(
                    "SELF_DEPENDENCY",
                    format!("service `{name}` depends on itself"),
                    &keys,
                ));
            } else if !m.services.contains_key(dep) {
                problems.push(
                    Problem::new(
                        "UNKNOWN_DEPENDENCY",
                        format!(
                            "service `{name}` depends on `{dep}`, which is not in the manifest"
                        ),
                        &keys,
                    )
                    .hint(did_you_mean(dep, m.services.keys()).unwrap_or_else(
                        || {
                            format!(
                                "add it first with `msvc new {dep}`, or remove it from depends_on"
                            )
                        },
                    )),
                );
            }
        }
        for (list, key) in [(&svc.publishes, "publishes"), (&svc.consumes, "consumes")] {
            for (i, q) in list.iter().enumerate() {
                if let Err(e) = validate_queue_name(q) {
                    let index = i.to_string();
                    problems.push(
                        Problem::new(
                            "QUEUE_NAME",
                            e.reason,
                            &["services", name.as_str(), key, index.as_str()],
                        )
                        .hint(e.hint),
                    );
                }
            }
        }
    }

    if let Some(cycle) = find_cycle(ws) {
        let first = cycle[0].clone();
        problems.push(
            Problem::new(
                "DEPENDENCY_CYCLE",
                format!("dependency cycle: {}", cycle.join(" -> ")),
                &["services", first.as_str(), "depends_on"],
            )
            .hint("remove one of the depends_on entries in the cycle"),
        );
    }
    problems
}

fn duration_problem(value: &str, keys: &[&str]) -> Problem {
    Problem::new("DURATION", format!("`{value}` is not a duration"), keys)
        .hint("write a whole number with a unit: `500ms`, `10s` or `2m`")
}

/// "did you mean `x`?" for the closest of `candidates`, when one is close.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a String>,
) -> Option<String> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!("did you mean `{c}`?"))
}

/// The first dependency cycle, as the list of services around it (first repeated last).
fn find_cycle(ws: &Workspace) -> Option<Vec<String>> {
    fn visit<'a>(
        node: &'a str,
        ws: &'a Workspace,
        stack: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(pos) = stack.iter().position(|n| *n == node) {
            let mut cycle: Vec<String> = stack[pos..].iter().map(ToString::to_string).collect();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node);
        if let Some(svc) = ws.manifest.services.get(node) {
            for dep in &svc.depends_on {
                if dep != node
                    && let Some(c) = visit(dep, ws, stack, done)
                {
                    return Some(c);
                }
            }
        }
        stack.pop();
        done.insert(node);
        None
    }
    let mut done = BTreeSet::new();
    for name in ws.manifest.services.keys() {
        let mut stack = Vec::new();
        if let Some(c) = visit(name, ws, &mut stack, &mut done) {
            return Some(c);
        }
    }
    None
}
