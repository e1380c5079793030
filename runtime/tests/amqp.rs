//! `msvc_runtime::amqp::Publisher` against the RabbitMQ broker at 127.0.0.1:5672
//! (guest/guest), each test with queues of its own that it deletes afterwards.
//!
//! Without a broker the tests that need one are skipped with a loud message, unless
//! `CI` is set, where that is a failure.

mod common;

use std::time::Duration;

use common::{BROKER_URL, Proxy, Queues, broker, closed_url, declare_plain};
use lapin::options::BasicGetOptions;
use msvc_runtime::{
    amqp::{PublishError, Publisher, QueueMessage},
    worker::DEFAULT_AMQP_URL,
};
use serde::{Deserialize, Serialize};

/// A message type of the tests' own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Probe {
    n: u32,
    text: String,
}

/// Its queue is never created: the tests publishing `Probe` by type expect a failure
/// before anything reaches a broker.
impl QueueMessage for Probe {
    const QUEUE: &'static str = "test.msvc-runtime.never-created";
}

fn probe(n: u32) -> Probe {
    Probe {
        n,
        text: format!("probe {n}"),
    }
}

async fn take_all(channel: &lapin::Channel, queue: &str) -> Vec<Probe> {
    let mut taken = Vec::new();
    while let Some(message) = channel
        .basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await
        .expect("basic_get")
    {
        taken.push(serde_json::from_slice(&message.delivery.data).expect("a JSON Probe"));
    }
    taken
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_persistent_confirmed_json() {
    let Some(conn) = broker().await else { return };
    let queues = Queues::new("persistent", 1);
    let queue = queues.name(0);
    let channel = conn.create_channel().await.expect("channel");
    let publisher = Publisher::connect(BROKER_URL).await.expect("connect");
    publisher
        .publish_to(queue, &probe(1))
        .await
        .expect("published");

    // The publisher's declaration matches a plain one, or this would fail.
    let declared = declare_plain(&channel, queue).await;
    assert_eq!(declared.message_count(), 1);
    let message = channel
        .basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await
        .expect("basic_get")
        .expect("the published message");
    let got: Probe = serde_json::from_slice(&message.delivery.data).expect("a JSON Probe");
    assert_eq!(got, probe(1));
    let properties = &message.delivery.properties;
    assert_eq!(
        properties.content_type().as_ref().map(|t| t.as_str()),
        Some("application/json")
    );
    assert_eq!(properties.delivery_mode(), &Some(2), "persistent");
    assert!(properties.message_id().is_some(), "each message has an id");

    // A queue deleted behind the publisher's back: the message comes back as unroutable,
    // and the next publish declares the queue again.
    channel
        .queue_delete(queue.into(), lapin::options::QueueDeleteOptions::default())
        .await
        .expect("queue delete");
    let error = publisher
        .publish_to(queue, &probe(2))
        .await
        .expect_err("unroutable");
    assert!(
        matches!(&error, PublishError::Unroutable { queue: q } if q == queue),
        "{error:?}"
    );
    assert!(error.to_string().contains(queue), "{error}");
    publisher
        .publish_to(queue, &probe(3))
        .await
        .expect("declared again");
    assert_eq!(take_all(&channel, queue).await, [probe(3)]);

    publisher.close().await;
    queues.delete().await;
    let _ = conn.close(200, "OK".into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_to_a_queue_a_python_publisher_declared() {
    let Some(conn) = broker().await else { return };
    let queues = Queues::new("python", 1);
    let queue = queues.name(0);
    let channel = conn.create_channel().await.expect("channel");
    // What `channel.queue_declare(queue=..., durable=True)` sends.
    declare_plain(&channel, queue).await;

    // Lazy: the connection opens on the first publish.
    let publisher = Publisher::lazy(BROKER_URL).expect("valid URL");
    for n in 0..3 {
        publisher
            .publish_to(queue, &probe(n))
            .await
            .expect("published");
    }
    assert_eq!(
        take_all(&channel, queue).await,
        [probe(0), probe(1), probe(2)]
    );

    publisher.close().await;
    // Closed, then used again: it opens a new connection.
    publisher
        .publish_to(queue, &probe(3))
        .await
        .expect("published after close");
    assert_eq!(take_all(&channel, queue).await, [probe(3)]);

    publisher.close().await;
    queues.delete().await;
    let _ = conn.close(200, "OK".into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_sends_report_each_message_on_its_own() {
    let Some(conn) = broker().await else { return };
    let queues = Queues::new("pipelined", 2);
    let (queue, other) = (queues.name(0), queues.name(1));
    let channel = conn.create_channel().await.expect("channel");
    let publisher = Publisher::connect(BROKER_URL).await.expect("connect");

    // Many messages in flight before any confirm is awaited; all are stored, in order.
    let mut confirms = Vec::new();
    for n in 0..100 {
        confirms.push(publisher.send_to(queue, &probe(n)).await.expect("sent"));
    }
    for confirm in confirms {
        confirm.confirmed().await.expect("confirmed");
    }
    assert_eq!(
        take_all(&channel, queue).await,
        (0..100).map(probe).collect::<Vec<_>>()
    );

    // The queue deleted behind the publisher's back: every message sent to it is
    // reported unroutable, while those sent to a queue that exists are confirmed. The
    // broker acks them in batches, and lapin attaches each return to any confirm of
    // its batch: many interleaved messages make that show.
    publisher
        .publish_to(other, &probe(0))
        .await
        .expect("published");
    channel
        .queue_delete(queue.into(), lapin::options::QueueDeleteOptions::default())
        .await
        .expect("queue delete");
    let mut confirms = Vec::new();
    for n in 0..200 {
        let to = if n % 2 == 0 { queue } else { other };
        confirms.push((to, publisher.send_to(to, &probe(n)).await.expect("sent")));
    }
    for (to, confirm) in confirms {
        let result = confirm.confirmed().await;
        if to == queue {
            let error = result.expect_err("unroutable");
            assert!(
                matches!(&error, PublishError::Unroutable { queue: q } if q == queue),
                "{error:?}"
            );
        } else {
            result.expect("confirmed");
        }
    }
    let stored = take_all(&channel, other).await;
    let expected: Vec<Probe> = std::iter::once(probe(0))
        .chain((0..200).filter(|n| n % 2 == 1).map(probe))
        .collect();
    assert_eq!(stored, expected, "exactly the routable ones, in order");
    // The next publish declares the deleted queue again.
    publisher
        .publish_to(queue, &probe(7))
        .await
        .expect("declared again");
    assert_eq!(take_all(&channel, queue).await, [probe(7)]);

    publisher.close().await;
    queues.delete().await;
    let _ = conn.close(200, "OK".into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clones_publish_concurrently_over_one_connection() {
    let Some(conn) = broker().await else { return };
    let queues = Queues::new("clones", 1);
    let queue = queues.name(0).to_owned();
    let channel = conn.create_channel().await.expect("channel");
    let publisher = Publisher::lazy(BROKER_URL).expect("valid URL");

    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..8 {
        let publisher = publisher.clone();
        let queue = queue.clone();
        tasks.spawn(async move {
            for n in 0..25 {
                publisher
                    .publish_to(&queue, &probe(task * 100 + n))
                    .await
                    .expect("published");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("publishing task");
    }
    let mut stored: Vec<u32> = take_all(&channel, &queue)
        .await
        .into_iter()
        .map(|p| p.n)
        .collect();
    stored.sort_unstable();
    let mut expected: Vec<u32> = (0..8)
        .flat_map(|task| (0..25).map(move |n| task * 100 + n))
        .collect();
    expected.sort_unstable();
    assert_eq!(stored, expected, "every message stored once");

    publisher.close().await;
    queues.delete().await;
    let _ = conn.close(200, "OK".into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_on_the_next_publish_after_the_connection_dropped() {
    let Some(conn) = broker().await else { return };
    let queues = Queues::new("reconnect", 1);
    let queue = queues.name(0);
    let channel = conn.create_channel().await.expect("channel");
    let proxy = Proxy::start(common::BROKER_ADDR).await;
    let publisher = Publisher::connect(&proxy.url())
        .await
        .expect("connect")
        .with_timeout(Duration::from_secs(2));
    publisher
        .publish_to(queue, &probe(1))
        .await
        .expect("published");

    proxy.cut();
    publisher
        .publish_to(queue, &probe(2))
        .await
        .expect_err("no broker behind the proxy");
    proxy.restore();
    publisher
        .publish_to(queue, &probe(3))
        .await
        .expect("published on a new connection");

    // The message of the cut connection may or may not have reached the queue.
    let stored = take_all(&channel, queue).await;
    assert!(
        stored == [probe(1), probe(3)] || stored == [probe(1), probe(2), probe(3)],
        "{stored:?}"
    );
    publisher.close().await;
    drop(proxy);
    queues.delete().await;
    let _ = conn.close(200, "OK".into()).await;
}

/// Needs no broker: the publisher points at a port nobody listens on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_is_an_error() {
    let url = closed_url().await;
    let publisher = Publisher::lazy(&url).expect("lazy: nothing is checked but the URL");
    let error = publisher.publish(&probe(1)).await.expect_err("no broker");
    assert!(matches!(error, PublishError::Amqp(_)), "{error:?}");
    let error = Publisher::connect(&url).await.expect_err("no broker");
    assert!(matches!(error, PublishError::Amqp(_)), "{error:?}");
    // The URL holds the password: neither the error nor the publisher shows it.
    let secret = url.replace("guest:guest", "guest:s3cret");
    let publisher = Publisher::lazy(&secret).expect("valid URL");
    assert!(!format!("{publisher:?}").contains("s3cret"));
    let error = publisher.send(&probe(1)).await.expect_err("no broker");
    assert!(!error.to_string().contains("s3cret"), "{error}");
}

#[tokio::test]
async fn malformed_urls_and_queue_names_are_refused() {
    let error = Publisher::lazy("http://guest:s3cret@host/").expect_err("not amqp");
    assert!(matches!(error, PublishError::InvalidUrl(_)), "{error:?}");
    assert!(!error.to_string().contains("s3cret"), "{error}");
    Publisher::lazy(DEFAULT_AMQP_URL).expect("the default broker URL is valid");
    let too_long = "q".repeat(256);
    let publisher = Publisher::lazy(BROKER_URL).expect("valid URL");
    let error = publisher
        .publish_to(&too_long, &probe(1))
        .await
        .expect_err("name too long");
    assert!(matches!(error, PublishError::InvalidQueue(_)), "{error:?}");
}

/// What a service's own tests do: publish behind a prefix of their own, then take the
/// message, which removes the queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_broker_takes_a_prefixed_message_and_removes_its_queue() {
    use msvc_runtime::testing::{TestBroker, unique_prefix};
    let Some(test_broker) = TestBroker::connect().await else {
        return;
    };
    let prefix = unique_prefix();
    let queue = format!("{prefix}probe");
    let publisher = Publisher::lazy(test_broker.url())
        .expect("valid URL")
        .with_queue_prefix(&prefix);
    publisher
        .publish_to(&queue, &probe(7))
        .await
        .expect("published");
    let body = test_broker.take(&queue).await;
    let got: Probe = serde_json::from_slice(&body).expect("a JSON Probe");
    assert_eq!(got, probe(7));
    publisher.close().await;

    let conn = broker().await.expect("connected above");
    let channel = conn.create_channel().await.expect("channel");
    let gone = channel
        .queue_declare(
            queue.as_str().into(),
            lapin::options::QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            Default::default(),
        )
        .await;
    assert!(gone.is_err(), "the queue `{queue}` is still there");
    test_broker.close().await;
}
