//! Health checks: HTTP `/readyz`, a TCP connect, or an AMQP handshake.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// How msvc decides that an instance is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthProbe {
    /// `GET /readyz` on the port answers 200.
    Http { port: u16 },
    /// Something accepts connections on the port.
    Tcp { port: u16 },
    /// An AMQP 0-9-1 broker answers the protocol header on the port.
    Amqp { host: String, port: u16 },
    /// No port to probe: ready once started.
    Started,
}

impl HealthProbe {
    pub fn check(&self) -> bool {
        match self {
            HealthProbe::Http { port } => http_ready(*port),
            HealthProbe::Tcp { port } => connect("127.0.0.1", *port).is_some(),
            HealthProbe::Amqp { host, port } => amqp_answers(host, *port),
            HealthProbe::Started => true,
        }
    }

    /// The check made once the instance has been found ready. `RabbitMQ` logs three
    /// lines (one a warning) for every connection that sends the protocol header and
    /// closes, but nothing for one closed before sending anything: after the first
    /// handshake a broker is watched with a TCP connect, so that its log is not flooded
    /// every 2 s.
    #[must_use]
    pub fn when_ready(&self) -> HealthProbe {
        match self {
            HealthProbe::Amqp { host, port } if host == "127.0.0.1" || host == "localhost" => {
                HealthProbe::Tcp { port: *port }
            }
            other => other.clone(),
        }
    }

    /// For messages: `GET /readyz on 9100`.
    pub fn describe(&self) -> String {
        match self {
            HealthProbe::Http { port } => format!("GET /readyz on port {port}"),
            HealthProbe::Tcp { port } => format!("TCP connect to port {port}"),
            HealthProbe::Amqp { host, port } => format!("AMQP handshake with {host}:{port}"),
            HealthProbe::Started => "started".to_string(),
        }
    }
}

pub fn connect(host: &str, port: u16) -> Option<TcpStream> {
    let addrs: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .ok()?
        .collect();
    addrs.iter().find_map(|a| {
        let s = TcpStream::connect_timeout(a, CONNECT_TIMEOUT).ok()?;
        s.set_read_timeout(Some(READ_TIMEOUT)).ok()?;
        s.set_write_timeout(Some(READ_TIMEOUT)).ok()?;
        Some(s)
    })
}

fn http_ready(port: u16) -> bool {
    let config = ureq::Agent::config_builder()
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_send_request(Some(READ_TIMEOUT))
        .timeout_recv_response(Some(READ_TIMEOUT))
        // A 503 is an answer to look at, not an error.
        .http_status_as_error(false)
        // A fresh connection each time: a pooled one would outlive a restarted service.
        .max_idle_connections(0)
        .user_agent("msvc")
        // The instance is on loopback; an HTTP_PROXY of the user's must not be asked.
        .proxy(None)
        .build();
    let agent = ureq::Agent::new_with_config(config);
    agent
        .get(format!("http://127.0.0.1:{port}/readyz"))
        .call()
        .is_ok_and(|response| response.status() == 200)
}

/// Whether an AMQP 0-9-1 broker answers at `host:port`: it replies to the protocol
/// header with a method frame (Connection.Start).
pub fn amqp_answers(host: &str, port: u16) -> bool {
    let Some(mut stream) = connect(host, port) else {
        return false;
    };
    if stream.write_all(b"AMQP\x00\x00\x09\x01").is_err() {
        return false;
    }
    let mut first = [0u8; 1];
    matches!(stream.read(&mut first), Ok(1)) && first[0] == 1
}

/// Checks `probe` on a thread until the returned flag is set: every 200 ms until it
/// passes, then every 2 s (with [`HealthProbe::when_ready`]). `on_change` hears each
/// new answer, and ends the watch by returning false.
pub fn watch(
    probe: HealthProbe,
    mut on_change: impl FnMut(bool) -> bool + Send + 'static,
) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    std::thread::spawn(move || {
        let mut last = None;
        let mut current = probe.clone();
        while !stopped.load(Ordering::Relaxed) {
            let ok = current.check();
            if ok {
                current = probe.when_ready();
            }
            if stopped.load(Ordering::Relaxed) {
                break;
            }
            if last != Some(ok) {
                last = Some(ok);
                if !on_change(ok) {
                    break;
                }
            }
            let pause = if ok { 2000 } else { 200 };
            for _ in 0..pause / 100 {
                if stopped.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    });
    stop
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn http_probe_wants_200() {
        for (answer, ok) in [
            ("HTTP/1.1 200 OK\r\n\r\n", true),
            ("HTTP/1.1 503 Service Unavailable\r\n\r\n", false),
        ] {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let server = std::thread::spawn(move || {
                let (mut s, _) = listener.accept().unwrap();
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf);
                s.write_all(answer.as_bytes()).unwrap();
            });
            assert_eq!(HealthProbe::Http { port }.check(), ok, "{answer}");
            server.join().unwrap();
        }
    }

    #[test]
    fn a_ready_broker_is_watched_without_handshakes() {
        let amqp = HealthProbe::Amqp {
            host: "127.0.0.1".into(),
            port: 5673,
        };
        assert_eq!(amqp.when_ready(), HealthProbe::Tcp { port: 5673 });
        let http = HealthProbe::Http { port: 8080 };
        assert_eq!(http.when_ready(), http);
    }

    #[test]
    fn tcp_probe_needs_a_listener() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(HealthProbe::Tcp { port }.check());
        drop(listener);
        assert!(!HealthProbe::Tcp { port }.check());
    }
}
