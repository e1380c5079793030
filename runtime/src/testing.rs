//! For a service's own tests: the RabbitMQ broker they share with everything else, used
//! through queues of their own that they remove, so that no real consumer ever sees a
//! test's message.
//!
//! A test that needs the broker starts with [`TestBroker::connect`]: without a broker it
//! prints a loud SKIP and the test returns, unless `CI` is set, where that is a failure.
//! One that needs its service's database (feature `postgres`) starts with
//! [`TestDb::create`], a database of its own on the server, dropped when it is done.

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
        skip(
            "RabbitMQ",
            &shown,
            &error,
            "Start a broker (or set AMQP_URL)",
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
        let mut channel = self
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
                    if got.is_err() {
                        // The queue is not declared yet, which closed the channel.
                        channel = self
                            .connection
                            .create_channel()
                            .await
                            .expect("AMQP channel");
                    }
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

/// Prints the loud SKIP of a test whose server is missing, or panics when `CI` is set.
fn skip(server: &str, shown: &str, error: &str, how: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "{server} at {shown} is required when CI is set: {error}"
    );
    eprintln!(
        "\n==================== SKIP ====================\n\
         {server} at {shown} is not reachable ({error}).\n\
         This test did NOT run. {how}, or set CI=1 to make this fail.\n\
         ==============================================\n"
    );
}

#[cfg(feature = "postgres")]
pub use self::database::{DEFAULT_DATABASE_URL, TestDb};

#[cfg(feature = "postgres")]
mod database {
    use std::time::Duration;

    use sqlx::{Executor as _, PgPool, postgres::PgPoolOptions};

    use crate::db::DATABASE_URL_ENV;

    /// The server tests use where `DATABASE_URL` is unset: PostgreSQL on this machine.
    pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

    /// A database of one test's own, created empty on the server of `DATABASE_URL` (or
    /// [`DEFAULT_DATABASE_URL`]) and dropped by [`TestDb::drop`], or when the value is
    /// dropped if the test failed first.
    pub struct TestDb {
        name: String,
        url: String,
        admin: Option<PgPool>,
    }

    impl TestDb {
        /// Creates the database `test_<label>_<pid>_<n>`. When the server cannot be
        /// reached: `None` after a loud SKIP on stderr, or a panic when `CI` is set.
        pub async fn create(label: &str) -> Option<Self> {
            let server = std::env::var(DATABASE_URL_ENV)
                .ok()
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
            let admin_url = with_database(&server, "postgres");
            let admin = PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(5))
                .connect(&admin_url)
                .await;
            let admin = match admin {
                Ok(admin) => admin,
                Err(e) => {
                    let shown = crate::config::without_password(&admin_url);
                    let how = "Start a server (or set DATABASE_URL)";
                    super::skip("PostgreSQL", &shown, &e.to_string(), how);
                    return None;
                }
            };
            let name = database_name(label);
            admin
                .execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
                .await
                .unwrap_or_else(|e| panic!("cannot create the test's database {name}: {e}"));
            Some(Self {
                url: with_database(&server, &name),
                name,
                admin: Some(admin),
            })
        }

        /// The database's URL, for the service under test.
        pub fn url(&self) -> &str {
            &self.url
        }

        /// Drops the database, closing what is still connected to it.
        pub async fn drop(mut self) {
            if let Some(admin) = self.admin.take() {
                drop_database(&admin, &self.name).await;
                admin.close().await;
            }
        }
    }

    impl Drop for TestDb {
        fn drop(&mut self) {
            let Some(admin) = self.admin.take() else {
                return;
            };
            // The test failed before it dropped it: best effort, on a runtime of its own
            // since this may run while the test's runtime unwinds.
            let name = std::mem::take(&mut self.name);
            let options = admin.connect_options();
            let cleanup = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                runtime.block_on(async move {
                    let admin = PgPoolOptions::new()
                        .max_connections(1)
                        .connect_with((*options).clone())
                        .await;
                    if let Ok(admin) = admin {
                        drop_database(&admin, &name).await;
                    }
                });
            });
            let _ = cleanup.join();
        }
    }

    async fn drop_database(admin: &PgPool, name: &str) {
        let sql = format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#);
        if let Err(e) = admin.execute(sql.as_str()).await {
            eprintln!("cannot drop the test's database {name}: {e}");
        }
    }

    /// `test_<label>_<pid>_<nanoseconds>`, in the characters PostgreSQL takes unquoted
    /// and within its 63.
    fn database_name(label: &str) -> String {
        let label: String = label
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(24)
            .collect();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() % 1_000_000_000_000);
        format!("test_{label}_{}_{nanos}", std::process::id())
    }

    /// `url` naming the database `name` instead of its own (its parameters kept).
    pub(super) fn with_database(url: &str, name: &str) -> String {
        let (base, query) = url
            .split_once('?')
            .map_or((url, None), |(b, q)| (b, Some(q)));
        let authority_start = base.find("://").map_or(0, |i| i + 3);
        let base = match base[authority_start..].find('/') {
            Some(slash) => &base[..authority_start + slash],
            None => base,
        };
        match query {
            Some(query) => format!("{base}/{name}?{query}"),
            None => format!("{base}/{name}"),
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn the_database_of_a_url_is_replaced_and_its_parameters_kept() {
            assert_eq!(
                with_database("postgres://u:p@db:5433/app?sslmode=disable", "t"),
                "postgres://u:p@db:5433/t?sslmode=disable"
            );
            assert_eq!(with_database("postgres://db", "t"), "postgres://db/t");
        }

        #[test]
        fn names_are_plain_identifiers_within_the_limit() {
            let name = database_name("User-Service, a rather long label indeed");
            assert!(name.len() <= 63, "{name}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{name}"
            );
            assert_ne!(database_name("a"), database_name("a"));
        }
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
