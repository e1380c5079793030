//! RabbitMQ side: connect, declare, consume, retry or dead-letter, reconnect with backoff.
//!
//! Queues are declared `durable` with no arguments, exactly like a publisher that runs
//! `queue_declare(queue=..., durable=True)`: RabbitMQ refuses a redeclaration whose
//! arguments differ (PRECONDITION_FAILED), so retry and dead-lettering are done here,
//! explicitly, instead of with `x-dead-letter-exchange` queue arguments.
//!
//! - Deliveries of a queue are handled concurrently, up to `concurrency` at a time (and
//!   at most `prefetch`, what the broker sends ahead), on the queue's consumer task: a
//!   handler that awaits I/O lets the others run; one that computes for long should do
//!   that in `tokio::task::spawn_blocking`.
//! - Success: the delivery is acked after the handler returned `Ok`. Acks go out in
//!   batches: one `basic.ack` with `multiple` set covers a run of consecutive deliveries
//!   that all succeeded, never one whose handler failed or is still running (see
//!   [`AckWindow`]).
//! - Undecodable payload, or [`HandlerError::Permanent`]: the message is published
//!   (persistent, confirmed) to the durable queue `<queue>.dlq` with the headers below,
//!   then the original is acked.
//! - [`HandlerError::Transient`]: attempts so far = [`ATTEMPTS_HEADER`] (failed attempts
//!   recorded on this copy, default 0) + 1 if the broker set `redelivered` + 1 for this
//!   one. At `max_attempts` the message is dead-lettered. Below it, a first delivery is
//!   nacked with requeue (the broker redelivers it with `redelivered` set); a redelivered
//!   one is republished to the back of its queue with the updated [`ATTEMPTS_HEADER`] and
//!   the original acked, because a requeued message cannot carry a new header.
//! - With a database ([`WorkerConfig::with_database`], feature `postgres`): each delivery
//!   is handled in a transaction that records its `message_id` in the inbox (see
//!   [`inbox`](crate::inbox)) and is committed before the ack; a delivery whose id is
//!   there already is acked without running the handler, and one met while the database
//!   is unreachable is requeued after a pause, not counted as an attempt.

use std::{
    any::Any,
    collections::VecDeque,
    fmt,
    hash::{BuildHasher, RandomState},
    panic::AssertUnwindSafe,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, Waker},
    time::Duration,
};

use futures_util::{FutureExt as _, StreamExt as _, stream::FuturesUnordered};
use lapin::{
    BasicProperties, Channel, Connection, ConnectionProperties, Consumer,
    message::Delivery,
    options::{
        BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions,
        BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions, QueueDeclareOptions,
    },
    types::{AMQPValue, FieldTable, LongString, ShortString},
};
use tokio::task::JoinSet;

use super::{HandlerError, Message, QueueConfig, Route, WorkerConfig, metrics::Metrics, probe};
use crate::{
    admin::Health,
    amqp::QueueMessage,
    shutdown::{self, Shutdown},
};

/// Failed handler attempts already made on this message (integer header).
pub const ATTEMPTS_HEADER: &str = "x-msvc-attempts";
/// Why a message was dead-lettered: one of the [`reason`] values.
pub const REASON_HEADER: &str = "x-msvc-dead-letter-reason";
/// The decode or handler error text, truncated.
pub const ERROR_HEADER: &str = "x-msvc-error";
/// The queue the message was consumed from.
pub const ORIGINAL_QUEUE_HEADER: &str = "x-msvc-original-queue";
/// Appended to a queue name to name its dead-letter queue.
pub const DLQ_SUFFIX: &str = ".dlq";

/// Values of [`REASON_HEADER`].
pub mod reason {
    /// The payload is not valid JSON for the queue's message type.
    pub const DECODE_ERROR: &str = "decode-error";
    /// The handler returned a permanent error.
    pub const REJECTED: &str = "rejected";
    /// The handler kept failing transiently.
    pub const MAX_ATTEMPTS: &str = "max-attempts";
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const BACKOFF_BASE: Duration = Duration::from_millis(200);
const BACKOFF_CAP: Duration = Duration::from_secs(30);
const MAX_ERROR_HEADER_LEN: usize = 1024;
/// How long a success may wait to be acked together with the ones after it.
const ACK_LINGER: Duration = Duration::from_millis(1);
const PERSISTENT: u8 = 2;

/// Name of the dead-letter queue of `queue`.
pub fn dead_letter_queue(queue: &str) -> String {
    format!("{queue}{DLQ_SUFFIX}")
}

/// Why a delivery could not be processed.
#[derive(Debug)]
pub enum ProcessError {
    Decode(serde_json::Error),
    Handler(HandlerError),
}

impl fmt::Display for ProcessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessError::Decode(e) => write!(f, "cannot decode message: {e}"),
            ProcessError::Handler(e) => write!(f, "handler failed: {e}"),
        }
    }
}

impl std::error::Error for ProcessError {}

/// Decodes a JSON payload into a queue's message type.
pub fn decode<M: QueueMessage>(payload: &[u8]) -> Result<M, ProcessError> {
    serde_json::from_slice(payload).map_err(ProcessError::Decode)
}

/// Why a session with the broker ended; all of them lead to a reconnect.
#[derive(Debug)]
enum SessionError {
    Amqp(lapin::Error),
    ConnectTimeout,
    Other(String),
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Amqp(e) => write!(f, "{e}"),
            SessionError::ConnectTimeout => write!(f, "no connection within {CONNECT_TIMEOUT:?}"),
            SessionError::Other(e) => f.write_str(e),
        }
    }
}

impl From<lapin::Error> for SessionError {
    fn from(e: lapin::Error) -> Self {
        SessionError::Amqp(e)
    }
}

/// Consumes every configured queue until `shutdown` fires, reconnecting as needed.
///
/// `health` is ready only while all queues are being consumed.
pub async fn run<R: Route>(
    config: Arc<WorkerConfig<R>>,
    health: Health,
    metrics: Metrics,
    shutdown: Shutdown,
) {
    let mut backoff = Backoff::new(BACKOFF_BASE, BACKOFF_CAP);
    loop {
        let result = session(&config, &health, &metrics, &mut backoff, &shutdown).await;
        health.set_ready(false);
        match result {
            Ok(()) => return,
            Err(e) => tracing::warn!(error = %e, "broker session ended"),
        }
        let delay = backoff.next_delay();
        tracing::info!(delay_ms = delay.as_millis(), "reconnecting to the broker");
        tokio::select! {
            () = shutdown.wait() => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
}

/// One connection's life: `Ok` when stopped on request, `Err` when it must be redone.
async fn session<R: Route>(
    config: &Arc<WorkerConfig<R>>,
    health: &Health,
    metrics: &Metrics,
    backoff: &mut Backoff,
    shutdown: &Shutdown,
) -> Result<(), SessionError> {
    let setup = async {
        let conn = connect(&config.amqp_url, config.service).await?;
        let mut consumers = Vec::with_capacity(config.queues.len());
        for queue in &config.queues {
            // On error `conn` is dropped, which closes it and every channel opened so far.
            consumers.push(QueueConsumer::start(&conn, queue, config, metrics).await?);
        }
        Ok::<_, SessionError>((conn, consumers))
    };
    let (conn, consumers) = tokio::select! {
        () = shutdown.wait() => return Ok(()),
        res = setup => res?,
    };

    health.set_ready(true);
    backoff.reset();
    tracing::info!(
        queues = ?config.queues.iter().map(|q| q.name.as_str()).collect::<Vec<_>>(),
        "connected to the broker, consuming"
    );

    // Kept alive until every task has been joined: dropping it would fire it.
    let (abort_trigger, abort) = shutdown::channel();
    let mut tasks = JoinSet::new();
    for consumer in consumers {
        tasks.spawn(consumer.run(shutdown.clone(), abort.clone()));
    }
    let mut result = Ok(());
    while let Some(joined) = tasks.join_next().await {
        let outcome = joined
            .map_err(|e| SessionError::Other(format!("consumer task failed: {e}")))
            .and_then(|r| r);
        if let Err(e) = outcome
            && result.is_ok()
        {
            // The connection or one of its channels is unusable: end the other consumers
            // too and start over, so every queue comes back with the new connection.
            health.set_ready(false);
            abort_trigger.fire();
            result = Err(e);
        }
    }
    let text = if result.is_ok() { "OK" } else { "reconnecting" };
    if let Err(e) = conn.close(200, text.into()).await
        && result.is_ok()
    {
        tracing::warn!(error = %e, "cannot close the broker connection cleanly");
    }
    if result.is_ok() {
        tracing::info!("broker connection closed");
    }
    result
}

async fn connect(url: &str, service: &str) -> Result<Connection, SessionError> {
    let properties = ConnectionProperties::default().with_connection_name(service.into());
    match tokio::time::timeout(CONNECT_TIMEOUT, Connection::connect(url, properties)).await {
        Ok(conn) => Ok(conn?),
        Err(_) => Err(SessionError::ConnectTimeout),
    }
}

/// What to do with a message whose handler failed transiently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Nack with requeue; the broker redelivers it with `redelivered` set.
    Requeue,
    /// Publish a copy with this [`ATTEMPTS_HEADER`] value, then ack the original.
    Republish(u32),
    /// Give up: dead-letter with this many attempts.
    DeadLetter(u32),
}

fn retry_decision(recorded: u32, redelivered: bool, max_attempts: u32) -> Retry {
    let attempts = recorded
        .saturating_add(u32::from(redelivered))
        .saturating_add(1);
    if attempts >= max_attempts {
        Retry::DeadLetter(attempts)
    } else if redelivered {
        Retry::Republish(attempts)
    } else {
        Retry::Requeue
    }
}

/// Reads [`ATTEMPTS_HEADER`], whatever integer type the publisher used.
fn recorded_attempts(properties: &BasicProperties) -> u32 {
    let Some(value) = properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(ATTEMPTS_HEADER))
    else {
        return 0;
    };
    let n: i64 = match value {
        AMQPValue::ShortShortInt(v) => (*v).into(),
        AMQPValue::ShortShortUInt(v) => (*v).into(),
        AMQPValue::ShortInt(v) => (*v).into(),
        AMQPValue::ShortUInt(v) => (*v).into(),
        AMQPValue::LongInt(v) => (*v).into(),
        AMQPValue::LongUInt(v) => (*v).into(),
        AMQPValue::LongLongInt(v) => *v,
        AMQPValue::LongString(s) => std::str::from_utf8(s.as_bytes())
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0),
        _ => 0,
    };
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

fn short(name: &str) -> Result<ShortString, SessionError> {
    ShortString::try_new(name)
        .map_err(|e| SessionError::Other(format!("queue name `{name}` is too long: {e}")))
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The consumer of one queue, with its own channels on the shared connection.
struct QueueConsumer<R> {
    channel: Channel,
    consumer: Consumer,
    /// Deliveries handled at once.
    concurrency: usize,
    /// Successes that may wait for a slower delivery before they are acked one by one.
    max_waiting_acks: usize,
    /// Successes acked in one frame while more deliveries keep coming.
    ack_batch: usize,
    /// What handling one delivery needs, shared by the deliveries in flight.
    deliveries: Arc<Deliveries<R>>,
}

/// One delivery being handled: its tag and how its handling ended.
type Handling = Pin<Box<dyn Future<Output = Result<(u64, Settled), SessionError>> + Send>>;

/// Handles the deliveries of one queue: runs the handler, then retries or dead-letters.
struct Deliveries<R> {
    queue: ShortString,
    dlq: ShortString,
    route: R,
    /// Named in the replies to probes.
    service: &'static str,
    max_attempts: u32,
    /// Separate channel in confirm mode, so republished and dead-lettered copies are
    /// known to be stored before the original is acked.
    publisher: Channel,
    metrics: Metrics,
    /// Where each message is handled in a transaction with the inbox.
    #[cfg(feature = "postgres")]
    database: Option<sqlx::PgPool>,
}

/// What running a delivery's handler came to.
enum Handled {
    Ran(Result<(), ProcessError>),
    /// Its id is in the inbox: it was handled before, and is acked again.
    #[cfg(feature = "postgres")]
    Duplicate(String),
    /// The database could not be reached: requeued, and not counted as an attempt.
    #[cfg(feature = "postgres")]
    Unavailable(String),
}

#[cfg(feature = "postgres")]
impl Handled {
    fn database_failure(error: &sqlx::Error) -> Self {
        if crate::db::is_unreachable(error) {
            Self::Unavailable(error.to_string())
        } else {
            let reason = format!("database: {error}");
            Self::Ran(Err(ProcessError::Handler(HandlerError::Transient(reason))))
        }
    }
}

/// How long a delivery waits before it is requeued because the database is down, so a
/// worker does not spin on its queue meanwhile.
#[cfg(feature = "postgres")]
const UNAVAILABLE_PAUSE: Duration = Duration::from_secs(1);

/// How a delivery's handling ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settled {
    /// The handler succeeded: the delivery is to be acked, with its neighbours.
    Succeeded,
    /// Already acked or nacked on its own (dead-lettered, republished or requeued).
    Done,
}

impl<R: Route> QueueConsumer<R> {
    async fn start(
        conn: &Connection,
        queue: &QueueConfig<R>,
        config: &WorkerConfig<R>,
        metrics: &Metrics,
    ) -> Result<Self, SessionError> {
        let name = short(&queue.name)?;
        let dlq = short(&dead_letter_queue(&queue.name))?;
        let channel = conn.create_channel().await?;
        channel
            .queue_declare(
                name.clone(),
                QueueDeclareOptions::durable(),
                FieldTable::default(),
            )
            .await?;
        channel
            .basic_qos(config.prefetch, BasicQosOptions::default())
            .await?;
        let publisher = conn.create_channel().await?;
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        publisher
            .queue_declare(
                dlq.clone(),
                QueueDeclareOptions::durable(),
                FieldTable::default(),
            )
            .await?;
        let consumer = channel
            .basic_consume(
                name.clone(),
                // Empty: the broker generates a unique tag.
                ShortString::default(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(Self {
            channel,
            consumer,
            concurrency: config.concurrency.max(1),
            max_waiting_acks: usize::from(config.prefetch / 2),
            ack_batch: usize::from(config.prefetch / 4).max(1),
            deliveries: Arc::new(Deliveries {
                queue: name,
                dlq,
                route: queue.route,
                service: config.service,
                max_attempts: config.max_attempts,
                publisher,
                metrics: metrics.clone(),
                #[cfg(feature = "postgres")]
                database: config.database.as_ref().map(|d| d.pool.clone()),
            }),
        })
    }

    /// Handles deliveries, up to `concurrency` at once, until `shutdown` (graceful: the
    /// deliveries in flight are finished and acked) or `abort` (session over).
    ///
    /// Acks go out once `ack_batch` successes are ready, or [`ACK_LINGER`] after the
    /// first of them was: fewer, larger acks cost the broker less.
    async fn run(mut self, shutdown: Shutdown, abort: Shutdown) -> Result<(), SessionError> {
        let stopping = shutdown.wait();
        let aborted = abort.wait();
        tokio::pin!(stopping, aborted);
        // The deliveries being handled, run by this task: no task per delivery.
        let mut in_flight: FuturesUnordered<Handling> = FuturesUnordered::new();
        let mut acks = AckWindow::new(self.max_waiting_acks);
        // Acks queued on the channel, until lapin has written them.
        let mut writing = FuturesUnordered::new();
        // Set while successes wait for more to be acked with them.
        let linger = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(linger);
        let mut lingering = false;
        loop {
            let mut due = false;
            tokio::select! {
                biased;
                () = &mut stopping => break,
                // Dropping `in_flight` cancels the handlers; the broker requeues their
                // deliveries when the connection closes.
                () = &mut aborted => return Ok(()),
                Some(written) = writing.next(), if !writing.is_empty() => written?,
                Some(handled) = in_flight.next(), if !in_flight.is_empty() => {
                    let (tag, settled) = handled?;
                    acks.finished(tag, settled);
                }
                next = self.consumer.next(), if in_flight.len() < self.concurrency => match next {
                    Some(Ok(delivery)) => {
                        acks.started(delivery.delivery_tag);
                        let deliveries = self.deliveries.clone();
                        in_flight.push(Box::pin(async move {
                            let tag = delivery.delivery_tag;
                            deliveries.process(delivery).await.map(|settled| (tag, settled))
                        }));
                    }
                    Some(Err(e)) => return Err(e.into()),
                    None => {
                        return Err(SessionError::Other(format!(
                            "consumer of `{}` was cancelled by the broker",
                            self.deliveries.queue
                        )));
                    }
                },
                () = &mut linger, if lingering => due = true,
            }
            // Whatever else finished meanwhile goes into the same acks.
            while let Some(Some(handled)) = in_flight.next().now_or_never() {
                let (tag, settled) = handled?;
                acks.finished(tag, settled);
            }
            let ready = acks.ready();
            if due || ready >= self.ack_batch {
                self.send_acks(&mut acks, &mut writing)?;
                lingering = false;
            } else if ready > 0 && !lingering {
                linger
                    .as_mut()
                    .reset(tokio::time::Instant::now() + ACK_LINGER);
                lingering = true;
            }
        }
        // Deliveries prefetched but not started are requeued by the broker on channel close.
        let queue = self.deliveries.queue.clone();
        if let Err(e) = self
            .channel
            .basic_cancel(self.consumer.tag(), BasicCancelOptions::default())
            .await
        {
            tracing::warn!(%queue, error = %e, "cannot cancel the consumer");
        }
        while let Some(handled) = in_flight.next().await {
            let (tag, settled) = handled?;
            acks.finished(tag, settled);
        }
        self.send_acks(&mut acks, &mut writing)?;
        while let Some(written) = writing.next().await {
            written?;
        }
        for channel in [&self.channel, &self.deliveries.publisher] {
            if let Err(e) = channel.close(200, "OK".into()).await {
                tracing::warn!(%queue, error = %e, "cannot close a channel");
            }
        }
        tracing::info!(%queue, "stopped consuming");
        Ok(())
    }

    /// Acks what [`AckWindow`] allows, and counts those messages as processed. The acks
    /// are queued on the channel in order; what is left of each, waiting for lapin to
    /// write it, goes to `writing`, so that handling goes on meanwhile.
    fn send_acks(
        &self,
        acks: &mut AckWindow,
        writing: &mut FuturesUnordered<Queued>,
    ) -> Result<(), SessionError> {
        let Some(batch) = acks.take() else {
            return Ok(());
        };
        let singles = batch.single.iter().map(|&tag| (tag, false));
        for (tag, multiple) in batch
            .up_to
            .map(|tag| (tag, true))
            .into_iter()
            .chain(singles)
        {
            if let Some(ack) = queue_ack(&self.channel, tag, multiple)? {
                writing.push(ack);
            }
        }
        self.deliveries
            .metrics
            .processed(self.deliveries.queue.as_str(), batch.count);
        Ok(())
    }
}

impl<R: Route> Deliveries<R> {
    /// Handles one delivery: runs its handler; on failure retries or dead-letters it and
    /// settles it here. A success is left for the caller to ack.
    async fn process(&self, delivery: Delivery) -> Result<Settled, SessionError> {
        let queue = self.queue.as_str();
        // A probe from `msvc test` is answered and acked there, never handled or counted.
        if probe::answer(&delivery, queue, self.service, &self.publisher).await? {
            return Ok(Settled::Done);
        }
        let metrics = &self.metrics;
        // Without a database, running the handler is the only outcome.
        #[cfg_attr(
            not(feature = "postgres"),
            allow(clippy::infallible_destructuring_match)
        )]
        let result = match self.handle(&delivery).await {
            Handled::Ran(result) => result,
            #[cfg(feature = "postgres")]
            Handled::Duplicate(id) => {
                tracing::info!(
                    queue,
                    message_id = id,
                    "handled before; acknowledging it again"
                );
                return Ok(Settled::Succeeded);
            }
            #[cfg(feature = "postgres")]
            Handled::Unavailable(error) => {
                tracing::warn!(queue, %error, "the database is unreachable; requeueing");
                tokio::time::sleep(UNAVAILABLE_PAUSE).await;
                let requeue = BasicNackOptions {
                    multiple: false,
                    requeue: true,
                };
                delivery.nack(requeue).await?;
                return Ok(Settled::Done);
            }
        };

        let recorded = recorded_attempts(&delivery.properties);
        match result {
            Ok(()) => return Ok(Settled::Succeeded),
            Err(ProcessError::Decode(e)) => {
                tracing::warn!(queue, error = %e, "undecodable message, dead-lettering it");
                self.dead_letter(&delivery, reason::DECODE_ERROR, &e.to_string(), recorded)
                    .await?;
                delivery.ack(BasicAckOptions::default()).await?;
                metrics.dead_lettered(queue);
            }
            Err(ProcessError::Handler(HandlerError::Permanent(e))) => {
                metrics.failed(queue);
                tracing::warn!(queue, error = %e, "handler rejected the message, dead-lettering it");
                let attempts = recorded.saturating_add(1);
                self.dead_letter(&delivery, reason::REJECTED, &e, attempts)
                    .await?;
                delivery.ack(BasicAckOptions::default()).await?;
                metrics.dead_lettered(queue);
            }
            Err(ProcessError::Handler(HandlerError::Transient(e))) => {
                metrics.failed(queue);
                match retry_decision(recorded, delivery.redelivered, self.max_attempts) {
                    Retry::Requeue => {
                        tracing::warn!(queue, error = %e, "handler failed, requeueing");
                        delivery
                            .nack(BasicNackOptions {
                                multiple: false,
                                requeue: true,
                            })
                            .await?;
                    }
                    Retry::Republish(attempts) => {
                        tracing::warn!(queue, attempts, error = %e, "handler failed, retrying later");
                        let headers = with_header(&delivery, ATTEMPTS_HEADER, attempts.into());
                        self.publish(self.queue.clone(), &delivery, headers).await?;
                        delivery.ack(BasicAckOptions::default()).await?;
                    }
                    Retry::DeadLetter(attempts) => {
                        tracing::error!(queue, attempts, error = %e, "handler kept failing, dead-lettering");
                        self.dead_letter(&delivery, reason::MAX_ATTEMPTS, &e, attempts)
                            .await?;
                        delivery.ack(BasicAckOptions::default()).await?;
                        metrics.dead_lettered(queue);
                    }
                }
            }
        }
        Ok(Settled::Done)
    }

    /// Runs the delivery's handler: in a transaction with the inbox when the worker has
    /// a database, on its own otherwise.
    async fn handle(&self, delivery: &Delivery) -> Handled {
        let id = delivery
            .properties
            .message_id()
            .as_ref()
            .map(ShortString::as_str);
        #[cfg(feature = "postgres")]
        if let Some(pool) = &self.database {
            return self.handle_in_transaction(pool, delivery, id).await;
        }
        Handled::Ran(self.run(Message::new(&delivery.data, id)).await)
    }

    /// The handler's result; a panicking handler is an ordinary transient failure.
    async fn run(&self, message: Message<'_>) -> Result<(), ProcessError> {
        AssertUnwindSafe(self.route.dispatch(message))
            .catch_unwind()
            .await
            .unwrap_or_else(|panic| {
                Err(ProcessError::Handler(HandlerError::Transient(format!(
                    "handler panicked: {}",
                    panic_message(&*panic)
                ))))
            })
    }

    /// Begins a transaction that records the message's id in the inbox (a message
    /// without an id cannot be told from a redelivery: it runs in a plain transaction),
    /// runs the handler in it and commits it if the handler succeeded: the ack follows.
    #[cfg(feature = "postgres")]
    async fn handle_in_transaction(
        &self,
        pool: &sqlx::PgPool,
        delivery: &Delivery,
        id: Option<&str>,
    ) -> Handled {
        let began = match id {
            Some(id) => crate::inbox::begin(pool, self.queue.as_str(), id).await,
            None => pool.begin().await.map(Some),
        };
        let mut tx = match began {
            Ok(Some(tx)) => tx,
            Ok(None) => return Handled::Duplicate(id.unwrap_or_default().to_owned()),
            Err(e) => return Handled::database_failure(&e),
        };
        let mut message = Message::new(&delivery.data, id);
        message.transaction = Some(&mut *tx);
        let result = self.run(message).await;
        if result.is_err() {
            // Dropping it rolls back what the handler wrote, and the inbox row.
            return Handled::Ran(result);
        }
        match tx.commit().await {
            Ok(()) => Handled::Ran(Ok(())),
            Err(e) => Handled::database_failure(&e),
        }
    }

    async fn dead_letter(
        &self,
        delivery: &Delivery,
        why: &str,
        error: &str,
        attempts: u32,
    ) -> Result<(), SessionError> {
        let mut headers = with_header(delivery, ATTEMPTS_HEADER, attempts.into());
        headers.insert(
            REASON_HEADER.into(),
            AMQPValue::LongString(LongString::from(why)),
        );
        headers.insert(
            ERROR_HEADER.into(),
            AMQPValue::LongString(LongString::from(truncate(error, MAX_ERROR_HEADER_LEN))),
        );
        headers.insert(
            ORIGINAL_QUEUE_HEADER.into(),
            AMQPValue::LongString(LongString::from(self.queue.as_str())),
        );
        self.publish(self.dlq.clone(), delivery, headers).await
    }

    /// Publishes a persistent copy of `delivery` to `queue` and waits for the broker's
    /// confirm; anything short of a routed ack is an error, so the original is kept.
    async fn publish(
        &self,
        queue: ShortString,
        delivery: &Delivery,
        headers: FieldTable,
    ) -> Result<(), SessionError> {
        let properties = delivery
            .properties
            .clone()
            .with_headers(headers)
            .with_delivery_mode(PERSISTENT);
        let confirmation = self
            .publisher
            .basic_publish(
                ShortString::default(),
                queue.clone(),
                // Mandatory: an unroutable copy comes back instead of vanishing.
                BasicPublishOptions {
                    mandatory: true,
                    immediate: false,
                },
                &delivery.data,
                properties,
            )
            .await?
            .await?;
        if !confirmation.is_ack() {
            return Err(SessionError::Other(format!(
                "broker refused the copy published to `{queue}`"
            )));
        }
        if confirmation.take_message().is_some() {
            return Err(SessionError::Other(format!(
                "copy published to `{queue}` was unroutable"
            )));
        }
        Ok(())
    }
}

/// What a panic carried, when it is text.
fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a non-text panic payload")
}

/// A `basic.ack` queued on its channel, until lapin has written it.
type Queued = Pin<Box<dyn Future<Output = lapin::Result<()>> + Send>>;

/// Starts a `basic.ack` and polls it once: lapin queues the frame on the first poll, so
/// acks go out in the order of these calls. What is left, if anything, waits for the
/// frame to be written.
fn queue_ack(channel: &Channel, tag: u64, multiple: bool) -> lapin::Result<Option<Queued>> {
    let channel = channel.clone();
    let mut ack: Queued =
        Box::pin(async move { channel.basic_ack(tag, BasicAckOptions { multiple }).await });
    // No waker is needed: the consumer polls the rest with its own.
    match ack.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Pending => Ok(Some(ack)),
        Poll::Ready(result) => result.map(|()| None),
    }
}

/// The delivery's headers plus `key = value` (as a signed 64-bit integer).
fn with_header(delivery: &Delivery, key: &str, value: i64) -> FieldTable {
    let mut headers = delivery.properties.headers().clone().unwrap_or_default();
    headers.insert(key.into(), AMQPValue::LongLongInt(value));
    headers
}

/// Which deliveries of one channel can be acked now, and how. Deliveries are tracked
/// from their start until acked, in the order the broker sent them (delivery tags grow).
///
/// An ack with `multiple` set acks every unacked delivery of the channel up to its tag,
/// so it is sent only up to the last success of the run of finished deliveries at the
/// front: a delivery whose handler is still running stops the run, and one that failed
/// was settled on its own already. Successes behind a running delivery wait for it, or
/// are acked one by one once `max_waiting` of them wait, so that one slow handler does
/// not hold the broker's prefetch window.
#[derive(Debug)]
struct AckWindow {
    /// Started and not yet acked, oldest first: `None` while the handler runs.
    pending: VecDeque<(u64, Option<Settled>)>,
    max_waiting: usize,
}

/// Acks to send, and how many messages they ack.
#[derive(Debug, Default, PartialEq, Eq)]
struct AckBatch {
    /// One ack with `multiple` set, up to and including this delivery tag.
    up_to: Option<u64>,
    /// Acks of one delivery each.
    single: Vec<u64>,
    /// Successful deliveries these acks cover.
    count: u64,
}

impl AckWindow {
    fn new(max_waiting: usize) -> Self {
        Self {
            pending: VecDeque::new(),
            max_waiting: max_waiting.max(1),
        }
    }

    /// How many successes [`AckWindow::take`] would ack now.
    fn ready(&self) -> usize {
        let front = self
            .pending
            .iter()
            .take_while(|(_, settled)| settled.is_some())
            .count();
        let succeeded =
            |(_, settled): &&(u64, Option<Settled>)| *settled == Some(Settled::Succeeded);
        let at_front = self.pending.iter().take(front).filter(succeeded).count();
        let behind = self.pending.iter().skip(front).filter(succeeded).count();
        if behind >= self.max_waiting {
            at_front + behind
        } else {
            at_front
        }
    }

    fn started(&mut self, tag: u64) {
        self.pending.push_back((tag, None));
    }

    fn finished(&mut self, tag: u64, settled: Settled) {
        if let Ok(i) = self.pending.binary_search_by_key(&tag, |&(t, _)| t) {
            self.pending[i].1 = Some(settled);
        }
    }

    /// The acks that may go out now, if any; they are no longer tracked.
    fn take(&mut self) -> Option<AckBatch> {
        let mut batch = AckBatch::default();
        while let Some(&(tag, Some(settled))) = self.pending.front() {
            self.pending.pop_front();
            if settled == Settled::Succeeded {
                batch.up_to = Some(tag);
                batch.count += 1;
            }
        }
        let succeeded =
            |&(_, settled): &(u64, Option<Settled>)| settled == Some(Settled::Succeeded);
        if self.pending.iter().filter(|d| succeeded(d)).count() >= self.max_waiting {
            self.pending.retain(|delivery| {
                if succeeded(delivery) {
                    batch.single.push(delivery.0);
                    false
                } else {
                    true
                }
            });
            batch.count += batch.single.len() as u64;
        }
        (batch.count > 0).then_some(batch)
    }
}

/// Exponential backoff with "equal jitter": half the step is fixed, half is random, so
/// workers that lost the same broker do not all come back at the same instant.
#[derive(Debug)]
struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
    random: RandomState,
}

impl Backoff {
    fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap,
            attempt: 0,
            random: RandomState::new(),
        }
    }

    fn reset(&mut self) {
        self.attempt = 0;
    }

    fn next_delay(&mut self) -> Duration {
        let step = self
            .base
            .saturating_mul(2u32.saturating_pow(self.attempt))
            .min(self.cap);
        self.attempt = self.attempt.saturating_add(1);
        let half = step / 2;
        let span = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        // RandomState is randomly keyed per process: hashing a counter gives cheap noise.
        let noise = self.random.hash_one(self.attempt) % span.saturating_add(1);
        half + Duration::from_millis(noise)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_bounded() {
        // max 5: nack, republish(2), nack, republish(4), dead-letter(5).
        assert_eq!(retry_decision(0, false, 5), Retry::Requeue);
        assert_eq!(retry_decision(0, true, 5), Retry::Republish(2));
        assert_eq!(retry_decision(2, false, 5), Retry::Requeue);
        assert_eq!(retry_decision(2, true, 5), Retry::Republish(4));
        assert_eq!(retry_decision(4, false, 5), Retry::DeadLetter(5));
        assert_eq!(retry_decision(0, false, 1), Retry::DeadLetter(1));
        assert_eq!(
            retry_decision(u32::MAX, true, 5),
            Retry::DeadLetter(u32::MAX)
        );
    }

    #[test]
    fn reads_attempts_of_any_integer_type() {
        let props = |v: AMQPValue| {
            let mut h = FieldTable::default();
            h.insert(ATTEMPTS_HEADER.into(), v);
            BasicProperties::default().with_headers(h)
        };
        assert_eq!(recorded_attempts(&BasicProperties::default()), 0);
        assert_eq!(recorded_attempts(&props(AMQPValue::LongLongInt(3))), 3);
        assert_eq!(recorded_attempts(&props(AMQPValue::ShortShortUInt(2))), 2);
        assert_eq!(recorded_attempts(&props(AMQPValue::LongInt(-4))), 0);
        assert_eq!(
            recorded_attempts(&props(AMQPValue::LongString("7".into()))),
            7
        );
    }

    #[test]
    fn backoff_grows_to_the_cap_with_jitter() {
        let mut b = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
        let first = b.next_delay();
        assert!(first >= Duration::from_millis(100) && first <= Duration::from_millis(200));
        for _ in 0..40 {
            let d = b.next_delay();
            assert!(d <= Duration::from_secs(30));
        }
        assert!(b.next_delay() >= Duration::from_secs(15));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(200));
    }

    #[test]
    fn acks_only_runs_of_consecutive_successes() {
        let mut acks = AckWindow::new(8);
        for tag in 1..=6 {
            acks.started(tag);
        }
        assert_eq!(acks.take(), None, "nothing finished");
        // 2 succeeds before 1: it waits for 1.
        acks.finished(2, Settled::Succeeded);
        assert_eq!(acks.ready(), 0);
        assert_eq!(acks.take(), None);
        // 1 succeeds, 3 fails (settled on its own), 5 succeeds, 4 still runs.
        acks.finished(1, Settled::Succeeded);
        acks.finished(3, Settled::Done);
        acks.finished(5, Settled::Succeeded);
        assert_eq!(acks.ready(), 2);
        let batch = acks.take().expect("1 and 2");
        assert_eq!(
            batch,
            AckBatch {
                up_to: Some(2),
                single: vec![],
                count: 2
            }
        );
        // 4 fails: 5 is next, up to 5 covers only 5 (3 and 4 were settled on their own).
        acks.finished(4, Settled::Done);
        assert_eq!(acks.take().and_then(|b| b.up_to), Some(5));
        // 6 fails: nothing to ack.
        acks.finished(6, Settled::Done);
        assert_eq!(acks.take(), None);
        assert!(acks.pending.is_empty());
    }

    #[test]
    fn successes_behind_a_slow_delivery_are_acked_one_by_one_when_many_wait() {
        let mut acks = AckWindow::new(2);
        for tag in 1..=4 {
            acks.started(tag);
        }
        acks.finished(3, Settled::Succeeded);
        assert_eq!(acks.take(), None, "one waits behind 1 and 2");
        acks.finished(4, Settled::Succeeded);
        assert_eq!(acks.ready(), 2);
        let batch = acks.take().expect("two wait");
        assert_eq!(
            (batch.up_to, batch.single, batch.count),
            (None, vec![3, 4], 2)
        );
        acks.finished(1, Settled::Succeeded);
        acks.finished(2, Settled::Done);
        let batch = acks.take().expect("1");
        assert_eq!((batch.up_to, batch.count), (Some(1), 1));
        assert!(acks.pending.is_empty());
    }

    #[test]
    fn names_the_dead_letter_queue_and_the_panic() {
        assert_eq!(dead_letter_queue("orders"), "orders.dlq");
        let text = std::panic::catch_unwind(|| panic!("boom {}", 1)).expect_err("panics");
        assert_eq!(panic_message(&*text), "boom 1");
        let text = std::panic::catch_unwind(|| panic!("boom")).expect_err("panics");
        assert_eq!(panic_message(&*text), "boom");
        let other = std::panic::catch_unwind(|| std::panic::panic_any(7)).expect_err("panics");
        assert_eq!(panic_message(&*other), "a non-text panic payload");
    }

    #[test]
    fn truncates_on_char_boundary() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("hello", 10), "hello");
    }
}
