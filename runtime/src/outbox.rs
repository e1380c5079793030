//! The transactional outbox (feature `postgres`): a handler writes its rows and
//! [`enqueue`]s its message in the same transaction, and the service's [`Relay`]
//! publishes what was committed, with publisher confirms, deleting a row only after the
//! broker confirmed its message. A crash between the commit and the publish loses
//! nothing (the row is still there when the service is back), and a broker that is down
//! delays messages instead of failing requests.
//!
//! - The message id is the row's (`msvc_outbox.id`, a UUID), carried as the AMQP
//!   `message_id`, so a consumer can tell a redelivery (see [`inbox`](crate::inbox)):
//!   a message is published at least once, and again if the relay stops between the
//!   broker's confirm and the delete.
//! - The relay wakes on `NOTIFY msvc_outbox`, sent by [`enqueue`] and delivered at the
//!   commit, and polls as a fallback ([`Relay::with_poll_interval`]).
//! - A relay's round first takes a lock per queue (`pg_try_advisory_xact_lock`), then
//!   the rows of the queues it holds: replicas share the work queue by queue, and the
//!   messages of one queue go out in the order they were committed.
//! - [`OutboxMetrics`] shows the backlog and the age of its oldest message.

use std::{sync::Arc, time::Duration};

use prometheus_client::{
    metrics::{counter::Counter, gauge::Gauge},
    registry::Registry,
};
use serde::Serialize;
use sqlx::{PgConnection, PgPool, Row, postgres::PgListener};

use crate::{
    QueueMessage,
    amqp::{Envelope, PublishError, Publisher},
    shutdown::Shutdown,
};

/// The channel [`enqueue`] notifies and the relay listens on.
pub const CHANNEL: &str = "msvc_outbox";

/// How many rows one round of the relay publishes at most.
const BATCH: i64 = 256;

/// Why a message could not be enqueued or relayed.
#[derive(Debug)]
pub enum OutboxError {
    Encode(serde_json::Error),
    Database(sqlx::Error),
    Publish(PublishError),
}

impl std::fmt::Display for OutboxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Encode(e) => write!(f, "cannot encode the message: {e}"),
            Self::Database(e) => write!(f, "database: {e}"),
            Self::Publish(e) => write!(f, "broker: {e}"),
        }
    }
}

impl std::error::Error for OutboxError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Encode(e) => Some(e),
            Self::Database(e) => Some(e),
            Self::Publish(e) => Some(e),
        }
    }
}

impl From<sqlx::Error> for OutboxError {
    fn from(e: sqlx::Error) -> Self {
        Self::Database(e)
    }
}

/// Adds `message` to the outbox in the caller's transaction (`&mut *tx`), bound for
/// its queue, [`QueueMessage::QUEUE`]: it is published once the transaction commits,
/// and never if it rolls back. Returns the message's id.
pub async fn enqueue<M: QueueMessage>(
    tx: &mut PgConnection,
    message: &M,
) -> Result<String, OutboxError> {
    enqueue_to(tx, M::QUEUE, message, &[]).await
}

/// Like [`enqueue`], to a queue named at run time and with headers (a trace context).
pub async fn enqueue_to<T: Serialize + ?Sized>(
    tx: &mut PgConnection,
    queue: &str,
    message: &T,
    headers: &[(String, String)],
) -> Result<String, OutboxError> {
    let body = serde_json::to_vec(message).map_err(OutboxError::Encode)?;
    let headers = serde_json::to_value(headers).map_err(OutboxError::Encode)?;
    let id: String = sqlx::query_scalar(
        "INSERT INTO msvc_outbox (queue, body, headers) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(queue)
    .bind(body)
    .bind(headers)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(CHANNEL)
        .execute(&mut *tx)
        .await?;
    Ok(id)
}

/// The outbox's gauges on `/metrics`, set by the relay after each round.
#[derive(Clone, Debug, Default)]
pub struct OutboxMetrics {
    backlog: Gauge,
    oldest_age: Gauge<f64, std::sync::atomic::AtomicU64>,
    published: Counter,
}

impl OutboxMetrics {
    /// Registers `outbox_backlog`, `outbox_oldest_age_seconds` and
    /// `outbox_published_total` in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "outbox_backlog",
            "Messages committed to the outbox and not yet confirmed by the broker",
            metrics.backlog.clone(),
        );
        registry.register(
            "outbox_oldest_age_seconds",
            "Age of the oldest message waiting in the outbox (0 when it is empty)",
            metrics.oldest_age.clone(),
        );
        registry.register(
            "outbox_published",
            "Messages the relay published and the broker confirmed",
            metrics.published.clone(),
        );
        metrics
    }
}

/// Publishes what the service's transactions committed to the outbox.
#[derive(Clone, Debug)]
pub struct Relay {
    pool: PgPool,
    publisher: Publisher,
    poll: Duration,
    metrics: Arc<OutboxMetrics>,
}

impl Relay {
    pub fn new(pool: PgPool, publisher: Publisher) -> Self {
        Self {
            pool,
            publisher,
            poll: Duration::from_secs(1),
            metrics: Arc::default(),
        }
    }

    /// How often the relay looks for messages without a notification (default 1 s).
    #[must_use]
    pub fn with_poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// Sets the gauges of `metrics` as the relay goes.
    #[must_use]
    pub fn with_metrics(mut self, metrics: OutboxMetrics) -> Self {
        self.metrics = Arc::new(metrics);
        self
    }

    /// Runs the relay until `shutdown` fires: a round right away, then one on each
    /// notification and at least every poll interval. Errors (database or broker) are
    /// logged and the round is tried again after a backoff.
    pub fn spawn(self, shutdown: Shutdown) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move { self.run(shutdown).await })
    }

    async fn run(self, shutdown: Shutdown) {
        let stop = shutdown.wait();
        tokio::pin!(stop);
        let mut listener: Option<PgListener> = None;
        let mut backoff = self.poll;
        loop {
            if listener.is_none() {
                listener = self.listen().await;
            }
            let waited = match self.drain().await {
                Ok(()) => {
                    backoff = self.poll;
                    self.poll
                }
                Err(error) => {
                    tracing::warn!(%error, "the outbox relay failed; retrying");
                    let wait = backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    wait
                }
            };
            let _ = self.update_metrics().await;
            let notified = async {
                match listener.as_mut() {
                    Some(l) => l.recv().await.map(|_| ()),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(waited) => {}
                received = notified => {
                    if received.is_err() {
                        listener = None;
                    }
                }
            }
        }
    }

    async fn listen(&self) -> Option<PgListener> {
        let mut listener = PgListener::connect_with(&self.pool).await.ok()?;
        listener.listen(CHANNEL).await.ok()?;
        Some(listener)
    }

    /// Relays rounds until the outbox has nothing this relay may take.
    async fn drain(&self) -> Result<(), OutboxError> {
        while self.relay_once().await? == BATCH as usize {}
        Ok(())
    }

    /// One round: takes up to a batch of rows of the queues no other relay holds, in
    /// order, sends them all, then deletes those the broker confirmed, up to the first
    /// that failed (which stays, with those after it, for the next round). Returns how
    /// many were published.
    pub async fn relay_once(&self) -> Result<usize, OutboxError> {
        let mut tx = self.pool.begin().await?;
        // The queues are locked first, in a statement of their own, so the rows are read
        // with a snapshot taken after the locks: a relay that held a queue and committed
        // while this one was scanning cannot leave an earlier row of it behind a later one.
        let queues: Vec<String> = sqlx::query_scalar(
            "SELECT queue FROM (SELECT DISTINCT queue FROM msvc_outbox) AS waiting
             WHERE pg_try_advisory_xact_lock(hashtextextended('msvc_outbox:' || queue, 0))",
        )
        .fetch_all(&mut *tx)
        .await?;
        if queues.is_empty() {
            tx.commit().await?;
            return Ok(0);
        }
        let rows = sqlx::query(
            "SELECT seq, id, queue, body, headers FROM msvc_outbox
             WHERE queue = ANY($1) ORDER BY seq LIMIT $2 FOR UPDATE",
        )
        .bind(&queues)
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            tx.commit().await?;
            return Ok(0);
        }
        let mut sent = Vec::with_capacity(rows.len());
        let mut failure = None;
        for row in &rows {
            let seq: i64 = row.try_get("seq")?;
            let queue: String = row.try_get("queue")?;
            let body: Vec<u8> = row.try_get("body")?;
            let headers: serde_json::Value = row.try_get("headers")?;
            let envelope = Envelope {
                message_id: Some(row.try_get("id")?),
                headers: serde_json::from_value(headers).unwrap_or_default(),
            };
            let queue = self.publisher.prefixed(&queue);
            match self
                .publisher
                .send_encoded(&queue, body.into(), &envelope)
                .await
            {
                Ok(confirm) => sent.push((seq, confirm)),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let mut confirmed = Vec::with_capacity(sent.len());
        for (seq, confirm) in sent {
            if failure.is_some() {
                // Its fate is unknown once an earlier one failed: it goes again later.
                drop(confirm);
                continue;
            }
            match confirm.confirmed().await {
                Ok(()) => confirmed.push(seq),
                Err(e) => failure = Some(e),
            }
        }
        if !confirmed.is_empty() {
            sqlx::query("DELETE FROM msvc_outbox WHERE seq = ANY($1)")
                .bind(&confirmed)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.metrics.published.inc_by(confirmed.len() as u64);
        match failure {
            Some(e) => Err(OutboxError::Publish(e)),
            None => Ok(confirmed.len()),
        }
    }

    async fn update_metrics(&self) -> Result<(), sqlx::Error> {
        let row = sqlx::query(
            "SELECT count(*) AS backlog,
                    COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8 AS age
             FROM msvc_outbox",
        )
        .fetch_one(&self.pool)
        .await?;
        self.metrics.backlog.set(row.try_get("backlog")?);
        self.metrics.oldest_age.set(row.try_get("age")?);
        Ok(())
    }
}
