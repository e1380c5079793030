//! The worker: consumes RabbitMQ queues and runs a handler for each message, with the
//! admin endpoints beside it.
//!
//! A worker's crate names its queues and handlers in a [`Route`] type (its `routes.rs`,
//! generated from `consumes` in services.toml) and calls [`serve`]; the consumer loop
//! ([`consumer`]) does the rest: concurrency, batched acks, retry and dead-lettering,
//! reconnects, and answers to the probes of `msvc test` ([`probe`]).

pub mod consumer;
pub mod metrics;
pub mod probe;

use std::{fmt, future::Future, sync::Arc, time::Duration};

use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

pub use self::consumer::{ProcessError, decode};
pub use self::metrics::Metrics;
use crate::{
    Error,
    admin::{self, Health},
    config::{ConfigError, Env, ServiceConfig},
    shutdown::{self, Shutdown},
};

/// Broker when `AMQP_URL` is not set.
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// Unacknowledged deliveries the broker may push to a queue's consumer (`WORKER_PREFETCH`).
/// They wait in this instance: with slow handlers and several instances on one queue, a
/// lower value spreads the messages more evenly.
pub const PREFETCH: u16 = 256;
/// Deliveries of a queue handled at once (`WORKER_CONCURRENCY`), on the queue's consumer
/// task; at most the prefetch.
pub const CONCURRENCY: usize = 32;
/// Handler attempts per message before it is dead-lettered.
pub const MAX_ATTEMPTS: u32 = 5;

/// Why a message could not be handled.
#[derive(Debug)]
pub enum HandlerError {
    /// Worth retrying (e.g. a downstream service is down); retried up to `MAX_ATTEMPTS`.
    Transient(String),
    /// Will never succeed (e.g. the user does not exist); dead-lettered at once.
    Permanent(String),
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandlerError::Transient(reason) => write!(f, "transient failure: {reason}"),
            HandlerError::Permanent(reason) => write!(f, "permanent failure: {reason}"),
        }
    }
}

impl std::error::Error for HandlerError {}

/// A message type together with the handler for it: one value per consumed queue.
pub trait Route: Copy + fmt::Debug + PartialEq + Send + Sync + 'static {
    /// Every route, each consumed from its own queue by default.
    const ALL: &'static [Self];

    /// The queue the `contracts` crate assigns to this route's message type.
    fn queue(self) -> &'static str;

    /// Decodes the message's payload as this route's message type and runs its handler.
    fn dispatch(
        self,
        message: Message<'_>,
    ) -> impl Future<Output = Result<(), ProcessError>> + Send;
}

/// One delivery as a route's handler gets it: the payload, the publisher's message id,
/// and, for a worker with a database, the transaction the handler writes in.
#[derive(Debug)]
pub struct Message<'a> {
    /// The message's body, JSON of the route's type.
    pub payload: &'a [u8],
    /// The AMQP `message_id`, when the publisher set one (the outbox always does).
    pub id: Option<&'a str>,
    #[cfg(feature = "postgres")]
    transaction: Option<&'a mut sqlx::PgConnection>,
}

impl<'a> Message<'a> {
    /// A message with no transaction (a worker without a database, or a test).
    pub fn new(payload: &'a [u8], id: Option<&'a str>) -> Self {
        Self {
            payload,
            id,
            #[cfg(feature = "postgres")]
            transaction: None,
        }
    }

    /// The transaction the message is handled in (see [`inbox`](crate::inbox)): what the
    /// handler writes there is committed, with the message's id in the inbox, before the
    /// message is acknowledged, and rolled back if it fails. A worker that was given no
    /// database has none: that is a permanent error.
    #[cfg(feature = "postgres")]
    pub fn transaction(&mut self) -> Result<&mut sqlx::PgConnection, ProcessError> {
        self.transaction.as_deref_mut().ok_or_else(|| {
            ProcessError::Handler(HandlerError::Permanent(
                "this worker was started without a database (WorkerConfig::with_database)"
                    .to_owned(),
            ))
        })
    }
}

/// A worker's database: the pool its handlers' transactions come from, and its
/// migrations, applied at start (see [`db::start`](crate::db::start)).
#[cfg(feature = "postgres")]
#[derive(Clone, Debug)]
pub struct WorkerDatabase {
    pub pool: sqlx::PgPool,
    pub migrator: &'static sqlx::migrate::Migrator,
}

/// One queue to consume and the route (message type and handler) for its messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueConfig<R> {
    pub name: String,
    pub route: R,
}

impl<R: Route> QueueConfig<R> {
    /// The route's own queue, as named in `contracts`.
    pub fn for_route(route: R) -> Self {
        Self {
            name: route.queue().to_owned(),
            route,
        }
    }
}

/// What the consumer loop needs: the broker, the queues, and how hard to work them.
#[derive(Clone, Debug)]
pub struct WorkerConfig<R> {
    /// The service's name: the broker connection's name and the probes' replies carry it.
    pub service: &'static str,
    /// `AMQP_URL`.
    pub amqp_url: String,
    /// Each queue gets its own consumer task; all share one connection.
    pub queues: Vec<QueueConfig<R>>,
    /// `WORKER_PREFETCH`.
    pub prefetch: u16,
    /// `WORKER_CONCURRENCY`: deliveries of each queue handled at once.
    pub concurrency: usize,
    pub max_attempts: u32,
    /// With a database, every message is handled in a transaction that records its id in
    /// the inbox, so a redelivered message is acknowledged without running its handler.
    #[cfg(feature = "postgres")]
    pub database: Option<WorkerDatabase>,
}

impl<R: Route> WorkerConfig<R> {
    /// Every route of `R` on its own queue, with the defaults above.
    pub fn new(service: &'static str, amqp_url: &str) -> Self {
        Self {
            service,
            amqp_url: amqp_url.to_owned(),
            queues: R::ALL.iter().copied().map(QueueConfig::for_route).collect(),
            prefetch: PREFETCH,
            concurrency: CONCURRENCY,
            max_attempts: MAX_ATTEMPTS,
            #[cfg(feature = "postgres")]
            database: None,
        }
    }

    /// Handles each message in a transaction of `pool`'s, recording its id in the inbox
    /// (see [`Message::transaction`]); `migrator` runs at start, and `/readyz` follows the
    /// database too.
    #[cfg(feature = "postgres")]
    #[must_use]
    pub fn with_database(
        mut self,
        pool: sqlx::PgPool,
        migrator: &'static sqlx::migrate::Migrator,
    ) -> Self {
        self.database = Some(WorkerDatabase { pool, migrator });
        self
    }

    /// Reads `AMQP_URL`, `WORKER_PREFETCH` and `WORKER_CONCURRENCY` over [`Self::new`].
    pub fn from_env(
        env: &Env,
        service: &'static str,
        default_amqp_url: &str,
    ) -> Result<Self, ConfigError> {
        let default = Self::new(service, default_amqp_url);
        Ok(Self {
            amqp_url: env.parse_or("AMQP_URL", default.amqp_url.clone(), parse_amqp_url)?,
            prefetch: env.positive("WORKER_PREFETCH", default.prefetch)?,
            concurrency: env.positive("WORKER_CONCURRENCY", default.concurrency)?,
            ..default
        })
    }
}

/// Checked at start so a typo is reported instead of as endless reconnects. The value is
/// not echoed back: it usually holds a password.
pub fn parse_amqp_url(value: &str) -> Result<String, String> {
    value
        .parse::<lapin::uri::AMQPUri>()
        .map(|_| value.to_owned())
        .map_err(|e| format!("expected an amqp:// or amqps:// URL: {e}"))
}

/// Serves the admin endpoints on `admin_listener` and consumes the configured queues
/// until `shutdown` fires; in-flight messages then get `service.shutdown_grace` to finish.
/// `/readyz` answers 200 only while every queue is being consumed.
pub async fn serve<R: Route>(
    service: &ServiceConfig,
    worker: WorkerConfig<R>,
    admin_listener: TcpListener,
    shutdown: Shutdown,
) -> Result<(), Error> {
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    for queue in &worker.queues {
        metrics.init_queue(&queue.name);
    }
    let registry = Arc::new(registry);
    // Not ready until every queue is consumed: the consumer flips it.
    let health = Health::new();
    let grace: Duration = service.shutdown_grace;

    tracing::info!(admin = %admin_listener.local_addr()?, "listening");

    #[cfg(feature = "postgres")]
    if let Some(database) = &worker.database {
        crate::db::start(
            database.pool.clone(),
            database.migrator,
            health.condition(),
            shutdown.clone(),
        );
    }
    let consumer = consumer::run(Arc::new(worker), health.clone(), metrics, shutdown.clone());
    let admin = admin::serve(admin_listener, health, registry, shutdown.clone());

    let consumer = async {
        consumer.await;
        Ok::<(), Error>(())
    };
    let admin = async { admin.await.map_err(Error::from) };
    let servers = async { tokio::try_join!(consumer, admin) };
    if let Some(result) = shutdown::with_grace(&shutdown, grace, servers).await {
        result?;
    }
    tracing::info!("shut down");
    Ok(())
}

/// Binds the configured admin port, then [`serve`]s.
pub async fn run<R: Route>(
    service: &ServiceConfig,
    worker: WorkerConfig<R>,
    shutdown: Shutdown,
) -> Result<(), Error> {
    let admin_listener = TcpListener::bind((service.host, service.admin_port.unwrap_or(0))).await?;
    serve(service, worker, admin_listener, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Only {
        Orders,
    }

    impl Route for Only {
        const ALL: &'static [Self] = &[Only::Orders];
        fn queue(self) -> &'static str {
            "orders"
        }
        async fn dispatch(self, _: Message<'_>) -> Result<(), ProcessError> {
            Ok(())
        }
    }

    #[test]
    fn defaults_consume_every_route_on_its_own_queue() {
        let config =
            WorkerConfig::<Only>::from_env(&Env::from_pairs(&[]), "w", DEFAULT_AMQP_URL).unwrap();
        assert_eq!(
            config.queues,
            [QueueConfig {
                name: "orders".into(),
                route: Only::Orders
            }]
        );
        assert_eq!(config.amqp_url, DEFAULT_AMQP_URL);
        assert_eq!(
            (config.prefetch, config.concurrency),
            (PREFETCH, CONCURRENCY)
        );
    }

    #[test]
    fn a_malformed_broker_url_is_not_echoed() {
        let error = parse_amqp_url("http://guest:s3cret@broker/").expect_err("not amqp");
        assert!(!error.contains("s3cret"), "{error}");
        assert_eq!(
            parse_amqp_url("amqps://u:p@broker:5671/vhost").as_deref(),
            Ok("amqps://u:p@broker:5671/vhost")
        );
    }

    #[test]
    fn overrides_and_malformed_values() {
        let env = Env::from_pairs(&[
            ("AMQP_URL", "amqp://u:p@broker:5672/%2f"),
            ("WORKER_PREFETCH", "100"),
            ("WORKER_CONCURRENCY", "4"),
        ]);
        let config = WorkerConfig::<Only>::from_env(&env, "w", DEFAULT_AMQP_URL).unwrap();
        assert_eq!(config.amqp_url, "amqp://u:p@broker:5672/%2f");
        assert_eq!((config.prefetch, config.concurrency), (100, 4));
        for (variable, value) in [
            ("AMQP_URL", "http://x"),
            ("WORKER_PREFETCH", "0"),
            ("WORKER_CONCURRENCY", "many"),
        ] {
            let error = WorkerConfig::<Only>::from_env(
                &Env::from_pairs(&[(variable, value)]),
                "w",
                DEFAULT_AMQP_URL,
            )
            .expect_err(value);
            assert_eq!(error.variable, variable);
        }
    }
}
