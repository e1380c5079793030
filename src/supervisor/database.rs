//! The `PostgreSQL` server of the services with `database = "postgres"`: the one at
//! `DATABASE_URL` (msvc's environment) or `[database] url`, when it answers, with each
//! service's database created on it when missing; or a clear stop before anything
//! starts.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::workspace::model::DEFAULT_DATABASE_URL;
use crate::workspace::url::PgUrl;
use crate::workspace::{Manifest, Workspace};

/// How long msvc waits for the server to answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The server and each service's database on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Databases {
    /// `host:port` of the server.
    pub server: String,
    /// Service name → the `DATABASE_URL` it gets.
    pub urls: BTreeMap<String, String>,
    /// The databases this run created (the others existed).
    pub created: Vec<String>,
    /// The server's URL, to reach it again (to drop a run's fresh databases).
    pub server_url: String,
}

/// The databases `msvc test` made for one run, dropped when this is dropped: the
/// services' own databases are left as they were.
#[derive(Debug)]
pub struct FreshDatabases {
    server_url: String,
    names: Vec<String>,
    /// The private cluster they are in, stopped by then: dropped in single-user mode.
    cluster: Option<super::postgres::Cluster>,
}

impl FreshDatabases {
    /// The run's databases in the private cluster `cluster`.
    pub fn in_cluster(cluster: &super::postgres::Cluster, names: Vec<String>) -> Self {
        Self {
            server_url: String::new(),
            names,
            cluster: Some(cluster.clone()),
        }
    }
}

impl Drop for FreshDatabases {
    fn drop(&mut self) {
        if let Some(cluster) = &self.cluster {
            if let Err(e) = cluster.drop_databases(&self.names) {
                eprintln!(
                    "warning: could not drop the test run's databases: {}",
                    e.render()
                );
            }
            return;
        }
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        if let Err(reason) = runtime.block_on(drop_all(&self.server_url, &self.names)) {
            eprintln!(
                "warning: could not drop the test run's databases ({}): {reason}",
                self.names.join(", ")
            );
        }
    }
}

async fn drop_all(url: &str, names: &[String]) -> std::result::Result<(), String> {
    let connecting = tokio_postgres::connect(url, tokio_postgres::NoTls);
    let (client, connection) = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
        .await
        .map_err(|_| "no answer".to_owned())?
        .map_err(|e| e.to_string())?;
    let driver = tokio::spawn(connection);
    for name in names {
        client
            .batch_execute(&format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#))
            .await
            .map_err(|e| e.to_string())?;
    }
    drop(client);
    let _ = driver.await;
    Ok(())
}

/// Where the services' databases are for one run of `up` or `test`.
#[derive(Debug)]
pub struct ForRun {
    pub databases: Option<Databases>,
    /// The private cluster to supervise, when no server answered.
    pub cluster: Option<super::postgres::Cluster>,
    /// The run's own databases, dropped with this (`fresh`).
    pub fresh: Option<FreshDatabases>,
}

/// The databases of `services` for one run: on the server at `[database] url` (or
/// `DATABASE_URL`) when something answers there, else in a private cluster under
/// `state_dir` on a free port, made ready to start; `fresh` gives the run databases of
/// its own, dropped afterwards.
pub fn for_run(
    ws: &Workspace,
    services: &[String],
    fresh: bool,
    state_dir: &std::path::Path,
    free: &mut super::ports::FreePorts,
) -> Result<ForRun> {
    if services.is_empty() || server_answers(&ws.manifest) {
        let (databases, fresh) = if fresh {
            match provision_fresh(ws, services)? {
                Some((databases, guard)) => (Some(databases), Some(guard)),
                None => (None, None),
            }
        } else {
            (provision(ws, services)?, None)
        };
        return Ok(ForRun {
            databases,
            cluster: None,
            fresh,
        });
    }
    let run = run_tag();
    let names: Vec<(String, String)> = services
        .iter()
        .map(|s| {
            let db = ws.manifest.database_name(s);
            (s.clone(), if fresh { fresh_name(&db, &run) } else { db })
        })
        .collect();
    let port = free
        .pick()
        .map_err(|e| Error::new(format!("no free port for PostgreSQL: {e}")))?;
    let wanted: Vec<String> = names.iter().map(|(_, db)| db.clone()).collect();
    let cluster = super::postgres::Cluster::prepare(state_dir, port, &wanted)?;
    let databases = Databases {
        server: format!("127.0.0.1:{port}"),
        urls: names
            .iter()
            .map(|(s, db)| (s.clone(), cluster.url_of(db)))
            .collect(),
        created: cluster.created.clone(),
        server_url: cluster.url_of("postgres"),
    };
    Ok(ForRun {
        databases: Some(databases),
        fresh: fresh.then(|| FreshDatabases::in_cluster(&cluster, wanted)),
        cluster: Some(cluster),
    })
}

/// Whether something accepts connections where the services' server should be (an
/// unparsable URL counts as answering: [`provision`] reports it). When nothing does,
/// `msvc up` starts a private cluster instead.
fn server_answers(manifest: &Manifest) -> bool {
    let (url, _) = server_url(Some(manifest));
    let Some(server) = PgUrl::parse(&url) else {
        return true;
    };
    let host = if server.host.is_empty() {
        "127.0.0.1"
    } else {
        &server.host
    };
    super::probe::connect(host, server.port).is_some()
}

/// What tells one test run's databases from another's: `<pid>x<nanoseconds>`.
fn run_tag() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{}x{nanos}", std::process::id())
}

/// A test run's own name for a service's database: `NAME_t<run>`, within the 63
/// characters `PostgreSQL` keeps.
fn fresh_name(database: &str, run: &str) -> String {
    let suffix = format!("_t{run}");
    let keep = crate::workspace::model::MAX_DATABASE_NAME.saturating_sub(suffix.len());
    let base: String = database.chars().take(keep).collect();
    format!("{base}{suffix}")
}

/// Like [`provision`], with databases of this run's own (`NAME_t<run>`), created empty
/// and dropped when the returned guard is: what `msvc test` runs the system on, so the
/// contract tests start from the migrations alone and leave the services' own data be.
fn provision_fresh(
    ws: &Workspace,
    services: &[String],
) -> Result<Option<(Databases, FreshDatabases)>> {
    let run = run_tag();
    let Some(databases) = provision_named(ws, services, |db| fresh_name(db, &run))? else {
        return Ok(None);
    };
    let guard = FreshDatabases {
        server_url: databases.server_url.clone(),
        names: databases.created.clone(),
        cluster: None,
    };
    Ok(Some((databases, guard)))
}

/// Where the server is, and from which setting: `DATABASE_URL` in msvc's environment,
/// else the manifest's `[database] url`, else the default (no workspace).
pub fn server_url(manifest: Option<&Manifest>) -> (String, &'static str) {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => (url, "DATABASE_URL"),
        _ => (
            manifest
                .map_or(DEFAULT_DATABASE_URL, Manifest::database_url)
                .to_owned(),
            "services.toml [database] url",
        ),
    }
}

/// Connects to the server and creates the database of each of `services` that has
/// none. Nothing to do (and no server needed) when `services` is empty.
pub fn provision(ws: &Workspace, services: &[String]) -> Result<Option<Databases>> {
    provision_named(ws, services, str::to_owned)
}

/// [`provision`], each service's database named by `name` from its usual name.
fn provision_named(
    ws: &Workspace,
    services: &[String],
    name: impl Fn(&str) -> String,
) -> Result<Option<Databases>> {
    if services.is_empty() {
        return Ok(None);
    }
    let manifest = &ws.manifest;
    let (url, from) = server_url(Some(manifest));
    // Where a fix goes: the manifest's key, when the URL came from there.
    let at = (from != "DATABASE_URL").then(|| ws.locate(&["database", "url"]));
    let Some(server) = PgUrl::parse(&url) else {
        let e = Error::new(format!("`{url}` (from {from}) is not a PostgreSQL URL"))
            .hint("write it as postgres://user[:password]@host[:port]/database");
        return Err(match at {
            Some(at) => e.at(at),
            None => e,
        });
    };
    let wanted: Vec<(String, String)> = services
        .iter()
        .map(|s| (s.clone(), name(&manifest.database_name(s))))
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let created = runtime
        .block_on(create_missing(&url, wanted.iter().map(|(_, db)| db.as_str())))
        .map_err(|reason| {
            let e = Error::new(format!(
                "the services' PostgreSQL server at {} (from {from}) {reason}",
                server.address()
            ))
            .hint("start PostgreSQL there, or point `[database] url` in services.toml (or DATABASE_URL) at a server that runs");
            match at.clone() {
                Some(at) => e.at(at),
                None => e,
            }
        })?;
    Ok(Some(Databases {
        server: server.address(),
        urls: wanted
            .iter()
            .map(|(service, db)| (service.clone(), server.with_database(db)))
            .collect(),
        created,
        server_url: url,
    }))
}

/// Creates each of `databases` that the server does not have; returns those created.
async fn create_missing<'a>(
    url: &str,
    databases: impl Iterator<Item = &'a str>,
) -> std::result::Result<Vec<String>, String> {
    let connecting = tokio_postgres::connect(url, tokio_postgres::NoTls);
    let (client, connection) = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
        .await
        .map_err(|_| format!("did not answer within {} s", CONNECT_TIMEOUT.as_secs()))?
        .map_err(|e| format!("refused the connection: {e}"))?;
    let driver = tokio::spawn(connection);
    let mut created = Vec::new();
    for db in databases {
        let exists = client
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&db])
            .await
            .map_err(|e| format!("could not list its databases: {e}"))?
            .is_some();
        if exists {
            continue;
        }
        // A name msvc made: lowercase letters, digits and `_`, so quoting is enough.
        match client
            .batch_execute(&format!(r#"CREATE DATABASE "{db}""#))
            .await
        {
            Ok(()) => created.push(db.to_owned()),
            // Created meanwhile by another run: fine.
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE) => {}
            Err(e) => return Err(format!("could not create database `{db}`: {e}")),
        }
    }
    drop(client);
    let _ = driver.await;
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::fresh_name;

    #[test]
    fn a_runs_own_database_name_keeps_within_the_limit() {
        assert_eq!(fresh_name("shop_orders", "12x34"), "shop_orders_t12x34");
        let long = "a".repeat(63);
        let name = fresh_name(&long, "123x456789012");
        assert_eq!(name.len(), 63, "{name}");
        assert!(name.ends_with("_t123x456789012"), "{name}");
    }
}
