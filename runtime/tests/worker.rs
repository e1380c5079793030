//! The worker (`msvc_runtime::worker::serve`) end to end against the RabbitMQ broker at
//! 127.0.0.1:5672 (guest/guest): a test route and handler of its own, the admin
//! endpoints on an ephemeral port, queues of its own that each test deletes afterwards.
//!
//! Without a broker the tests that need one are skipped with a loud message, unless
//! `CI` is set, where that is a failure.

mod common;

use std::{
    collections::{HashMap, HashSet},
    net::SocketAddr,
    sync::{LazyLock, Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use common::{
    BROKER_ADDR, BROKER_URL, Proxy, Queues, WAIT, broker, closed_url, declare_plain, eventually,
    eventually_within, ready_messages,
};
use lapin::{
    BasicProperties, Channel, Connection,
    message::BasicGetMessage,
    options::{BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable, ShortString},
};
use msvc_runtime::{
    amqp::{Publisher, QueueMessage},
    config::{Defaults, ServiceConfig},
    healthcheck,
    shutdown::{self, Trigger},
    worker::{
        self, HandlerError, Message, ProcessError, QueueConfig, Route, WorkerConfig,
        consumer::{
            ATTEMPTS_HEADER, ERROR_HEADER, ORIGINAL_QUEUE_HEADER, REASON_HEADER, dead_letter_queue,
            reason,
        },
        probe::PROBE_HEADER,
    },
};
use serde::{Deserialize, Serialize};
use tokio::{net::TcpListener, task::JoinHandle};

/// The service name the tests' workers run as, unless a test names its own.
const SERVICE: &str = "test-worker";

/// The tests' message: which test sent it, a number, and what its handler is to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Job {
    /// The test's queue, which tells the jobs of concurrent tests apart.
    test: String,
    n: u32,
    action: Action,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Action {
    Succeed,
    /// Fails transiently on this many attempts, then succeeds.
    FailTimes(u32),
    FailAlways,
    Reject,
    Panic,
    /// Runs until the test releases it.
    Hold,
}

/// The tests' queues are named at run time ([`QueueConfig::name`]): this one is never used.
impl QueueMessage for Job {
    const QUEUE: &'static str = "test.msvc-runtime.jobs";
}

impl Job {
    fn new(test: &str, n: u32, action: Action) -> Self {
        Self {
            test: test.to_owned(),
            n,
            action,
        }
    }

    fn key(&self) -> String {
        key(&self.test, self.n)
    }

    fn payload(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("serialise")
    }
}

fn key(test: &str, n: u32) -> String {
    format!("{test}#{n}")
}

/// The route of the tests' worker: every queue carries [`Job`]s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Jobs {
    Run,
}

impl Route for Jobs {
    const ALL: &'static [Self] = &[Jobs::Run];

    fn queue(self) -> &'static str {
        Job::QUEUE
    }

    async fn dispatch(self, message: Message<'_>) -> Result<(), ProcessError> {
        let job: Job = worker::decode(message.payload)?;
        handle(job).await.map_err(ProcessError::Handler)
    }
}

/// What the handler saw, for the tests to check.
#[derive(Default)]
struct Seen {
    /// Attempts started, by job key.
    started: HashMap<String, u32>,
    /// Attempts that returned (not cancelled), by job key.
    returned: HashMap<String, u32>,
    /// Jobs running now, by test.
    running: HashMap<String, usize>,
    /// The most jobs that ran at once, by test.
    most: HashMap<String, usize>,
    /// Held jobs the test let finish.
    released: HashSet<String>,
}

static SEEN: LazyLock<Mutex<Seen>> = LazyLock::new(Mutex::default);

fn seen() -> MutexGuard<'static, Seen> {
    // A panicking handler is part of the tests: the data stays good.
    SEEN.lock().unwrap_or_else(PoisonError::into_inner)
}

fn started(test: &str, n: u32) -> u32 {
    seen().started.get(&key(test, n)).copied().unwrap_or(0)
}

fn returned(test: &str, n: u32) -> u32 {
    seen().returned.get(&key(test, n)).copied().unwrap_or(0)
}

/// How many of the test's jobs have started, once or more.
fn jobs_started(test: &str) -> usize {
    let prefix = format!("{test}#");
    seen()
        .started
        .keys()
        .filter(|key| key.starts_with(&prefix))
        .count()
}

fn most_at_once(test: &str) -> usize {
    seen().most.get(test).copied().unwrap_or(0)
}

fn release(test: &str, n: u32) {
    seen().released.insert(key(test, n));
}

/// Counts a job as running for as long as it lives, cancelled or not.
struct Running(String);

impl Running {
    fn new(test: &str) -> Self {
        let mut seen = seen();
        let running = seen.running.entry(test.to_owned()).or_default();
        *running += 1;
        let now = *running;
        let most = seen.most.entry(test.to_owned()).or_default();
        *most = (*most).max(now);
        Self(test.to_owned())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(running) = seen().running.get_mut(&self.0) {
            *running -= 1;
        }
    }
}

/// The tests' handler: does what the job says, and records it.
async fn handle(job: Job) -> Result<(), HandlerError> {
    let key = job.key();
    let attempt = {
        let mut seen = seen();
        let attempt = seen.started.entry(key.clone()).or_default();
        *attempt += 1;
        *attempt
    };
    let running = Running::new(&job.test);
    let result = match job.action {
        Action::Succeed => Ok(()),
        Action::FailTimes(times) if attempt <= times => Err(HandlerError::Transient(format!(
            "attempt {attempt} of {key} failed"
        ))),
        Action::FailTimes(_) => Ok(()),
        Action::FailAlways => Err(HandlerError::Transient(format!("{key} keeps failing"))),
        Action::Reject => Err(HandlerError::Permanent(format!("{key} can never succeed"))),
        Action::Panic => panic!("{key} blew up"),
        Action::Hold => {
            while !seen().released.contains(&key) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok(())
        }
    };
    drop(running);
    *seen().returned.entry(key).or_default() += 1;
    result
}

/// How a test's worker is configured.
struct Options {
    service: &'static str,
    amqp_url: String,
    queues: Vec<String>,
    prefetch: u16,
    concurrency: usize,
    max_attempts: u32,
    grace: Duration,
}

impl Options {
    fn new(amqp_url: &str, queues: &[String]) -> Self {
        let defaults = WorkerConfig::<Jobs>::new(SERVICE, amqp_url);
        Self {
            service: SERVICE,
            amqp_url: amqp_url.to_owned(),
            queues: queues.to_vec(),
            prefetch: defaults.prefetch,
            concurrency: defaults.concurrency,
            max_attempts: defaults.max_attempts,
            grace: Duration::from_secs(10),
        }
    }
}

/// The worker running in-process, admin endpoints on an ephemeral port.
struct Worker {
    admin: SocketAddr,
    http: reqwest::Client,
    trigger: Trigger,
    /// Taken when the test waits for it; aborted on drop when the test failed first.
    task: Option<JoinHandle<Result<(), msvc_runtime::Error>>>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Worker {
    async fn start(options: Options) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind admin");
        let admin = listener.local_addr().expect("admin addr");
        let service = ServiceConfig::new(Defaults {
            port: None,
            admin_port: Some(admin.port()),
            shutdown_grace: options.grace,
        });
        let config = WorkerConfig {
            queues: options
                .queues
                .iter()
                .map(|name| QueueConfig {
                    name: name.clone(),
                    route: Jobs::Run,
                })
                .collect(),
            prefetch: options.prefetch,
            concurrency: options.concurrency,
            max_attempts: options.max_attempts,
            ..WorkerConfig::new(options.service, &options.amqp_url)
        };
        let (trigger, shutdown) = shutdown::channel();
        let task =
            tokio::spawn(async move { worker::serve(&service, config, listener, shutdown).await });
        Self {
            admin,
            http: reqwest::Client::new(),
            trigger,
            task: Some(task),
        }
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let res = self
            .http
            .get(format!("http://{}{path}", self.admin))
            .send()
            .await
            .expect("admin request");
        let status = res.status().as_u16();
        (status, res.text().await.expect("admin body"))
    }

    async fn ready(&self) -> bool {
        self.get("/readyz").await.0 == 200
    }

    /// Value of `worker_messages_<name>_total{queue="..."}`; the series exists from the
    /// start.
    async fn counter(&self, name: &str, queue: &str) -> u64 {
        let (status, body) = self.get("/metrics").await;
        assert_eq!(status, 200);
        let prefix = format!("worker_messages_{name}_total{{queue=\"{queue}\"}} ");
        body.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .map(|v| v.trim().parse().expect("counter value"))
            .unwrap_or_else(|| panic!("no series {prefix}in\n{body}"))
    }

    /// `(processed, failed, dead_lettered)` of `queue`.
    async fn counters(&self, queue: &str) -> (u64, u64, u64) {
        (
            self.counter("processed", queue).await,
            self.counter("failed", queue).await,
            self.counter("dead_lettered", queue).await,
        )
    }

    /// Requests shutdown; the task ends when `serve` returns.
    fn request_shutdown(mut self) -> JoinHandle<Result<(), msvc_runtime::Error>> {
        self.trigger.fire();
        self.task.take().expect("the worker's task")
    }

    /// Requests shutdown and waits for `serve` to return.
    async fn shutdown(self) {
        tokio::time::timeout(WAIT, self.request_shutdown())
            .await
            .expect("worker stops within the grace period")
            .expect("worker task")
            .expect("worker exits cleanly");
    }
}

async fn confirm_channel(conn: &Connection) -> Channel {
    let channel = conn.create_channel().await.expect("channel");
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm_select");
    channel
}

fn json_properties() -> BasicProperties {
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
}

/// Publishes like a real producer: persistent, waiting for the broker's confirm.
async fn publish(channel: &Channel, queue: &str, payload: &[u8]) {
    publish_with(channel, queue, payload, json_properties()).await;
}

async fn publish_with(channel: &Channel, queue: &str, payload: &[u8], properties: BasicProperties) {
    let confirm = channel
        .basic_publish(
            ShortString::default(),
            queue.into(),
            BasicPublishOptions {
                mandatory: true,
                immediate: false,
            },
            payload,
            properties,
        )
        .await
        .expect("publish")
        .await
        .expect("confirm");
    assert!(confirm.is_ack(), "broker did not ack the publish");
    assert!(confirm.take_message().is_none(), "publish was unroutable");
}

/// Every message in `queue`, taken off it.
async fn take_all(channel: &Channel, queue: &str) -> Vec<BasicGetMessage> {
    let mut taken = Vec::new();
    while let Some(message) = channel
        .basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await
        .expect("basic_get")
    {
        taken.push(message);
    }
    taken
}

/// The first message to arrive in `queue`, taken off it.
async fn take_one(channel: &Channel, queue: &str) -> BasicGetMessage {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(message) = channel
            .basic_get(queue.into(), BasicGetOptions { no_ack: true })
            .await
            .expect("basic_get")
        {
            return message;
        }
        assert!(Instant::now() < deadline, "nothing arrived in {queue}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn header<'a>(message: &'a BasicGetMessage, key: &str) -> Option<&'a AMQPValue> {
    message
        .delivery
        .properties
        .headers()
        .as_ref()?
        .inner()
        .get(key)
}

fn text_header(message: &BasicGetMessage, key: &str) -> Option<String> {
    match header(message, key)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        other => panic!("header {key} is not a string: {other:?}"),
    }
}

fn job_of(message: &BasicGetMessage) -> Job {
    serde_json::from_slice(&message.delivery.data).expect("a JSON Job")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handles_and_acks_a_message() {
    let Some(conn) = broker().await else { return };
    let queues = Queues::new("handled", 1);
    let queue = queues.name(0);
    let worker = Worker::start(Options::new(BROKER_URL, queues.names())).await;
    eventually("readiness", || worker.ready()).await;
    let (status, body) = worker.get("/healthz").await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    // Scraped before the first message, at zero.
    assert_eq!(worker.counters(queue).await, (0, 0, 0));

    // Sent the way the services send: the publisher and the consumer agree on the queue.
    let publisher = Publisher::connect(BROKER_URL).await.expect("connect");
    publisher
        .publish_to(queue, &Job::new(queue, 1, Action::Succeed))
        .await
        .expect("published");
    eventually("processed counter to reach 1", || async {
        worker.counter("processed", queue).await == 1
    })
    .await;
    assert_eq!(worker.counters(queue).await, (1, 0, 0));
    assert_eq!((started(queue, 1), returned(queue, 1)), (1, 1));

    worker.shutdown().await;
    assert_eq!(ready_messages(&conn, queue).await, 0, "message was acked");
    publisher.close().await;
    queues.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_messages_are_dead_lettered_once() {
    let Some(conn) = broker().await else { return };
    let queues = Queues::new("undecodable", 1);
    let queue = queues.name(0);
    let worker = Worker::start(Options::new(BROKER_URL, queues.names())).await;
    eventually("readiness", || worker.ready()).await;

    let channel = confirm_channel(&conn).await;
    let bad: [&[u8]; 2] = [b"this is not json", br#"{"test": "x", "n": "one"}"#];
    for payload in bad {
        publish(&channel, queue, payload).await;
    }
    eventually("dead-lettered counter to reach 2", || async {
        worker.counter("dead_lettered", queue).await == 2
    })
    .await;
    // Long enough for a redelivery loop to show up in the counters.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(worker.counters(queue).await, (0, 0, 2));
    worker.shutdown().await;
    assert_eq!(
        ready_messages(&conn, queue).await,
        0,
        "originals were acked"
    );

    let dead = take_all(&channel, &dead_letter_queue(queue)).await;
    assert_eq!(dead.len(), 2, "each dead-lettered once");
    for (message, payload) in dead.iter().zip(bad) {
        assert_eq!(message.delivery.data, payload);
        assert_eq!(
            text_header(message, REASON_HEADER).as_deref(),
            Some(reason::DECODE_ERROR)
        );
        assert_eq!(
            text_header(message, ORIGINAL_QUEUE_HEADER).as_deref(),
            Some(queue)
        );
        assert!(
            text_header(message, ERROR_HEADER).is_some_and(|e| !e.is_empty()),
            "the decode error is recorded"
        );
        assert_eq!(message.delivery.properties.delivery_mode(), &Some(2));
    }
    queues.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deliveries_ack_successes_and_settle_failures_once() {
    let Some(conn) = broker().await else { return };
    let queues = Queues::new("concurrent", 1);
    let queue = queues.name(0);
    let channel = confirm_channel(&conn).await;
    declare_plain(&channel, queue).await;
    // Every fifth message is undecodable and every seventh other one fails once: their
    // handling ends among successes in flight, which must not ack them a second time.
    let total = 200;
    let payload = |n: u32| {
        if n.is_multiple_of(5) {
            format!("not json {n}").into_bytes()
        } else if n.is_multiple_of(7) {
            Job::new(queue, n, Action::FailTimes(1)).payload()
        } else {
            Job::new(queue, n, Action::Succeed).payload()
        }
    };
    let undecodable = (0..total).filter(|n| n % 5 == 0).count() as u64;
    let retried = (0..total).filter(|n| n % 5 != 0 && n % 7 == 0).count() as u64;
    // Queued before the worker starts, so that it gets a full prefetch window at once.
    for n in 0..total {
        publish(&channel, queue, &payload(n)).await;
    }
    let worker = Worker::start(Options::new(BROKER_URL, queues.names())).await;
    eventually("every message to be processed or dead-lettered", || async {
        let (processed, _, dead) = worker.counters(queue).await;
        processed + dead == u64::from(total)
    })
    .await;
    // Long enough for a double ack or a redelivery to show up in the counters.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        worker.counters(queue).await,
        (u64::from(total) - undecodable, retried, undecodable)
    );
    worker.shutdown().await;
    assert_eq!(ready_messages(&conn, queue).await, 0, "all acked");
    for n in (0..total).filter(|n| n % 5 != 0) {
        let attempts = if n % 7 == 0 { 2 } else { 1 };
        assert_eq!(started(queue, n), attempts, "attempts of job {n}");
    }

    // Exactly the undecodable ones were dead-lettered, each once.
    let mut dead: Vec<Vec<u8>> = take_all(&channel, &dead_letter_queue(queue))
        .await
        .into_iter()
        .map(|m| m.delivery.data)
        .collect();
    dead.sort();
    let mut expected: Vec<Vec<u8>> = (0..total).filter(|n| n % 5 == 0).map(payload).collect();
    expected.sort();
    assert_eq!(dead, expected);
    queues.delete().await;
}

/// Publishes `count` held jobs, starts a worker with `options`, and checks that no more
/// than `at_once` of them run at the same time, and that they do run that many.
async fn jobs_run_at_once(name: &str, count: u32, at_once: usize, options: Options) {
    let Some(conn) = broker().await else { return };
    let queues = Queues::new(name, 1);
    let queue = queues.name(0);
    let channel = confirm_channel(&conn).await;
    declare_plain(&channel, queue).await;
    for n in 0..count {
        publish(&channel, queue, &Job::new(queue, n, Action::Hold).payload()).await;
    }
    let worker = Worker::start(Options {
        queues: queues.names().to_vec(),
        ..options
    })
    .await;
    eventually("the first jobs to start", || async {
        jobs_started(queue) >= at_once
    })
    .await;
    // Long enough for one more to start, were it allowed to.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        jobs_started(queue),
        at_once,
        "jobs started while all are held"
    );

    // Let one go: exactly one more starts.
    release(queue, 0);
    eventually("one more job to start", || async {
        jobs_started(queue) > at_once
    })
    .await;
    assert_eq!(jobs_started(queue), at_once + 1, "one more, not two");
    for n in 0..count {
        release(queue, n);
    }
    eventually("every job to be processed", || async {
        worker.counter("processed", queue).await == u64::from(count)
    })
    .await;
    assert_eq!(most_at_once(queue), at_once, "jobs handled at once");
    worker.shutdown().await;
    queues.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handles_up_to_its_concurrency_at_once() {
    let options = Options {
        concurrency: 4,
        ..Options::new(BROKER_URL, &[])
    };
    jobs_run_at_once("concurrency", 12, 4, options).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handles_no_more_than_the_prefetch_at_once() {
    let options = Options {
        prefetch: 2,
        concurrency: 8,
        ..Options::new(BROKER_URL, &[])
    };
    jobs_run_at_once("prefetch", 6, 2, options).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn successes_behind_a_slow_delivery_are_acked_without_it() {
    let Some(conn) = broker().await else { return };
    let queues = Queues::new("ack-window", 1);
    let queue = queues.name(0);
    let channel = confirm_channel(&conn).await;
    declare_plain(&channel, queue).await;
    // The first delivery is held; the four after it succeed. With a prefetch of 8, four
    // successes waiting behind a running delivery are acked one by one, without it.
    publish(&channel, queue, &Job::new(queue, 0, Action::Hold).payload()).await;
    for n in 1..=4 {
        publish(
            &channel,
            queue,
            &Job::new(queue, n, Action::Succeed).payload(),
        )
        .await;
    }
    let proxy = Proxy::start(BROKER_ADDR).await;
    let worker = Worker::start(Options {
        prefetch: 8,
        concurrency: 8,
        ..Options::new(&proxy.url(), queues.names())
    })
    .await;
    eventually("the four successes to be acked", || async {
        worker.counter("processed", queue).await == 4
    })
    .await;
    assert_eq!(
        (started(queue, 0), returned(queue, 0)),
        (1, 0),
        "still held"
    );

    // The connection lost while it is held: the broker still has it unacked and
    // delivers it again; the four acked ones it does not.
    proxy.cut();
    eventually("readyz to turn 503", || async {
        worker.get("/readyz").await.0 == 503
    })
    .await;
    proxy.restore();
    eventually("the held job to be delivered again", || async {
        started(queue, 0) == 2
    })
    .await;
    release(queue, 0);
    eventually("the held job to be processed", || async {
        worker.counter("processed", queue).await == 5
    })
    .await;
    for n in 1..=4 {
        assert_eq!(started(queue, n), 1, "job {n} handled once");
    }
    worker.shutdown().await;
    assert_eq!(ready_messages(&conn, queue).await, 0);
    drop(proxy);
    queues.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_then_dead_lettered_with_headers() {
    let Some(conn) = broker().await else { return };
    let queues = Queues::new("retry", 1);
    let queue = queues.name(0);
    let worker = Worker::start(Options {
        max_attempts: 3,
        ..Options::new(BROKER_URL, queues.names())
    })
    .await;
    eventually("readiness", || worker.ready()).await;

    let channel = confirm_channel(&conn).await;
    let mut headers = FieldTable::default();
    headers.insert("x-trace".into(), AMQPValue::LongString("trace-1".into()));
    let failing = Job::new(queue, 1, Action::FailAlways);
    publish_with(
        &channel,
        queue,
        &failing.payload(),
        json_properties().with_headers(headers),
    )
    .await;
    let recovering = Job::new(queue, 2, Action::FailTimes(2));
    publish(&channel, queue, &recovering.payload()).await;

    eventually("one dead-lettered and one processed", || async {
        let (processed, _, dead) = worker.counters(queue).await;
        (processed, dead) == (1, 1)
    })
    .await;
    // Three failed attempts of the first, two of the second.
    assert_eq!(worker.counters(queue).await, (1, 5, 1));
    assert_eq!(started(queue, 1), 3, "max_attempts");
    assert_eq!(started(queue, 2), 3, "failed twice, then succeeded");
    worker.shutdown().await;
    assert_eq!(ready_messages(&conn, queue).await, 0);

    let dead = take_all(&channel, &dead_letter_queue(queue)).await;
    let [message] = dead.as_slice() else {
        panic!("{} dead-lettered messages", dead.len());
    };
    assert_eq!(job_of(message), failing, "the message as it was published");
    assert_eq!(
        text_header(message, REASON_HEADER).as_deref(),
        Some(reason::MAX_ATTEMPTS)
    );
    assert_eq!(
        header(message, ATTEMPTS_HEADER),
        Some(&AMQPValue::LongLongInt(3))
    );
    assert_eq!(
        text_header(message, ERROR_HEADER).as_deref(),
        Some(format!("{} keeps failing", failing.key()).as_str())
    );
    assert_eq!(
        text_header(message, ORIGINAL_QUEUE_HEADER).as_deref(),
        Some(queue)
    );
    assert_eq!(
        text_header(message, "x-trace").as_deref(),
        Some("trace-1"),
        "the publisher's headers are kept"
    );
    let properties = &message.delivery.properties;
    assert_eq!(properties.delivery_mode(), &Some(2));
    assert_eq!(
        properties.content_type().as_ref().map(ShortString::as_str),
        Some("application/json")
    );
    queues.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_and_panicking_messages_are_dead_lettered() {
    let Some(conn) = broker().await else { return };
    let queues = Queues::new("rejected", 1);
    let queue = queues.name(0);
    let worker = Worker::start(Options {
        max_attempts: 3,
        ..Options::new(BROKER_URL, queues.names())
    })
    .await;
    eventually("readiness", || worker.ready()).await;

    let channel = confirm_channel(&conn).await;
    // Rejected: dead-lettered on its first attempt.
    let rejected = Job::new(queue, 1, Action::Reject);
    publish(&channel, queue, &rejected.payload()).await;
    eventually("the rejected job dead-lettered", || async {
        worker.counter("dead_lettered", queue).await == 1
    })
    .await;
    // A panic is a transient failure: retried, then dead-lettered.
    let panicking = Job::new(queue, 2, Action::Panic);
    publish(&channel, queue, &panicking.payload()).await;
    eventually("the panicking job dead-lettered", || async {
        worker.counter("dead_lettered", queue).await == 2
    })
    .await;
    // Two attempts recorded by whoever published it: one more is the last.
    let late = Job::new(queue, 3, Action::FailAlways);
    let mut headers = FieldTable::default();
    headers.insert(ATTEMPTS_HEADER.into(), AMQPValue::LongInt(2));
    publish_with(
        &channel,
        queue,
        &late.payload(),
        json_properties().with_headers(headers),
    )
    .await;
    eventually("the job with recorded attempts dead-lettered", || async {
        worker.counter("dead_lettered", queue).await == 3
    })
    .await;
    assert_eq!(worker.counters(queue).await, (0, 1 + 3 + 1, 3));
    assert_eq!(
        (started(queue, 1), started(queue, 2), started(queue, 3)),
        (1, 3, 1)
    );
    worker.shutdown().await;
    assert_eq!(ready_messages(&conn, queue).await, 0);

    let dead = take_all(&channel, &dead_letter_queue(queue)).await;
    let [first, second, third] = dead.as_slice() else {
        panic!("{} dead-lettered messages", dead.len());
    };
    assert_eq!(job_of(first), rejected);
    assert_eq!(
        text_header(first, REASON_HEADER).as_deref(),
        Some(reason::REJECTED)
    );
    assert_eq!(
        header(first, ATTEMPTS_HEADER),
        Some(&AMQPValue::LongLongInt(1))
    );
    assert_eq!(
        text_header(first, ERROR_HEADER).as_deref(),
        Some(format!("{} can never succeed", rejected.key()).as_str())
    );
    assert_eq!(job_of(second), panicking);
    assert_eq!(
        text_header(second, REASON_HEADER).as_deref(),
        Some(reason::MAX_ATTEMPTS)
    );
    let error = text_header(second, ERROR_HEADER).expect("error header");
    assert!(
        error.contains("panicked") && error.contains("blew up"),
        "{error}"
    );
    assert_eq!(job_of(third), late);
    assert_eq!(
        header(third, ATTEMPTS_HEADER),
        Some(&AMQPValue::LongLongInt(3))
    );
    for message in [first, second, third] {
        assert_eq!(
            text_header(message, ORIGINAL_QUEUE_HEADER).as_deref(),
            Some(queue)
        );
    }
    queues.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_are_answered_with_the_service_name_and_not_handled() {
    let Some(conn) = broker().await else { return };
    let queues = Queues::new("probe", 2);
    let (queue, replies) = (queues.name(0), queues.name(1));
    let worker = Worker::start(Options {
        service: "audit-worker",
        ..Options::new(BROKER_URL, &queues.names()[..1])
    })
    .await;
    eventually("readiness", || worker.ready()).await;

    let channel = confirm_channel(&conn).await;
    declare_plain(&channel, replies).await;
    let mut headers = FieldTable::default();
    headers.insert(PROBE_HEADER.into(), AMQPValue::LongString("1".into()));
    // What `msvc test` publishes: not a message of the queue's type.
    let body = br#"{"msvc_probe":true}"#;
    let probe = json_properties()
        .with_headers(headers)
        .with_reply_to(replies.into())
        .with_correlation_id("probe-1".into());
    publish_with(&channel, queue, body, probe).await;

    let reply = take_one(&channel, replies).await;
    let answer: serde_json::Value =
        serde_json::from_slice(&reply.delivery.data).expect("a JSON reply");
    assert_eq!(answer["service"], "audit-worker");
    assert_eq!(answer["queue"], queue);
    assert_eq!(answer["pid"], std::process::id());
    assert_eq!(
        reply
            .delivery
            .properties
            .correlation_id()
            .as_ref()
            .map(ShortString::as_str),
        Some("probe-1")
    );

    // Without `reply_to`, a probe is only acked.
    let mut headers = FieldTable::default();
    headers.insert(PROBE_HEADER.into(), AMQPValue::LongString("1".into()));
    publish_with(
        &channel,
        queue,
        body,
        json_properties().with_headers(headers),
    )
    .await;
    // A job after the probes shows they are behind it: the queue is in order.
    let job = Job::new(queue, 1, Action::Succeed);
    publish(&channel, queue, &job.payload()).await;
    eventually("the job after the probes", || async {
        worker.counter("processed", queue).await == 1
    })
    .await;
    // Neither probe was handled (its body is no Job: it would have been dead-lettered)
    // nor counted.
    assert_eq!(worker.counters(queue).await, (1, 0, 0));
    worker.shutdown().await;
    assert_eq!(
        ready_messages(&conn, queue).await,
        0,
        "the probes were acked"
    );
    assert!(
        take_all(&channel, &dead_letter_queue(queue))
            .await
            .is_empty()
    );
    assert!(
        take_all(&channel, replies).await.is_empty(),
        "one reply, to the probe that asked"
    );
    queues.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_messages_in_flight_and_leaves_the_rest_queued() {
    let Some(conn) = broker().await else { return };
    let queues = Queues::new("drain", 1);
    let queue = queues.name(0);
    let channel = confirm_channel(&conn).await;
    declare_plain(&channel, queue).await;
    publish(&channel, queue, &Job::new(queue, 0, Action::Hold).payload()).await;
    for n in 1..=3 {
        publish(
            &channel,
            queue,
            &Job::new(queue, n, Action::Succeed).payload(),
        )
        .await;
    }
    let worker = Worker::start(Options {
        concurrency: 1,
        ..Options::new(BROKER_URL, queues.names())
    })
    .await;
    eventually("the held job to start", || async { started(queue, 0) == 1 }).await;

    let stopped = worker.request_shutdown();
    // Shutdown has started; the held job is let go only now, and finishes.
    tokio::time::sleep(Duration::from_millis(200)).await;
    release(queue, 0);
    tokio::time::timeout(WAIT, stopped)
        .await
        .expect("worker stops once the job is done")
        .expect("worker task")
        .expect("worker exits cleanly");
    assert_eq!(returned(queue, 0), 1, "the job in flight finished");
    // The others were prefetched, never started: they are back in the queue.
    eventually("the rest back in the queue", || async {
        ready_messages(&conn, queue).await == 3
    })
    .await;
    for n in 1..=3 {
        assert_eq!(started(queue, n), 0, "job {n} not started");
    }

    // The next worker gets the rest, and not the finished job again.
    let worker = Worker::start(Options::new(BROKER_URL, queues.names())).await;
    eventually("the rest processed", || async {
        worker.counter("processed", queue).await == 3
    })
    .await;
    assert_eq!(started(queue, 0), 1, "the finished job was acked");
    worker.shutdown().await;
    queues.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grace_period_cuts_off_a_handler_that_does_not_finish() {
    let Some(conn) = broker().await else { return };
    let queues = Queues::new("grace", 1);
    let queue = queues.name(0);
    let worker = Worker::start(Options {
        grace: Duration::from_millis(300),
        ..Options::new(BROKER_URL, queues.names())
    })
    .await;
    eventually("readiness", || worker.ready()).await;
    let channel = confirm_channel(&conn).await;
    publish(&channel, queue, &Job::new(queue, 0, Action::Hold).payload()).await;
    eventually("the held job to start", || async { started(queue, 0) == 1 }).await;

    // Never released: `serve` returns anyway once the grace period is over.
    worker.shutdown().await;
    assert_eq!(returned(queue, 0), 0, "the handler was cut off");
    // Not acked: the broker has it back for the next worker.
    eventually("the job back in the queue", || async {
        ready_messages(&conn, queue).await == 1
    })
    .await;
    queues.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_the_broker_goes_away() {
    let Some(conn) = broker().await else { return };
    let queues = Queues::new("reconnect", 1);
    let queue = queues.name(0);
    let proxy = Proxy::start(BROKER_ADDR).await;
    let worker = Worker::start(Options::new(&proxy.url(), queues.names())).await;
    eventually("readiness", || worker.ready()).await;
    healthcheck::check(worker.admin.port())
        .await
        .expect("--healthcheck passes while connected");

    let channel = confirm_channel(&conn).await;
    publish(
        &channel,
        queue,
        &Job::new(queue, 1, Action::Succeed).payload(),
    )
    .await;
    eventually("first message", || async {
        worker.counter("processed", queue).await == 1
    })
    .await;

    proxy.cut();
    eventually("readyz to turn 503", || async {
        worker.get("/readyz").await == (503, r#"{"status":"not ready"}"#.to_owned())
    })
    .await;
    assert!(
        healthcheck::check(worker.admin.port()).await.is_err(),
        "--healthcheck fails while disconnected"
    );
    let (status, _) = worker.get("/healthz").await;
    assert_eq!(status, 200, "alive all the same");
    publish(
        &channel,
        queue,
        &Job::new(queue, 2, Action::Succeed).payload(),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!worker.ready().await, "still cut off from the broker");
    assert_eq!(worker.counter("processed", queue).await, 1);

    proxy.restore();
    // The worker may be in its longest reconnect wait (the backoff's cap is 30 s) when
    // the broker comes back: a slow machine stretches the cut-off phase above.
    let reconnect = WAIT + Duration::from_secs(30);
    eventually_within("readyz back to 200", reconnect, || worker.ready()).await;
    eventually("second message", || async {
        worker.counter("processed", queue).await == 2
    })
    .await;

    worker.shutdown().await;
    assert_eq!(ready_messages(&conn, queue).await, 0);
    assert_eq!((started(queue, 1), started(queue, 2)), (1, 1));
    drop(proxy);
    queues.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumes_every_queue_and_one_deleted_behind_its_back_again() {
    let Some(conn) = broker().await else { return };
    let queues = Queues::new("two-queues", 2);
    let (first, second) = (queues.name(0), queues.name(1));
    let worker = Worker::start(Options::new(BROKER_URL, queues.names())).await;
    eventually("readiness", || worker.ready()).await;
    let channel = confirm_channel(&conn).await;
    for queue in [first, second] {
        assert_eq!(declare_plain(&channel, queue).await.consumer_count(), 1);
    }
    publish(
        &channel,
        first,
        &Job::new(first, 1, Action::Succeed).payload(),
    )
    .await;
    publish(
        &channel,
        second,
        &Job::new(second, 1, Action::Succeed).payload(),
    )
    .await;
    publish(
        &channel,
        second,
        &Job::new(second, 2, Action::Succeed).payload(),
    )
    .await;
    eventually("both queues' messages", || async {
        worker.counter("processed", first).await == 1
            && worker.counter("processed", second).await == 2
    })
    .await;

    // The broker cancels the consumer of a deleted queue: the worker starts over and
    // declares it again.
    channel
        .queue_delete(first.into(), lapin::options::QueueDeleteOptions::default())
        .await
        .expect("queue delete");
    eventually("the deleted queue declared and consumed again", || {
        let conn = &conn;
        async move {
            let Ok(probe) = conn.create_channel().await else {
                return false;
            };
            let declared = probe
                .queue_declare(
                    first.into(),
                    QueueDeclareOptions {
                        passive: true,
                        ..QueueDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await;
            let _ = probe.close(200, "OK".into()).await;
            declared.is_ok_and(|q| q.consumer_count() == 1)
        }
    })
    .await;
    eventually("readiness", || worker.ready()).await;
    publish(
        &channel,
        first,
        &Job::new(first, 2, Action::Succeed).payload(),
    )
    .await;
    eventually("a message on the declared-again queue", || async {
        worker.counter("processed", first).await == 2
    })
    .await;
    assert_eq!(worker.counter("processed", second).await, 2);

    worker.shutdown().await;
    queues.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coexists_with_a_plain_python_style_declaration() {
    let Some(conn) = broker().await else { return };
    let queues = Queues::new("python", 1);
    let queue = queues.name(0);
    let channel = confirm_channel(&conn).await;
    // What `channel.queue_declare(queue=..., durable=True)` sends.
    declare_plain(&channel, queue).await;

    let worker = Worker::start(Options::new(BROKER_URL, queues.names())).await;
    eventually("readiness", || worker.ready()).await;
    // And the publisher declaring again while the worker consumes must still succeed.
    let q = declare_plain(&channel, queue).await;
    assert_eq!(q.consumer_count(), 1);

    let body = format!(r#"{{"test": "{queue}", "n": 1, "action": "Succeed"}}"#);
    publish(&channel, queue, body.as_bytes()).await;
    eventually("processed counter to reach 1", || async {
        worker.counter("processed", queue).await == 1
    })
    .await;
    worker.shutdown().await;
    assert_eq!(ready_messages(&conn, queue).await, 0);
    queues.delete().await;
}

/// Needs no broker: the worker points at a port nobody listens on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_without_a_broker() {
    let url = closed_url().await;
    let queues = [common::unique("unreachable")];
    let worker = Worker::start(Options::new(&url, &queues)).await;

    let (status, body) = worker.get("/healthz").await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    // Long enough for a few connection attempts and backoffs.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, body) = worker.get("/readyz").await;
    assert_eq!((status, body.as_str()), (503, r#"{"status":"not ready"}"#));
    assert!(healthcheck::check(worker.admin.port()).await.is_err());

    worker.shutdown().await;
}
