//! The schema of services.toml, as serde reads it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The template set the services of a new workspace are rendered with.
pub const TEMPLATE_VERSION: u32 = 4;

/// The broker URL used when the manifest declares none.
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// The `PostgreSQL` server used when the manifest declares none.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The longest database name `PostgreSQL` keeps (it truncates longer ones).
pub const MAX_DATABASE_NAME: usize = 63;

/// The grace period used when neither the service nor the workspace sets one.
pub const DEFAULT_SHUTDOWN_GRACE: &str = "10s";

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub workspace: WorkspaceSection,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker: Option<Broker>,
    /// The `PostgreSQL` server the services with `database = "postgres"` keep their data
    /// on, each in a database of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseSection>,
    /// Where images come from, for `msvc deploy k8s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<DeploySection>,
    #[serde(default)]
    pub services: BTreeMap<String, Service>,
    /// `msvc check`'s level for a check, by ID: `DOCKERFILE_LATEST_TAG = "off"`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub checks: BTreeMap<String, CheckLevel>,
}

/// What `msvc check` does with a check's findings.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum CheckLevel {
    /// Not run, or its findings dropped.
    Off,
    /// Reported; fails the run only with `--deny warnings`.
    #[serde(alias = "warn")]
    Warning,
    /// Reported, and fails the run (exit 1).
    Error,
}

impl CheckLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckLevel::Off => "off",
            CheckLevel::Warning => "warning",
            CheckLevel::Error => "error",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceSection {
    pub name: String,
    #[serde(default = "default_template_version")]
    pub template_version: u32,
    /// A directory of templates that override the embedded ones, file by file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub templates: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutdown_grace: Option<String>,
}

fn default_template_version() -> u32 {
    TEMPLATE_VERSION
}

/// The image tag Kubernetes manifests use when `[deploy]` sets none.
pub const DEFAULT_IMAGE_TAG: &str = "latest";

/// `[deploy]`: the image each service's Deployment runs is `REGISTRY/NAME:TAG`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeploySection {
    /// `ghcr.io/acme`; omitted, images are `NAME:TAG`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// A service's CPU and memory in Kubernetes quantities: requests and limits.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    #[serde(default = "default_cpu")]
    pub cpu: String,
    #[serde(default = "default_memory")]
    pub memory: String,
    #[serde(default = "default_cpu_limit")]
    pub cpu_limit: String,
    #[serde(default = "default_memory_limit")]
    pub memory_limit: String,
}

impl Default for Resources {
    fn default() -> Self {
        Self {
            cpu: default_cpu(),
            memory: default_memory(),
            cpu_limit: default_cpu_limit(),
            memory_limit: default_memory_limit(),
        }
    }
}

fn default_cpu() -> String {
    "100m".into()
}
fn default_memory() -> String {
    "64Mi".into()
}
fn default_cpu_limit() -> String {
    "500m".into()
}
fn default_memory_limit() -> String {
    "256Mi".into()
}

/// A `HorizontalPodAutoscaler`: between `min` and `max` replicas, aiming at `cpu` percent.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Autoscale {
    pub min: u32,
    pub max: u32,
    /// Target average CPU utilisation, in percent of the request.
    #[serde(default = "default_cpu_target")]
    pub cpu: u32,
}

fn default_cpu_target() -> u32 {
    80
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Broker {
    #[serde(default = "default_broker_kind")]
    pub kind: BrokerKind,
    #[serde(default = "default_broker_url")]
    pub url: String,
}

fn default_broker_kind() -> BrokerKind {
    BrokerKind::Rabbitmq
}

fn default_broker_url() -> String {
    DEFAULT_AMQP_URL.to_string()
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BrokerKind {
    Rabbitmq,
}

/// `[database]`: the server of the services' databases. Its URL names a database to
/// connect to first (usually `postgres`); each service's own is created beside it.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSection {
    #[serde(default = "default_database_url")]
    pub url: String,
}

fn default_database_url() -> String {
    DEFAULT_DATABASE_URL.to_string()
}

/// The kind of database a service keeps its data in.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum DatabaseKind {
    Postgres,
}

impl DatabaseKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DatabaseKind::Postgres => "postgres",
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Rest,
    Grpc,
    Worker,
    Process,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Rest => "rest",
            Kind::Grpc => "grpc",
            Kind::Worker => "worker",
            Kind::Process => "process",
        }
    }

    /// Whether the kind has an HTTP admin port beside its main port.
    pub fn has_admin_port(self) -> bool {
        matches!(self, Kind::Grpc | Kind::Worker)
    }

    /// Whether the kind listens on a main port.
    pub fn has_main_port(self) -> bool {
        !matches!(self, Kind::Worker)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub kind: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_port: Option<u16>,
    /// The proto file of a gRPC service, relative to the workspace root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto: Option<String>,
    /// The sample resource of a REST service (`/user/{id}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The service keeps its data in a database of its own on `[database]`'s server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseKind>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub publishes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consumes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    /// CPU and memory requests and limits in Kubernetes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// A `HorizontalPodAutoscaler` in Kubernetes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscale: Option<Autoscale>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// The program a `process` service runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutdown_grace: Option<String>,
}

impl Service {
    pub fn new(kind: Kind) -> Self {
        Self {
            kind,
            port: None,
            admin_port: None,
            proto: None,
            resource: None,
            database: None,
            depends_on: Vec::new(),
            calls: Vec::new(),
            publishes: Vec::new(),
            consumes: Vec::new(),
            replicas: None,
            resources: None,
            autoscale: None,
            env: BTreeMap::new(),
            command: None,
            shutdown_grace: None,
        }
    }
}

impl Manifest {
    /// Every queue any service publishes to or consumes from, sorted, once each.
    pub fn queues(&self) -> Vec<String> {
        let mut queues: Vec<String> = self
            .services
            .values()
            .flat_map(|s| s.publishes.iter().chain(&s.consumes).cloned())
            .collect();
        queues.sort();
        queues.dedup();
        queues
    }

    /// The broker URL services get as `AMQP_URL` when running on the host.
    pub fn broker_url(&self) -> &str {
        self.broker.as_ref().map_or(DEFAULT_AMQP_URL, |b| &b.url)
    }

    /// The server of the services' databases: `[database] url`, or the default.
    pub fn database_url(&self) -> &str {
        self.database
            .as_ref()
            .map_or(DEFAULT_DATABASE_URL, |d| &d.url)
    }

    /// The database a service owns: `WORKSPACE_SERVICE` in snake case (`shop_user_api`).
    pub fn database_name(&self, service: &str) -> String {
        heck::ToSnakeCase::to_snake_case(format!("{}_{service}", self.workspace.name).as_str())
    }

    /// The URL of the database `service` owns on the workspace's server, or `None` when
    /// `[database] url` does not parse (a diagnostic of its own).
    pub fn service_database_url(&self, service: &str) -> Option<String> {
        let server = super::url::PgUrl::parse(self.database_url())?;
        Some(server.with_database(&self.database_name(service)))
    }

    /// The services that keep their data in a database, in name order.
    pub fn services_with_database(&self) -> impl Iterator<Item = (&String, &Service)> {
        self.services.iter().filter(|(_, s)| s.database.is_some())
    }

    /// Those of [`Self::services_with_database`] whose code msvc generates: a `process`
    /// service only gets its `DATABASE_URL`.
    pub fn generated_with_database(&self) -> impl Iterator<Item = (&String, &Service)> {
        self.services_with_database()
            .filter(|(_, s)| s.kind != Kind::Process)
    }

    /// The image of a service's Deployment: `REGISTRY/NAME` (without the tag).
    pub fn image_name(&self, service: &str) -> String {
        match self.deploy.as_ref().and_then(|d| d.registry.as_deref()) {
            Some(r) => format!("{}/{service}", r.trim_end_matches('/')),
            None => service.to_string(),
        }
    }

    /// The image tag of every Deployment: `[deploy] tag`, else `latest`.
    pub fn image_tag(&self) -> &str {
        self.deploy
            .as_ref()
            .and_then(|d| d.tag.as_deref())
            .unwrap_or(DEFAULT_IMAGE_TAG)
    }

    /// The grace period of one service: its own, the workspace's, or the default.
    pub fn shutdown_grace(&self, service: &Service) -> String {
        service
            .shutdown_grace
            .clone()
            .or_else(|| self.workspace.shutdown_grace.clone())
            .unwrap_or_else(|| DEFAULT_SHUTDOWN_GRACE.to_string())
    }

    /// Every host port the manifest uses, with the service and key that use it.
    pub fn used_ports(&self) -> Vec<(u16, &str, &'static str)> {
        let mut ports = Vec::new();
        for (name, svc) in &self.services {
            if let Some(p) = svc.port {
                ports.push((p, name.as_str(), "port"));
            }
            if let Some(p) = svc.admin_port {
                ports.push((p, name.as_str(), "admin_port"));
            }
        }
        ports
    }
}

/// Parses a duration written as `500ms`, `10s` or `2m` into milliseconds.
pub fn parse_duration_ms(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, factor) = if let Some(d) = text.strip_suffix("ms") {
        (d, 1)
    } else if let Some(d) = text.strip_suffix('s') {
        (d, 1000)
    } else if let Some(d) = text.strip_suffix('m') {
        (d, 60_000)
    } else {
        return None;
    };
    digits.parse::<u64>().ok()?.checked_mul(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("10s"), Some(10_000));
        assert_eq!(parse_duration_ms("500ms"), Some(500));
        assert_eq!(parse_duration_ms("2m"), Some(120_000));
        assert_eq!(parse_duration_ms("10"), None);
        assert_eq!(parse_duration_ms("s"), None);
    }
}
