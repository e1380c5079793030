//! The HTTP peers of `msvc_runtime::rest`: round-robin over the addresses, failing over to
//! the next when one refuses the connection, and the peer's `{"error": ...}` surfaced.
//! One-response HTTP servers stand in for the peer.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use msvc_runtime::rest::{ClientError, HttpPeer};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

/// Serves `status` with `body` to every connection, counting them; returns its base URL.
async fn fake_peer(status: &'static str, body: &'static str) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let served = Arc::new(AtomicUsize::new(0));
    let count = served.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        }
    });
    (format!("http://{addr}"), served)
}

/// An address nothing listens on.
async fn closed_address() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}")
}

#[tokio::test]
async fn fails_over_to_an_address_that_answers() {
    let (up, _) = fake_peer("200 OK", r#"{"ok":true}"#).await;
    let peer = HttpPeer::new(vec![closed_address().await, up]);
    for _ in 0..4 {
        let value: serde_json::Value = peer
            .send(reqwest::Method::GET, "/x", None::<&()>)
            .await
            .expect("the live address answers");
        assert_eq!(value["ok"], true);
    }
}

#[tokio::test]
async fn takes_the_addresses_in_turn() {
    let (a, served_a) = fake_peer("200 OK", "{}").await;
    let (b, served_b) = fake_peer("200 OK", "{}").await;
    let peer = HttpPeer::new(vec![a, b]);
    for _ in 0..6 {
        peer.send_no_content(reqwest::Method::POST, "/x", Some(&[1, 2]))
            .await
            .expect("answered");
    }
    assert_eq!(
        (
            served_a.load(Ordering::SeqCst),
            served_b.load(Ordering::SeqCst)
        ),
        (3, 3)
    );
}

#[tokio::test]
async fn surfaces_the_peer_error() {
    let (url, _) = fake_peer("404 Not Found", r#"{"error":"nope"}"#).await;
    let peer = HttpPeer::new(vec![url]);
    let result: Result<serde_json::Value, _> =
        peer.send(reqwest::Method::GET, "/x", None::<&()>).await;
    match result {
        Err(ClientError::Status { status, error }) => {
            assert_eq!(status, 404);
            assert_eq!(error.as_deref(), Some("nope"));
        }
        other => panic!("expected a status error, got {other:?}"),
    }
}

#[tokio::test]
async fn an_answer_of_the_wrong_shape_is_a_decode_error() {
    let (url, _) = fake_peer("200 OK", r#"{"id":"not a number"}"#).await;
    let peer = HttpPeer::new(vec![url]);
    #[derive(Debug, serde::Deserialize)]
    struct User {
        #[allow(dead_code)]
        id: u64,
    }
    let result = peer
        .send::<(), User>(reqwest::Method::GET, "/x", None)
        .await;
    assert!(matches!(result, Err(ClientError::Decode(_))), "{result:?}");
}

#[tokio::test]
async fn unreachable_when_no_address_answers() {
    let (first, second) = (closed_address().await, closed_address().await);
    let peer = HttpPeer::new(vec![first.clone(), second.clone()]);
    let result = peer
        .send_no_content(reqwest::Method::GET, "/x", None::<&()>)
        .await;
    match result {
        Err(error @ ClientError::Unreachable { .. }) => {
            let text = error.to_string();
            let ClientError::Unreachable { tried, .. } = error else {
                unreachable!()
            };
            assert_eq!(tried, [first, second]);
            assert!(
                text.contains(&tried[0]) && text.contains(&tried[1]),
                "{text}"
            );
        }
        other => panic!("expected unreachable, got {other:?}"),
    }
}
