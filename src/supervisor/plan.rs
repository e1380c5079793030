//! What `msvc up` runs: the services selected with what they depend on, in dependency
//! order, as instances (one per replica) with their ports and health probes.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Error, Result};
use crate::workspace::Workspace;
use crate::workspace::model::{Kind, parse_duration_ms};
use crate::workspace::validate::did_you_mean;

use super::ports::FreePorts;
use super::probe::HealthProbe;

/// What an instance runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    /// A binary of the cargo workspace, named after the service.
    Binary(String),
    /// A `process` service's command line, run by `sh -c`.
    Shell(String),
}

/// One process msvc supervises: a service, or one replica of it.
#[derive(Debug, Clone)]
pub struct Instance {
    pub service: String,
    /// 1-based replica number.
    pub replica: u32,
    /// What log lines are prefixed with: `user-api`, or `user-api.2` for replicas.
    pub label: String,
    pub kind: Kind,
    pub port: Option<u16>,
    pub admin_port: Option<u16>,
    pub probe: HealthProbe,
    pub program: Program,
    pub grace_ms: u64,
}

/// The services to run, in dependency order, and their instances.
#[derive(Debug, Clone)]
pub struct RunPlan {
    /// Services in the order they start (dependencies first).
    pub order: Vec<String>,
    /// For each service, the services it depends on (within the plan).
    pub depends_on: BTreeMap<String, Vec<String>>,
    pub instances: Vec<Instance>,
    /// Whether a service of the plan publishes or consumes.
    pub needs_broker: bool,
}

impl RunPlan {
    /// Plans `selected` (all services when empty) and what they depend on.
    pub fn new(ws: &Workspace, selected: &[String]) -> Result<Self> {
        let m = &ws.manifest;
        for name in selected {
            if !m.services.contains_key(name) {
                let hint = did_you_mean(name, m.services.keys()).unwrap_or_else(|| {
                    format!(
                        "the services are: {}",
                        m.services.keys().cloned().collect::<Vec<_>>().join(", ")
                    )
                });
                return Err(Error::new(format!("no service `{name}` in services.toml"))
                    .at(crate::error::Location::file(&ws.manifest_path))
                    .hint(hint));
            }
        }
        if m.services.is_empty() {
            return Err(Error::new("services.toml has no services to run")
                .hint("add one with `msvc new NAME --rest|--grpc|--worker`"));
        }
        // The selection and everything it depends on, transitively.
        let mut wanted: BTreeSet<String> = BTreeSet::new();
        let mut stack: Vec<String> = if selected.is_empty() {
            m.services.keys().cloned().collect()
        } else {
            selected.to_vec()
        };
        while let Some(name) = stack.pop() {
            if wanted.insert(name.clone()) {
                stack.extend(m.services[&name].depends_on.iter().cloned());
            }
        }
        let depends_on: BTreeMap<String, Vec<String>> = wanted
            .iter()
            .map(|n| (n.clone(), m.services[n].depends_on.clone()))
            .collect();
        let order = topological_order(&depends_on);

        let mut free = FreePorts::new(m.used_ports().into_iter().map(|(p, _, _)| p));
        let mut instances = Vec::new();
        for name in &order {
            let svc = &m.services[name];
            let replicas = svc.replicas.unwrap_or(1).max(1);
            let grace_ms = parse_duration_ms(&m.shutdown_grace(svc)).unwrap_or(10_000);
            for replica in 1..=replicas {
                // One instance keeps the manifest's ports; replicas get free ones.
                let (port, admin_port) = if replicas == 1 {
                    (svc.port, svc.admin_port)
                } else {
                    let pick = |p: Option<u16>, free: &mut FreePorts| -> Result<Option<u16>> {
                        p.map(|_| free.pick()).transpose().map_err(|e| {
                            Error::new(format!("cannot find a free port for `{name}`: {e}"))
                        })
                    };
                    (pick(svc.port, &mut free)?, pick(svc.admin_port, &mut free)?)
                };
                let probe = match svc.kind {
                    Kind::Rest => port.map(|port| HealthProbe::Http { port }),
                    Kind::Grpc | Kind::Worker => admin_port.map(|port| HealthProbe::Http { port }),
                    Kind::Process => port.map(|port| HealthProbe::Tcp { port }),
                }
                .unwrap_or(HealthProbe::Started);
                let program = match svc.kind {
                    Kind::Process => Program::Shell(svc.command.clone().unwrap_or_default()),
                    _ => Program::Binary(name.clone()),
                };
                instances.push(Instance {
                    service: name.clone(),
                    replica,
                    label: if replicas == 1 {
                        name.clone()
                    } else {
                        format!("{name}.{replica}")
                    },
                    kind: svc.kind,
                    port,
                    admin_port,
                    probe,
                    program,
                    grace_ms,
                });
            }
        }
        let needs_broker = wanted.iter().any(|n| {
            let s = &m.services[n];
            !s.publishes.is_empty() || !s.consumes.is_empty()
        });
        Ok(Self {
            order,
            depends_on,
            instances,
            needs_broker,
        })
    }

    /// The fixed ports the plan binds, each with who uses it (`user-api port`).
    pub fn fixed_ports(&self) -> Vec<(u16, String)> {
        self.instances
            .iter()
            .flat_map(|i| {
                [(i.port, "port"), (i.admin_port, "admin_port")]
                    .into_iter()
                    .filter_map(move |(p, key)| p.map(|p| (p, format!("{} {key}", i.label))))
            })
            .collect()
    }

    /// The cargo packages to build: every service that is not a `process`.
    pub fn packages(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .instances
            .iter()
            .filter(|i| matches!(i.program, Program::Binary(_)))
            .map(|i| i.service.clone())
            .collect();
        names.dedup();
        names
    }

    /// Services of the plan that depend on `service`.
    pub fn dependents(&self, service: &str) -> Vec<&str> {
        self.depends_on
            .iter()
            .filter(|(_, deps)| deps.iter().any(|d| d == service))
            .map(|(n, _)| n.as_str())
            .collect()
    }
}

/// Dependencies first; among services ready at once, alphabetical, so the order is stable.
fn topological_order(depends_on: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    crate::workspace::graph::Dependencies::new(
        depends_on
            .iter()
            .map(|(n, deps)| (n.as_str(), deps.as_slice())),
    )
    .start_order()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace(text: &str) -> Workspace {
        let path = std::path::Path::new("/ws/services.toml");
        Workspace {
            root: "/ws".into(),
            manifest_path: path.into(),
            text: text.into(),
            manifest: Workspace::parse(path, text).unwrap(),
        }
    }

    const SHOP: &str = r#"
[workspace]
name = "shop"
[services.db]
kind = "process"
port = 7000
command = "db"
[services.api]
kind = "rest"
port = 7001
replicas = 2
depends_on = ["db"]
[services.front]
kind = "rest"
port = 7002
depends_on = ["api"]
[services.mail]
kind = "worker"
admin_port = 7003
consumes = ["q"]
"#;

    #[test]
    fn a_selection_brings_its_dependencies() {
        let plan = RunPlan::new(&workspace(SHOP), &["api".to_string()]).unwrap();
        assert_eq!(plan.order, ["db", "api"]);
        let labels: Vec<&str> = plan.instances.iter().map(|i| i.label.as_str()).collect();
        assert_eq!(labels, ["db", "api.1", "api.2"]);
        assert!(!plan.needs_broker);
        assert_eq!(plan.packages(), ["api"]);
        // Replicas get ports of their own, never the manifest's.
        let ports: Vec<u16> = plan.instances.iter().filter_map(|i| i.port).collect();
        assert_eq!(ports[0], 7000);
        assert!(ports[1] != 7001 && ports[2] != 7001 && ports[1] != ports[2]);
        assert_eq!(plan.instances[0].probe, HealthProbe::Tcp { port: 7000 });
        assert_eq!(plan.dependents("db"), ["api"]);
    }

    #[test]
    fn everything_and_the_broker() {
        let plan = RunPlan::new(&workspace(SHOP), &[]).unwrap();
        assert_eq!(plan.order, ["db", "mail", "api", "front"]);
        assert!(plan.needs_broker);
        let mail = plan.instances.iter().find(|i| i.service == "mail").unwrap();
        assert_eq!(mail.probe, HealthProbe::Http { port: 7003 });
        let err = RunPlan::new(&workspace(SHOP), &["fornt".to_string()]).unwrap_err();
        assert_eq!(err.hint.as_deref(), Some("did you mean `front`?"));
    }

    #[test]
    fn dependencies_come_first() {
        let deps: BTreeMap<String, Vec<String>> = [
            ("a-api", vec!["z-service"]),
            ("b-front", vec!["a-api"]),
            ("z-service", vec![]),
            ("c-worker", vec![]),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
        .collect();
        assert_eq!(
            topological_order(&deps),
            ["c-worker", "z-service", "a-api", "b-front"]
        );
    }
}
