//! A service's own PostgreSQL database (feature `postgres`): the pool, configured from
//! the environment; the service's migrations and the runtime's own tables, applied at
//! start; and readiness that follows the database.
//!
//! The pool connects lazily, so a service starts while its database is down: [`start`]
//! keeps trying the migrations in the background (sqlx takes its migration lock, so
//! replicas starting together apply them once) and `/readyz` answers 503 until they ran
//! and for as long as the database then stops answering.
//!
//! The runtime's tables, created next to the service's own by [`start`]:
//!
//! - `msvc_outbox`: messages written in a transaction of the service's, published by the
//!   relay once committed (see [`outbox`](crate::outbox));
//! - `msvc_inbox`: the ids of the messages a worker has handled, so that a redelivered
//!   message is not handled twice (see [`inbox`](crate::inbox)).

use std::{str::FromStr, time::Duration};

use sqlx::{
    PgPool,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
};

use crate::{ConfigError, Env, admin::Health, shutdown::Shutdown};

/// The variable holding the database's URL.
pub const DATABASE_URL_ENV: &str = "DATABASE_URL";
/// The variable holding the pool's size.
pub const DATABASE_MAX_CONNECTIONS_ENV: &str = "DATABASE_MAX_CONNECTIONS";
/// How long a query waits for a connection of the pool before it fails.
pub const DATABASE_ACQUIRE_TIMEOUT_ENV: &str = "DATABASE_ACQUIRE_TIMEOUT";

/// How often readiness checks that the database answers.
const PING_EVERY: Duration = Duration::from_secs(1);

/// Where the service's database is and how many connections it may hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbConfig {
    /// `DATABASE_URL`: `postgres://user[:password]@host[:port]/database`.
    pub url: String,
    /// `DATABASE_MAX_CONNECTIONS`, default 10.
    pub max_connections: u32,
    /// `DATABASE_ACQUIRE_TIMEOUT`, default 3 s.
    pub acquire_timeout: Duration,
}

impl DbConfig {
    /// `url` with the default pool settings.
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            max_connections: 10,
            acquire_timeout: Duration::from_secs(3),
        }
    }

    /// Reads the variables, each checked, with `default_url` where `DATABASE_URL` is
    /// unset.
    pub fn from_env(env: &Env, default_url: &str) -> Result<Self, ConfigError> {
        let defaults = Self::new(default_url);
        Ok(Self {
            url: env.parse_or(DATABASE_URL_ENV, defaults.url, parse_database_url)?,
            max_connections: env
                .positive(DATABASE_MAX_CONNECTIONS_ENV, defaults.max_connections)?,
            acquire_timeout: env
                .duration(DATABASE_ACQUIRE_TIMEOUT_ENV, defaults.acquire_timeout)?,
        })
    }

    /// A pool of connections to the database, opened on first use.
    pub fn pool(&self) -> Result<PgPool, sqlx::Error> {
        let options = PgConnectOptions::from_str(&self.url)?;
        Ok(PgPoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(self.acquire_timeout)
            .connect_lazy_with(options))
    }
}

/// Checks a PostgreSQL URL, as `DATABASE_URL` holds it.
pub fn parse_database_url(value: &str) -> Result<String, String> {
    if !(value.starts_with("postgres://") || value.starts_with("postgresql://")) {
        return Err(format!(
            "`{}` is not a PostgreSQL URL (postgres://user@host:5432/database)",
            crate::config::without_password(value)
        ));
    }
    PgConnectOptions::from_str(value)
        .map(|_| value.to_owned())
        .map_err(|e| {
            format!(
                "`{}` does not parse: {e}",
                crate::config::without_password(value)
            )
        })
}

/// The runtime's own tables; created if missing, never changed in place. One query
/// string is one implicit transaction, so the advisory lock taken first serialises
/// replicas starting together until the tables are there.
const RUNTIME_TABLES: &str = "
SELECT pg_advisory_xact_lock(7814048186003171443);
CREATE TABLE IF NOT EXISTS msvc_outbox (
    seq bigserial PRIMARY KEY,
    id text NOT NULL UNIQUE DEFAULT gen_random_uuid()::text,
    queue text NOT NULL,
    body bytea NOT NULL,
    headers jsonb NOT NULL DEFAULT '[]',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS msvc_inbox (
    message_id text PRIMARY KEY,
    queue text NOT NULL,
    handled_at timestamptz NOT NULL DEFAULT now()
);
";

/// Applies the service's migrations and creates the runtime's tables, once: what
/// [`start`] retries until the database answers.
pub async fn migrate(pool: &PgPool, migrator: &Migrator) -> Result<(), sqlx::Error> {
    migrator.run(pool).await.map_err(|e| match e {
        sqlx::migrate::MigrateError::Execute(e) => e,
        other => sqlx::Error::Migrate(Box::new(other)),
    })?;
    sqlx::raw_sql(RUNTIME_TABLES).execute(pool).await?;
    Ok(())
}

/// Migrates in the background, retrying while the database is unreachable, then keeps
/// `health` ready exactly while the database answers, until `shutdown` fires.
///
/// A migration that fails for another reason than the connection (a bad SQL file, a
/// checksum that changed) is logged as an error and retried too: the service stays not
/// ready, which is what a rollout needs to stop.
pub fn start(
    pool: PgPool,
    migrator: &'static Migrator,
    health: Health,
    shutdown: Shutdown,
) -> tokio::task::JoinHandle<()> {
    health.set_ready(false);
    tokio::spawn(async move {
        let stop = shutdown.wait();
        tokio::pin!(stop);
        let mut backoff = Duration::from_millis(100);
        loop {
            match migrate(&pool, migrator).await {
                Ok(()) => break,
                Err(error) => {
                    if is_unreachable(&error) {
                        tracing::warn!(%error, "the database is unreachable; retrying");
                    } else {
                        tracing::error!(%error, "cannot migrate the database; retrying");
                    }
                }
            }
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
        tracing::info!("database migrated");
        let mut was_ready = false;
        loop {
            let ready = ping(&pool).await;
            if ready != was_ready {
                if ready {
                    tracing::info!("the database answers; ready");
                } else {
                    tracing::warn!("the database does not answer; not ready");
                }
                was_ready = ready;
            }
            health.set_ready(ready);
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(PING_EVERY) => {}
            }
        }
    })
}

/// Whether the database answers a trivial query within a second.
pub async fn ping(pool: &PgPool) -> bool {
    let query = sqlx::query("SELECT 1").execute(pool);
    matches!(
        tokio::time::timeout(Duration::from_secs(1), query).await,
        Ok(Ok(_))
    )
}

/// Whether `error` says the database could not be reached (rather than refused a query).
pub fn is_unreachable(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_database_settings() {
        let env = Env::from_pairs(&[
            (
                DATABASE_URL_ENV,
                "postgres://app:secret@db:5432/shop_orders",
            ),
            (DATABASE_MAX_CONNECTIONS_ENV, "4"),
            (DATABASE_ACQUIRE_TIMEOUT_ENV, "500ms"),
        ]);
        let config = DbConfig::from_env(&env, "postgres://postgres@127.0.0.1/x").unwrap();
        assert_eq!(config.url, "postgres://app:secret@db:5432/shop_orders");
        assert_eq!(config.max_connections, 4);
        assert_eq!(config.acquire_timeout, Duration::from_millis(500));
        let defaults = DbConfig::from_env(&Env::from_pairs(&[]), "postgres://h/d").unwrap();
        assert_eq!(defaults, DbConfig::new("postgres://h/d"));
    }

    #[test]
    fn a_bad_url_names_the_variable_and_hides_the_password() {
        let env = Env::from_pairs(&[(DATABASE_URL_ENV, "mysql://root:hunter2@db/shop")]);
        let error = DbConfig::from_env(&env, "postgres://h/d").unwrap_err();
        let text = error.to_string();
        assert!(text.contains("DATABASE_URL"), "{text}");
        assert!(text.contains("mysql://root@db/shop"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        let env = Env::from_pairs(&[(DATABASE_MAX_CONNECTIONS_ENV, "0")]);
        let error = DbConfig::from_env(&env, "postgres://h/d").unwrap_err();
        assert!(
            error.to_string().contains("DATABASE_MAX_CONNECTIONS"),
            "{error}"
        );
    }
}
