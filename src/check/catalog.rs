//! Every check `msvc check` runs, documented in one place: its ID, family, default level,
//! what it catches and how to fix it. `msvc check --explain ID`, `msvc check --list`,
//! SARIF rules and docs/checks.md are all generated from this table.

use std::fmt::Write as _;

use crate::workspace::diagnostic::Level;

/// One check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckInfo {
    /// Stable `UPPER_SNAKE` identifier; never renamed once released.
    pub id: &'static str,
    pub family: Family,
    /// The level when services.toml's `[checks]` table does not set one.
    pub level: Level,
    /// What it catches, in one line.
    pub summary: &'static str,
    /// Why it matters and how it decides.
    pub detail: &'static str,
    /// How to fix what it reports.
    pub fix: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    Manifest,
    Protos,
    Wiring,
    Queues,
    Drift,
    Layout,
    Dockerfile,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Manifest => "manifest",
            Family::Protos => "protos",
            Family::Wiring => "wiring",
            Family::Queues => "queues",
            Family::Drift => "drift",
            Family::Layout => "layout",
            Family::Dockerfile => "dockerfile",
        }
    }
}

/// The checks that compare with a git revision: they run only with `--against REF`.
pub const AGAINST_ONLY: [&str; 2] = ["PROTO_BREAKING", "MIGRATION_EDITED"];

const fn check(
    id: &'static str,
    family: Family,
    level: Level,
    summary: &'static str,
    detail: &'static str,
    fix: &'static str,
) -> CheckInfo {
    CheckInfo {
        id,
        family,
        level,
        summary,
        detail,
        fix,
    }
}

use Family::{Dockerfile, Drift, Layout, Manifest, Protos, Queues, Wiring};
use Level::{Error, Warning};

/// Every check, in the order `--list` and docs/checks.md show them.
pub const CHECKS: &[CheckInfo] = &[
    check(
        "MANIFEST_SYNTAX",
        Manifest,
        Error,
        "services.toml is not valid TOML",
        "Nothing else can be checked until the manifest parses, so this check cannot be turned \
         off. Only the first syntax error is shown: the ones after it are usually its echoes.",
        "Fix the TOML at the location shown (a missing quote, bracket or comma is the usual cause).",
    ),
    check(
        "MANIFEST_UNKNOWN_KEY",
        Manifest,
        Error,
        "a key that services.toml does not have, usually a typo",
        "Every table of services.toml accepts a fixed set of keys (see README.md); any other key is \
         reported with the closest known one.",
        "Fix the spelling (the diagnostic suggests the closest key) or remove the key.",
    ),
    check(
        "MANIFEST_SCHEMA",
        Manifest,
        Error,
        "a value of the wrong type, a missing required key, or an unknown `kind`",
        "Each table is read on its own, so one broken service does not hide the problems of the \
         others. A service that cannot be read is left out of the checks that need its values.",
        "Give the key a value of the type shown in the message (ports are integers, lists are \
         `[\"a\", \"b\"]`, `kind` is one of rest, grpc, worker, process).",
    ),
    check(
        "DUPLICATE_SERVICE",
        Manifest,
        Error,
        "the same `[services.NAME]` table twice",
        "Service names are unique: they name the crate, the compose service and the peer's \
         environment variable. TOML itself forbids the second table.",
        "Rename one of the services, or merge the two tables.",
    ),
    check(
        "WORKSPACE_NAME",
        Manifest,
        Error,
        "`[workspace] name` is not a DNS label",
        "The workspace name becomes the compose project name and image names.",
        "Use lowercase letters, digits and single hyphens, starting with a letter.",
    ),
    check(
        "SERVICE_NAME",
        Manifest,
        Error,
        "a service name that is not a lowercase DNS label, is a Rust keyword or is reserved",
        "A service name is the compose and Kubernetes name (a DNS-1123 label, at most 63 \
         characters), the crate name and the proto package root, so it must suit all of them.",
        "Rename the service (the diagnostic suggests a name); `msvc rm` and `msvc new` do it \
         with the generated files.",
    ),
    check(
        "DURATION",
        Manifest,
        Error,
        "a `shutdown_grace` that is not a duration",
        "Durations are a whole number with a unit.",
        "Write `500ms`, `10s` or `2m`.",
    ),
    check(
        "MISSING_PORT",
        Manifest,
        Error,
        "a REST or gRPC service without `port`",
        "The main port is where peers reach the service; compose publishes it. A `process` may go without one: `up` then counts it ready once it has started.",
        "Add `port = N` with a port no other service uses.",
    ),
    check(
        "MISSING_ADMIN_PORT",
        Manifest,
        Error,
        "a gRPC service or worker without `admin_port`",
        "gRPC services and workers serve /healthz, /readyz and /metrics on a separate HTTP port.",
        "Add `admin_port = N` with a port no other service uses.",
    ),
    check(
        "MISSING_PROTO",
        Manifest,
        Error,
        "a gRPC service without `proto`",
        "A gRPC service is generated from its proto, and its callers' clients too.",
        "Add `proto = \"proto/<package>/v1/<name>.proto\"`.",
    ),
    check(
        "MISSING_COMMAND",
        Manifest,
        Error,
        "a process service without `command`",
        "msvc does not build process services; it needs the command that starts one.",
        "Add `command = \"python3 app.py\"` or similar.",
    ),
    check(
        "RESOURCE_NAME",
        Manifest,
        Error,
        "a REST service's `resource` that cannot be a URL segment and a Rust type",
        "The resource names the sample route (`/user/{id}`) and its Rust type.",
        "Use lowercase letters, digits and `-`, e.g. `order`.",
    ),
    check(
        "REPLICAS",
        Manifest,
        Error,
        "`replicas = 0`",
        "A service with no replica never runs, and its dependents never become healthy.",
        "Use at least 1, or remove the service with `msvc rm`.",
    ),
    check(
        "DEPLOY_VALUE",
        Manifest,
        Error,
        "a `[deploy]` registry or tag, a service's `resources` or its `autoscale` that \
         Kubernetes would refuse",
        "`msvc deploy k8s` turns these values into image references, resource quantities and \
         a HorizontalPodAutoscaler; a value the cluster would reject is caught here instead: a \
         registry with a scheme or capitals, a tag with a `/`, `cpu = \"fast\"`, a limit below \
         its request, `autoscale` with `min = 0` or `max` below `min`.",
        "Fix the value as the hint says: `registry = \"ghcr.io/acme\"`, `tag = \"1.4.2\"`, \
         `resources = { cpu = \"250m\", memory = \"128Mi\" }`, `autoscale = { min = 2, max = 5, \
         cpu = 70 }`.",
    ),
    check(
        "DATABASE_URL",
        Manifest,
        Error,
        "a `[database] url` that is not a PostgreSQL URL",
        "`msvc up` connects to this server to create each service's database, and the \
         services' `DATABASE_URL` is built from it: a URL that does not parse would only fail \
         once the services start.",
        "Write it as `postgres://user[:password]@host[:port]/database`, e.g. \
         `url = \"postgres://postgres@127.0.0.1:5432/postgres\"`.",
    ),
    check(
        "DATABASE_NAME",
        Manifest,
        Error,
        "a service's database name longer than PostgreSQL keeps",
        "Each service with `database = \"postgres\"` owns the database `WORKSPACE_SERVICE` in \
         snake case; PostgreSQL silently truncates names past 63 characters, so two services \
         could end up sharing one.",
        "Shorten the workspace's or the service's name.",
    ),
    check(
        "MIGRATION_FILE",
        Layout,
        Error,
        "a migration file sqlx cannot read",
        "A service with a database embeds `migrations/*.sql` when it is built: sqlx takes files \
         named `VERSION_DESCRIPTION.sql` (or `.up.sql` and `.down.sql`), the version a positive \
         number, in UTF-8; any other `.sql` file there fails the build.",
        "Rename it `0002_what_it_does.sql`, with the next free version, and save it as UTF-8.",
    ),
    check(
        "MIGRATION_VERSION",
        Layout,
        Error,
        "two migrations of a service with the same version",
        "Migrations are applied in the order of their versions, once each; two files with one \
         version make the build fail.",
        "Give the newer one the next free version.",
    ),
    check(
        "MIGRATION_EDITED",
        Layout,
        Error,
        "with `--against REF`: a migration REF had, edited or deleted since",
        "sqlx records the checksum of each migration it applied and refuses to start when a \
         file no longer matches, or an applied one is missing: after a deploy, on the \
         databases that ran it. Runs only with `--against`.",
        "Restore the file from REF and make the change in a new migration.",
    ),
    check(
        "PORT_ZERO",
        Manifest,
        Error,
        "`port = 0` or `admin_port = 0`",
        "Port 0 asks the system for any free port, so peers could not find the service.",
        "Pick a fixed port between 1024 and 65535.",
    ),
    check(
        "PORT_CONFLICT",
        Manifest,
        Error,
        "two services (or a service's two ports) use the same host port",
        "Every `port` and `admin_port` is published on the host by compose and bound by \
         `cargo run`, so each must be unique across the workspace.",
        "Give each service its own ports; `msvc new` picks the next free one when `--port` is \
         left out.",
    ),
    check(
        "SELF_DEPENDENCY",
        Manifest,
        Error,
        "a service listed in its own `depends_on`",
        "A service cannot wait for itself to become healthy.",
        "Remove it from `depends_on`.",
    ),
    check(
        "UNKNOWN_DEPENDENCY",
        Manifest,
        Error,
        "a `depends_on` entry that names no service of the manifest",
        "Peers are reached through a generated client and a `<PEER>_URL` variable, which only \
         exist for services of the manifest.",
        "Fix the name (the diagnostic suggests the closest one), or add the service with \
         `msvc new`.",
    ),
    check(
        "DEPENDENCY_CYCLE",
        Manifest,
        Error,
        "services that depend on each other in a cycle (the cycle is printed)",
        "Compose starts a service after its `depends_on` are healthy; in a cycle none ever starts.",
        "Remove one `depends_on` entry of the cycle; services that must talk both ways can use a \
         queue for one direction.",
    ),
    check(
        "QUEUE_NAME",
        Manifest,
        Error,
        "a `publishes` or `consumes` entry that is not a valid queue name",
        "Queue names become AMQP queues, Rust modules and type names.",
        "Use lowercase letters, digits, `_`, `-` and `.`, starting with a letter, e.g. \
         `user_message`.",
    ),
    check(
        "UNKNOWN_CHECK",
        Manifest,
        Warning,
        "a `[checks]` entry that names no check",
        "A misspelt ID in `[checks]` would silently leave the check at its default level.",
        "Fix the ID (the diagnostic suggests the closest one); `msvc check --list` lists them.",
    ),
    check(
        "PROTO_MISSING",
        Protos,
        Error,
        "the proto a gRPC service names does not exist",
        "The service and its callers' clients are compiled from this file.",
        "Restore the file, or fix the `proto` path in services.toml.",
    ),
    check(
        "PROTO_COMPILE",
        Protos,
        Error,
        "a proto that does not compile: syntax, unknown types, missing imports, clashing names",
        "Every `.proto` under proto/ and every proto the manifest names is compiled with its \
         imports (as crates/contracts' build does, with protox), so an error shows here instead \
         of in `cargo build`.",
        "Fix the proto at the location shown. Imports are relative to proto/, and \
         `google/protobuf/*.proto` are built in.",
    ),
    check(
        "PROTO_NO_SERVICE",
        Protos,
        Error,
        "a gRPC service's proto declares no `service`",
        "The service's server trait and its callers' clients are generated from the proto's \
         `service` declarations.",
        "Add a `service` with at least one `rpc` to the proto, or point `proto` at the right file.",
    ),
    check(
        "PROTO_NO_PACKAGE",
        Protos,
        Error,
        "a gRPC service's proto has no `package`",
        "The generated code of a proto lives in a module named after its package; without one \
         it cannot be told apart from other protos.",
        "Add a versioned package, e.g. `package billing.v1;`.",
    ),
    check(
        "PROTO_BREAKING",
        Protos,
        Error,
        "with `--against REF`: a change that breaks clients built from the protos at REF",
        "Compares every proto with its version at the git revision REF: deleted files, \
         messages, enums, services and RPCs; deleted fields and enum values (unless their number \
         is now reserved); changed field numbers, types and labels; changed RPC request or \
         response types or streaming; a changed package. Runs only with `--against`.",
        "Keep the old element, or make the change in a new versioned package (`v2`) so existing \
         clients keep working. To retire a field, reserve its number and name: \
         `reserved 3; reserved \"email\";`.",
    ),
    check(
        "CALL_INVALID",
        Wiring,
        Error,
        "a `calls` entry that is malformed or names a peer that cannot be called",
        "A call is `peer/Service.Method` for a gRPC peer or `peer/METHOD /path` for a REST peer; \
         the peer must be another service of the manifest, and not a worker (workers serve no \
         calls).",
        "Write the entry as `user-service/UserService.GetUser` or `user-api/GET /user/{id}`; \
         `msvc link NAME --calls CALL` checks it before adding it.",
    ),
    check(
        "CALL_UNKNOWN_RPC",
        Wiring,
        Error,
        "a `calls` entry that names an RPC the gRPC peer's proto does not declare",
        "The call would fail with UNIMPLEMENTED at run time, or not compile against the \
         generated client.",
        "Fix the name (the diagnostic suggests the closest RPC), or add the RPC to the peer's \
         proto.",
    ),
    check(
        "CALL_UNKNOWN_ROUTE",
        Wiring,
        Error,
        "a `calls` entry that names a route or method the REST peer's openapi.yaml does not declare",
        "Routes match segment by segment; a `{param}` segment matches any value.",
        "Fix the route (the diagnostic lists the peer's routes), or declare it in the peer's \
         openapi.yaml.",
    ),
    check(
        "CALL_WITHOUT_DEPENDENCY",
        Wiring,
        Warning,
        "a `calls` entry whose peer is not in the caller's `depends_on`",
        "The peer's client and its `<PEER>_URL` variable are generated from `depends_on`, and \
         compose starts the caller after its dependencies.",
        "Add the peer to `depends_on`: `msvc link NAME --depends-on PEER`.",
    ),
    check(
        "OPENAPI_INVALID",
        Wiring,
        Error,
        "a REST service's openapi.yaml is not valid YAML, or is missing while others call it",
        "The typed clients of a REST service's callers are generated from its openapi.yaml.",
        "Fix the YAML at the location shown, or restore the file.",
    ),
    check(
        "CONTRACTS_INVALID",
        Wiring,
        Error,
        "a case of contracts.toml that msvc test cannot run",
        "`msvc test` sends each `[[case]]` of contracts.toml to a REST service of the manifest; \
         a key it does not know, a service that is not there or not REST, a request that is not \
         `METHOD /path`, or a case that expects nothing stops it before any case runs.",
        "Fix the case at the location shown: `service` names a REST service, `request` is \
         \"GET /path\", and `status` or `json` says what the answer must be.",
    ),
    check(
        "QUEUE_NO_PUBLISHER",
        Queues,
        Warning,
        "a consumed queue that no service publishes to",
        "The consumer would wait forever; often a typo in one of the two names.",
        "Add the queue to a publisher's `publishes` (`msvc link NAME --publishes QUEUE`) or fix \
         the name.",
    ),
    check(
        "QUEUE_NO_CONSUMER",
        Queues,
        Warning,
        "a published queue that no service consumes",
        "Messages would pile up in the broker; often a typo in one of the two names.",
        "Add a worker that consumes it (`msvc new NAME --worker --consumes QUEUE`) or fix the \
         name.",
    ),
    check(
        "BROKER_MISSING",
        Queues,
        Error,
        "services publish or consume queues but services.toml has no `[broker]`",
        "The broker is where queues live; compose runs it only when the manifest declares it.",
        "Add `[broker]` with `kind = \"rabbitmq\"` and `url = \"amqp://...\"` (`msvc link` and \
         `msvc new` add it when they add a queue).",
    ),
    check(
        "COMPOSE_DRIFT",
        Drift,
        Error,
        "docker-compose.yml differs from what services.toml generates",
        "docker-compose.yml is msvc's: it is rendered from the manifest in memory and compared, \
         nothing is written. A difference means it was edited by hand or the manifest changed \
         without `msvc sync`. Checked once the manifest itself is valid.",
        "Run `msvc sync`. Make lasting changes in services.toml (`env`, `replicas`, ports), or \
         in a template override, not in the generated file.",
    ),
    check(
        "GENERATED_DRIFT",
        Drift,
        Error,
        "a file of crates/contracts or crates/msvc-runtime, a service's wiring.rs, a worker's \
         routes.rs or the workspace members differ from what msvc generates",
        "Like COMPOSE_DRIFT, for the other msvc-owned files: crates/contracts (but its message \
         files once written), crates/msvc-runtime (byte for byte the runtime of this msvc), \
         services/<name>/src/wiring.rs, services/<worker>/src/routes.rs, and `[workspace] \
         members` and the `msvc-runtime` dependency of the root Cargo.toml. Also reported when \
         they cannot be generated at all.",
        "Run `msvc sync`.",
    ),
    check(
        "K8S_DRIFT",
        Drift,
        Error,
        "deploy/k8s/base differs from what services.toml generates",
        "Once `msvc deploy k8s` has written deploy/k8s/, its base/ is msvc's: it is rendered \
         from the manifest in memory and compared. A service without its manifests, manifests \
         of a service that is gone, or a port, peer address, image or replica count that \
         differs means base/ was edited by hand or the manifest changed without `msvc sync`. \
         The overlays are yours and are not compared.",
        "Run `msvc sync` (or `msvc deploy k8s`). Make lasting changes in services.toml, or as \
         patches in deploy/k8s/overlays/.",
    ),
    check(
        "K8S_IMAGE_TAG_MISSING",
        Drift,
        Warning,
        "a Kubernetes overlay that does not set the image tag of a service",
        "Each overlay's kustomization.yaml pins the tag of every service's image in its \
         `images:` list. A service added after the overlay was scaffolded is missing there, so \
         that environment runs whatever tag base/ names.",
        "Add `- name: IMAGE` with `newTag: TAG` for the service to `images:` in the overlay's \
         kustomization.yaml (IMAGE is REGISTRY/NAME as in base/), and a patch if it needs one.",
    ),
    check(
        "K8S_OVERLAY_STALE",
        Drift,
        Error,
        "a Kubernetes overlay that patches or pins a service services.toml no longer has",
        "The overlays are yours, so `msvc rm` leaves them alone; but a patch of a Deployment the \
         base no longer has makes `kubectl kustomize` fail, and a pinned image of a removed \
         service hides that the overlay is stale.",
        "Remove the service's `- path: patches/NAME.yaml` entry (and the file) and its `images:` \
         entry from the overlay's kustomization.yaml.",
    ),
    check(
        "PROMETHEUS_DRIFT",
        Drift,
        Error,
        "deploy/prometheus differs from what services.toml generates",
        "Once `msvc deploy prometheus` has written deploy/prometheus/, its scrape \
         configurations and alert rules are msvc's: a service missing from the targets or a \
         port that differs means the files were edited by hand or are stale.",
        "Run `msvc sync` (or `msvc deploy prometheus`).",
    ),
    check(
        "SERVICE_DIR_MISSING",
        Layout,
        Error,
        "a service of the manifest without its directory services/NAME",
        "The service cannot be built, and compose refers to its Dockerfile.",
        "Run `msvc sync`, which scaffolds services listed in services.toml without a directory, \
         or `msvc rm NAME` if the service is gone.",
    ),
    check(
        "SERVICE_DIR_UNLISTED",
        Layout,
        Warning,
        "a directory under services/ that the manifest does not list",
        "Usually a service removed from services.toml by hand, or renamed; it is neither built \
         nor run.",
        "Add it to services.toml, or delete the directory.",
    ),
    check(
        "DOCKERFILE_MISSING",
        Dockerfile,
        Error,
        "a service directory without a Dockerfile",
        "docker-compose.yml builds every service from services/NAME/Dockerfile.",
        "Restore the Dockerfile; `msvc templates export DIR` shows msvc's in \
         service/Dockerfile.tera.",
    ),
    check(
        "DOCKERFILE_ROOT_USER",
        Dockerfile,
        Warning,
        "the final stage of a Dockerfile runs as root",
        "The last `USER` of the final stage is root, or there is none (most base images default \
         to root).",
        "Add `USER nonroot:nonroot` (distroless) or create a user and switch to it.",
    ),
    check(
        "DOCKERFILE_NO_HEALTHCHECK",
        Dockerfile,
        Warning,
        "the final stage of a Dockerfile has no HEALTHCHECK",
        "Without one, Docker cannot tell a hung service from a healthy one. msvc's services \
         answer `--healthcheck` for this.",
        "Add `HEALTHCHECK CMD [\"/usr/local/bin/NAME\", \"--healthcheck\"]`.",
    ),
    check(
        "DOCKERFILE_LATEST_TAG",
        Dockerfile,
        Warning,
        "a FROM image tagged `latest`, or with no tag (which means `latest`)",
        "`latest` changes under you: the same Dockerfile builds a different image tomorrow. \
         Images pinned by digest, `scratch` and earlier stages are fine.",
        "Pin a version tag (`rust:1.95-slim-bookworm`) or a digest (`image@sha256:...`).",
    ),
];

/// The check with this ID.
pub fn info(id: &str) -> Option<&'static CheckInfo> {
    CHECKS.iter().find(|c| c.id == id)
}

/// "did you mean `X`?" for a mistyped check ID.
pub fn suggest(id: &str) -> Option<String> {
    let upper = id.to_ascii_uppercase();
    CHECKS
        .iter()
        .map(|c| (strsim::jaro_winkler(&upper, c.id), c.id))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, id)| format!("did you mean `{id}`?"))
}

/// The text of `msvc check --explain ID`.
pub fn explain(c: &CheckInfo) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}: {}", c.id, c.summary);
    let _ = writeln!(
        out,
        "{} by default, one of the {} checks\n",
        capitalised(c.level.as_str()),
        c.family.as_str()
    );
    let _ = writeln!(out, "{}\n", wrap(c.detail, 88));
    let _ = writeln!(out, "{}\n", wrap(&format!("Fix: {}", c.fix), 88));
    if c.id == "MANIFEST_SYNTAX" {
        let _ = writeln!(out, "This check cannot be turned off.");
    } else {
        let other = if c.level == Level::Error {
            "warning"
        } else {
            "error"
        };
        let _ = writeln!(
            out,
            "Change its level in services.toml:\n\n  [checks]\n  {} = \"{other}\"   # or \"off\", \"{}\"",
            c.id,
            c.level.as_str()
        );
    }
    out
}

/// docs/checks.md.
pub fn markdown() -> String {
    let mut out = String::from(
        "# `msvc check`: the checks\n\n\
         <!-- Generated from src/check/catalog.rs by the test `checks_doc_is_current`; \
         run it with MSVC_BLESS=1 to rewrite this file. -->\n\n\
         Each check has a stable ID and a default level. `msvc check --explain ID` prints one \
         entry; `msvc check --list` lists them with the levels in force. Change a level in \
         services.toml:\n\n\
         ```toml\n[checks]\nDOCKERFILE_LATEST_TAG = \"off\"      # or \"warning\", \"error\"\n\
         QUEUE_NO_CONSUMER = \"error\"\n```\n\n\
         Exit codes: 0 when there is no error (warnings are allowed unless `--deny warnings`), \
         1 when a check reports an error, 2 on a usage or I/O error.\n\n\
         | ID | level | what it catches |\n|---|---|---|\n",
    );
    for c in CHECKS {
        let _ = writeln!(
            out,
            "| [`{}`](#{}) | {} | {} |",
            c.id,
            c.id.to_ascii_lowercase(),
            c.level.as_str(),
            c.summary.replace('|', "\\|")
        );
    }
    for c in CHECKS {
        let _ = write!(
            out,
            "\n## {}\n\n*{}, {} checks.* Catches {}.\n\n{}\n\n**Fix:** {}\n",
            c.id,
            c.level.as_str(),
            c.family.as_str(),
            c.summary,
            c.detail,
            c.fix
        );
    }
    out
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// Wraps text at `width` columns, on spaces.
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line_len = 0;
    for word in text.split_whitespace() {
        if line_len > 0 && line_len + 1 + word.len() > width {
            out.push('\n');
            line_len = 0;
        } else if line_len > 0 {
            out.push(' ');
            line_len += 1;
        }
        out.push_str(word);
        line_len += word.len();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_upper_snake_and_documented() {
        let mut seen = std::collections::BTreeSet::new();
        for c in CHECKS {
            assert!(seen.insert(c.id), "{} twice", c.id);
            assert!(
                c.id.chars()
                    .all(|ch| ch.is_ascii_uppercase() || ch == '_' || ch.is_ascii_digit()),
                "{}",
                c.id
            );
            assert!(!c.summary.ends_with('.'), "{}", c.id);
            assert!(c.fix.ends_with('.'), "{}", c.id);
        }
    }

    #[test]
    fn every_validation_problem_has_a_check() {
        for id in [
            "WORKSPACE_NAME",
            "DURATION",
            "SERVICE_NAME",
            "MISSING_PORT",
            "MISSING_ADMIN_PORT",
            "MISSING_PROTO",
            "MISSING_COMMAND",
            "RESOURCE_NAME",
            "REPLICAS",
            "DEPLOY_VALUE",
            "DATABASE_URL",
            "DATABASE_NAME",
            "PORT_ZERO",
            "PORT_CONFLICT",
            "SELF_DEPENDENCY",
            "UNKNOWN_DEPENDENCY",
            "QUEUE_NAME",
            "DEPENDENCY_CYCLE",
        ] {
            assert!(info(id).is_some(), "{id}");
        }
        assert_eq!(
            suggest("port_conflit").as_deref(),
            Some("did you mean `PORT_CONFLICT`?")
        );
    }
}
