//! gRPC services: the server ([`serve`]) with health (`grpc.health.v1`), reflection and
//! the admin endpoints beside it, and the request counter by method and status code,
//! recorded by a tower layer around the server ([`GrpcMetricsLayer`]).

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
    registry::Registry,
};
use tonic::Code;
use tower::{Layer, Service};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    /// Full gRPC path, e.g. `/shop.v1.Users/GetUser`.
    method: String,
    /// gRPC status code name, e.g. `Ok`, `NotFound`.
    code: String,
}

#[derive(Clone, Debug, Default)]
pub struct GrpcMetrics {
    requests: Family<RequestLabels, Counter>,
}

impl GrpcMetrics {
    pub fn new(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "grpc_requests",
            "gRPC requests by method and status code",
            metrics.requests.clone(),
        );
        metrics
    }

    fn record(&self, method: String, code: Code) {
        self.requests
            .get_or_create(&RequestLabels {
                method,
                code: format!("{code:?}"),
            })
            .inc();
    }
}

/// Put on `tonic::transport::Server::builder().layer(..)` to count every call.
#[derive(Clone, Debug)]
pub struct GrpcMetricsLayer {
    metrics: GrpcMetrics,
}

impl GrpcMetricsLayer {
    pub fn new(metrics: GrpcMetrics) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetricsService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct GrpcMetricsService<S> {
    inner: S,
    metrics: GrpcMetrics,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for GrpcMetricsService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = Response<MeteredBody<ResBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let method = request.uri().path().to_owned();
        let metrics = self.metrics.clone();
        let response = self.inner.call(request);
        Box::pin(async move {
            match response.await {
                Ok(response) => {
                    // A status in the headers means a "trailers-only" response: the call is over.
                    let pending = match grpc_status(response.headers()) {
                        Some(code) => {
                            metrics.record(method, code);
                            None
                        }
                        None => Some((metrics, method)),
                    };
                    Ok(response.map(|inner| MeteredBody { inner, pending }))
                }
                Err(error) => {
                    metrics.record(method, Code::Unknown);
                    Err(error)
                }
            }
        })
    }
}

fn grpc_status(headers: &HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .map(|value| Code::from_bytes(value.as_bytes()))
}

/// Response body that records the call when its status arrives in the trailers, or as
/// `Cancelled` if the body is dropped before that (the client went away).
pub struct MeteredBody<B> {
    inner: B,
    pending: Option<(GrpcMetrics, String)>,
}

impl<B> MeteredBody<B> {
    fn finish(&mut self, code: Code) {
        if let Some((metrics, method)) = self.pending.take() {
            metrics.record(method, code);
        }
    }
}

impl<B> Drop for MeteredBody<B> {
    fn drop(&mut self) {
        self.finish(Code::Cancelled);
    }
}

impl<B: Body + Unpin> Body for MeteredBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(grpc_status) {
                    this.finish(code);
                }
            }
            Poll::Ready(Some(Err(_))) => this.finish(Code::Internal),
            Poll::Ready(None) => this.finish(Code::Unknown),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The gRPC services one server hosts, with the names health reports them under.
#[derive(Default)]
pub struct GrpcServices {
    routes: tonic::service::Routes,
    names: Vec<&'static str>,
    health: Option<crate::admin::Health>,
    registry: Option<Registry>,
}

impl GrpcServices {
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves with `health` (the server sets it ready once serving; give what else the
    /// service waits for a [`condition`](crate::admin::Health::condition) of it) and the
    /// metrics already in `registry` (the outbox's, say) beside the server's.
    #[must_use]
    pub fn with_admin(mut self, health: crate::admin::Health, registry: Registry) -> Self {
        self.health = Some(health);
        self.registry = Some(registry);
        self
    }

    /// Adds a generated server (`FooServer::new(FooImpl)`).
    #[must_use]
    pub fn with<S>(mut self, service: S) -> Self
    where
        S: Service<http::Request<tonic::body::Body>, Error = std::convert::Infallible>
            + tonic::server::NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.names.push(S::NAME);
        self.routes = self.routes.add_service(service);
        self
    }
}

/// Serves `services` with health and reflection (from `descriptor_set`, the workspace's
/// `contracts::FILE_DESCRIPTOR_SET`) on `listener`, and the admin endpoints on
/// `admin_listener`, until `shutdown` fires; in-flight calls then get
/// `service.shutdown_grace` to finish. The ports in `service` are ignored, so tests can
/// bind port 0 first and learn the addresses.
pub async fn serve(
    service: &crate::ServiceConfig,
    listener: tokio::net::TcpListener,
    admin_listener: tokio::net::TcpListener,
    services: GrpcServices,
    descriptor_set: &'static [u8],
    shutdown: crate::Shutdown,
) -> Result<(), crate::Error> {
    use tonic::transport::{Server, server::TcpIncoming};
    use tonic_health::ServingStatus;

    let mut registry = services.registry.unwrap_or_default();
    let metrics = GrpcMetrics::new(&mut registry);
    let registry = std::sync::Arc::new(registry);
    let health = services.health.unwrap_or_default();

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    for name in &services.names {
        health_reporter
            .set_service_status(*name, ServingStatus::Serving)
            .await;
    }
    let reflection_service = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(descriptor_set)
        .build_v1()?;

    tracing::info!(
        grpc = %listener.local_addr()?,
        admin = %admin_listener.local_addr()?,
        "listening"
    );

    // Serving from our own listener bypasses the builder's TCP_NODELAY setting: without
    // it, small replies wait for Nagle's algorithm (about 40 ms at the p99).
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let names = services.names.clone();
    let grpc = Server::builder()
        .layer(GrpcMetricsLayer::new(metrics))
        .add_routes(services.routes)
        .add_service(health_service)
        .add_service(reflection_service)
        .serve_with_incoming_shutdown(incoming, {
            let shutdown = shutdown.wait();
            let health = health.clone();
            async move {
                shutdown.await;
                // Tell watchers we are going away before the connections close.
                health.set_ready(false);
                health_reporter
                    .set_service_status("", ServingStatus::NotServing)
                    .await;
                for name in names {
                    health_reporter
                        .set_service_status(name, ServingStatus::NotServing)
                        .await;
                }
            }
        });
    let admin = crate::admin::serve(admin_listener, health.clone(), registry, shutdown.clone());

    health.set_ready(true);
    let grpc = async { grpc.await.map_err(crate::Error::from) };
    let admin = async { admin.await.map_err(crate::Error::from) };
    let servers = async { tokio::try_join!(grpc, admin) };
    if let Some(result) =
        crate::shutdown::with_grace(&shutdown, service.shutdown_grace, servers).await
    {
        result?;
    }
    tracing::info!("shut down");
    Ok(())
}

/// Binds the configured host, port and admin port, then [`serve`]s.
pub async fn run(
    service: &crate::ServiceConfig,
    services: GrpcServices,
    descriptor_set: &'static [u8],
    shutdown: crate::Shutdown,
) -> Result<(), crate::Error> {
    let listener = tokio::net::TcpListener::bind((service.host, service.port.unwrap_or(0))).await?;
    let admin_listener =
        tokio::net::TcpListener::bind((service.host, service.admin_port.unwrap_or(0))).await?;
    serve(
        service,
        listener,
        admin_listener,
        services,
        descriptor_set,
        shutdown,
    )
    .await
}
