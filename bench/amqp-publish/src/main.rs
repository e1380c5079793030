//! amqp-publish: publishes `{"user_id":1,"message":"Hello, World!"}` through the
//! generated `contracts::amqp::Publisher` and prints the rate, or does a queue chore.
//!
//!   amqp-publish publish (--typed | --queue Q) [--count 50000] [--in-flight 1]
//!   amqp-publish info Q      # prints `messages=N consumers=N` (exit 3: no such queue)
//!   amqp-publish purge Q
//!   amqp-publish delete Q
//!
//! `--typed` publishes with `Publisher::publish`, i.e. to the queue that the message
//! type names (`user_message`), the way user-api does; `--queue` uses `publish_to`.
//! `--in-flight N` runs N publishing tasks over one shared `Publisher` (clones share its
//! connection and confirm channel); each task awaits its message's confirm before
//! sending the next, so at most N messages are unconfirmed at a time.
//! The broker is `AMQP_URL` (default `contracts::amqp::DEFAULT_AMQP_URL`).

use std::{
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Instant,
};

use contracts::{
    amqp::{self, Publisher},
    messages::UserMessage,
};
use lapin::{
    Connection, ConnectionProperties,
    options::{QueueDeclareOptions, QueueDeleteOptions, QueuePurgeOptions},
    types::{FieldTable, ShortString},
};

type Error = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str = "usage: amqp-publish publish (--typed | --queue Q) [--count N] [--in-flight N]\n       amqp-publish info|purge|delete QUEUE";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("publish") => publish(&args[1..]).await,
        Some(cmd @ ("info" | "purge" | "delete")) if args.len() == 2 => chore(cmd, &args[1]).await,
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn publish(args: &[String]) -> Result<ExitCode, Error> {
    let mut queue: Option<String> = None;
    let mut typed = false;
    let mut count = 50_000usize;
    let mut in_flight = 1usize;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--typed" => typed = true,
            "--queue" => queue = Some(it.next().ok_or("--queue needs a value")?.clone()),
            "--count" => count = it.next().ok_or("--count needs a value")?.parse()?,
            "--in-flight" => in_flight = it.next().ok_or("--in-flight needs a value")?.parse()?,
            other => return Err(format!("unknown argument `{other}`\n{USAGE}").into()),
        }
    }
    if typed == queue.is_some() || in_flight == 0 {
        return Err(USAGE.into());
    }

    let publisher = Publisher::connect(&amqp::amqp_url()).await?;
    let message = UserMessage {
        user_id: 1,
        message: "Hello, World!".to_owned(),
    };
    // One message first: declares the queue on the publisher's channel, out of the timing.
    let send = |publisher: Publisher, message: UserMessage, queue: Option<String>| async move {
        match queue {
            None => publisher.publish(&message).await,
            Some(queue) => publisher.publish_to(&queue, &message).await,
        }
    };
    send(publisher.clone(), message.clone(), queue.clone()).await?;

    let next = Arc::new(AtomicUsize::new(1));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..in_flight {
        let (publisher, message, queue, next) =
            (publisher.clone(), message.clone(), queue.clone(), next.clone());
        tasks.spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < count {
                send(publisher.clone(), message.clone(), queue.clone()).await?;
            }
            Ok::<_, amqp::PublishError>(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined??;
    }
    let seconds = start.elapsed().as_secs_f64();
    publisher.close().await;
    // `count - 1` messages were timed: the first one went out before the clock started.
    let timed = count.saturating_sub(1);
    println!(
        "messages={count} timed={timed} seconds={seconds:.3} rate={:.0}",
        timed as f64 / seconds
    );
    Ok(ExitCode::SUCCESS)
}

async fn chore(cmd: &str, queue: &str) -> Result<ExitCode, Error> {
    let conn = Connection::connect(&amqp::amqp_url(), ConnectionProperties::default()).await?;
    let channel = conn.create_channel().await?;
    let name = ShortString::try_new(queue).map_err(|_| "queue name too long")?;
    let code = match cmd {
        "info" => {
            let options = QueueDeclareOptions::durable().passive();
            match channel
                .queue_declare(name, options, FieldTable::default())
                .await
            {
                Ok(q) => {
                    println!(
                        "messages={} consumers={}",
                        q.message_count(),
                        q.consumer_count()
                    );
                    ExitCode::SUCCESS
                }
                // 404 NOT_FOUND closes the channel.
                Err(e) => {
                    println!("missing: {e}");
                    ExitCode::from(3)
                }
            }
        }
        "purge" => {
            let n = channel
                .queue_purge(name, QueuePurgeOptions::default())
                .await?;
            println!("purged={n}");
            ExitCode::SUCCESS
        }
        _ => {
            let n = channel
                .queue_delete(name, QueueDeleteOptions::default())
                .await?;
            println!("deleted={n}");
            ExitCode::SUCCESS
        }
    };
    let _ = conn.close(200, "OK".into()).await;
    Ok(code)
}
