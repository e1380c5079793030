//! The idempotent consumer (feature `postgres`): a worker with a database handles each
//! message in a transaction that also records the message's id in `msvc_inbox`, and
//! acknowledges the message only after the commit. A redelivery (the worker stopped
//! after the commit and before the ack, or a publisher sent the message twice) finds
//! its id recorded and is acknowledged without running the handler again, so the effect
//! happens once.
//!
//! ```no_run
//! # async fn handle(pool: sqlx::PgPool, message_id: &str) -> Result<(), sqlx::Error> {
//! let mut tx = pool.begin().await?;
//! if msvc_runtime::inbox::first_delivery(&mut tx, "user_message", message_id).await? {
//!     // the handler's writes, on `&mut *tx`
//!     tx.commit().await?;
//! }
//! // then acknowledge
//! # Ok(())
//! # }
//! ```

use sqlx::{PgConnection, PgPool, Postgres, Transaction};

/// Records `message_id` (of a message from `queue`) in the caller's transaction: `true`
/// the first time, so the handler runs; `false` when a committed transaction has it
/// already, so the message is a duplicate to acknowledge. A concurrent delivery of the
/// same id waits for the first one's transaction and then gets `false` (or `true`, if
/// that one rolled back).
pub async fn first_delivery(
    tx: &mut PgConnection,
    queue: &str,
    message_id: &str,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO msvc_inbox (message_id, queue) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(message_id)
    .bind(queue)
    .execute(&mut *tx)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Opens the transaction a message is handled in, with its id recorded: `None` when the
/// message was handled before (acknowledge it and do nothing).
pub async fn begin(
    pool: &PgPool,
    queue: &str,
    message_id: &str,
) -> Result<Option<Transaction<'static, Postgres>>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    if first_delivery(&mut tx, queue, message_id).await? {
        Ok(Some(tx))
    } else {
        tx.rollback().await?;
        Ok(None)
    }
}
