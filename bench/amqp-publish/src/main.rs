//! amqp-publish: publishes `{"user_id":1,"message":"Hello, World!"}` through the
//! generated `contracts::amqp::Publisher` and prints the rate, or does a queue chore.
//!
//!   amqp-publish publish (--typed | --queue Q) [--count 50000] [--window 256 | --tasks N]
//!   amqp-publish info Q      # prints `messages=N consumers=N` (exit 3: no such queue)
//!   amqp-publish purge Q
//!   amqp-publish delete Q
//!
//! `--typed` publishes to the queue that the message type names (`user_message`), the way
//! user-api does; `--queue` publishes to a queue named at run time.
//! `--window N` (the default, 256) is one task pipelining its confirms the way the
//! `contracts::amqp` docs show: `Publisher::send` each message, await the oldest
//! `Confirm` once N are unconfirmed, so every message's outcome is still checked.
//! `--tasks N` instead runs N tasks over one shared `Publisher`, each awaiting its
//! message's confirm (`Publisher::publish`) before sending the next: what N concurrent
//! requests of user-api do.
//! The broker is `AMQP_URL` (default `contracts::amqp::DEFAULT_AMQP_URL`).

use std::{
    collections::VecDeque,
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

const USAGE: &str = "usage: amqp-publish publish (--typed | --queue Q) [--count N] [--window N | --tasks N]\n       amqp-publish info|purge|delete QUEUE";

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
    let mut window = 256usize;
    let mut tasks: Option<usize> = None;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--typed" => typed = true,
            "--queue" => queue = Some(it.next().ok_or("--queue needs a value")?.clone()),
            "--count" => count = it.next().ok_or("--count needs a value")?.parse()?,
            "--window" => window = it.next().ok_or("--window needs a value")?.parse()?,
            "--tasks" => tasks = Some(it.next().ok_or("--tasks needs a value")?.parse()?),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}").into()),
        }
    }
    if typed == queue.is_some() || window == 0 || tasks == Some(0) {
        return Err(USAGE.into());
    }

    let publisher = Publisher::connect(&amqp::amqp_url()).await?;
    let message = UserMessage {
        user_id: 1,
        message: "Hello, World!".to_owned(),
    };
    // One message first: declares the queue on the publisher's channel, out of the timing.
    send(&publisher, &message, queue.as_deref()).await?.confirmed().await?;
    let timed = count.saturating_sub(1);

    let start = Instant::now();
    match tasks {
        None => {
            let mut in_flight = VecDeque::with_capacity(window);
            for _ in 0..timed {
                if in_flight.len() == window {
                    let oldest: amqp::Confirm = in_flight.pop_front().expect("a full window");
                    oldest.confirmed().await?;
                }
                in_flight.push_back(send(&publisher, &message, queue.as_deref()).await?);
            }
            for confirm in in_flight {
                confirm.confirmed().await?;
            }
        }
        Some(tasks) => {
            let next = Arc::new(AtomicUsize::new(0));
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..tasks {
                let (publisher, message, queue, next) =
                    (publisher.clone(), message.clone(), queue.clone(), next.clone());
                set.spawn(async move {
                    while next.fetch_add(1, Ordering::Relaxed) < timed {
                        match &queue {
                            None => publisher.publish(&message).await?,
                            Some(queue) => publisher.publish_to(queue, &message).await?,
                        }
                    }
                    Ok::<_, amqp::PublishError>(())
                });
            }
            while let Some(joined) = set.join_next().await {
                joined??;
            }
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    publisher.close().await;
    // `count - 1` messages were timed: the first one went out before the clock started.
    println!(
        "messages={count} timed={timed} seconds={seconds:.3} rate={:.0}",
        timed as f64 / seconds
    );
    Ok(ExitCode::SUCCESS)
}

async fn send(
    publisher: &Publisher,
    message: &UserMessage,
    queue: Option<&str>,
) -> Result<amqp::Confirm, amqp::PublishError> {
    match queue {
        None => publisher.send(message).await,
        Some(queue) => publisher.send_to(queue, message).await,
    }
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
