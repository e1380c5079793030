//! The set-up of a supervised run, shared by `msvc up` and `msvc test`: the plan, the
//! port checks, the broker, the build, each instance's launch, the log sink, and the
//! supervisor ready to start.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::broker::{self, BrokerPlan};
use super::build::{BuildRequest, Built, build};
use super::env::{instance_env, read_dotenv};
use super::logs::{Label, LineFormat, LogFile, LogSink};
use super::plan::{Instance, Program, RunPlan};
use super::ports::{self, FreePorts};
use super::probe::HealthProbe;
use super::prometheus;
use super::restart::RestartPolicy;
use super::run::{Options, Supervisor};
use super::state::{StateDir, UpLock};
use super::unit::{Launch, Unit};
use crate::error::{Error, Result};
use crate::workspace::Workspace;

/// Where the set-up says what it does, and how: the commands pass their printer.
pub trait Progress {
    /// A status line, cargo-style: `Building user-api (debug)`.
    fn status(&self, verb: &str, message: &str);
    fn quiet(&self) -> bool;
    /// Whether stdout carries JSON (the services' lines are then JSON too).
    fn is_json(&self) -> bool;
}

/// How [`prepare`] brings a system up: `msvc up`'s flags, or `msvc test`'s choices.
#[derive(Debug, Clone, Copy)]
pub struct BringUp<'a> {
    /// Services to run, with what they depend on (all when empty).
    pub services: &'a [String],
    pub release: bool,
    pub no_restart: bool,
    /// Whether the services' output goes to stdout.
    pub echo_logs: bool,
    /// Whether a Prometheus server scrapes the instances too.
    pub prometheus: bool,
    /// Whether the services get databases of this run's own, dropped after it (`msvc
    /// test`), instead of their own.
    pub fresh_databases: bool,
}

/// A supervisor ready to run, with what it needs kept alive.
pub struct Prepared {
    pub supervisor: Supervisor,
    pub plan: RunPlan,
    /// The broker the services use, when they use one.
    pub amqp_url: Option<String>,
    /// Where `.msvc/up.log` is.
    pub log_path: PathBuf,
    /// Held for as long as the run: one `up` (or `test`) per workspace.
    pub lock: UpLock,
    /// The run's own databases, dropped with it (see [`BringUp::fresh_databases`]).
    pub fresh_databases: Option<super::database::FreshDatabases>,
}

/// Everything `up` and `test` share before the first process starts: the plan, port
/// checks, the broker, the build, each instance's launch, logs and the supervisor.
pub fn prepare(ws: &Workspace, args: &BringUp<'_>, progress: &dyn Progress) -> Result<Prepared> {
    let root = ws.root.clone();
    let mut plan = RunPlan::new(ws, args.services)?;
    let prometheus_binary = if args.prometheus {
        Some(prometheus::locate(ws)?)
    } else {
        None
    };
    let state = StateDir::new(&root);
    state.create()?;
    let lock = state.lock()?;
    // The previous run's state would read as this one's until the services start.
    let _ = fs_err::remove_file(state.state_path());

    // Everything that can stop the run is checked before anything starts.
    let mut taken: Vec<String> = Vec::new();
    let mut first_line: Option<crate::error::Location> = None;
    for instance in &plan.instances {
        for (port, key) in [(instance.port, "port"), (instance.admin_port, "admin_port")] {
            let Some(port) = port.filter(|p| !ports::is_free(*p)) else {
                continue;
            };
            // The line that asks for the port: the key, or the service's table when the
            // port is a default.
            let at = ws.locate(&["services", &instance.service, key]);
            let owner = format!("{} {key}, services.toml:{}", instance.label, at.line);
            taken.push(match ports::holder(port) {
                Some(holder) => format!("port {port} ({owner}) is taken by {holder}"),
                None => format!("port {port} ({owner}) is taken"),
            });
            first_line.get_or_insert(at);
        }
    }
    if let Some(at) = first_line {
        return Err(Error::new(format!(
            "{} needed port{} taken, so nothing was started:\n  {}",
            taken.len(),
            if taken.len() == 1 { " is" } else { "s are" },
            taken.join("\n  ")
        ))
        .at(at)
        .hint("stop what holds the port, or give the service another port in services.toml"));
    }
    let mut free = FreePorts::new(plan.fixed_ports().into_iter().map(|(p, _)| p));
    let broker = if plan.needs_broker {
        let b = broker::resolve(&ws.manifest, &root, &mut free)?;
        let message = match &b {
            BrokerPlan::Existing { url } => format!("{url} answers; using it"),
            BrokerPlan::Private(node) => format!(
                "starting a private RabbitMQ node on 127.0.0.1:{} (data in .msvc/rabbitmq)",
                node.port
            ),
        };
        progress.status("Broker", &message);
        Some(b)
    } else {
        None
    };
    let with_database: Vec<String> = plan
        .order
        .iter()
        .filter(|s| ws.manifest.services[*s].database.is_some())
        .cloned()
        .collect();
    let super::database::ForRun {
        databases,
        cluster,
        fresh: fresh_databases,
    } = super::database::for_run(
        ws,
        &with_database,
        args.fresh_databases,
        state.dir(),
        &mut free,
    )?;
    if let Some(d) = &databases {
        let created = if fresh_databases.is_some() {
            format!(
                "created this run's {} (dropped after it)",
                d.created.join(", ")
            )
        } else if d.created.is_empty() {
            "every service's database exists".to_owned()
        } else {
            format!("created {}", d.created.join(", "))
        };
        let message = if cluster.is_some() {
            let (server, _) = super::database::server_url(Some(&ws.manifest));
            let at = crate::workspace::url::PgUrl::parse(&server).map_or(server, |u| u.address());
            format!(
                "nothing answers at {at}; starting a private PostgreSQL on {} (data in .msvc/postgres); {created}",
                d.server
            )
        } else {
            format!("PostgreSQL at {} answers; {created}", d.server)
        };
        progress.status("Database", &message);
    }
    let database_url = |service: &str| {
        databases
            .as_ref()
            .and_then(|d| d.urls.get(service))
            .map(String::as_str)
    };
    let dotenv = read_dotenv(&root)?;

    let packages = plan.packages();
    let built = if packages.is_empty() {
        Built::default()
    } else {
        progress.status(
            "Building",
            &format!(
                "{} ({})",
                packages.join(", "),
                if args.release { "release" } else { "debug" }
            ),
        );
        let built = build(&BuildRequest {
            root: &root,
            packages: &packages,
            all: args.services.is_empty(),
            release: args.release,
            progress: !progress.quiet() && !progress.is_json(),
        })?;
        progress.status(
            "Built",
            &format!(
                "{} crate{} compiled in {:.1}s",
                built.compiled,
                if built.compiled == 1 { "" } else { "s" },
                built.elapsed.as_secs_f64()
            ),
        );
        built
    };

    let amqp_url = broker.as_ref().map(|b| b.url().to_string());
    let mut units = Vec::new();
    if let Some(BrokerPlan::Private(node)) = &broker {
        let mut env: BTreeMap<String, String> = std::env::vars().collect();
        env.extend(node.env.clone());
        units.push(Unit {
            instance: Instance {
                service: "broker".to_string(),
                replica: 1,
                label: "broker".to_string(),
                kind: crate::workspace::Kind::Process,
                port: Some(node.port),
                admin_port: None,
                probe: HealthProbe::Amqp {
                    host: "127.0.0.1".to_string(),
                    port: node.port,
                },
                program: Program::Shell(node.program.display().to_string()),
                grace_ms: 15_000,
            },
            launch: Launch {
                program: node.program.display().to_string(),
                args: Vec::new(),
                env,
                cwd: root.clone(),
            },
            is_infrastructure: true,
        });
    }
    if let Some(cluster) = &cluster {
        units.push(Unit {
            instance: Instance {
                service: "database".to_string(),
                replica: 1,
                label: "database".to_string(),
                kind: crate::workspace::Kind::Process,
                port: Some(cluster.port),
                admin_port: None,
                probe: HealthProbe::Tcp { port: cluster.port },
                program: Program::Shell(cluster.program.clone()),
                grace_ms: 15_000,
            },
            launch: Launch {
                program: cluster.program.clone(),
                args: cluster.args.clone(),
                env: std::env::vars().collect(),
                cwd: root.clone(),
            },
            is_infrastructure: true,
        });
    }
    for instance in &plan.instances {
        let env = instance_env(
            ws,
            &plan,
            instance,
            amqp_url.as_deref(),
            database_url(&instance.service),
            &dotenv,
        );
        let launch = match &instance.program {
            Program::Binary(name) => {
                let Some(exe) = built.executables.get(name) else {
                    return Err(Error::new(format!(
                        "cargo built no binary named `{name}` for service `{}`",
                        instance.service
                    ))
                    .hint(format!(
                        "services/{name}/Cargo.toml must have a binary target named `{name}`"
                    )));
                };
                Launch {
                    program: exe.display().to_string(),
                    args: Vec::new(),
                    env,
                    cwd: root.clone(),
                }
            }
            Program::Shell(command) => Launch {
                program: "/bin/sh".to_string(),
                args: vec!["-c".to_string(), command.clone()],
                env,
                cwd: root.clone(),
            },
        };
        units.push(Unit {
            instance: instance.clone(),
            launch,
            is_infrastructure: false,
        });
    }

    if let Some(binary) = &prometheus_binary {
        let port = free
            .pick()
            .map_err(|e| Error::new(format!("cannot find a free port for Prometheus: {e}")))?;
        units.push(prometheus::unit(ws, &plan, binary, state.dir(), port)?);
        // It scrapes whatever answers, so it waits for no service.
        plan.order.push(prometheus::UNIT_NAME.to_string());
        plan.depends_on
            .insert(prometheus::UNIT_NAME.to_string(), Vec::new());
        progress.status(
            "Prometheus",
            &format!("http://127.0.0.1:{port} (targets: http://127.0.0.1:{port}/targets)"),
        );
    }

    let labels = Label::for_instances(
        units
            .iter()
            .map(|u| (u.instance.service.as_str(), u.instance.label.as_str())),
    );
    let log_path = state.log_path();
    let log = LogFile::create(&log_path).ok();
    let mut sink = LogSink::new(
        labels,
        LineFormat::for_stdout(progress.is_json()),
        log,
        progress.quiet(),
    );
    if !args.echo_logs {
        sink = sink.without_echo();
    }
    let sink = Arc::new(Mutex::new(sink));
    let supervisor = Supervisor::new(
        root,
        plan.clone(),
        units,
        sink,
        state,
        amqp_url.clone(),
        Options {
            no_restart: args.no_restart,
            release: args.release,
            policy: RestartPolicy::default(),
        },
    )?;
    Ok(Prepared {
        supervisor,
        plan,
        amqp_url,
        log_path,
        lock,
        fresh_databases,
    })
}
