//! The broker services with queues need: one that answers, or a private `RabbitMQ` node
//! msvc starts (and stops), or a clear stop before anything starts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::workspace::Manifest;

use super::ports::FreePorts;
use super::probe;

/// Where the broker comes from.
#[derive(Debug, Clone)]
pub enum BrokerPlan {
    /// One answers at this URL already.
    Existing { url: String },
    /// msvc starts a node of its own.
    Private(PrivateNode),
}

impl BrokerPlan {
    pub fn url(&self) -> &str {
        match self {
            BrokerPlan::Existing { url } => url,
            BrokerPlan::Private(node) => &node.url,
        }
    }
}

/// A private `RabbitMQ` node: own node name, data dir and ports, on loopback.
#[derive(Debug, Clone)]
pub struct PrivateNode {
    pub url: String,
    pub port: u16,
    pub program: PathBuf,
    pub env: BTreeMap<String, String>,
}

/// `host` and `port` of an `amqp://user:pass@host:port/vhost` URL; no host is this machine.
pub fn host_port(url: &str) -> Option<(String, u16)> {
    let url = crate::workspace::url::AmqpUrl::parse(url)?;
    let host = if url.host.is_empty() {
        "127.0.0.1".to_string()
    } else {
        url.host
    };
    Some((host, url.port))
}

/// Decides where the broker comes from, before anything starts.
pub fn resolve(manifest: &Manifest, root: &Path, free: &mut FreePorts) -> Result<BrokerPlan> {
    let (url, from) = match std::env::var("AMQP_URL") {
        Ok(url) if !url.trim().is_empty() => (url, "AMQP_URL"),
        _ => (manifest.broker_url().to_string(), "services.toml"),
    };
    let Some((host, port)) = host_port(&url) else {
        return Err(
            Error::new(format!("`{url}` (from {from}) is not an AMQP URL"))
                .hint("write it as amqp://user:password@host:port/vhost"),
        );
    };
    if probe::amqp_answers(&host, port) {
        return Ok(BrokerPlan::Existing { url });
    }
    let Some(program) = rabbitmq_server() else {
        return Err(Error::new(format!(
            "no broker answers at {host}:{port} ({from}), and rabbitmq-server is not installed to start one"
        ))
        .hint("install RabbitMQ (e.g. `apt-get install rabbitmq-server`) so msvc starts a private node, or start one and point AMQP_URL at it"));
    };
    let node_port = free
        .pick()
        .map_err(|e| Error::new(format!("no free port for the broker: {e}")))?;
    let dist_port = free
        .pick()
        .map_err(|e| Error::new(format!("no free port for the broker: {e}")))?;
    let base = root.join(super::state::STATE_DIR).join("rabbitmq");
    fs_err::create_dir_all(base.join("mnesia"))?;
    fs_err::create_dir_all(base.join("log"))?;
    // No plugins (the management plugin would take port 15672) and no system config.
    fs_err::write(base.join("enabled_plugins"), "[].\n")?;
    fs_err::write(
        base.join("rabbitmq.conf"),
        format!("listeners.tcp.default = 127.0.0.1:{node_port}\nloopback_users.guest = true\n"),
    )?;
    fs_err::write(base.join("rabbitmq-env.conf"), "")?;
    let node = format!("msvc-{node_port}@localhost");
    let path = |p: &str| base.join(p).display().to_string();
    let env: BTreeMap<String, String> = [
        ("RABBITMQ_NODENAME", node),
        ("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1".to_string()),
        ("RABBITMQ_NODE_PORT", node_port.to_string()),
        ("RABBITMQ_DIST_PORT", dist_port.to_string()),
        ("RABBITMQ_MNESIA_BASE", path("mnesia")),
        ("RABBITMQ_LOG_BASE", path("log")),
        ("RABBITMQ_LOGS", "-".to_string()),
        ("RABBITMQ_ENABLED_PLUGINS_FILE", path("enabled_plugins")),
        ("RABBITMQ_CONFIG_FILE", path("rabbitmq")),
        ("RABBITMQ_CONF_ENV_FILE", path("rabbitmq-env.conf")),
        ("RABBITMQ_PID_FILE", path("rabbitmq.pid")),
        (
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
            "-kernel inet_dist_use_interface {127,0,0,1}".to_string(),
        ),
        ("ERL_EPMD_ADDRESS", "127.0.0.1".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Ok(BrokerPlan::Private(PrivateNode {
        url: format!("amqp://guest:guest@127.0.0.1:{node_port}/%2f"),
        port: node_port,
        program,
        env,
    }))
}

/// The `rabbitmq-server` script that runs a node as the current user. Debian's
/// /usr/sbin one switches to the `rabbitmq` user and its data dir, so the real one
/// under /usr/lib/rabbitmq/bin is preferred.
fn rabbitmq_server() -> Option<PathBuf> {
    let direct = PathBuf::from("/usr/lib/rabbitmq/bin/rabbitmq-server");
    if direct.is_file() {
        return Some(direct);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|d| d.join("rabbitmq-server"))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::host_port;

    #[test]
    fn amqp_urls() {
        assert_eq!(
            host_port("amqp://guest:guest@127.0.0.1:5672/%2f"),
            Some(("127.0.0.1".into(), 5672))
        );
        assert_eq!(host_port("amqp://broker/x"), Some(("broker".into(), 5672)));
        assert_eq!(
            host_port("amqp://u:p@[::1]:5673/"),
            Some(("::1".into(), 5673))
        );
        assert_eq!(host_port("http://x"), None);
    }
}
