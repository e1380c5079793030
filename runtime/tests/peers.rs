//! The channels of `msvc_runtime::peers`: lazy, balanced, failing over to the addresses
//! that answer and failing fast when none does. Fake gRPC servers stand in for a peer.

use std::{
    convert::Infallible,
    future::{Ready, ready},
    net::SocketAddr,
    time::{Duration, Instant},
};

use msvc_runtime::peers;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::{
    Code, Status,
    body::Body,
    client::Grpc,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    codegen::{Context, Poll, Service, http},
    server::NamedService,
    transport::{Channel, Server, server::TcpIncoming},
};

const VARIABLE: &str = "TEST_PEER_URL";
/// How every answer of a fake peer starts; the rest names the peer.
const REACHED: &str = "reached fake peer ";
const WAIT: Duration = Duration::from_secs(10);

/// Answers every call with `UNIMPLEMENTED` and a message naming it, so that a test can
/// tell which peer a call reached, and a call that reached one from one that did not.
#[derive(Clone)]
struct FakePeer(&'static str);

impl NamedService for FakePeer {
    const NAME: &'static str = "test.Fake";
}

impl Service<http::Request<Body>> for FakePeer {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<Body>) -> Self::Future {
        ready(Ok(
            Status::unimplemented(format!("{REACHED}{}", self.0)).into_http()
        ))
    }
}

/// A fake peer serving on `listener` until [`Running::stop`].
struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Running {
    fn start(name: &'static str, listener: TcpListener) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            Server::builder()
                .add_service(FakePeer(name))
                .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
                    let _ = stopped.await;
                })
                .await
                .expect("the fake peer serves");
        });
        Self { stop, task }
    }

    /// Stops listening and closes the connections.
    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("the fake peer stops")
            .expect("the fake peer's task");
    }
}

async fn listen() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    (listener, addr)
}

/// An address nobody listens on (bound, then released).
async fn closed_addr() -> SocketAddr {
    listen().await.1
}

fn url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

/// Encodes and decodes nothing: the fake peers answer every call with an error status.
#[derive(Clone, Copy, Default)]
struct NoBody;

impl Codec for NoBody {
    type Encode = ();
    type Decode = ();
    type Encoder = Self;
    type Decoder = Self;

    fn encoder(&mut self) -> Self {
        Self
    }

    fn decoder(&mut self) -> Self {
        Self
    }
}

impl Encoder for NoBody {
    type Item = ();
    type Error = Status;

    fn encode(&mut self, (): (), _: &mut EncodeBuf<'_>) -> Result<(), Status> {
        Ok(())
    }
}

impl Decoder for NoBody {
    type Item = ();
    type Error = Status;

    fn decode(&mut self, _: &mut DecodeBuf<'_>) -> Result<Option<()>, Status> {
        Ok(Some(()))
    }
}

/// One call through `channel`; a fake peer always answers with an error status.
async fn call(channel: &Channel) -> Status {
    let mut grpc = Grpc::new(channel.clone());
    grpc.ready().await.expect("the channel takes calls");
    let path = http::uri::PathAndQuery::from_static("/test.Fake/Ping");
    let call = grpc.unary::<(), (), _>(tonic::Request::new(()), path, NoBody);
    tokio::time::timeout(WAIT, call)
        .await
        .expect("the call ends without waiting for a peer")
        .expect_err("a fake peer answers with an error")
}

/// The fake peer the call reached, if any.
fn reached(status: &Status) -> Option<&str> {
    if status.code() == Code::Unimplemented {
        status.message().strip_prefix(REACHED)
    } else {
        None
    }
}

#[test]
fn splits_address_lists() {
    assert_eq!(
        peers::split_urls(" http://a:1 ,http://b:2,, "),
        ["http://a:1", "http://b:2"]
    );
    assert!(peers::split_urls(" , ").is_empty());
}

#[test]
fn malformed_addresses_name_the_variable() {
    for bad in ["not a url", "127.0.0.1:50051", "https://a:1", "http://", ""] {
        let urls = peers::split_urls(bad);
        let error = peers::endpoints(VARIABLE, &urls).expect_err(bad);
        assert_eq!(error.variable, VARIABLE);
        assert!(error.to_string().contains(VARIABLE), "{error}");
        assert!(error.to_string().contains(bad.trim()), "{error}");
    }
    let urls = peers::split_urls("http://a:1, http://[::1]:2, http://a:1");
    let endpoints = peers::endpoints(VARIABLE, &urls).expect("valid addresses");
    assert_eq!(endpoints.len(), 2, "duplicates are dropped");
}

#[tokio::test]
async fn a_peer_that_is_down_fails_fast_with_unavailable() {
    let urls = [url(closed_addr().await)];
    // Lazy: building the channel does not need the peer.
    let channel = peers::balanced_channel(VARIABLE, &urls).expect("valid address");
    let status = call(&channel).await;
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
}

#[tokio::test]
async fn a_single_address_takes_calls_once_its_peer_is_up() {
    let addr = closed_addr().await;
    let channel = peers::balanced_channel(VARIABLE, &[url(addr)]).expect("valid address");
    let status = call(&channel).await;
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");

    let peer = Running::start("only", TcpListener::bind(addr).await.expect("rebind"));
    let deadline = Instant::now() + WAIT;
    loop {
        let status = call(&channel).await;
        if reached(&status) == Some("only") {
            break;
        }
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert!(Instant::now() < deadline, "calls never reached the peer");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    peer.stop().await;
}

#[tokio::test]
async fn calls_fail_over_to_the_addresses_that_answer() {
    let (listener, up) = listen().await;
    let peer = Running::start("up", listener);
    let urls = [url(closed_addr().await), url(up), url(closed_addr().await)];
    let channel = peers::balanced_channel(VARIABLE, &urls).expect("valid addresses");
    // Not one call goes to an address that is down.
    for _ in 0..20 {
        let status = call(&channel).await;
        assert_eq!(reached(&status), Some("up"), "{status:?}");
    }
    peer.stop().await;
}

#[tokio::test]
async fn calls_are_balanced_over_the_addresses_that_answer() {
    let (first, a) = listen().await;
    let (second, b) = listen().await;
    let (first, second) = (Running::start("a", first), Running::start("b", second));
    let channel = peers::balanced_channel(VARIABLE, &[url(a), url(b)]).expect("valid addresses");
    let mut seen = std::collections::BTreeSet::new();
    let deadline = Instant::now() + WAIT;
    while seen.len() < 2 {
        assert!(Instant::now() < deadline, "only {seen:?} took calls");
        let status = call(&channel).await;
        seen.insert(reached(&status).expect("a peer answers").to_owned());
    }

    // One goes down: after the watcher saw it, every call goes to the other.
    second.stop().await;
    let deadline = Instant::now() + WAIT;
    let mut in_a_row = 0;
    while in_a_row < 10 {
        assert!(Instant::now() < deadline, "calls kept going to `b`");
        if reached(&call(&channel).await) == Some("a") {
            in_a_row += 1;
        } else {
            in_a_row = 0;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    first.stop().await;
}

#[tokio::test]
async fn an_address_that_comes_back_takes_calls_again() {
    let (down, other) = (closed_addr().await, closed_addr().await);
    let channel =
        peers::balanced_channel(VARIABLE, &[url(down), url(other)]).expect("valid addresses");
    // None answers: calls fail fast instead of waiting for one.
    let status = call(&channel).await;
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");

    let peer = Running::start(
        "back",
        TcpListener::bind(down).await.expect("bind the freed port"),
    );
    let deadline = Instant::now() + WAIT;
    while reached(&call(&channel).await) != Some("back") {
        assert!(Instant::now() < deadline, "calls never reached the peer");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Once the watcher saw it, every call goes to the address that answers.
    tokio::time::sleep(peers::PROBE_INTERVAL * 2).await;
    for _ in 0..10 {
        let status = call(&channel).await;
        assert_eq!(reached(&status), Some("back"), "{status:?}");
    }
    peer.stop().await;
}
