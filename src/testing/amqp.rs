//! The AMQP 0-9-1 client of `msvc test`'s queue probe, on lapin: connect, declare
//! queues, publish a message with headers and `reply_to`, and poll a queue with
//! `basic.get`. msvc is synchronous, so the client owns the tokio runtime lapin needs,
//! and every broker round trip is bounded by the timeout given to [`AmqpClient::connect`].

use std::future::Future;
use std::io;
use std::time::Duration;

use lapin::options::{
    BasicGetOptions, BasicPublishOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::uri::{AMQPAuthority, AMQPQueryString, AMQPScheme, AMQPUri, AMQPUserInfo};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ErrorKind};

use crate::workspace::url::AmqpUrl;

/// A connection with one open channel.
pub struct AmqpClient {
    // Dropped last: lapin's connection and its tasks live on it.
    runtime: tokio::runtime::Runtime,
    connection: Connection,
    channel: Channel,
    timeout: Duration,
}

fn bad(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

/// lapin's error, worded as msvc's reports word a broker's answer.
#[allow(clippy::needless_pass_by_value)] // the signature map_err wants
fn broker_error(e: lapin::Error) -> io::Error {
    match e.kind() {
        // connection.close or channel.close: the broker says why.
        ErrorKind::ProtocolError(why) => bad(format!(
            "the broker closed the connection: {} {}",
            why.get_id(),
            why.get_message()
        )),
        ErrorKind::IOError(io) => io::Error::new(io.kind(), io.to_string()),
        _ => bad(e.to_string()),
    }
}

/// A string-valued field table, as the probe's headers are.
fn table(entries: &[(&str, &str)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in entries {
        t.insert((*k).into(), AMQPValue::LongString((*v).into()));
    }
    t
}

impl AmqpClient {
    /// Connects, logs in with PLAIN and opens a channel.
    pub fn connect(url: &AmqpUrl, timeout: Duration) -> io::Result<Self> {
        // A worker thread of its own keeps lapin's heartbeats and reads going between
        // calls, while the caller sleeps between polls.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_io()
            .enable_time()
            .build()?;
        let uri = AMQPUri {
            scheme: if url.tls {
                AMQPScheme::AMQPS
            } else {
                AMQPScheme::AMQP
            },
            authority: AMQPAuthority {
                userinfo: AMQPUserInfo {
                    username: url.user.clone(),
                    password: url.password.clone(),
                },
                host: url.host.clone(),
                port: url.port,
            },
            vhost: url.vhost.clone(),
            query: AMQPQueryString {
                connection_timeout: u64::try_from(timeout.as_millis()).ok(),
                ..AMQPQueryString::default()
            },
        };
        let properties = ConnectionProperties::default()
            .with_client_property("product".into(), "msvc test".into());
        let (connection, channel) = bounded(&runtime, timeout, async {
            let connection = Connection::connect_uri(uri, properties).await?;
            let channel = connection.create_channel().await?;
            Ok((connection, channel))
        })?;
        Ok(Self {
            runtime,
            connection,
            channel,
            timeout,
        })
    }

    /// Runs one exchange with the broker on the client's runtime, within its timeout.
    fn block<T>(&self, f: impl Future<Output = lapin::Result<T>>) -> io::Result<T> {
        bounded(&self.runtime, self.timeout, f)
    }

    /// Declares `queue` durable with no arguments, as the services declare it; an empty
    /// name asks the broker for an exclusive, auto-deleted queue and returns its name.
    pub fn declare(&mut self, queue: &str) -> io::Result<String> {
        let options = if queue.is_empty() {
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            }
        } else {
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            }
        };
        let declared = self.block(self.channel.queue_declare(
            queue.into(),
            options,
            FieldTable::default(),
        ))?;
        Ok(declared.name().to_string())
    }

    /// Deletes `queue`, whatever it holds.
    pub fn delete(&mut self, queue: &str) -> io::Result<()> {
        self.block(
            self.channel
                .queue_delete(queue.into(), QueueDeleteOptions::default()),
        )
        .map(|_| ())
    }

    /// Publishes `body` to `queue` through the default exchange, with string `headers`,
    /// `reply_to`, a `correlation_id` and an expiration in milliseconds.
    pub fn publish(
        &mut self,
        queue: &str,
        body: &[u8],
        headers: &[(&str, &str)],
        reply_to: &str,
        correlation_id: &str,
        expiration_ms: u64,
    ) -> io::Result<()> {
        let properties = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_headers(table(headers))
            .with_correlation_id(correlation_id.into())
            .with_reply_to(reply_to.into())
            .with_expiration(expiration_ms.to_string().into());
        // The channel is not in confirm mode: the publish is done once it is sent.
        self.block(self.channel.basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            body,
            properties,
        ))
        .map(drop)
    }

    /// Takes one message from `queue` (acknowledged at once), or none when it is empty.
    pub fn get(&mut self, queue: &str) -> io::Result<Option<Vec<u8>>> {
        let message = self.block(
            self.channel
                .basic_get(queue.into(), BasicGetOptions { no_ack: true }),
        )?;
        Ok(message.map(|m| m.delivery.data))
    }

    /// Closes the connection politely (the broker then drops the exclusive queues).
    pub fn close(self) {
        let _ = self.block(self.connection.close(200, "OK".into()));
    }
}

/// `f` on `runtime`, given up after `timeout`.
fn bounded<T>(
    runtime: &tokio::runtime::Runtime,
    timeout: Duration,
    f: impl Future<Output = lapin::Result<T>>,
) -> io::Result<T> {
    match runtime.block_on(async { tokio::time::timeout(timeout, f).await }) {
        Ok(done) => done.map_err(broker_error),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("the broker did not answer within {}s", timeout.as_secs()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against the real broker at 127.0.0.1:5672 (skipped when there is none, outside CI).
    #[test]
    fn publishes_and_gets_from_the_real_broker() {
        let url = AmqpUrl::parse("amqp://guest:guest@127.0.0.1:5672/%2f").unwrap();
        let Ok(mut client) = AmqpClient::connect(&url, Duration::from_secs(2)) else {
            assert!(
                std::env::var_os("CI").is_none_or(|v| v.is_empty() || v == "false"),
                "RabbitMQ at 127.0.0.1:5672 is required under CI"
            );
            eprintln!(
                "\n!!! SKIPPING publishes_and_gets_from_the_real_broker: no RabbitMQ at 127.0.0.1:5672 !!!\n"
            );
            return;
        };
        let queue = client.declare("").unwrap();
        assert!(queue.starts_with("amq.gen-"), "{queue}");
        assert_eq!(client.get(&queue).unwrap(), None);
        let body = vec![b'x'; 300_000];
        client
            .publish(
                &queue,
                &body,
                &[("x-msvc-probe", "1")],
                &queue,
                "id-1",
                10_000,
            )
            .unwrap();
        let mut got = None;
        for _ in 0..50 {
            got = client.get(&queue).unwrap();
            if got.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(got.as_deref(), Some(&body[..]));
        let durable = format!("msvc-amqp-test-{}", std::process::id());
        assert_eq!(client.declare(&durable).unwrap(), durable);
        client.delete(&durable).unwrap();
        // A queue declared with other arguments is refused, and the broker says why.
        let err = client.declare(&queue).unwrap_err();
        assert!(err.to_string().contains("closed"), "{err}");
        assert!(
            err.to_string()
                .starts_with("the broker closed the connection: 403 ACCESS_REFUSED"),
            "{err}"
        );
        client.close();
    }
}
