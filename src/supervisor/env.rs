//! The environment of each instance, from five layers (see `msvc up --help`).

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Location, Result};
use crate::workspace::Workspace;
use crate::workspace::names::NameForms;

use super::plan::{Instance, RunPlan};

/// The `.env` file beside services.toml, when there is one.
pub const DOTENV_FILE: &str = ".env";

/// Reads `KEY=VALUE` lines of the `.env` file beside the manifest.
pub fn read_dotenv(root: &Path) -> Result<Vec<(String, String)>> {
    let path = root.join(DOTENV_FILE);
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let iter = dotenvy::from_path_iter(&path)
        .map_err(|e| Error::new(format!("cannot read `{}`", path.display())).source(e))?;
    iter.map(|item| {
        item.map_err(|e| {
            Error::new(format!("invalid line in `{}`", path.display()))
                .at(Location::file(&path))
                .hint("write `KEY=VALUE`, one per line; quote values with spaces")
                .source(e)
        })
    })
    .collect()
}

/// Everything one instance gets, later layers winning.
pub fn instance_env(
    ws: &Workspace,
    plan: &RunPlan,
    instance: &Instance,
    amqp_url: Option<&str>,
    database_url: Option<&str>,
    dotenv: &[(String, String)],
) -> BTreeMap<String, String> {
    let svc = &ws.manifest.services[&instance.service];
    // 1. msvc's own environment.
    let mut env: BTreeMap<String, String> = std::env::vars().collect();
    // 2. Defaults for running on this machine.
    env.insert("HOST".into(), "127.0.0.1".into());
    env.insert("SHUTDOWN_GRACE".into(), ws.manifest.shutdown_grace(svc));
    // 3. The .env file.
    env.extend(dotenv.iter().cloned());
    // 4. The wiring.
    for (key, port) in [("PORT", instance.port), ("ADMIN_PORT", instance.admin_port)] {
        if let Some(port) = port {
            env.insert(key.into(), port.to_string());
        }
    }
    for dep in &svc.depends_on {
        let urls: Vec<String> = plan
            .instances
            .iter()
            .filter(|i| &i.service == dep)
            .filter_map(|i| i.port)
            .map(|p| format!("http://127.0.0.1:{p}"))
            .collect();
        if !urls.is_empty() {
            env.insert(NameForms::new(dep).env_url, urls.join(","));
        }
    }
    if let Some(url) = amqp_url {
        env.insert("AMQP_URL".into(), url.to_string());
    }
    if let Some(url) = database_url {
        env.insert("DATABASE_URL".into(), url.to_string());
    }
    // 5. The service's own `env` table.
    env.extend(svc.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env
}
