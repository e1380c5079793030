//! For a service's own tests: the RabbitMQ broker they share with everything else, used
//! through queues of their own that they remove, so that no real consumer ever sees a
//! test's message.
//!
//! A test that needs the broker starts with [`TestBroker::connect`]: without a broker it
//! prints a loud SKIP and the test returns, unless `CI` is set, where that is a failure.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lapin::options::{BasicGetOptions, QueueDeleteOptions};

use crate::amqp::AMQP_URL_ENV;

/// The broker tests use where `AMQP_URL` is unset: RabbitMQ on this machine.
pub const DEFAULT_BROKER_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// How long [`TestBroker::take`] waits for a message to arrive.
const TAKE_WITHIN: Duration = Duration::from_secs(5);

/// A queue prefix no other test or run uses: `test.<pid>.<nanoseconds>.`. Give it to
/// the service's publisher (`queue_prefix`), then [`TestBroker::take`] the message.
pub fn unique_prefix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("test.{}.{nanos}.", std::process::id())
}

/// A connection to the tests' broker.
pub struct TestBroker {
    url: String,
    connection: lapin::Connection,
}

impl TestBroker {
    /// Connects to the broker at `AMQP_URL`, or [`DEFAULT_BROKER_URL`]. When it cannot be
    /// reached: `None` after a loud SKIP on stderr, or a panic when `CI` is set.
    pub async fn connect() -> Option<Self> {
        let url = std::env::var(AMQP_URL_ENV)
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| DEFAULT_BROKER_URL.to_owned());
        let properties = lapin::ConnectionProperties::default();
        let connected = tokio::time::timeout(
            Duration::from_secs(5),
            lapin::Connection::connect(&url, properties),
        )
        .await;
        let error = match connected {
            Ok(Ok(connection)) => return Some(Self { url, connection }),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "no answer within 5 s".to_owned(),
        };
        let shown = crate::config::without_password(&url);
        assert!(
            std::env::var_os("CI").is_none(),
            "RabbitMQ at {shown} is required when CI is set: {error}"
        );
        eprintln!(
            "\n==================== SKIP ====================\n\
             RabbitMQ at {shown} is not reachable ({error}).\n\
             This test did NOT run. Start a broker (or set AMQP_URL), or set CI=1 to make \
             this fail.\n\
             ==============================================\n"
        );
        None
    }

    /// The broker's URL, for the service under test.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Takes the one message waiting on `queue` (its body) and deletes the queue. Panics
    /// when none arrives within 5 s.
    pub async fn take(&self, queue: &str) -> Vec<u8> {
        let channel = self
            .connection
            .create_channel()
            .await
            .expect("AMQP channel");
        let started = tokio::time::Instant::now();
        let body = loop {
            let got = channel
                .basic_get(queue.into(), BasicGetOptions { no_ack: true })
                .await;
            match got {
                Ok(Some(message)) => break message.delivery.data,
                _ if started.elapsed() < TAKE_WITHIN => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Ok(None) => panic!("no message on `{queue}` within {TAKE_WITHIN:?}"),
                Err(e) => panic!("cannot read `{queue}`: {e}"),
            }
        };
        // A failed basic.get closes the channel: delete the queue on a fresh one.
        let channel = self
            .connection
            .create_channel()
            .await
            .expect("AMQP channel");
        channel
            .queue_delete(queue.into(), QueueDeleteOptions::default())
            .await
            .expect("delete the test's queue");
        body
    }

    /// Closes the connection.
    pub async fn close(self) {
        let _ = self.connection.close(200, "OK".into()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_differ_and_end_with_a_dot() {
        let (a, b) = (unique_prefix(), unique_prefix());
        assert_ne!(a, b);
        assert!(a.starts_with("test.") && a.ends_with('.'), "{a}");
    }
}
