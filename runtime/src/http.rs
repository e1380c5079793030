//! REST services: the server ([`serve`]) with the endpoints every service has
//! (`/healthz`, `/readyz`, `/metrics`, JSON 404 and 405), JSON errors ([`ApiError`]), and
//! the request counter and duration histogram by method, matched route and status,
//! recorded by a tower layer around every route ([`HttpMetrics::layer`]).

use std::{
    fmt,
    hash::{Hash, Hasher},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use axum::{
    Json, Router,
    extract::{
        MatchedPath, Request, State,
        rejection::{JsonRejection, PathRejection},
    },
    http::{Method, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use prometheus_client::{
    encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder},
    metrics::{
        counter::Counter,
        family::Family,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};
use serde::Serialize;
use serde_json::json;
use tokio::net::TcpListener;
use tower::{Layer, Service};

use crate::{Error, admin::Health, config::ServiceConfig, shutdown, shutdown::Shutdown};

/// An error answered as JSON `{"error": "..."}` with its status.
#[derive(Debug)]
pub enum ApiError {
    NotFound(&'static str),
    BadRequest(String),
    MethodNotAllowed,
    /// A service this one needs failed; the text says which.
    BadGateway(&'static str),
    /// A service this one needs is down or too slow: worth retrying later.
    Unavailable(&'static str),
    /// This service failed (its cause logged): a 500.
    Internal(&'static str),
}

#[derive(Serialize)]
struct ErrorBody {
    error: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, error) = match self {
            Self::NotFound(what) => (StatusCode::NOT_FOUND, what.to_owned()),
            Self::BadRequest(reason) => (StatusCode::BAD_REQUEST, reason),
            Self::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed".to_owned(),
            ),
            Self::BadGateway(what) => (StatusCode::BAD_GATEWAY, what.to_owned()),
            Self::Unavailable(what) => (StatusCode::SERVICE_UNAVAILABLE, what.to_owned()),
            Self::Internal(what) => (StatusCode::INTERNAL_SERVER_ERROR, what.to_owned()),
        };
        (status, Json(ErrorBody { error })).into_response()
    }
}

/// Replaces axum's plain-text rejection for malformed path parameters.
impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::BadRequest(rejection.body_text())
    }
}

/// Replaces axum's plain-text rejection for a body that is not the expected JSON (a
/// missing content type included): always 400.
impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        Self::BadRequest(rejection.body_text())
    }
}

#[derive(Clone)]
struct Common {
    metrics: HttpMetrics,
    health: Health,
}

/// A service's `routes` with what every REST service answers besides: `/healthz`,
/// `/readyz` (200 while `health` is ready, else 503), `/metrics`, JSON 404 and 405, and
/// the metrics layer around all of it.
pub fn app(routes: Router, metrics: &HttpMetrics, health: &Health) -> Router {
    let common = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .with_state(Common {
            metrics: metrics.clone(),
            health: health.clone(),
        });
    routes
        .merge(common)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(metrics.layer())
}

async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(common): State<Common>) -> impl IntoResponse {
    if common.health.is_ready() {
        (StatusCode::OK, Json(json!({ "status": "ready" })))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not ready" })),
        )
    }
}

async fn render_metrics(State(common): State<Common>) -> Response {
    common.metrics.render()
}

async fn not_found() -> ApiError {
    ApiError::NotFound("not found")
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Serves `app` on `listener` until `shutdown` fires; in-flight requests then get
/// `service.shutdown_grace` to finish. The port in `service` is ignored, so tests can
/// bind port 0 first.
pub async fn serve(
    service: &ServiceConfig,
    listener: TcpListener,
    app: Router,
    shutdown: Shutdown,
) -> Result<(), Error> {
    tracing::info!(address = %listener.local_addr()?, "listening");
    let server = axum::serve(listener, app).with_graceful_shutdown(shutdown.wait());
    if let Some(result) = shutdown::with_grace(&shutdown, service.shutdown_grace, server).await {
        result?;
    }
    tracing::info!("shut down");
    Ok(())
}

/// Binds the configured host and port, then [`serve`]s.
pub async fn run(service: &ServiceConfig, app: Router, shutdown: Shutdown) -> Result<(), Error> {
    let listener = TcpListener::bind((service.host, service.port.unwrap_or(0))).await?;
    serve(service, listener, app, shutdown).await
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    /// The standard methods by name, any other as `other`.
    method: &'static str,
    route: RouteLabel,
    status: u16,
}

/// The route template (`/user/{id}`), never the raw path, to keep label
/// cardinality bounded; `unmatched` for a request no route matched. It shares the
/// router's own copy of the template instead of copying it for every request.
#[derive(Clone, Debug)]
struct RouteLabel(Option<MatchedPath>);

impl RouteLabel {
    fn as_str(&self) -> &str {
        self.0.as_ref().map_or("unmatched", MatchedPath::as_str)
    }
}

impl PartialEq for RouteLabel {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for RouteLabel {}

impl Hash for RouteLabel {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl EncodeLabelValue for RouteLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), fmt::Error> {
        self.as_str().encode(encoder)
    }
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

#[derive(Clone)]
pub struct HttpMetrics {
    registry: Arc<Registry>,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RequestLabels, Histogram>,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpMetrics {
    pub fn new() -> Self {
        Self::in_registry(Registry::default())
    }

    /// The request metrics, registered beside what `registry` has already (the outbox's
    /// gauges, say): `/metrics` shows them all.
    pub fn in_registry(mut registry: Registry) -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        // 1ms .. ~4s
        let durations = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 13))
        });
        registry.register(
            "http_requests",
            "HTTP requests by method, route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request duration by method, route and status",
            durations.clone(),
        );
        Self {
            registry: Arc::new(registry),
            requests,
            durations,
        }
    }

    /// Prometheus text exposition of every registered metric.
    pub fn render(&self) -> Response {
        let mut body = String::new();
        match prometheus_client::encoding::text::encode(&mut body, &self.registry) {
            Ok(()) => (
                [(
                    header::CONTENT_TYPE,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                )],
                body,
            )
                .into_response(),
            Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics").into_response(),
        }
    }
}

/// Records every request of the routes it wraps: `Router::layer(metrics.layer())`.
#[derive(Clone)]
pub struct HttpMetricsLayer {
    metrics: HttpMetrics,
}

impl HttpMetrics {
    pub fn layer(&self) -> HttpMetricsLayer {
        HttpMetricsLayer {
            metrics: self.clone(),
        }
    }

    fn record(&self, labels: &RequestLabels, started: Instant) {
        self.requests.get_or_create(labels).inc();
        self.durations
            .get_or_create(labels)
            .observe(started.elapsed().as_secs_f64());
    }
}

impl<S> Layer<S> for HttpMetricsLayer {
    type Service = Metered<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Metered {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// A route's service, with its requests recorded.
#[derive(Clone)]
pub struct Metered<S> {
    inner: S,
    metrics: HttpMetrics,
}

impl<S> Service<Request> for Metered<S>
where
    S: Service<Request, Response = Response>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let started = Instant::now();
        let method = method_label(request.method());
        let route = RouteLabel(request.extensions().get::<MatchedPath>().cloned());
        let response = self.inner.call(request);
        let metrics = self.metrics.clone();
        Box::pin(async move {
            let response = response.await?;
            let labels = RequestLabels {
                method,
                route,
                status: response.status().as_u16(),
            };
            metrics.record(&labels, started);
            Ok(response)
        })
    }
}
