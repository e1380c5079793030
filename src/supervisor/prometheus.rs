//! `msvc up --prometheus`: a Prometheus server supervised like the services, scraping
//! the ports this run uses, with the configuration `msvc deploy prometheus` renders.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::plan::{Instance, Program, RunPlan};
use super::probe::HealthProbe;
use super::unit::{Launch, Unit};
use crate::deploy::prometheus::{self, PrometheusContext, ScrapeTarget};
use crate::error::{Error, Result};
use crate::render::Renderer;
use crate::workspace::{Kind, Workspace};

/// The name the server runs under in logs and `msvc status`.
pub const UNIT_NAME: &str = "prometheus";

/// Finds the `prometheus` binary, or explains how to get it; called before anything starts.
pub fn locate(ws: &Workspace) -> Result<PathBuf> {
    if ws.manifest.services.contains_key(UNIT_NAME) {
        return Err(Error::new(
            "a service is named `prometheus`, so `msvc up --prometheus` cannot add a server of that name",
        )
        .at(ws.locate(&["services", UNIT_NAME]))
        .hint("run without --prometheus, or rename the service"));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("prometheus"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::new("`prometheus` is not installed, so `msvc up --prometheus` cannot start it; nothing was started")
                .hint("install it (Debian and Ubuntu: `sudo apt-get install prometheus`) or put a prometheus binary on PATH; or run without --prometheus")
        })
}

/// Writes `.msvc/prometheus/{prometheus,alerts}.yml` for the instances of `plan` and
/// returns the unit that runs the server on `port`.
pub fn unit(
    ws: &Workspace,
    plan: &RunPlan,
    binary: &Path,
    state_dir: &Path,
    port: u16,
) -> Result<Unit> {
    let targets = plan
        .instances
        .iter()
        .filter_map(|i| {
            prometheus::metrics_port(i.kind, i.port, i.admin_port).map(|p| ScrapeTarget {
                service: i.service.clone(),
                address: format!("127.0.0.1:{p}"),
            })
        })
        .collect();
    let mut prom = PrometheusContext::with_targets(&ws.manifest, targets);
    prom.scrape_interval = "5s";
    // The broker `up` uses may be a private node without the Prometheus plugin.
    prom.scrape_broker = false;
    let renderer = Renderer::for_workspace(&ws.root, &ws.manifest)?;
    let dir = state_dir.join("prometheus");
    fs_err::create_dir_all(&dir)?;
    for (name, text) in prometheus::render(&renderer, &prom)? {
        if name != "prometheus-kubernetes.yml" {
            fs_err::write(dir.join(name), text)?;
        }
    }
    let args = vec![
        format!("--config.file={}", dir.join("prometheus.yml").display()),
        format!("--storage.tsdb.path={}", dir.join("data").display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
        // Its own start-up chatter would drown the services' lines.
        "--log.level=warn".to_string(),
    ];
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let command = format!("{} {}", binary.display(), args.join(" "));
    Ok(Unit {
        instance: Instance {
            service: UNIT_NAME.to_string(),
            replica: 1,
            label: UNIT_NAME.to_string(),
            kind: Kind::Process,
            port: Some(port),
            admin_port: None,
            probe: HealthProbe::Tcp { port },
            program: Program::Shell(command),
            grace_ms: 5_000,
        },
        launch: Launch {
            program: binary.display().to_string(),
            args,
            env,
            cwd: ws.root.clone(),
        },
        is_infrastructure: false,
    })
}
