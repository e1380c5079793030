//! Publishing queue messages to RabbitMQ, the way the workers' consumers expect them.
//!
//! [`Publisher::publish`] sends a [`QueueMessage`] to its queue:
//!
//! - The queue is declared durable with no arguments (once per connection), exactly like
//!   the workers and a Python `channel.queue_declare(queue=..., durable=True)` declare it:
//!   RabbitMQ refuses a redeclaration whose arguments differ.
//! - The body is the message as JSON, `content-type: application/json`, persistent
//!   (`delivery_mode` 2), sent through the default exchange with `mandatory` set.
//! - It returns once the broker confirmed the message (publisher confirms). A nack, a
//!   message returned as unroutable, a broker error or no confirm within the timeout is
//!   an error: the message was not stored, and the caller decides what to do.
//! - [`Publisher::send`] returns as soon as the message is queued for sending, with a
//!   [`Confirm`] to await later, so that many messages can wait for their confirms at
//!   once: the broker confirms a persistent message after writing it to disk, and one
//!   message at a time is bound by that latency. Each `Confirm` reports its own
//!   message's outcome, like `publish`:
//!
//!   ```no_run
//!   # async fn example(publisher: msvc_runtime::amqp::Publisher, messages: Vec<impl msvc_runtime::amqp::QueueMessage>) -> Result<(), msvc_runtime::amqp::PublishError> {
//!   let mut in_flight = std::collections::VecDeque::new();
//!   for message in &messages {
//!       if in_flight.len() == 256 {
//!           let oldest: msvc_runtime::amqp::Confirm = in_flight.pop_front().expect("256 in flight");
//!           oldest.confirmed().await?;
//!       }
//!       in_flight.push_back(publisher.send(message).await?);
//!   }
//!   for confirm in in_flight {
//!       confirm.confirmed().await?;
//!   }
//!   # Ok(())
//!   # }
//!   ```
//! - The connection is opened on first use (or up front by [`Publisher::connect`]) and
//!   shared by clones; after it dropped, the next publish opens a new one.
//!
//! - Each message carries a `message_id` (a random one unless [`Publisher::send_encoded`]
//!   gives one) and the publisher's own number for it (header `x-msvc-sequence`), by which a
//!   returned (unroutable) message is matched to the [`Confirm`] of the message it is:
//!   lapin hands a return to whichever confirm of the broker's batch of acks it
//!   completes first, so a task of the connection (its confirm driver) collects a
//!   batch's confirms and returns together before it answers any of them.
//!
//! lapin runs its I/O on a thread of its own: async tests that publish need
//! `#[tokio::test(flavor = "multi_thread")]`.

use std::{
    collections::{HashMap, HashSet},
    fmt,
    pin::Pin,
    sync::{
        Arc, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll, Waker},
    time::Duration,
};

use futures_util::{FutureExt as _, StreamExt as _, stream::FuturesUnordered};
use lapin::{
    BasicProperties, Channel, Connection, ConnectionProperties, ErrorKind, PublisherConfirm,
    options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable, LongString, ShortString},
    uri::AMQPUri,
};
use serde::Serialize;
use tokio::{
    sync::{Mutex, mpsc, oneshot},
    time::Instant,
};

pub use crate::QueueMessage;

/// The environment variable [`amqp_url`] reads.
pub const AMQP_URL_ENV: &str = "AMQP_URL";
/// How long one publish may take by default, connecting and the confirm included.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

const PERSISTENT: u8 = 2;

/// The broker URL: `AMQP_URL`, or `default` (the broker of services.toml) when it is
/// unset or empty.
pub fn amqp_url(default: &str) -> String {
    match std::env::var(AMQP_URL_ENV) {
        Ok(url) if !url.trim().is_empty() => url.trim().to_owned(),
        _ => default.to_owned(),
    }
}

/// Why a message was not published. The broker URL is never part of the text: it
/// usually holds a password.
#[derive(Debug)]
#[non_exhaustive]
pub enum PublishError {
    InvalidUrl(String),
    /// The queue name is longer than AMQP allows (255 bytes).
    InvalidQueue(String),
    Encode(serde_json::Error),
    /// Connecting, declaring or publishing failed; the next publish reconnects.
    Amqp(lapin::Error),
    /// The broker answered the publish with a nack.
    Nacked {
        queue: String,
    },
    /// The broker returned the message: no queue of that name exists (any more).
    Unroutable {
        queue: String,
    },
    /// No confirm within the publisher's timeout; the next publish reconnects.
    Timeout(Duration),
    /// The connection ended before the broker confirmed the message.
    Lost,
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUrl(reason) => write!(f, "invalid AMQP URL: {reason}"),
            Self::InvalidQueue(queue) => write!(f, "queue name `{queue}` is too long"),
            Self::Encode(e) => write!(f, "cannot encode the message as JSON: {e}"),
            Self::Amqp(e) => write!(f, "broker error: {e}"),
            Self::Nacked { queue } => write!(f, "the broker refused the message for `{queue}`"),
            Self::Unroutable { queue } => {
                write!(f, "the broker could not route the message to `{queue}`")
            }
            Self::Timeout(timeout) => write!(f, "no confirm from the broker within {timeout:?}"),
            Self::Lost => write!(f, "the connection closed before the broker confirmed"),
        }
    }
}

impl std::error::Error for PublishError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Encode(e) => Some(e),
            Self::Amqp(e) => Some(e),
            _ => None,
        }
    }
}

/// Publishes messages with confirms over one lazily (re)opened connection. Cheap to
/// clone: clones share the connection.
#[derive(Clone)]
pub struct Publisher {
    url: Arc<str>,
    timeout: Duration,
    /// Put before the queue name of every message, so a test publishes to queues of its own.
    queue_prefix: Arc<str>,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    /// Counts the connections opened, to tell a failed one from its replacement.
    opened: u64,
    session: Option<Session>,
}

/// One connection, its confirm-mode channel and the queues declared on it.
struct Session {
    id: u64,
    connection: Connection,
    channel: Channel,
    sends: Arc<Sends>,
    declared: HashSet<String>,
}

/// What a send hands to the session's confirm driver.
struct Sends {
    /// Held while lapin queues a message's frames and the message is registered with the
    /// driver (no `await` in between), so that the driver, taking it, knows every
    /// message queued so far is registered.
    lock: Arc<std::sync::Mutex<()>>,
    next_id: AtomicU64,
    register: mpsc::UnboundedSender<Pending>,
}

/// A `basic_publish` whose frames lapin has queued: it resolves once they are written,
/// with the message's confirm to await.
type Queued = Pin<Box<dyn Future<Output = lapin::Result<PublisherConfirm>> + Send>>;

/// A message waiting for its confirm.
struct Pending {
    id: u64,
    publish: Queued,
    reply: oneshot::Sender<Outcome>,
}

/// The broker's answer to one message.
enum Outcome {
    Stored,
    Nacked,
    Returned,
    Failed(lapin::Error),
}

impl fmt::Debug for Publisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the URL: it usually holds a password.
        f.debug_struct("Publisher")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Publisher {
    /// Connects to the broker at `url` now: fails when it cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, PublishError> {
        let publisher = Self::lazy(url)?;
        let mut used = None;
        let timeout = publisher.timeout;
        let opened = tokio::time::timeout(timeout, publisher.channel(None, &mut used)).await;
        match opened {
            Ok(result) => result.map(|_| publisher),
            Err(_) => Err(PublishError::Timeout(timeout)),
        }
    }

    /// A publisher that connects on its first publish, so that a service can start while
    /// the broker is down. Fails only for a malformed URL.
    pub fn lazy(url: &str) -> Result<Self, PublishError> {
        url.parse::<AMQPUri>()
            .map_err(|e| PublishError::InvalidUrl(e.to_string()))?;
        Ok(Self {
            url: url.into(),
            timeout: PUBLISH_TIMEOUT,
            queue_prefix: "".into(),
            state: Arc::default(),
        })
    }

    /// Sets how long one publish may take, connecting and the confirm included.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Puts `prefix` before the queue of every message [`Publisher::publish`] and
    /// [`Publisher::send`] send, so that tests publish to queues of their own instead of
    /// those the real workers consume. Empty (the default) in production.
    #[must_use]
    pub fn with_queue_prefix(mut self, prefix: &str) -> Self {
        self.queue_prefix = prefix.into();
        self
    }

    /// The queue a message of type `M` goes to: [`QueueMessage::QUEUE`] after the prefix.
    pub fn queue_of<M: QueueMessage>(&self) -> String {
        self.prefixed(M::QUEUE)
    }

    /// `queue` after the publisher's prefix: where [`Publisher::publish`] would send to it.
    pub fn prefixed(&self, queue: &str) -> String {
        format!("{}{queue}", self.queue_prefix)
    }

    /// Publishes `message` to its queue, [`QueueMessage::QUEUE`], and waits for the
    /// broker's confirm.
    pub async fn publish<M: QueueMessage>(&self, message: &M) -> Result<(), PublishError> {
        self.publish_to(&self.queue_of::<M>(), message).await
    }

    /// Like [`Publisher::publish`], to a queue named at run time (tests, per-tenant
    /// queues). Prefer `publish`: the type then fixes the queue for every service.
    pub async fn publish_to<T: Serialize + ?Sized>(
        &self,
        queue: &str,
        message: &T,
    ) -> Result<(), PublishError> {
        self.send_to(queue, message).await?.confirmed().await
    }

    /// Sends `message` to its queue, [`QueueMessage::QUEUE`], without waiting for the
    /// broker's confirm: await [`Confirm::confirmed`] for that. It returns once the
    /// message is queued on the connection, in order after the messages sent before it,
    /// so messages sent one after the other go out and wait for their confirms
    /// together; the publisher's timeout counts from this call to the confirm.
    ///
    /// An error here means the message was not sent; one while writing it comes from
    /// its `Confirm`. A `Confirm` dropped unawaited leaves the message's fate unknown.
    pub async fn send<M: QueueMessage>(&self, message: &M) -> Result<Confirm, PublishError> {
        self.send_to(&self.queue_of::<M>(), message).await
    }

    /// Like [`Publisher::send`], to a queue named at run time.
    pub async fn send_to<T: Serialize + ?Sized>(
        &self,
        queue: &str,
        message: &T,
    ) -> Result<Confirm, PublishError> {
        let body: Arc<[u8]> = serde_json::to_vec(message)
            .map_err(PublishError::Encode)?
            .into();
        self.send_encoded(queue, body, &Envelope::default()).await
    }

    /// Like [`Publisher::send_to`], for a body that is JSON already, with the message id
    /// and headers of `envelope`: what the outbox relay sends (see `outbox`).
    pub async fn send_encoded(
        &self,
        queue: &str,
        body: Arc<[u8]>,
        envelope: &Envelope,
    ) -> Result<Confirm, PublishError> {
        let deadline = Instant::now() + self.timeout;
        let name = ShortString::try_new(queue)
            .map_err(|_| PublishError::InvalidQueue(queue.to_owned()))?;
        let mut used = None;
        let sent =
            tokio::time::timeout_at(deadline, self.send_frame(&name, &body, envelope, &mut used))
                .await
                .unwrap_or(Err(PublishError::Timeout(self.timeout)));
        match sent {
            Ok((outcome, session)) => Ok(Confirm {
                publisher: self.clone(),
                queue: name,
                session,
                deadline,
                outcome,
            }),
            Err(error) => {
                if let (PublishError::Amqp(_) | PublishError::Timeout(_), Some(id)) = (&error, used)
                {
                    // The connection may be broken or stuck: the next publish opens a new one.
                    self.discard(id).await;
                }
                Err(error)
            }
        }
    }

    /// Closes the connection, if one is open; a later publish opens a new one.
    pub async fn close(&self) {
        let session = self.state.lock().await.session.take();
        if let Some(session) = session {
            let _ = session.connection.close(200, "OK".into()).await;
        }
    }

    /// Queues one message on the open channel: its confirm, and the session it was sent on.
    async fn send_frame(
        &self,
        queue: &ShortString,
        body: &Arc<[u8]>,
        envelope: &Envelope,
        used: &mut Option<u64>,
    ) -> Result<(oneshot::Receiver<Outcome>, u64), PublishError> {
        let mut retried = false;
        loop {
            let (channel, sends) = self.channel(Some(queue), used).await?;
            let queued = {
                let _queueing = sends.lock.lock().unwrap_or_else(PoisonError::into_inner);
                let id = sends.next_id.fetch_add(1, Ordering::Relaxed);
                let properties = envelope.properties(id);
                let queued = queue_publish(channel, queue.clone(), Arc::clone(body), properties);
                queued.map(|publish| {
                    let (reply, outcome) = oneshot::channel();
                    // A closed driver drops `reply`: the Confirm then reports the loss.
                    let _ = sends.register.send(Pending { id, publish, reply });
                    outcome
                })
            };
            match queued {
                Ok(outcome) => return Ok((outcome, used.expect("set by channel()"))),
                // Not sent: the connection dropped since the last publish. Once more, on
                // a new one.
                Err(e) if !retried && not_sent(&e) => {
                    if let Some(id) = used.take() {
                        self.discard(id).await;
                    }
                    retried = true;
                }
                Err(e) => return Err(PublishError::Amqp(e)),
            }
        }
    }

    /// The open channel, (re)connecting first if needed, with `queue` declared on it.
    async fn channel(
        &self,
        queue: Option<&ShortString>,
        used: &mut Option<u64>,
    ) -> Result<(Channel, Arc<Sends>), PublishError> {
        let mut state = self.state.lock().await;
        let usable = state
            .session
            .as_ref()
            .is_some_and(|s| s.connection.status().connected() && s.channel.status().connected());
        if !usable {
            // Dropping the old session closes its connection.
            state.session = None;
            state.opened += 1;
            let id = state.opened;
            state.session = Some(self.open(id).await?);
        }
        let session = state.session.as_mut().expect("a session was just opened");
        *used = Some(session.id);
        if let Some(queue) = queue
            && !session.declared.contains(queue.as_str())
        {
            session
                .channel
                .queue_declare(
                    queue.clone(),
                    QueueDeclareOptions::durable(),
                    FieldTable::default(),
                )
                .await
                .map_err(PublishError::Amqp)?;
            session.declared.insert(queue.to_string());
        }
        Ok((session.channel.clone(), Arc::clone(&session.sends)))
    }

    async fn open(&self, id: u64) -> Result<Session, PublishError> {
        let properties = ConnectionProperties::default().with_connection_name(connection_name());
        let connection = Connection::connect(&self.url, properties)
            .await
            .map_err(PublishError::Amqp)?;
        let channel = connection
            .create_channel()
            .await
            .map_err(PublishError::Amqp)?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(PublishError::Amqp)?;
        let (register, registered) = mpsc::unbounded_channel();
        let sends = Arc::new(Sends {
            lock: Arc::default(),
            next_id: AtomicU64::new(0),
            register,
        });
        // The driver holds the lock, not the sender: it ends with the session.
        tokio::spawn(drive_confirms(
            channel.clone(),
            Arc::clone(&sends.lock),
            registered,
        ));
        Ok(Session {
            id,
            connection,
            channel,
            sends,
            declared: HashSet::new(),
        })
    }

    /// Drops session `id` unless it was replaced already.
    async fn discard(&self, id: u64) {
        let mut state = self.state.lock().await;
        if state.session.as_ref().is_some_and(|s| s.id == id) {
            state.session = None;
        }
    }

    async fn forget(&self, queue: &ShortString) {
        if let Some(session) = self.state.lock().await.session.as_mut() {
            session.declared.remove(queue.as_str());
        }
    }
}

/// What a message carries besides its body: its id (else a random one) and headers,
/// such as a trace context.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Envelope {
    /// The AMQP `message_id`; the publisher gives a message that has none a random one.
    pub message_id: Option<String>,
    /// Headers, as strings.
    pub headers: Vec<(String, String)>,
}

/// The header carrying the publisher's own number for a message, by which a returned
/// message is matched to its confirm whatever its `message_id`.
const SEQUENCE_HEADER: &str = "x-msvc-sequence";

impl Envelope {
    /// Persistent JSON with the envelope's id and headers; `sequence` is the
    /// publisher's number for the message.
    fn properties(&self, sequence: u64) -> BasicProperties {
        let mut headers = FieldTable::default();
        for (name, value) in &self.headers {
            headers.insert(
                name.as_str().into(),
                AMQPValue::LongString(value.as_str().into()),
            );
        }
        headers.insert(
            SEQUENCE_HEADER.into(),
            AMQPValue::LongLongInt(sequence.cast_signed()),
        );
        let id = self.message_id.clone().unwrap_or_else(unique_message_id);
        BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(PERSISTENT)
            .with_message_id(id.into())
            .with_headers(headers)
    }
}

/// An id no other message gets, 128 random bits in hex: an idempotent consumer (see
/// `inbox`) must never take two messages for one, as numbers that restart with each
/// connection would make it.
fn unique_message_id() -> String {
    use std::hash::{BuildHasher, RandomState};
    static KEYS: std::sync::OnceLock<(RandomState, RandomState)> = std::sync::OnceLock::new();
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let (a, b) = KEYS.get_or_init(|| (RandomState::new(), RandomState::new()));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = (
        COUNT.fetch_add(1, Ordering::Relaxed),
        nanos,
        std::process::id(),
    );
    format!("{:016x}{:016x}", a.hash_one(seed), b.hash_one(seed))
}

/// Starts a persistent, mandatory `basic_publish` of `body` to `queue` with
/// `properties`, and polls it once: lapin assigns the message its place on the channel
/// and queues its frames on the first poll, so messages go out in the order of these
/// calls. What is left waits for the frames to be written; an error here means the
/// message was not queued.
fn queue_publish(
    channel: Channel,
    queue: ShortString,
    body: Arc<[u8]>,
    properties: BasicProperties,
) -> lapin::Result<Queued> {
    let mut publish: Queued = Box::pin(async move {
        channel
            .basic_publish(
                ShortString::default(),
                queue,
                // Mandatory: an unroutable message comes back instead of vanishing.
                BasicPublishOptions {
                    mandatory: true,
                    immediate: false,
                },
                &body,
                properties,
            )
            .await
    });
    // No waker is needed: the confirm driver polls the rest with its own.
    match publish
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Pending => Ok(publish),
        Poll::Ready(Ok(confirm)) => Ok(Box::pin(std::future::ready(Ok(confirm)))),
        Poll::Ready(Err(e)) => Err(e),
    }
}

/// The broker's answer to one message sent with [`Publisher::send`], still to come.
#[must_use = "the message may not be stored: await `confirmed` to know"]
pub struct Confirm {
    publisher: Publisher,
    queue: ShortString,
    session: u64,
    deadline: Instant,
    outcome: oneshot::Receiver<Outcome>,
}

impl fmt::Debug for Confirm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Confirm")
            .field("queue", &self.queue)
            .finish_non_exhaustive()
    }
}

impl Confirm {
    /// Waits for the broker's confirm of this message: `Ok` once it is stored; a nack, a
    /// return as unroutable, a broker error or the publisher's timeout is an error, as
    /// for [`Publisher::publish`].
    pub async fn confirmed(self) -> Result<(), PublishError> {
        let Self {
            publisher,
            queue,
            session,
            deadline,
            outcome,
        } = self;
        let result = match tokio::time::timeout_at(deadline, outcome).await {
            Ok(Ok(Outcome::Stored)) => Ok(()),
            Ok(Ok(Outcome::Nacked)) => Err(PublishError::Nacked {
                queue: queue.to_string(),
            }),
            Ok(Ok(Outcome::Returned)) => Err(PublishError::Unroutable {
                queue: queue.to_string(),
            }),
            Ok(Ok(Outcome::Failed(e))) => Err(PublishError::Amqp(e)),
            Ok(Err(_)) => Err(PublishError::Lost),
            Err(_) => Err(PublishError::Timeout(publisher.timeout)),
        };
        match &result {
            // The connection may be broken or stuck: the next publish opens a new one.
            Err(PublishError::Amqp(_) | PublishError::Timeout(_) | PublishError::Lost) => {
                publisher.discard(session).await;
            }
            // Deleted since it was declared? Declare it again next time.
            Err(PublishError::Unroutable { .. }) => publisher.forget(&queue).await,
            _ => {}
        }
        result
    }
}

/// The confirm driver of one session: waits for the confirms of the messages sent on
/// `channel` and answers each with its own outcome. lapin attaches a returned message to
/// whichever confirm of a batch of acks it completes first, so when any confirm is in,
/// the driver lets lapin finish the batch, takes every message sent so far, collects all
/// that are in, and matches the returns to their messages by `message_id`.
async fn drive_confirms(
    channel: Channel,
    send_lock: Arc<std::sync::Mutex<()>>,
    mut registered: mpsc::UnboundedReceiver<Pending>,
) {
    type InFlight = Pin<Box<dyn Future<Output = (u64, lapin::Result<Answer>)> + Send>>;
    let mut in_flight: FuturesUnordered<InFlight> = FuturesUnordered::new();
    let mut replies: HashMap<u64, oneshot::Sender<Outcome>> = HashMap::new();
    // Returns that came with another message's confirm, by the id of their message.
    let mut returned: HashSet<u64> = HashSet::new();
    let add = |pending: Pending,
               in_flight: &mut FuturesUnordered<InFlight>,
               replies: &mut HashMap<u64, oneshot::Sender<Outcome>>| {
        let Pending { id, publish, reply } = pending;
        replies.insert(id, reply);
        in_flight.push(Box::pin(async move {
            let answer = match publish.await {
                Ok(confirm) => confirm.await.map(Answer::of),
                Err(e) => Err(e),
            };
            (id, answer)
        }));
    };
    let mut open = true;
    while open || !in_flight.is_empty() {
        let first = tokio::select! {
            pending = registered.recv(), if open => {
                match pending {
                    Some(pending) => add(pending, &mut in_flight, &mut replies),
                    None => open = false,
                }
                continue;
            }
            Some(done) = in_flight.next() => done,
        };
        // lapin completes a batch of acks under the lock that this takes: once it
        // returns, every confirm of the batch is in.
        let _ = channel.wait_for_confirms().now_or_never();
        // Every message queued before now is registered once the send lock is free.
        {
            let _queueing = send_lock.lock().unwrap_or_else(PoisonError::into_inner);
            while let Ok(pending) = registered.try_recv() {
                add(pending, &mut in_flight, &mut replies);
            }
        }
        let mut done = vec![first];
        while let Some(Some(next)) = in_flight.next().now_or_never() {
            done.push(next);
        }
        for (_, answer) in &done {
            if let Ok(Answer {
                returned: Some(id), ..
            }) = answer
            {
                returned.insert(*id);
            }
        }
        for (id, answer) in done {
            let outcome = match answer {
                Err(e) => Outcome::Failed(e),
                Ok(answer) if !answer.ack => Outcome::Nacked,
                Ok(_) if returned.remove(&id) => Outcome::Returned,
                Ok(_) => Outcome::Stored,
            };
            if let Some(reply) = replies.remove(&id) {
                let _ = reply.send(outcome);
            }
        }
    }
}

/// One confirm as lapin gave it: ack or nack, and the id of the returned message it
/// carried, which may be another message's.
struct Answer {
    ack: bool,
    returned: Option<u64>,
}

impl Answer {
    fn of(confirmation: lapin::Confirmation) -> Self {
        let ack = confirmation.is_ack();
        let returned = confirmation.take_message().map(|m| {
            let properties = &m.delivery.properties;
            let sequence = properties.headers().as_ref().and_then(|headers| {
                match headers.inner().get(SEQUENCE_HEADER) {
                    Some(AMQPValue::LongLongInt(n)) => Some(n.cast_unsigned()),
                    _ => None,
                }
            });
            sequence
                .or_else(|| {
                    let id = properties.message_id().as_ref()?;
                    id.as_str().parse().ok()
                })
                .unwrap_or(u64::MAX)
        });
        Self { ack, returned }
    }
}

/// Whether lapin refused to send because the channel or connection is closed already.
fn not_sent(error: &lapin::Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::InvalidChannelState(..) | ErrorKind::InvalidConnectionState(..)
    )
}

/// What the broker's management UI shows for the connection: the program's name.
fn connection_name() -> LongString {
    let program = std::env::current_exe()
        .ok()
        .and_then(|path| path.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "msvc-runtime".to_owned());
    LongString::from(program)
}
