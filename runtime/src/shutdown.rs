//! Graceful shutdown: a cloneable signal that every server waits on, and a grace deadline.

use std::{
    future::{Future, IntoFuture},
    time::Duration,
};

use tokio::sync::watch;

/// Fires the [`Shutdown`] signal; dropping it fires it too.
#[derive(Debug)]
pub struct Trigger(watch::Sender<bool>);

impl Trigger {
    pub fn fire(&self) {
        self.0.send_replace(true);
    }
}

/// Resolves once shutdown has been requested; cheap to clone and hand to every task.
#[derive(Clone, Debug)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// Owned future so it can be given to servers that need a `'static` signal.
    pub fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.0.clone();
        async move {
            // An error means the trigger was dropped, which also means "stop".
            let _ = rx.wait_for(|fired| *fired).await;
        }
    }

    pub fn is_triggered(&self) -> bool {
        *self.0.borrow()
    }
}

pub fn channel() -> (Trigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (Trigger(tx), Shutdown(rx))
}

/// A [`Shutdown`] fired by SIGTERM or SIGINT.
pub fn on_signals() -> Shutdown {
    let (trigger, shutdown) = channel();
    tokio::spawn(async move {
        let name = signal().await;
        tracing::info!(signal = name, "shutdown requested");
        trigger.fire();
    });
    shutdown
}

/// Waits for SIGTERM or SIGINT and returns which one arrived.
pub async fn signal() -> &'static str {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };

    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();

    tokio::select! {
        () = interrupt => "SIGINT",
        () = terminate => "SIGTERM",
    }
}

/// Runs `work` (which must itself stop on `shutdown`) and, once shutdown starts, gives it
/// `grace` to finish. Returns `None` when the grace period ran out and `work` was dropped.
pub async fn with_grace<F: IntoFuture>(
    shutdown: &Shutdown,
    grace: Duration,
    work: F,
) -> Option<F::Output> {
    let work = work.into_future();
    tokio::pin!(work);
    tokio::select! {
        output = &mut work => return Some(output),
        () = shutdown.wait() => {}
    }
    tracing::info!(grace = ?grace, "draining in-flight work");
    match tokio::time::timeout(grace, work).await {
        Ok(output) => Some(output),
        Err(_) => {
            tracing::warn!(grace = ?grace, "grace period elapsed, stopping anyway");
            None
        }
    }
}

/// Parses `500ms`, `10s` or `2m`.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let invalid = || format!("expected a duration like `500ms`, `10s` or `2m`, got `{value}`");
    let number: u64 = number.parse().map_err(|_| invalid())?;
    match unit {
        "ms" => Ok(Duration::from_millis(number)),
        "s" => Ok(Duration::from_secs(number)),
        "m" => number
            .checked_mul(60)
            .map(Duration::from_secs)
            .ok_or_else(invalid),
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        for bad in ["", "10", "s", "1.5s", "-1s", "10h", "ms10"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[tokio::test]
    async fn grace_cuts_off_slow_work() {
        let (trigger, shutdown) = channel();
        trigger.fire();
        let slow = tokio::time::sleep(Duration::from_secs(60));
        let out = with_grace(&shutdown, Duration::from_millis(10), slow).await;
        assert!(out.is_none());
    }

    #[tokio::test]
    async fn dropping_the_trigger_fires() {
        let (trigger, shutdown) = channel();
        drop(trigger);
        shutdown.wait().await;
    }
}
