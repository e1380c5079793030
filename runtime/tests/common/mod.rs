//! What the tests against the RabbitMQ broker at 127.0.0.1:5672 (guest/guest) share:
//! the broker check, queue names of their own, their clean-up, and a TCP proxy that cuts
//! connections on demand, so no test ever stops the broker that others use.
//!
//! Without a broker, a test that needs one is skipped with a loud message on stderr,
//! unless `CI` is set, where that is a failure.

// Each test file uses its own part of these helpers.
#![allow(dead_code)]

use std::{
    future::Future,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use lapin::{
    Channel, Connection, ConnectionProperties,
    options::{QueueDeclareOptions, QueueDeleteOptions},
    types::FieldTable,
};
use tokio::{
    net::{TcpListener, TcpStream},
    task::{AbortHandle, JoinHandle},
};

pub const BROKER_ADDR: &str = "127.0.0.1:5672";
pub const BROKER_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// How long a test waits for something that should happen soon.
pub const WAIT: Duration = Duration::from_secs(20);

/// A connection to the shared broker, or `None` (after a loud SKIP) when it is absent
/// outside CI.
pub async fn broker() -> Option<Connection> {
    let why = match tokio::time::timeout(
        Duration::from_secs(5),
        Connection::connect(BROKER_URL, ConnectionProperties::default()),
    )
    .await
    {
        Ok(Ok(conn)) => return Some(conn),
        Ok(Err(e)) => e.to_string(),
        Err(_) => "connect timed out".to_owned(),
    };
    assert!(
        std::env::var_os("CI").is_none(),
        "RabbitMQ at {BROKER_ADDR} is required when CI is set: {why}"
    );
    eprintln!(
        "\n==================== SKIP ====================\n\
         RabbitMQ is not reachable at {BROKER_ADDR} ({why}).\n\
         This test did NOT run. Start a broker, or set CI=1 to make this fail.\n\
         ==============================================\n"
    );
    None
}

/// A queue name of this test and this run: the process id, a counter and the time tell
/// it from every other test's, in this run and in any other.
pub fn unique(name: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos();
    format!(
        "test.msvc-runtime.{name}.{}.{n}.{nanos}",
        std::process::id()
    )
}

/// The same plain declaration a Python publisher makes: durable, no arguments.
pub async fn declare_plain(channel: &Channel, queue: &str) -> lapin::Queue {
    channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions::durable(),
            FieldTable::default(),
        )
        .await
        .expect("plain durable declaration")
}

/// Messages ready in `queue`, which must exist.
pub async fn ready_messages(conn: &Connection, queue: &str) -> u32 {
    let channel = conn.create_channel().await.expect("channel");
    let q = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("queue exists");
    let _ = channel.close(200, "OK".into()).await;
    q.message_count()
}

/// The queues a test uses, with their `.dlq` queues: [`Queues::delete`] removes them at
/// the end of the test, and they are removed on drop too when the test panicked before.
pub struct Queues {
    names: Vec<String>,
}

impl Queues {
    /// `count` new queue names for the test `name`.
    pub fn new(name: &str, count: usize) -> Self {
        Self {
            names: (0..count).map(|_| unique(name)).collect(),
        }
    }

    pub fn name(&self, index: usize) -> &str {
        &self.names[index]
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Deletes every queue of the test (deleting one that does not exist is no error).
    pub async fn delete(mut self) {
        let names = std::mem::take(&mut self.names);
        delete_queues(names).await.expect("queues deleted");
    }
}

impl Drop for Queues {
    fn drop(&mut self) {
        let names = std::mem::take(&mut self.names);
        if names.is_empty() {
            return;
        }
        // The test failed before it deleted them: best effort, on a runtime of its own
        // since this may run while the test's runtime unwinds.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(delete_queues(names))
        });
        if let Ok(Err(e)) = cleanup.join() {
            eprintln!("cannot delete the test's queues: {e}");
        }
    }
}

async fn delete_queues(names: Vec<String>) -> lapin::Result<()> {
    let conn = Connection::connect(BROKER_URL, ConnectionProperties::default()).await?;
    let channel = conn.create_channel().await?;
    for queue in &names {
        for name in [queue.clone(), format!("{queue}.dlq")] {
            channel
                .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
                .await?;
        }
    }
    conn.close(200, "OK".into()).await
}

/// Waits until `check` holds, failing the test after [`WAIT`].
pub async fn eventually<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually_within(what, WAIT, check).await;
}

/// Waits until `check` holds, failing the test after `wait`.
pub async fn eventually_within<F, Fut>(what: &str, wait: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + wait;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A TCP proxy on loopback to the broker that can drop every connection and refuse new
/// ones on demand: the broker going away, as the client sees it.
pub struct Proxy {
    pub addr: SocketAddr,
    open: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<AbortHandle>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: &'static str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let open = Arc::new(AtomicBool::new(true));
        let conns = Arc::new(Mutex::new(Vec::<AbortHandle>::new()));
        let accept = tokio::spawn({
            let open = open.clone();
            let conns = conns.clone();
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if !open.load(Ordering::SeqCst) {
                        // Refused: closed before the AMQP handshake can start.
                        drop(inbound);
                        continue;
                    }
                    let task = tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    conns.lock().expect("lock").push(task.abort_handle());
                }
            }
        });
        Self {
            addr,
            open,
            conns,
            accept,
        }
    }

    /// The broker's URL through the proxy.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@{}/%2f", self.addr)
    }

    /// Drops both sides of every proxied connection and refuses new ones.
    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for conn in self.conns.lock().expect("lock").drain(..) {
            conn.abort();
        }
    }

    /// Accepts and proxies new connections again.
    pub fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

/// An AMQP URL nobody listens on (a port bound, then released).
pub async fn closed_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    format!("amqp://guest:guest@{addr}/%2f")
}

pub const POSTGRES_ADDR: &str = "127.0.0.1:5432";
const POSTGRES_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database of the test's own on the shared PostgreSQL server, dropped by
/// [`TestDb::drop_now`].
pub struct TestDb {
    pub name: String,
    pub url: String,
    admin: sqlx::PgPool,
}

/// Creates a database of this test's own, or `None` (after a loud SKIP) when the server
/// is absent outside CI.
pub async fn postgres(label: &str) -> Option<TestDb> {
    use sqlx::Executor as _;
    let admin = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect(POSTGRES_ADMIN_URL)
        .await;
    let admin = match admin {
        Ok(admin) => admin,
        Err(why) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "PostgreSQL at {POSTGRES_ADDR} is required when CI is set: {why}"
            );
            eprintln!(
                "\n==================== SKIP ====================\n\
                 PostgreSQL is not reachable at {POSTGRES_ADDR} ({why}).\n\
                 This test did NOT run. Start a server, or set CI=1 to make this fail.\n\
                 ==============================================\n"
            );
            return None;
        }
    };
    let name = unique(label).replace(['.', '-'], "_");
    let name = format!("rt_{}", &name["test_msvc_runtime_".len()..]);
    admin
        .execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
        .await
        .expect("create the test's database");
    Some(TestDb {
        url: format!("postgres://postgres@{POSTGRES_ADDR}/{name}"),
        name,
        admin,
    })
}

impl TestDb {
    /// The database's URL through `proxy`.
    pub fn url_via(&self, proxy: &Proxy) -> String {
        format!("postgres://postgres@{}/{}", proxy.addr, self.name)
    }

    /// Drops the database, whoever is still connected.
    pub async fn drop_now(self) {
        use sqlx::Executor as _;
        self.admin
            .execute(format!(r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#, self.name).as_str())
            .await
            .expect("drop the test's database");
        self.admin.close().await;
    }
}
