//! Command-line definitions (clap) and nothing else.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use crate::printer::Format;

#[derive(Debug, Parser)]
#[command(
    name = "msvc",
    version,
    about = "Scaffold, check and run Rust microservice workspaces from one manifest",
    long_about = "msvc keeps a workspace of Rust microservices (REST, gRPC, RabbitMQ workers) \
in step with one manifest, services.toml: it renders new services from templates, \
regenerates docker-compose.yml, the shared contracts crate and the deployment files whenever \
the manifest changes, checks the wiring, runs the whole system locally and tests it.",
    after_help = "Examples:
  msvc init shop                          create a workspace in ./shop
  msvc new user-service --grpc            add a gRPC service
  msvc new user-api --rest --depends-on user-service --publishes user_message
  msvc new email-worker --worker --consumes user_message
  msvc sync                               regenerate msvc-owned files after editing services.toml
  msvc upgrade                            bring the workspace to this msvc's templates, merging yours
  msvc check                              check the wiring across services
  msvc graph                              draw the system (mermaid; --format dot)
  msvc test                               every service's tests, then contract tests of the system
  msvc deploy k8s                         Kubernetes manifests (kustomize) from services.toml
  msvc doctor                             check the tools the workspace needs

Exit codes: 0 ok, 1 checks or a service failed, 2 usage, manifest or I/O error."
)]
pub struct Cli {
    /// Run as if msvc was started in DIR.
    #[arg(short = 'C', long = "directory", global = true, value_name = "DIR")]
    pub directory: Option<PathBuf>,

    /// Print only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new workspace: services.toml, a cargo workspace, proto/ and services/.
    #[command(after_help = "Examples:
  msvc init shop          create ./shop
  msvc init shop --example   the example system: user-service (gRPC), user-api (REST), email-worker
  msvc init               use the current directory, which must be empty
  msvc init shop --force  write into ./shop even though it holds files (existing files that differ are overwritten)")]
    Init(InitArgs),
    /// Add a service to the workspace: its crate, proto, Dockerfile and compose entry.
    #[command(after_help = "Examples:
  msvc new user-service --grpc
  msvc new billing --grpc --proto ../billing.proto   scaffold from an existing proto
  msvc new user-api --rest --port 5000 --depends-on user-service
  msvc new email-worker --worker --consumes user_message
  msvc new user-api --rest --dry-run                 show the plan, write nothing

Ports default to the next one the manifest does not use: REST from 8080,
gRPC from 50051, admin ports (gRPC and workers) from 9100.")]
    New(NewArgs),
    /// Add relations to an existing service: peers it calls, queues it uses.
    #[command(
        after_help = "Only msvc-owned files change (services.toml, compose, crates/contracts, \
a worker's generated routes); your handlers are never edited. The peer's client is then \
in crates/contracts, e.g. `contracts::peers::user_service::client()`.

Examples:
  msvc link user-api --depends-on user-service
  msvc link user-api --calls user-service/UserService.GetUser   (adds the dependency too)
  msvc link user-api --publishes user_message
  msvc link email-worker --consumes user_message
  msvc link user-api --depends-on user-service --dry-run"
    )]
    Link(LinkArgs),
    /// Remove a service from the manifest and the generated files.
    #[command(after_help = "Examples:
  msvc rm user-api            keep services/user-api/ on disk
  msvc rm user-api --delete   delete services/user-api/ too")]
    Rm(RmArgs),
    /// Regenerate every msvc-owned file from services.toml (after a hand edit).
    #[command(
        after_help = "Generated files: docker-compose.yml, crates/contracts/ (but its \
message files, which are yours), the members of the root Cargo.toml, and deploy/k8s/base/ \
and deploy/prometheus/ once `msvc deploy` has written them. Services listed \
in services.toml without a directory are scaffolded; existing service code is never touched.

Examples:
  msvc sync
  msvc sync --dry-run   show what would change"
    )]
    Sync(SyncArgs),
    /// Bring the workspace to the current templates, merging your changes into theirs.
    #[command(after_help = UPGRADE_HELP)]
    Upgrade(UpgradeArgs),
    /// Write deployment files from services.toml: Kubernetes manifests, Prometheus config.
    #[command(
        subcommand,
        after_help = "Examples:
  msvc deploy k8s                 deploy/k8s/base (msvc's) and overlays/dev, overlays/prod (yours)
  msvc deploy k8s --dry-run       show the plan, write nothing
  msvc deploy prometheus          deploy/prometheus: scrape configs and alert rules
  msvc deploy k8s --format json   the plan as JSON"
    )]
    Deploy(DeployCommand),
    /// Work with the template set.
    #[command(subcommand)]
    Templates(TemplatesCommand),
    /// List what the workspace needs and whether this machine has it.
    Doctor(FormatArgs),
    /// Check the wiring across services: manifest, protos, calls, queues, generated files,
    /// service directories and Dockerfiles.
    #[command(after_help = CHECK_HELP)]
    Check(CheckArgs),
    /// Print the system as a graph: services, queues, and who calls, publishes and consumes.
    #[command(
        after_help = "Services are nodes (with their kind and port), and so are queues; edges are
depends_on (labelled with the calls made), publishes and consumes.

Examples:
  msvc graph                          a mermaid flowchart (paste it into Markdown)
  msvc graph --format dot | dot -Tsvg > system.svg
  msvc graph --format json"
    )]
    Graph(GraphArgs),
    /// Build and run the services: dependency order, health checks, merged logs, restarts.
    #[command(after_help = UP_HELP)]
    Up(UpArgs),
    /// Run every service's own tests, then contract tests against the running system.
    #[command(after_help = TEST_HELP)]
    Test(TestArgs),
    /// Show the state of the services of the running `msvc up`.
    #[command(
        after_help = "Reads .msvc/ in the workspace, so it works from any terminal.

Examples:
  msvc status
  msvc status --format json"
    )]
    Status(FormatArgs),
    /// Print the logs of the running (or last) `msvc up`.
    #[command(after_help = "Examples:
  msvc logs                  the last 100 lines of every service
  msvc logs user-api -f      follow one service
  msvc logs -n 0             everything kept in .msvc/up.log")]
    Logs(LogsArgs),
    /// Rebuild one service and restart its instances in the running `msvc up`.
    #[command(after_help = "Examples:
  msvc restart user-api")]
    Restart(RestartArgs),
    /// Internal: the process that supervises `msvc up`'s children (see README).
    #[command(name = "__reaper", hide = true)]
    Reaper,
}

const UPGRADE_HELP: &str = "services.toml records the template version the workspace was made with
(`[workspace] template_version`); msvc upgrade brings it to this msvc's version:
  - msvc-owned files (compose, crates/contracts, generated routes, deploy/k8s/base,
    deploy/prometheus) are rewritten from the current templates;
  - each file of yours is merged three ways: the file as the old version wrote it, the
    file as it is now, the file as the new version writes it. Where you and the template
    changed the same lines, both are written inline between <<<<<<< yours and >>>>>>>
    template version N markers, each conflict is listed as file:line, and the exit code
    is 1;
  - a file the new version no longer has is deleted if you never changed it, else kept;
    a file you deleted stays deleted; a new file is written;
  - template_version in services.toml is set to the new version.
In a git work tree with uncommitted changes it refuses (but for --dry-run), so that
`git diff` shows what the upgrade did; outside git it goes ahead.

Examples:
  msvc upgrade                  upgrade, then `cargo build` and `msvc check`
  msvc upgrade --dry-run        what would change, with diffs; nothing written
  msvc upgrade --allow-dirty    upgrade although there are uncommitted changes
  msvc upgrade --format json    the action on each file, and the conflicts";

const UP_HELP: &str = "Environment of each service, later lines winning:
  1. msvc's own environment
  2. HOST=127.0.0.1 and SHUTDOWN_GRACE (the service's shutdown_grace)
  3. the .env file beside services.toml
  4. the wiring: PORT, ADMIN_PORT, <PEER>_URL (all replicas, comma-separated), AMQP_URL,
     DATABASE_URL (a service with `database = \"postgres\"`)
  5. the service's `env = { ... }` table in services.toml

Broker: when a service uses a queue, the broker at AMQP_URL (else the manifest's
[broker] url) is used if it answers; otherwise, when rabbitmq-server is installed, a
private node is started on free loopback ports with its data under .msvc/, and stopped
on exit; otherwise msvc stops before starting anything.

Database: when a service has `database = \"postgres\"`, the PostgreSQL server at
DATABASE_URL (else the manifest's [database] url) is used if it answers, and each such
service's database (WORKSPACE_SERVICE in snake case) is created on it when missing;
otherwise msvc stops before starting anything.

Health: HTTP GET /readyz on `port` (rest) or `admin_port` (grpc, worker); a TCP connect
on `port` for `process` services. A service starts when all it depends on are ready.

Crashes: a service that exits is restarted after 0.5 s, 1 s, 2 s ... (with jitter, at
most 30 s); after 5 exits within 60 s msvc gives up on it and keeps the others.

Prometheus: with --prometheus, the `prometheus` binary (Debian's package) runs under the
same supervision with a configuration like `msvc deploy prometheus` writes, but scraping
the ports this run uses (replicas included) every 5 s; its config and data are under
.msvc/prometheus, its address is printed, and `msvc status` lists it. Without the binary,
msvc stops before starting anything.

Stop: Ctrl-C or SIGTERM stops services in reverse dependency order (SIGTERM to the
process group, shutdown_grace, then SIGKILL); a second Ctrl-C kills at once. Exit code
1 when a service failed.

Examples:
  msvc up                     every service
  msvc up user-api            user-api and what it depends on
  msvc up --release --no-restart
  msvc up --prometheus        also a Prometheus server on a free port, scraping every instance
  msvc up --format json       one JSON object per log line";

#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub format: FormatArgs,
    /// Directory (and workspace name) to create; the current directory when omitted.
    pub name: Option<String>,
    /// Write into a directory that is not empty.
    #[arg(long)]
    pub force: bool,
    /// Create the example system: user-service (gRPC), user-api (REST, calls it and
    /// publishes to `user_message`) and email-worker (consumes `user_message`).
    #[arg(long)]
    pub example: bool,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("kind").required(true).args(["rest", "grpc", "worker"]))]
pub struct NewArgs {
    #[command(flatten)]
    pub format: FormatArgs,
    /// Service name: lowercase letters, digits and `-` (a DNS label), e.g. user-service.
    pub name: String,
    /// An HTTP/JSON service (axum).
    #[arg(long)]
    pub rest: bool,
    /// A gRPC service (tonic).
    #[arg(long)]
    pub grpc: bool,
    /// A `RabbitMQ` queue consumer.
    #[arg(long)]
    pub worker: bool,
    /// Main port (REST, gRPC).
    #[arg(long)]
    pub port: Option<u16>,
    /// HTTP port for /healthz, /readyz and /metrics (gRPC, worker).
    #[arg(long)]
    pub admin_port: Option<u16>,
    /// Services this one calls, comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    pub depends_on: Vec<String>,
    /// Queues this service publishes to, comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "Q")]
    pub publishes: Vec<String>,
    /// Queues this service consumes, comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "Q")]
    pub consumes: Vec<String>,
    /// gRPC: scaffold from this proto file; every RPC answers UNIMPLEMENTED until written.
    #[arg(long, value_name = "FILE")]
    pub proto: Option<PathBuf>,
    /// REST: the sample resource (default: the name without -service / -api).
    #[arg(long)]
    pub resource: Option<String>,
    /// Keep the service's data in a database of its own (`database = "postgres"`), on
    /// the server of `[database] url`.
    #[arg(long, value_enum, value_name = "DB")]
    pub db: Option<DbArg>,
    /// Print the plan (files, manifest and compose diffs) and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Overwrite existing files of the service.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct LinkArgs {
    #[command(flatten)]
    pub format: FormatArgs,
    /// The service that gets the relations.
    pub name: String,
    /// Services it calls, comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    pub depends_on: Vec<String>,
    /// RPCs or routes it calls: `peer/Service.Method` (gRPC) or `peer/GET /path` (REST).
    #[arg(long, value_name = "CALL")]
    pub calls: Vec<String>,
    /// Queues it publishes to, comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "Q")]
    pub publishes: Vec<String>,
    /// Queues it consumes, comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "Q")]
    pub consumes: Vec<String>,
    /// Give it a database of its own (`database = "postgres"`).
    #[arg(long, value_enum, value_name = "DB")]
    pub db: Option<DbArg>,
    /// Print the plan and write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    #[command(flatten)]
    pub format: FormatArgs,
    /// The service to remove.
    pub name: String,
    /// Also delete services/NAME/.
    #[arg(long)]
    pub delete: bool,
    /// Print the plan and write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub format: FormatArgs,
    /// Print the plan and write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct UpgradeArgs {
    #[command(flatten)]
    pub format: FormatArgs,
    /// Print what would change, with diffs, and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Upgrade even when the git work tree has uncommitted changes.
    #[arg(long)]
    pub allow_dirty: bool,
}

#[derive(Debug, Subcommand)]
pub enum DeployCommand {
    /// Write deploy/k8s/: a kustomize base generated from services.toml, and dev and
    /// prod overlays scaffolded once.
    #[command(
        after_help = "deploy/k8s/base/ is msvc's: per service a Deployment (image \
REGISTRY/NAME:TAG from [deploy], probes, resources, a non-root read-only container, \
peer addresses by Service DNS name, AMQP_URL from the Secret WORKSPACE-broker) and a \
ClusterIP Service, plus a PodDisruptionBudget when replicas > 1 and a \
HorizontalPodAutoscaler with `autoscale`. Once it exists, `msvc new`, `rm` and `sync` keep \
it in step and `msvc check` reports drift. overlays/dev (with an in-cluster RabbitMQ when \
queues are used) and overlays/prod (expecting an external broker) are written once, with \
patches for replicas, resources and image tags; they are yours and never rewritten.
`process` services have no image and are skipped.

services.toml:
  [deploy]
  registry = \"ghcr.io/acme\"     # omitted: images are NAME:TAG
  tag = \"1.4.2\"                 # default: latest

  [services.user-api]
  replicas = 2
  resources = { cpu = \"100m\", memory = \"64Mi\", cpu_limit = \"500m\", memory_limit = \"256Mi\" }
  autoscale = { min = 2, max = 5, cpu = 70 }

Examples:
  msvc deploy k8s
  msvc deploy k8s --dry-run
  kubectl apply -k deploy/k8s/overlays/dev",
        alias = "kubernetes"
    )]
    K8s(DeployArgs),
    /// Write deploy/prometheus/: a scrape configuration and alert rules.
    #[command(
        after_help = "prometheus.yml scrapes every service's /metrics: static targets at \
the ports in services.toml, and Kubernetes service discovery of the Services `msvc deploy \
k8s` generates. alerts.yml fires when a service is down, when more than 5% of requests \
(or a worker's messages) fail, and when a queue's backlog keeps growing. Once written, \
`msvc new`, `rm` and `sync` keep both in step and `msvc check` reports drift.

Examples:
  msvc deploy prometheus
  promtool check config deploy/prometheus/prometheus.yml
  msvc up --prometheus            run the system with a Prometheus server scraping it"
    )]
    Prometheus(DeployArgs),
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub format: FormatArgs,
    /// Print the plan and write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum TemplatesCommand {
    /// Write msvc's templates to DIR, to customise them.
    #[command(
        after_help = "Point a workspace at the copy with `templates = \"DIR\"` in the \
[workspace] table of services.toml. A file there replaces msvc's template of the same \
name; delete the files you do not change so they keep following msvc's.

Examples:
  msvc templates export .msvc-templates"
    )]
    Export {
        /// Target directory.
        dir: PathBuf,
        /// Overwrite files that exist.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        format: FormatArgs,
    },
    /// List the template names.
    List(FormatArgs),
}

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub format: FormatArgs,
    /// Services to run, with what they depend on (default: all).
    pub services: Vec<String>,
    /// Build and run release binaries.
    #[arg(long)]
    pub release: bool,
    /// Do not restart a service that exits.
    #[arg(long)]
    pub no_restart: bool,
    /// Also run a Prometheus server scraping every instance's /metrics (needs `prometheus`).
    #[arg(long)]
    pub prometheus: bool,
    /// Not there yet: refused with what to do instead, rather than clap's advice to pass
    /// it to a service.
    #[arg(long, hide = true)]
    pub watch: bool,
}

const TEST_HELP: &str =
    "1. Own tests: one `cargo nextest run --workspace` when cargo-nextest is installed
   (no doctests; MSVC_TEST_RUNNER=cargo chooses cargo test), else `cargo test
   --workspace` (-p for each selected service), each result attributed to the service
   whose package it belongs to; a crate that does not compile fails its `builds` case.
2. Contract tests: the services start as with `msvc up --no-restart` (build, broker,
   dependency order, health checks), then msvc checks, from services.toml alone:
   - every service starts and passes its health check;
   - every GET route of each REST service's openapi.yaml answers: any response but a
     5xx, a 405, or the 404 the service gives for an unknown route (path parameters
     are 1; other methods are not sent, as they may change data);
   - every gRPC method of a `calls` entry (peer/Service.Method) is on each running
     instance of the peer, by server reflection (v1, else v1alpha), and a call of it
     with an empty request answers anything but UNIMPLEMENTED; the case is the
     caller's, named `calls peer/Service.Method`;
   - every queue carries a message to each consumer instance: msvc publishes probe
     messages (header x-msvc-probe) that the worker template acks without calling its
     handler and answers on the probe's reply_to queue;
   - each case of contracts.toml beside services.toml gets its expected answer:
       [[case]]
       service = \"user-api\"
       request = \"GET /user/1\"
       status = 200
       json = { id = 1 }          # fields the JSON response must have
       # body = { message = \"hi\" } is sent as JSON
   Then every service is stopped, also on failure or Ctrl-C.

Report: a table per service (passed, failed, skipped, time) and, for a service that
failed, its last output lines (for a failed call, the peer's too); the full logs are in
.msvc/up.log.
Exit codes: 0 all passed, 1 something failed, 2 bad input (services.toml, contracts.toml).

Examples:
  msvc test                        everything
  msvc test user-api               user-api's tests, and the contracts of it and its dependencies
  msvc test --no-contracts         only the services' own tests
  msvc test --format junit > report.xml";

#[derive(Debug, Args)]
pub struct TestArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = TestFormat::Text)]
    pub format: TestFormat,
    /// Services to test (default: all); their dependencies are started too.
    pub services: Vec<String>,
    /// Build and test in release mode.
    #[arg(long)]
    pub release: bool,
    /// Skip the services' own tests.
    #[arg(long, conflicts_with = "no_contracts")]
    pub no_unit: bool,
    /// Skip the contract tests (nothing is started).
    #[arg(long)]
    pub no_contracts: bool,
    /// How long the services may take to start, in seconds.
    #[arg(long, default_value_t = 120, value_name = "SECS")]
    pub start_timeout: u64,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub format: FormatArgs,
    /// Only this service's lines.
    pub service: Option<String>,
    /// Keep printing lines as they come.
    #[arg(short, long)]
    pub follow: bool,
    /// How many of the last lines to print first; 0 for all.
    #[arg(short = 'n', long, default_value_t = 100)]
    pub lines: usize,
}

#[derive(Debug, Args)]
pub struct RestartArgs {
    #[command(flatten)]
    pub format: FormatArgs,
    /// The service to rebuild and restart.
    pub service: String,
}

const CHECK_HELP: &str =
    "Every problem is reported at once, rustc-style, with the file, line and column,
and a hint. Each check has a stable ID; `--explain ID` says what it catches and how to fix
it, and services.toml can change its level:

  [checks]
  DOCKERFILE_LATEST_TAG = \"off\"     # or \"warning\", \"error\"

Exit codes: 0 no errors (warnings allowed), 1 errors found, 2 usage or I/O error.

Examples:
  msvc check                         everything, for people
  msvc check --deny warnings         warnings fail the run too
  msvc check --against main          also proto breaking changes since the branch main
  msvc check --format github         annotations in a GitHub Actions job
  msvc check --format sarif > msvc.sarif
  msvc check --format junit > msvc-check.xml
  msvc check --explain PORT_CONFLICT
  msvc check --list                  every check and its level";

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Output format (`--explain` and `--list`: text or json).
    #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
    pub format: CheckFormat,
    #[arg(
        long,
        value_name = "REF",
        help = "Also compare the protos with their versions at this git revision and report breaking changes (PROTO_BREAKING)"
    )]
    pub against: Option<String>,
    /// Make warnings errors: --deny warnings.
    #[arg(long, value_enum, value_name = "WHAT")]
    pub deny: Option<Deny>,
    /// Explain a check: what it catches and how to fix it.
    #[arg(long, value_name = "ID", conflicts_with_all = ["against", "list"])]
    pub explain: Option<String>,
    /// List every check with its level in this workspace (or its default).
    #[arg(long, conflicts_with = "against")]
    pub list: bool,
}

/// `--db`: the database a service keeps its data in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DbArg {
    /// `PostgreSQL`, a database per service on the workspace's server.
    Postgres,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Deny {
    /// Warnings count as errors: they fail the run (exit 1).
    Warnings,
}

/// `--format` of the commands that print either for people or for programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// For people.
    Text,
    /// Machine-readable.
    Json,
}

/// `msvc check --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    /// rustc-style diagnostics, for people.
    Text,
    /// Machine-readable.
    Json,
    /// GitHub Actions annotations.
    Github,
    #[value(help = "SARIF 2.1.0, for code scanning")]
    Sarif,
    #[value(help = "JUnit XML, for CI test reports")]
    Junit,
}

/// `msvc graph --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// A mermaid flowchart.
    Mermaid,
    /// Graphviz.
    Dot,
    /// Machine-readable.
    Json,
}

/// `msvc test --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TestFormat {
    /// A table per service, for people.
    Text,
    /// Machine-readable.
    Json,
    #[value(help = "JUnit XML, for CI test reports")]
    Junit,
}

/// The `--format` flag of the commands that only print text or JSON.
#[derive(Debug, Clone, Copy, Args)]
pub struct FormatArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
    pub format: GraphFormat,
}

impl From<OutputFormat> for Format {
    fn from(f: OutputFormat) -> Self {
        match f {
            OutputFormat::Text => Format::Text,
            OutputFormat::Json => Format::Json,
        }
    }
}

impl From<CheckFormat> for Format {
    fn from(f: CheckFormat) -> Self {
        match f {
            CheckFormat::Text => Format::Text,
            CheckFormat::Json => Format::Json,
            CheckFormat::Github => Format::Github,
            CheckFormat::Sarif => Format::Sarif,
            CheckFormat::Junit => Format::Junit,
        }
    }
}

impl From<GraphFormat> for Format {
    fn from(f: GraphFormat) -> Self {
        match f {
            GraphFormat::Mermaid => Format::Mermaid,
            GraphFormat::Dot => Format::Dot,
            GraphFormat::Json => Format::Json,
        }
    }
}

impl From<TestFormat> for Format {
    fn from(f: TestFormat) -> Self {
        match f {
            TestFormat::Text => Format::Text,
            TestFormat::Json => Format::Json,
            TestFormat::Junit => Format::Junit,
        }
    }
}

impl Cli {
    /// The `--format` the subcommand was given (each command has its own set, so clap
    /// refuses the others and `--help` lists only real ones).
    pub fn format(&self) -> Format {
        match &self.command {
            Command::Init(a) => a.format.format.into(),
            Command::New(a) => a.format.format.into(),
            Command::Link(a) => a.format.format.into(),
            Command::Rm(a) => a.format.format.into(),
            Command::Sync(a) => a.format.format.into(),
            Command::Upgrade(a) => a.format.format.into(),
            Command::Deploy(DeployCommand::K8s(a) | DeployCommand::Prometheus(a)) => {
                a.format.format.into()
            }
            Command::Templates(
                TemplatesCommand::Export { format, .. } | TemplatesCommand::List(format),
            )
            | Command::Doctor(format)
            | Command::Status(format) => format.format.into(),
            Command::Check(a) => a.format.into(),
            Command::Graph(a) => a.format.into(),
            Command::Up(a) => a.format.format.into(),
            Command::Test(a) => a.format.into(),
            Command::Logs(a) => a.format.format.into(),
            Command::Restart(a) => a.format.format.into(),
            // The reaper has no --format: its stdout is a protocol spoken to `msvc up`.
            Command::Reaper => Format::Text,
        }
    }
}
