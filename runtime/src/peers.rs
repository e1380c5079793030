//! Balanced gRPC channels to peers, with failover: the machinery behind the per-peer
//! modules the workspace's `contracts::peers` generates.
//!
//! A service finds its peer `y` through the environment variable `Y_URL` (compose sets
//! it): one address or a comma-separated list, each `http://host:port`; unset or empty
//! means `y::DEFAULT_URL`, the peer's port on this machine.
//!
//! ```text
//! let mut client = contracts::peers::user_service::client()?; // once, then clone it
//! let reply = client.get_user(GetUserRequest { user_id: 1 }).await?;
//! ```
//!
//! The channel behind a client balances calls over every address with "power of two
//! choices" (tonic's balancing channel). Connections are lazy: building a client never
//! fails because a peer is down; a call to a peer that is down fails with `UNAVAILABLE`.
//! With several addresses, a watcher probes each one (TCP connect) every
//! [`PROBE_INTERVAL`] and takes those that do not answer out of the balancer until they
//! answer again, so calls fail over to the others; when none answers, all stay in and
//! calls fail fast with `UNAVAILABLE` instead of waiting. Build a client once and clone
//! it (clones share the connections); building one needs a running tokio runtime.

use ::std::{collections::BTreeSet, fmt, time::Duration};

use crate::config::{ConfigError, Env};

use ::tonic::transport::{Channel, Endpoint, Uri, channel::Change};

/// How often every address of a peer with several addresses is probed.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// How long a probe, or a connection to a peer, may take before it counts as down.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A peer address that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerError {
    /// The environment variable the address came from, e.g. `USER_SERVICE_URL`.
    pub variable: &'static str,
    /// The offending address, as given.
    pub url: String,
    pub reason: String,
}

impl fmt::Display for PeerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {}: `{}` {} (expected http://host:port, or a comma-separated list of them)",
            self.variable, self.url, self.reason
        )
    }
}

impl ::std::error::Error for PeerError {}

/// The addresses in a comma-separated list, trimmed; empty entries are dropped.
pub fn split_urls(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The addresses in the environment variable `variable`, or `default` when it is unset
/// or holds no address.
pub fn urls_from_env(variable: &str, default: &str) -> Vec<String> {
    let value = ::std::env::var_os(variable).unwrap_or_default();
    let urls = split_urls(&value.to_string_lossy());
    if urls.is_empty() {
        vec![default.to_owned()]
    } else {
        urls
    }
}

/// The addresses `variable` holds in `env` (a comma-separated list), or `default` when it
/// is unset or empty; each is checked, so a typo is reported at start.
pub fn urls_in(
    env: &Env,
    variable: &'static str,
    default: &str,
) -> Result<Vec<String>, ConfigError> {
    env.parse_or(variable, vec![default.to_owned()], |value| {
        let urls = split_urls(value);
        endpoints(variable, &urls)
            .map(|_| urls)
            .map_err(|e| format!("`{}` {}: expected http://host:port[,...]", e.url, e.reason))
    })
}

/// A client built from a peer's addresses. Every client in a workspace's
/// `contracts::peers` is one, so generated wiring builds them all alike.
pub trait Connect: Sized {
    /// A client balancing over `urls` (errors name the peer's variable); building one
    /// needs a running tokio runtime.
    fn connect(urls: &[String]) -> Result<Self, PeerError>;
}

/// Checks every address and turns it into an endpoint; `variable` names their source in
/// errors. Needs no runtime, so configuration code can call it up front.
pub fn endpoints(variable: &'static str, urls: &[String]) -> Result<Vec<Endpoint>, PeerError> {
    let error = |url: &str, reason: String| PeerError {
        variable,
        url: url.to_owned(),
        reason,
    };
    if urls.is_empty() {
        return Err(error("", "holds no address".to_owned()));
    }
    let mut seen = BTreeSet::new();
    let mut endpoints = Vec::with_capacity(urls.len());
    for url in urls {
        let uri: Uri = url
            .parse()
            .map_err(|e| error(url, format!("is not a URL: {e}")))?;
        if uri.scheme_str() != Some("http") {
            return Err(error(url, "does not start with http://".to_owned()));
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err(error(url, "has no host".to_owned()));
        }
        if !seen.insert(uri.to_string()) {
            continue;
        }
        let endpoint = Endpoint::from(uri).connect_timeout(CONNECT_TIMEOUT);
        endpoints.push(endpoint);
    }
    Ok(endpoints)
}

/// A lazy channel balancing over `urls` (see the module documentation). Must be called
/// inside a tokio runtime.
pub fn balanced_channel(variable: &'static str, urls: &[String]) -> Result<Channel, PeerError> {
    let endpoints = endpoints(variable, urls)?;
    // Room for many changes: the balancer takes them in only when a call comes.
    let (channel, changes) = Channel::balance_channel::<usize>(1024);
    if let [endpoint] = endpoints.as_slice() {
        // Nothing to fail over to: the one address stays in, reconnecting as needed.
        changes
            .try_send(Change::Insert(0, endpoint.clone()))
            .expect("the change buffer has room");
    } else {
        // Calls wait for the first probe (at most CONNECT_TIMEOUT) rather than go to an
        // address that is down.
        ::tokio::spawn(watch(endpoints, changes));
    }
    Ok(channel)
}

/// Keeps the balancer's set to the addresses that answer (all of them when none does),
/// until every clone of the channel is gone.
async fn watch(
    endpoints: Vec<Endpoint>,
    changes: ::tokio::sync::mpsc::Sender<Change<usize, Endpoint>>,
) {
    let mut in_balancer = vec![false; endpoints.len()];
    loop {
        let mut probes = ::tokio::task::JoinSet::new();
        for (index, endpoint) in endpoints.iter().enumerate() {
            probes.spawn(probe(index, endpoint.uri().clone()));
        }
        let mut up = vec![false; endpoints.len()];
        while let Some(probed) = probes.join_next().await {
            if let Ok((index, answered)) = probed {
                up[index] = answered;
            }
        }
        let wanted = if up.contains(&true) {
            up
        } else {
            vec![true; endpoints.len()]
        };
        for (index, endpoint) in endpoints.iter().enumerate() {
            if wanted[index] == in_balancer[index] {
                continue;
            }
            let change = if wanted[index] {
                Change::Insert(index, endpoint.clone())
            } else {
                Change::Remove(index)
            };
            if changes.send(change).await.is_err() {
                return;
            }
            in_balancer[index] = wanted[index];
        }
        ::tokio::select! {
            () = changes.closed() => return,
            () = ::tokio::time::sleep(PROBE_INTERVAL) => {}
        }
    }
}

/// Whether a TCP connection to the address opens within [`CONNECT_TIMEOUT`].
async fn probe(index: usize, uri: Uri) -> (usize, bool) {
    let host = uri.host().unwrap_or_default();
    // `[::1]` in a URL, `::1` for the resolver.
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(80);
    let connect = ::tokio::net::TcpStream::connect((host, port));
    let answered = matches!(
        ::tokio::time::timeout(CONNECT_TIMEOUT, connect).await,
        Ok(Ok(_))
    );
    (index, answered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_come_from_the_variable_else_the_default_and_are_checked() {
        let default = "http://127.0.0.1:5001";
        let read = |pairs: &[(&str, &str)]| urls_in(&Env::from_pairs(pairs), "PEER_URL", default);
        assert_eq!(read(&[]).unwrap(), [default]);
        assert_eq!(read(&[("PEER_URL", "")]).unwrap(), [default]);
        assert_eq!(
            read(&[("PEER_URL", "http://a:1, http://b:2")]).unwrap(),
            ["http://a:1", "http://b:2"]
        );
        let error = read(&[("PEER_URL", "http://a:1,b:2")]).unwrap_err();
        assert_eq!(error.variable, "PEER_URL");
        assert!(
            error
                .reason
                .starts_with("`b:2` does not start with http://"),
            "{}",
            error.reason
        );
    }
}
