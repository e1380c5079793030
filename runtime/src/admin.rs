//! Admin HTTP server (`/healthz`, `/readyz`, `/metrics`) for services whose main port is not HTTP.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicBool, Ordering},
};

use axum::{
    Json, Router,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use prometheus_client::registry::Registry;
use serde_json::json;
use tokio::net::TcpListener;

use crate::shutdown::Shutdown;

/// Readiness shared between the service (which flips it) and `/readyz` (which reports
/// it). A service that waits on several things (its broker, its database) gives each a
/// [`condition`](Self::condition) of its own: it is ready only while all of them are.
#[derive(Clone, Debug)]
pub struct Health {
    /// The flag [`set_ready`](Self::set_ready) of this handle sets.
    own: Arc<AtomicBool>,
    /// Every flag of this readiness, this handle's among them.
    all: Arc<Mutex<Vec<Arc<AtomicBool>>>>,
}

impl Default for Health {
    fn default() -> Self {
        let own = Arc::new(AtomicBool::new(false));
        Self {
            all: Arc::new(Mutex::new(vec![Arc::clone(&own)])),
            own,
        }
    }
}

impl Health {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets this handle's condition: the service is ready once every condition is.
    pub fn set_ready(&self, ready: bool) {
        self.own.store(ready, Ordering::Release);
    }

    /// Whether every condition is ready.
    pub fn is_ready(&self) -> bool {
        self.flags().iter().all(|flag| flag.load(Ordering::Acquire))
    }

    /// A new condition of the same readiness, not ready until its handle says so.
    #[must_use]
    pub fn condition(&self) -> Self {
        let own = Arc::new(AtomicBool::new(false));
        self.flags().push(Arc::clone(&own));
        Self {
            own,
            all: Arc::clone(&self.all),
        }
    }

    fn flags(&self) -> std::sync::MutexGuard<'_, Vec<Arc<AtomicBool>>> {
        self.all
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[derive(Clone)]
struct AdminState {
    health: Health,
    registry: Arc<Registry>,
}

pub fn router(health: Health, registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(AdminState { health, registry })
}

/// Serves the admin router on `listener` until `shutdown` fires.
pub async fn serve(
    listener: TcpListener,
    health: Health,
    registry: Arc<Registry>,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    axum::serve(listener, router(health, registry))
        .with_graceful_shutdown(shutdown.wait())
        .await
}

async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(state): State<AdminState>) -> impl IntoResponse {
    if state.health.is_ready() {
        (StatusCode::OK, Json(json!({ "status": "ready" })))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not ready" })),
        )
    }
}

async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &state.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        ),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "cannot encode metrics".to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_while_every_condition_is() {
        let health = Health::new();
        let database = health.condition();
        health.set_ready(true);
        assert!(!health.is_ready(), "the database is not ready yet");
        database.set_ready(true);
        assert!(health.is_ready() && database.is_ready());
        database.set_ready(false);
        assert!(!health.is_ready(), "one condition down is enough");
        assert!(!health.clone().is_ready(), "clones share the conditions");
    }
}
