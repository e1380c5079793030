//! The admin endpoints (`msvc_runtime::admin`) and the container health check that probes
//! them (`msvc_runtime::healthcheck`), on ephemeral ports; no broker needed.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use msvc_runtime::{
    admin::{self, Health},
    healthcheck,
    shutdown::{self, Trigger},
};
use prometheus_client::{metrics::counter::Counter, registry::Registry};
use tokio::{io::AsyncWriteExt, net::TcpListener, task::JoinHandle};

const WAIT: Duration = Duration::from_secs(10);

struct Admin {
    addr: SocketAddr,
    health: Health,
    counter: Counter,
    trigger: Trigger,
    task: JoinHandle<std::io::Result<()>>,
}

impl Admin {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let health = Health::new();
        let counter = Counter::default();
        let mut registry = Registry::default();
        registry.register("test_things", "Things the test did", counter.clone());
        let (trigger, shutdown) = shutdown::channel();
        let task = tokio::spawn(admin::serve(
            listener,
            health.clone(),
            Arc::new(registry),
            shutdown,
        ));
        Self {
            addr,
            health,
            counter,
            trigger,
            task,
        }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        reqwest::get(format!("http://{}{path}", self.addr))
            .await
            .expect("admin request")
    }

    async fn status_and_body(&self, path: &str) -> (u16, String) {
        let response = self.get(path).await;
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }
}

#[tokio::test]
async fn readiness_follows_the_flag_and_liveness_does_not() {
    let admin = Admin::start().await;
    let not_ready = (503, r#"{"status":"not ready"}"#.to_owned());
    let ready = (200, r#"{"status":"ready"}"#.to_owned());
    let alive = (200, r#"{"status":"ok"}"#.to_owned());

    // Not ready until the service says so.
    assert_eq!(admin.status_and_body("/readyz").await, not_ready);
    assert_eq!(admin.status_and_body("/healthz").await, alive);
    assert!(healthcheck::check(admin.addr.port()).await.is_err());

    admin.health.set_ready(true);
    assert_eq!(admin.status_and_body("/readyz").await, ready);
    healthcheck::check(admin.addr.port())
        .await
        .expect("--healthcheck passes while ready");

    admin.health.set_ready(false);
    assert_eq!(admin.status_and_body("/readyz").await, not_ready);
    assert_eq!(admin.status_and_body("/healthz").await, alive);
    let error = healthcheck::check(admin.addr.port())
        .await
        .expect_err("not ready");
    assert!(error.to_string().contains("503"), "{error}");

    admin.trigger.fire();
    tokio::time::timeout(WAIT, admin.task)
        .await
        .expect("the admin server stops on shutdown")
        .expect("admin task")
        .expect("admin server");
}

#[tokio::test]
async fn metrics_are_served_in_the_openmetrics_format() {
    let admin = Admin::start().await;
    admin.counter.inc_by(3);
    let response = admin.get("/metrics").await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .expect("ASCII")
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let body = response.text().await.expect("body");
    assert!(
        body.lines().any(|line| line == "test_things_total 3"),
        "{body}"
    );
    assert!(body.trim_end().ends_with("# EOF"), "{body}");
    admin.counter.inc();
    let (_, body) = admin.status_and_body("/metrics").await;
    assert!(
        body.lines().any(|line| line == "test_things_total 4"),
        "{body}"
    );
    assert_eq!(admin.status_and_body("/nothing-here").await.0, 404);
}

#[tokio::test]
async fn the_health_check_fails_on_anything_but_a_ready_answer() {
    // Nothing listening.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    assert!(healthcheck::check(port).await.is_err());

    // Something that is not HTTP.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let _ = socket.write_all(b"SSH-2.0-OpenSSH\r\n").await;
        }
    });
    let error = healthcheck::check(port).await.expect_err("not HTTP");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData, "{error}");
}
