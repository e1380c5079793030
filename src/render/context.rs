//! The values templates see, built once from the manifest.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::workspace::model::{Kind, Manifest, parse_duration_ms};
use crate::workspace::names::{NameForms, QueueForms, default_resource};
use crate::workspace::openapi::{RestApi, RestApis};
use crate::workspace::proto::ProtoInfo;

/// Everything about one service that any template may use.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceContext {
    #[serde(flatten)]
    pub names: NameForms,
    pub kind: Kind,
    /// Main port (REST, gRPC); 0 for a worker.
    pub port: u16,
    /// HTTP admin port (gRPC, worker); 0 when the kind has none.
    pub admin_port: u16,
    /// The port `--healthcheck`, compose and probes call for `/readyz`.
    pub health_port: u16,
    pub resource: ResourceContext,
    pub proto: Option<ProtoInfo>,
    /// Whether the gRPC code is scaffolded from a user's proto (RPCs answer UNIMPLEMENTED).
    pub from_proto: bool,
    pub depends_on: Vec<PeerContext>,
    /// The peers of `depends_on` this service gets a client of (REST and gRPC ones).
    pub clients: Vec<PeerContext>,
    /// Whether one of `clients` is a gRPC peer's.
    pub has_grpc_client: bool,
    /// The peer a new REST service's routes show a call of, when a client of one has the
    /// lookup `msvc new` gave that peer (see [`PeerSample`]).
    pub peer_sample: Option<PeerSample>,
    /// The queues a new REST service's routes show a publish to: every one it publishes
    /// to, with the sample message its tests send when the type is still `msvc new`'s.
    pub publish_samples: Vec<PublishSample>,
    /// Whether one of `publish_samples` has a test message (its tests need the broker).
    pub has_message_tests: bool,
    pub publishes: Vec<QueueForms>,
    pub consumes: Vec<QueueForms>,
    pub replicas: u32,
    pub shutdown_grace: String,
    /// `shutdown_grace` in milliseconds, for code.
    pub shutdown_grace_ms: u64,
    pub env: BTreeMap<String, String>,
    pub command: String,
    /// Whether the service keeps its data in a database of its own (`database`).
    pub database: bool,
    /// Its database's URL where `DATABASE_URL` is unset; empty without a database.
    pub database_url: String,
    /// Its database's name (`shop_user_api`); empty without a database.
    pub database_name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ResourceContext {
    /// `user`: URL segment.
    pub name: String,
    /// `User`: type name.
    pub pascal: String,
    /// `user`: module / variable name.
    pub snake: String,
    /// `users`: the table of a service with a database.
    pub table: String,
}

/// The table of a resource's records: its snake-case name in the plural (`users`,
/// `addresses`, `categories`; `orders` as it is), which also keeps it clear of SQL's
/// reserved words (`user`, `order`).
fn table_name(snake: &str) -> String {
    if let Some(stem) = snake.strip_suffix('y')
        && !stem.ends_with(['a', 'e', 'i', 'o', 'u'])
        && !stem.is_empty()
    {
        return format!("{stem}ies");
    }
    if snake.ends_with(['x', 'z']) || ["ss", "ch", "sh"].iter().any(|e| snake.ends_with(e)) {
        return format!("{snake}es");
    }
    // A name in the plural already (`orders`) stays as it is.
    if snake.ends_with('s') {
        return snake.to_owned();
    }
    format!("{snake}s")
}

/// A service another one depends on.
#[derive(Debug, Clone, Serialize)]
pub struct PeerContext {
    #[serde(flatten)]
    pub names: NameForms,
    pub kind: Kind,
    pub port: u16,
    /// Whether `contracts::peers::<peer>` has a typed `Client`: every REST peer, and a
    /// gRPC peer whose proto is known (else it has only a `Channel`).
    pub has_client: bool,
}

/// A call of a peer's sample lookup by id, as a new service's sample route makes it.
#[derive(Debug, Clone, Serialize)]
pub struct PeerSample {
    pub peer: PeerContext,
    /// What the lookup finds: `user`.
    pub resource: String,
    /// The client's method: `get_user`.
    pub method: String,
    /// gRPC: the request message, `contracts::user_service::v1::GetUserRequest`. REST:
    /// the response type, `User` (in `contracts::peers::<peer>`).
    pub message: String,
    /// gRPC: the proto package's module, `contracts::user_service::v1`; its server
    /// module, `user_service_server`, and service trait, `UserService`. Empty for REST.
    pub module: String,
    pub server_module: String,
    pub grpc_service: String,
}

/// A queue a new REST service's sample route publishes to.
#[derive(Debug, Clone, Serialize)]
pub struct PublishSample {
    pub queue: QueueForms,
    /// A JSON message its tests send, when the message type is still the one `msvc new`
    /// writes (a user's own shape is not known to msvc).
    pub body: Option<String>,
}

/// The whole workspace as templates see it.
#[derive(Debug, Clone, Serialize)]
pub struct WorkspaceContext {
    pub workspace: String,
    pub msvc_version: &'static str,
    pub template_version: u32,
    pub broker_url: String,
    pub services: Vec<ServiceContext>,
    pub queues: Vec<QueueForms>,
    /// Every proto of the workspace, once per file, sorted by path.
    pub protos: Vec<ProtoInfo>,
    /// Lines of the module tree for generated proto code in contracts' lib.rs.
    pub proto_modules: Vec<ModuleLine>,
    pub has_queues: bool,
    pub has_grpc: bool,
    /// Whether a service msvc generates keeps its data in a database (the runtime's
    /// `postgres` feature).
    pub has_database: bool,
    /// REST services some other service depends on, with the API their clients get.
    pub rest_peers: Vec<RestPeer>,
}

/// A REST service with the typed client generated from its openapi.yaml.
#[derive(Debug, Clone, Serialize)]
pub struct RestPeer {
    #[serde(flatten)]
    pub names: NameForms,
    pub port: u16,
    pub api: RestApi,
}

/// One line of a nested module tree: open `pub mod x {`, include a package, or close.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ModuleLine {
    pub indent: String,
    pub open: Option<String>,
    pub include: Option<String>,
    pub close: bool,
}

impl ServiceContext {
    pub fn new(manifest: &Manifest, name: &str, protos: &BTreeMap<String, ProtoInfo>) -> Self {
        let svc = &manifest.services[name];
        let names = NameForms::new(name);
        let resource_name = svc
            .resource
            .clone()
            .unwrap_or_else(|| default_resource(name));
        let resource = ResourceContext {
            pascal: heck::ToPascalCase::to_pascal_case(resource_name.as_str()),
            snake: heck::ToSnakeCase::to_snake_case(resource_name.as_str()),
            table: table_name(&heck::ToSnakeCase::to_snake_case(resource_name.as_str())),
            name: resource_name,
        };
        let port = svc.port.unwrap_or(0);
        let admin_port = svc.admin_port.unwrap_or(0);
        let health_port = if svc.kind.has_admin_port() {
            admin_port
        } else {
            port
        };
        let proto = svc.proto.as_ref().and_then(|p| protos.get(p)).cloned();
        let depends_on: Vec<PeerContext> = svc
            .depends_on
            .iter()
            .filter_map(|d| {
                manifest.services.get(d).map(|peer| PeerContext {
                    names: NameForms::new(d),
                    kind: peer.kind,
                    port: peer.port.or(peer.admin_port).unwrap_or(0),
                    has_client: match peer.kind {
                        Kind::Rest => true,
                        Kind::Grpc => peer
                            .proto
                            .as_ref()
                            .and_then(|p| protos.get(p))
                            .is_some_and(|p| !p.services.is_empty() && !p.modules.is_empty()),
                        Kind::Worker | Kind::Process => false,
                    },
                })
            })
            .collect();
        let clients: Vec<PeerContext> = depends_on
            .iter()
            .filter(|p| p.has_client)
            .cloned()
            .collect();
        let peer_sample = clients.iter().find_map(|peer| {
            let proto = manifest.services[&peer.names.name]
                .proto
                .as_ref()
                .and_then(|p| protos.get(p))?;
            is_default_contract(proto, &peer.names).then(|| PeerSample {
                peer: peer.clone(),
                resource: "user".to_owned(),
                method: "get_user".to_owned(),
                message: proto.services[0].rpcs[0].input.clone(),
                module: format!("contracts::{}", proto.modules.join("::")),
                server_module: proto.services[0].server_module.clone(),
                grpc_service: proto.services[0].name.clone(),
            })
        });
        Self {
            has_grpc_client: clients.iter().any(|p| p.kind == Kind::Grpc),
            peer_sample,
            publish_samples: Vec::new(),
            has_message_tests: false,
            clients,
            depends_on,
            from_proto: proto
                .as_ref()
                .is_some_and(|p| !is_default_contract(p, &names)),
            names,
            kind: svc.kind,
            port,
            admin_port,
            health_port,
            resource,
            proto,
            publishes: svc.publishes.iter().map(|q| QueueForms::new(q)).collect(),
            consumes: svc.consumes.iter().map(|q| QueueForms::new(q)).collect(),
            replicas: svc.replicas.unwrap_or(1),
            shutdown_grace: manifest.shutdown_grace(svc),
            shutdown_grace_ms: parse_duration_ms(&manifest.shutdown_grace(svc)).unwrap_or(10_000),
            env: svc.env.clone(),
            command: svc.command.clone().unwrap_or_default(),
            database: svc.database.is_some(),
            database_url: svc
                .database
                .and_then(|_| manifest.service_database_url(name))
                .unwrap_or_default(),
            database_name: svc
                .database
                .map(|_| manifest.database_name(name))
                .unwrap_or_default(),
        }
    }
}

impl ServiceContext {
    /// Adds what a new service's sample routes need from other files: a REST peer's
    /// lookup (when no gRPC peer's comes first) from its API, and each published queue's
    /// test message when `message_is_new` says its type is still the one msvc writes.
    #[must_use]
    pub fn with_samples(
        mut self,
        manifest: &Manifest,
        apis: &RestApis,
        message_is_new: impl Fn(&QueueForms) -> bool,
    ) -> Self {
        if self.peer_sample.is_none() {
            self.peer_sample = self.clients.iter().find_map(|peer| {
                let svc = manifest.services.get(&peer.names.name)?;
                if peer.kind != Kind::Rest {
                    return None;
                }
                let resource = svc
                    .resource
                    .clone()
                    .unwrap_or_else(|| default_resource(&peer.names.name));
                let method = format!(
                    "get_{}",
                    heck::ToSnakeCase::to_snake_case(resource.as_str())
                );
                let api = apis.get(&peer.names.name)?;
                let op = api.operations.iter().find(|op| {
                    op.method_name == method
                        && api.schemas.iter().any(|s| s.name == op.response)
                        && op.http_method == "GET"
                        && op.signature.contains("(&self, id: i64)")
                        && op.response != "()"
                })?;
                Some(PeerSample {
                    peer: peer.clone(),
                    resource,
                    method,
                    message: op.response.clone(),
                    module: String::new(),
                    server_module: String::new(),
                    grpc_service: String::new(),
                })
            });
        }
        self.publish_samples = self
            .publishes
            .iter()
            .map(|queue| PublishSample {
                body: message_is_new(queue)
                    .then(|| r#"{"user_id": 1, "message": "Hello from a test"}"#.to_owned()),
                queue: queue.clone(),
            })
            .collect();
        self.has_message_tests = self.publish_samples.iter().any(|p| p.body.is_some());
        self
    }
}

/// Whether a proto is exactly the contract `msvc new --grpc` writes for this service,
/// so the sample implementation (`GetUser` over a store) fits it.
fn is_default_contract(proto: &ProtoInfo, names: &NameForms) -> bool {
    let expected_package = format!("{}.v1", names.snake);
    proto.package == expected_package
        && proto.services.len() == 1
        && proto.services[0].name == names.grpc_service
        && proto.services[0].rpcs.len() == 1
        && proto.services[0].rpcs[0].name == "GetUser"
        && !proto.services[0].rpcs[0].client_streaming
        && !proto.services[0].rpcs[0].server_streaming
}

impl WorkspaceContext {
    pub fn new(manifest: &Manifest, protos: &BTreeMap<String, ProtoInfo>) -> Self {
        let services: Vec<ServiceContext> = manifest
            .services
            .keys()
            .map(|n| ServiceContext::new(manifest, n, protos))
            .collect();
        let queues: Vec<QueueForms> = manifest
            .queues()
            .iter()
            .map(|q| QueueForms::new(q))
            .collect();
        let protos_list: Vec<ProtoInfo> = protos.values().cloned().collect();
        Self {
            workspace: manifest.workspace.name.clone(),
            msvc_version: env!("CARGO_PKG_VERSION"),
            template_version: manifest.workspace.template_version,
            broker_url: manifest.broker_url().to_string(),
            has_queues: !queues.is_empty(),
            has_grpc: services.iter().any(|s| s.kind == Kind::Grpc),
            has_database: manifest.generated_with_database().next().is_some(),
            proto_modules: module_tree(&protos_list),
            rest_peers: Vec::new(),
            services,
            queues,
            protos: protos_list,
        }
    }
}

/// Turns packages (`a.v1`, `a.v2`, `b.v1`) into nested `pub mod` lines with includes.
fn module_tree(protos: &[ProtoInfo]) -> Vec<ModuleLine> {
    #[derive(Default)]
    struct Node {
        children: BTreeMap<String, Node>,
        package: Option<String>,
    }
    fn emit(node: &Node, depth: usize, out: &mut Vec<ModuleLine>) {
        let indent = "    ".repeat(depth);
        if let Some(pkg) = &node.package {
            out.push(ModuleLine {
                indent: indent.clone(),
                open: None,
                include: Some(pkg.clone()),
                close: false,
            });
        }
        for (name, child) in &node.children {
            out.push(ModuleLine {
                indent: indent.clone(),
                open: Some(name.clone()),
                include: None,
                close: false,
            });
            emit(child, depth + 1, out);
            out.push(ModuleLine {
                indent: indent.clone(),
                open: None,
                include: None,
                close: true,
            });
        }
    }
    let mut root = Node::default();
    for p in protos.iter().filter(|p| !p.package.is_empty()) {
        let mut node = &mut root;
        for m in &p.modules {
            node = node.children.entry(m.clone()).or_default();
        }
        node.package = Some(p.package.clone());
    }
    let mut out = Vec::new();
    emit(&root, 0, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::table_name;

    #[test]
    fn tables_are_plural() {
        let tables: Vec<String> = [
            "user",
            "address",
            "category",
            "day",
            "box",
            "order_item",
            "orders",
        ]
        .into_iter()
        .map(table_name)
        .collect();
        assert_eq!(
            tables,
            [
                "users",
                "addresses",
                "categories",
                "days",
                "boxes",
                "order_items",
                "orders"
            ]
        );
    }
}
