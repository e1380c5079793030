//! Semantic validation of a parsed manifest: every problem found, each with its key path.

use std::collections::BTreeMap;

use super::Workspace;
use super::model::{Kind, MAX_DATABASE_NAME, Resources, parse_duration_ms};
use super::names::{
    validate_queue_name, validate_resource, validate_service_name, validate_workspace_name,
};
use super::url::PgUrl;
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

    if let Some(deploy) = &m.deploy {
        if let Some(registry) = &deploy.registry
            && let Err(reason) = check_registry(registry)
        {
            problems.push(
                Problem::new(
                    "DEPLOY_VALUE",
                    format!("`{registry}` is not an image registry: {reason}"),
                    &["deploy", "registry"],
                )
                .hint("write a host and an optional path, lowercase, without a scheme: `ghcr.io/acme` or `registry.local:5000/shop`"),
            );
        }
        if let Some(tag) = &deploy.tag
            && let Err(reason) = check_tag(tag)
        {
            problems.push(
                Problem::new(
                    "DEPLOY_VALUE",
                    format!("`{tag}` is not an image tag: {reason}"),
                    &["deploy", "tag"],
                )
                .hint("a tag is 1 to 128 letters, digits, `_`, `.` or `-`, not starting with `.` or `-`: `1.4.2`, `main-3f2a1c`"),
            );
        }
    }

    if let Some(database) = &m.database
        && PgUrl::parse(&database.url).is_none()
    {
        problems.push(
            Problem::new(
                "DATABASE_URL",
                format!("`{}` is not a PostgreSQL URL", database.url),
                &["database", "url"],
            )
            .hint("write it as postgres://user[:password]@host[:port]/database, e.g. `postgres://postgres@127.0.0.1:5432/postgres`"),
        );
    }
    for name in m
        .services
        .iter()
        .filter(|(_, s)| s.database.is_some())
        .map(|(n, _)| n)
    {
        let database = m.database_name(name);
        if database.len() > MAX_DATABASE_NAME {
            problems.push(
                Problem::new(
                    "DATABASE_NAME",
                    format!(
                        "the database of `{name}`, `{database}`, is {} characters long; PostgreSQL keeps {MAX_DATABASE_NAME}",
                        database.len()
                    ),
                    &["services", name, "database"],
                )
                .hint("shorten the workspace's or the service's name: a service's database is WORKSPACE_SERVICE in snake case"),
            );
        }
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
        // A `process` may listen on nothing (a job runner, a log shipper): it is ready once started.
        if matches!(svc.kind, Kind::Rest | Kind::Grpc) && svc.port.is_none() {
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
        if let Some(res) = &svc.resources {
            deploy_resources(name, res, &mut problems);
        }
        if let Some(a) = &svc.autoscale {
            let bad = if a.min == 0 {
                Some("`min` must be at least 1")
            } else if a.max < a.min {
                Some("`max` is below `min`")
            } else if a.cpu == 0 || a.cpu > 100 {
                Some("`cpu` is a percentage of the CPU request, from 1 to 100")
            } else {
                None
            };
            if let Some(reason) = bad {
                problems.push(
                    Problem::new(
                        "DEPLOY_VALUE",
                        format!("the `autoscale` of `{name}` is not usable: {reason}"),
                        &at("autoscale"),
                    )
                    .hint("write `autoscale = { min = 2, max = 5, cpu = 70 }`: replicas between min and max, aiming at cpu percent"),
                );
            }
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

    if let Some(cycle) = super::graph::Dependencies::of(&ws.manifest).cycle() {
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

/// CPU and memory quantities, and limits no lower than requests.
fn deploy_resources(name: &str, res: &Resources, problems: &mut Vec<Problem>) {
    let keys = |key: &str| -> Vec<String> {
        ["services", name, "resources", key]
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    let mut push = |key: &str, message: String, hint: &str| {
        problems.push(Problem {
            id: "DEPLOY_VALUE",
            message,
            keys: keys(key),
            hint: Some(hint.to_string()),
        });
    };
    let cpu = [("cpu", &res.cpu), ("cpu_limit", &res.cpu_limit)].map(|(key, text)| {
        let v = cpu_millis(text);
        if v.is_none() {
            push(
                key,
                format!("`{key} = \"{text}\"` of `{name}` is not a CPU quantity"),
                "write cores or millicores: `\"250m\"`, `\"0.5\"`, `\"2\"`",
            );
        }
        v
    });
    let memory =
        [("memory", &res.memory), ("memory_limit", &res.memory_limit)].map(|(key, text)| {
            let v = memory_bytes(text);
            if v.is_none() {
                push(
                    key,
                    format!("`{key} = \"{text}\"` of `{name}` is not a memory quantity"),
                    "write bytes with a suffix: `\"128Mi\"`, `\"1Gi\"`, `\"500M\"`",
                );
            }
            v
        });
    if let [Some(req), Some(lim)] = cpu
        && lim < req
    {
        push(
            "cpu_limit",
            format!(
                "the CPU limit of `{name}` ({}) is below its request ({})",
                res.cpu_limit, res.cpu
            ),
            "raise `cpu_limit`, or lower `cpu`",
        );
    }
    if let [Some(req), Some(lim)] = memory
        && lim < req
    {
        push(
            "memory_limit",
            format!(
                "the memory limit of `{name}` ({}) is below its request ({})",
                res.memory_limit, res.memory
            ),
            "raise `memory_limit`, or lower `memory`",
        );
    }
}

/// A Kubernetes CPU quantity (`250m`, `0.5`, `2`) in millicores.
fn cpu_millis(text: &str) -> Option<f64> {
    let (digits, factor) = match text.strip_suffix('m') {
        Some(d) => (d, 1.0),
        None => (text, 1000.0),
    };
    let v = decimal(digits)? * factor;
    (v > 0.0).then_some(v)
}

/// A Kubernetes memory quantity (`128Mi`, `1G`, `1000`) in bytes.
fn memory_bytes(text: &str) -> Option<f64> {
    const SUFFIXES: [(&str, f64); 12] = [
        ("Ki", 1024.0),
        ("Mi", 1_048_576.0),
        ("Gi", 1_073_741_824.0),
        ("Ti", 1_099_511_627_776.0),
        ("Pi", 1_125_899_906_842_624.0),
        ("Ei", 1_152_921_504_606_846_976.0),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    let (digits, factor) = SUFFIXES
        .iter()
        .find_map(|(s, f)| text.strip_suffix(s).map(|d| (d, *f)))
        .unwrap_or((text, 1.0));
    let v = decimal(digits)? * factor;
    (v > 0.0).then_some(v)
}

/// `12` or `1.5`: digits with at most one dot, nothing else.
fn decimal(text: &str) -> Option<f64> {
    let (int, frac) = text.split_once('.').unwrap_or((text, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || !digits(frac) {
        return None;
    }
    text.parse().ok()
}

/// An image registry with an optional path, as in a docker reference: `ghcr.io/acme`.
pub fn check_registry(text: &str) -> Result<(), String> {
    if text.contains("://") {
        return Err("it has a scheme".into());
    }
    if text.is_empty() {
        return Err("it is empty".into());
    }
    for (i, part) in text.trim_end_matches('/').split('/').enumerate() {
        let part = if i == 0 {
            match part.split_once(':') {
                Some((host, port)) => {
                    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(format!("`{port}` is not a port number"));
                    }
                    host
                }
                None => part,
            }
        } else {
            part
        };
        let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        let ok = !part.is_empty()
            && part
                .bytes()
                .all(|b| alnum(b) || matches!(b, b'.' | b'_' | b'-'))
            && part.bytes().next().is_some_and(alnum)
            && part.bytes().last().is_some_and(alnum);
        if !ok {
            return Err(format!(
                "`{part}` must be lowercase letters, digits, `.`, `_` or `-`, starting and ending with a letter or digit"
            ));
        }
    }
    Ok(())
}

/// An image tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn check_tag(text: &str) -> Result<(), String> {
    if text.is_empty() || text.len() > 128 {
        return Err("it must be 1 to 128 characters long".into());
    }
    let first = text.as_bytes()[0];
    if first == b'.' || first == b'-' {
        return Err("it cannot start with `.` or `-`".into());
    }
    match text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        Some(c) => Err(format!("`{c}` is not allowed in a tag")),
        None => Ok(()),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries() {
        for ok in [
            "ghcr.io/acme",
            "registry.local:5000/shop",
            "docker.io/library",
            "localhost:5000",
            "ghcr.io/acme/",
        ] {
            assert_eq!(check_registry(ok), Ok(()), "{ok}");
        }
        for bad in [
            "https://ghcr.io/acme",
            "GHCR.io/acme",
            "ghcr.io//acme",
            "ghcr.io:port/x",
            "-ghcr.io",
            "",
            "ghcr.io/acme shop",
        ] {
            assert!(check_registry(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tags() {
        for ok in ["latest", "1.4.2", "v1_2-rc.3", "A", &"a".repeat(128)] {
            assert_eq!(check_tag(ok), Ok(()), "{ok}");
        }
        for bad in ["", ".hidden", "-x", "a/b", "a:b", &"a".repeat(129)] {
            assert!(check_tag(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn quantities() {
        assert_eq!(cpu_millis("250m"), Some(250.0));
        assert_eq!(cpu_millis("0.5"), Some(500.0));
        assert_eq!(cpu_millis("2"), Some(2000.0));
        for bad in ["fast", "", "m", "-1", "0", "1.2.3", "1e3"] {
            assert_eq!(cpu_millis(bad), None, "{bad}");
        }
        assert_eq!(memory_bytes("128Mi"), Some(134_217_728.0));
        assert_eq!(memory_bytes("1G"), Some(1e9));
        assert_eq!(memory_bytes("1000"), Some(1000.0));
        for bad in ["lots", "12MB", "Mi", "-5Mi", "0"] {
            assert_eq!(memory_bytes(bad), None, "{bad}");
        }
    }
}
