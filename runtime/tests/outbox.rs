//! The transactional outbox, the idempotent consumer and the database set-up, against
//! the PostgreSQL server at 127.0.0.1:5432 and the RabbitMQ broker at 127.0.0.1:5672,
//! each test with a database and queues of its own that it removes. Faults are TCP
//! proxies of the tests' own, cut and restored: the shared servers are never stopped.

mod common;

use std::{path::Path, time::Duration};

use common::{Proxy, Queues, TestDb, WAIT, broker, eventually, postgres};
use lapin::options::BasicGetOptions;
use msvc_runtime::{
    ServiceConfig,
    admin::Health,
    amqp::{Envelope, Publisher},
    config::Defaults,
    db::{self, DbConfig},
    inbox,
    outbox::{self, OutboxMetrics, Relay},
    shutdown,
    worker::{self, HandlerError, Message, ProcessError, QueueConfig, Route, WorkerConfig},
};
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use sqlx::{PgPool, migrate::Migrator};

async fn migrator() -> &'static Migrator {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/migrations");
    let migrator = Migrator::new(dir)
        .await
        .expect("the tests' migrations read");
    Box::leak(Box::new(migrator))
}

/// The test's database, migrated, and its pool.
async fn migrated(label: &str) -> Option<(TestDb, PgPool)> {
    let test_db = postgres(label).await?;
    let pool = DbConfig::new(&test_db.url).pool().expect("pool");
    db::migrate(&pool, migrator().await).await.expect("migrate");
    Some((test_db, pool))
}

/// Writes an order and enqueues its message in one transaction, committed or not.
async fn order(pool: &PgPool, queue: &str, item: &str, commit: bool) -> String {
    let mut tx = pool.begin().await.expect("begin");
    sqlx::query("INSERT INTO orders (item) VALUES ($1)")
        .bind(item)
        .execute(&mut *tx)
        .await
        .expect("insert");
    let id = outbox::enqueue_to(&mut tx, queue, &json!({ "item": item }), &[])
        .await
        .expect("enqueue");
    if commit {
        tx.commit().await.expect("commit");
    } else {
        tx.rollback().await.expect("rollback");
    }
    id
}

/// Every message on `queue` now: (message id, body), in order.
async fn take_all(channel: &lapin::Channel, queue: &str) -> Vec<(String, Value)> {
    let mut taken = Vec::new();
    while let Some(message) = channel
        .basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await
        .expect("basic_get")
    {
        let id = message
            .delivery
            .properties
            .message_id()
            .as_ref()
            .map(|id| id.to_string())
            .unwrap_or_default();
        let body = serde_json::from_slice(&message.delivery.data).expect("JSON");
        taken.push((id, body));
    }
    taken
}

async fn backlog(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM msvc_outbox")
        .fetch_one(pool)
        .await
        .expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_committed_messages_go_out_with_the_rows_id() {
    let Some(conn) = broker().await else { return };
    let Some((test_db, pool)) = migrated("outbox-commit").await else {
        return;
    };
    let queues = Queues::new("outbox-commit", 1);
    let queue = queues.name(0);
    let committed = order(&pool, queue, "tea", true).await;
    order(&pool, queue, "coffee", false).await;
    assert_eq!(
        backlog(&pool).await,
        1,
        "the rolled-back message is not in the outbox"
    );

    let publisher = Publisher::lazy(common::BROKER_URL).expect("URL");
    let relay = Relay::new(pool.clone(), publisher.clone());
    assert_eq!(relay.relay_once().await.expect("relayed"), 1);
    assert_eq!(
        backlog(&pool).await,
        0,
        "a confirmed message leaves the outbox"
    );
    let channel = conn.create_channel().await.expect("channel");
    assert_eq!(
        take_all(&channel, queue).await,
        vec![(committed, json!({"item": "tea"}))]
    );
    assert_eq!(relay.relay_once().await.expect("nothing left"), 0);

    publisher.close().await;
    pool.close().await;
    queues.delete().await;
    test_db.drop_now().await;
}

/// The broker unreachable while orders are committed: none is lost, and all go out in
/// order once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_is_down_delays_messages_and_loses_none() {
    let Some(conn) = broker().await else { return };
    let Some((test_db, pool)) = migrated("outbox-down").await else {
        return;
    };
    let queues = Queues::new("outbox-down", 1);
    let queue = queues.name(0).to_owned();
    let proxy = Proxy::start(common::BROKER_ADDR).await;
    proxy.cut();
    let publisher = Publisher::lazy(&proxy.url())
        .expect("URL")
        .with_timeout(Duration::from_secs(1));
    let mut registry = Registry::default();
    let metrics = OutboxMetrics::register(&mut registry);
    let (trigger, stop) = shutdown::channel();
    let relay = Relay::new(pool.clone(), publisher.clone())
        .with_poll_interval(Duration::from_millis(100))
        .with_metrics(metrics)
        .spawn(stop);

    let mut ids = Vec::new();
    for n in 0..20 {
        ids.push(order(&pool, &queue, &format!("item {n}"), true).await);
    }
    // The relay tries, fails and keeps the rows.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(backlog(&pool).await, 20);
    let scraped = {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        text
    };
    assert!(scraped.contains("outbox_backlog 20"), "{scraped}");

    proxy.restore();
    eventually("the outbox to drain", || async {
        backlog(&pool).await == 0
    })
    .await;
    let channel = conn.create_channel().await.expect("channel");
    let got = take_all(&channel, &queue).await;
    let expected: Vec<(String, Value)> = ids
        .into_iter()
        .enumerate()
        .map(|(n, id)| (id, json!({ "item": format!("item {n}") })))
        .collect();
    assert_eq!(got, expected, "every message once, in order");

    trigger.fire();
    relay.await.expect("relay stops");
    publisher.close().await;
    pool.close().await;
    queues.delete().await;
    test_db.drop_now().await;
}

/// A relay that only polls once an hour still publishes right after a commit: the
/// commit's notification wakes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_wakes_the_relay() {
    let Some(conn) = broker().await else { return };
    let Some((test_db, pool)) = migrated("outbox-notify").await else {
        return;
    };
    let queues = Queues::new("outbox-notify", 1);
    let queue = queues.name(0).to_owned();
    let publisher = Publisher::lazy(common::BROKER_URL).expect("URL");
    let (trigger, stop) = shutdown::channel();
    let relay = Relay::new(pool.clone(), publisher.clone())
        .with_poll_interval(Duration::from_secs(3600))
        .spawn(stop);
    // Its first round finds nothing; let it reach its wait.
    tokio::time::sleep(Duration::from_millis(300)).await;
    order(&pool, &queue, "woken", true).await;
    eventually("the notified relay to publish", || async {
        backlog(&pool).await == 0
    })
    .await;
    let channel = conn.create_channel().await.expect("channel");
    assert_eq!(take_all(&channel, &queue).await.len(), 1);

    trigger.fire();
    relay.await.expect("relay stops");
    publisher.close().await;
    pool.close().await;
    queues.delete().await;
    test_db.drop_now().await;
}

/// Two replicas' relays on one outbox: every message goes out exactly once, and each
/// queue's in the order it was committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_share_the_outbox_without_duplicates_keeping_each_queues_order() {
    let Some(conn) = broker().await else { return };
    let Some((test_db, pool)) = migrated("outbox-replicas").await else {
        return;
    };
    let queues = Queues::new("outbox-replicas", 2);
    let names: Vec<String> = queues.names().to_vec();
    let (trigger, stop) = shutdown::channel();
    let mut relays = Vec::new();
    let mut publishers = Vec::new();
    for _ in 0..2 {
        let publisher = Publisher::lazy(common::BROKER_URL).expect("URL");
        let pool = DbConfig::new(&test_db.url).pool().expect("pool");
        relays.push(
            Relay::new(pool, publisher.clone())
                .with_poll_interval(Duration::from_millis(50))
                .spawn(stop.clone()),
        );
        publishers.push(publisher);
    }
    let mut sent: Vec<Vec<String>> = vec![Vec::new(), Vec::new()];
    for n in 0..300 {
        let q = n % 2;
        sent[q].push(order(&pool, &names[q], &format!("item {n}"), true).await);
    }
    eventually("both relays to drain the outbox", || async {
        backlog(&pool).await == 0
    })
    .await;
    let channel = conn.create_channel().await.expect("channel");
    for (q, ids) in sent.iter().enumerate() {
        let got: Vec<String> = take_all(&channel, &names[q])
            .await
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(&got, ids, "queue {q}: each message once, in order");
    }

    trigger.fire();
    for relay in relays {
        relay.await.expect("relay stops");
    }
    for publisher in publishers {
        publisher.close().await;
    }
    pool.close().await;
    queues.delete().await;
    test_db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_lets_a_message_id_through_once_committed() {
    let Some((test_db, pool)) = migrated("inbox").await else {
        return;
    };
    // Rolled back: the id is not recorded, so the redelivery runs the handler.
    let tx = inbox::begin(&pool, "q", "m-1").await.expect("begin");
    tx.expect("first delivery")
        .rollback()
        .await
        .expect("rollback");
    let tx = inbox::begin(&pool, "q", "m-1").await.expect("begin");
    tx.expect("again, after a rollback")
        .commit()
        .await
        .expect("commit");
    assert!(
        inbox::begin(&pool, "q", "m-1")
            .await
            .expect("begin")
            .is_none(),
        "a committed id is a duplicate"
    );
    assert!(
        inbox::begin(&pool, "q", "m-2")
            .await
            .expect("begin")
            .is_some()
    );

    // A second delivery while the first is still in its transaction waits for it.
    let first = inbox::begin(&pool, "q", "m-3")
        .await
        .expect("begin")
        .expect("first");
    let second = tokio::spawn({
        let pool = pool.clone();
        async move {
            inbox::begin(&pool, "q", "m-3")
                .await
                .expect("begin")
                .is_some()
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !second.is_finished(),
        "the duplicate waits for the first transaction"
    );
    first.commit().await.expect("commit");
    assert!(!second.await.expect("task"), "and then sees a duplicate");

    pool.close().await;
    test_db.drop_now().await;
}

/// Readiness follows the database: not ready until migrated, then ready, not ready
/// while the connection is cut, ready again once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_database() {
    let Some(test_db) = postgres("db-ready").await else {
        return;
    };
    let proxy = Proxy::start(common::POSTGRES_ADDR).await;
    proxy.cut();
    let mut config = DbConfig::new(&test_db.url_via(&proxy));
    config.acquire_timeout = Duration::from_millis(500);
    let pool = config.pool().expect("pool");
    let health = Health::new();
    health.set_ready(true);
    let (trigger, stop) = shutdown::channel();
    let task = db::start(pool.clone(), migrator().await, health.clone(), stop);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!health.is_ready(), "not ready before the migrations ran");

    proxy.restore();
    eventually("ready once migrated", || async { health.is_ready() }).await;
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_tables WHERE tablename IN ('orders', 'msvc_outbox', 'msvc_inbox')",
    )
    .fetch_one(&pool)
    .await
    .expect("count");
    assert_eq!(
        tables, 3,
        "the service's migration and the runtime's tables"
    );

    proxy.cut();
    eventually("not ready while the database is cut", || async {
        !health.is_ready()
    })
    .await;
    proxy.restore();
    eventually("ready again", || async { health.is_ready() }).await;

    trigger.fire();
    tokio::time::timeout(WAIT, task)
        .await
        .expect("stops on shutdown")
        .expect("task");
    pool.close().await;
    test_db.drop_now().await;
}

/// The route of the inbox test's worker: writes the order its message names, in the
/// transaction the worker gives it, and rejects the item `fails` after writing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Orders;

impl Route for Orders {
    const ALL: &'static [Self] = &[Orders];

    fn queue(self) -> &'static str {
        "orders"
    }

    async fn dispatch(self, mut message: Message<'_>) -> Result<(), ProcessError> {
        let body: Value = serde_json::from_slice(message.payload)
            .map_err(|e| ProcessError::Handler(HandlerError::Permanent(e.to_string())))?;
        let item = body["item"].as_str().unwrap_or_default().to_owned();
        sqlx::query("INSERT INTO orders (item) VALUES ($1)")
            .bind(&item)
            .execute(message.transaction()?)
            .await
            .map_err(|e| ProcessError::Handler(HandlerError::Transient(e.to_string())))?;
        if item == "fails" {
            let reason = "rejected after writing".to_owned();
            return Err(ProcessError::Handler(HandlerError::Permanent(reason)));
        }
        Ok(())
    }
}

/// A worker with a database handles each message in a transaction with the inbox: a
/// message delivered twice with one id writes once, a failed handler's writes are rolled
/// back with its inbox row, and a message without an id is handled in a transaction too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_with_a_database_applies_a_message_delivered_twice_once() {
    let Some(conn) = broker().await else { return };
    let Some((test_db, pool)) = migrated("inbox-worker").await else {
        return;
    };
    let queues = Queues::new("inbox-worker", 1);
    let queue = queues.name(0).to_owned();
    let publisher = Publisher::lazy(common::BROKER_URL).expect("URL");
    let sends = [
        ("once", Some("m-1")),
        ("once", Some("m-1")),
        ("fails", Some("m-2")),
    ];
    for (item, id) in sends {
        let envelope = Envelope {
            message_id: id.map(str::to_owned),
            headers: Vec::new(),
        };
        let body = serde_json::to_vec(&json!({ "item": item })).expect("JSON");
        let confirm = publisher
            .send_encoded(&queue, body.into(), &envelope)
            .await
            .expect("send");
        confirm.confirmed().await.expect("confirmed");
    }
    // Two publishers' own messages, each the first of its connection.
    for item in ["first of one", "first of another"] {
        let other = Publisher::lazy(common::BROKER_URL).expect("URL");
        let body = serde_json::to_vec(&json!({ "item": item })).expect("JSON");
        let confirm = other
            .send_encoded(&queue, body.into(), &Envelope::default())
            .await
            .expect("send");
        confirm.confirmed().await.expect("confirmed");
        other.close().await;
    }
    // A publisher of another kind, that sets no message id.
    let channel = conn.create_channel().await.expect("channel");
    channel
        .basic_publish(
            "".into(),
            queue.as_str().into(),
            lapin::options::BasicPublishOptions::default(),
            br#"{"item": "no id"}"#,
            lapin::BasicProperties::default(),
        )
        .await
        .expect("publish");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind admin");
    let admin = listener.local_addr().expect("admin addr");
    let service = ServiceConfig::new(Defaults {
        port: None,
        admin_port: Some(admin.port()),
        shutdown_grace: Duration::from_secs(5),
    });
    let config = WorkerConfig {
        queues: vec![QueueConfig {
            name: queue.clone(),
            route: Orders,
        }],
        ..WorkerConfig::new("inbox-test", common::BROKER_URL)
    }
    .with_database(pool.clone(), migrator().await);
    let (trigger, stop) = shutdown::channel();
    let task = tokio::spawn(async move { worker::serve(&service, config, listener, stop).await });

    let http = reqwest::Client::new();
    let metrics = || async {
        let res = http.get(format!("http://{admin}/metrics")).send().await;
        match res {
            Ok(res) => res.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    };
    let series = |name: &str| format!("worker_messages_{name}_total{{queue=\"{queue}\"}} ");
    let (processed, dead) = (series("processed"), series("dead_lettered"));
    eventually("every delivery settled", || async {
        let text = metrics().await;
        text.contains(&format!("{processed}5")) && text.contains(&format!("{dead}1"))
    })
    .await;
    let ready = http.get(format!("http://{admin}/readyz")).send().await;
    assert_eq!(
        ready.expect("readyz").status(),
        200,
        "broker and database up"
    );

    let items: Vec<String> = sqlx::query_scalar("SELECT item FROM orders ORDER BY item")
        .fetch_all(&pool)
        .await
        .expect("orders");
    assert_eq!(
        items,
        ["first of another", "first of one", "no id", "once"],
        "once each; the failed write rolled back"
    );
    let handled: Vec<String> =
        sqlx::query_scalar("SELECT message_id FROM msvc_inbox WHERE message_id LIKE 'm-%'")
            .fetch_all(&pool)
            .await
            .expect("inbox");
    assert_eq!(
        handled,
        ["m-1"],
        "the committed one, not the rolled back one"
    );

    trigger.fire();
    task.await.expect("task").expect("worker stops");
    publisher.close().await;
    pool.close().await;
    queues.delete().await;
    test_db.drop_now().await;
}
