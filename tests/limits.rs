//! Every limit is a named constant, and each one refuses what exceeds it
//! without hurting the node.

mod common;

use cirfed::api::MAX_API_MESSAGE_BYTES;
use cirfed::identity::pki;
use cirfed::node::{MAX_BATCH_RECORDS, MAX_LOOKUP_BATCH};
use cirfed::proto;
use cirfed::transport::{tls_incoming, TlsLimits};
use common::{indicator, TestFederation, TestNode, DEADLINE};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio_stream::StreamExt;

/// A TLS listener under `limits` with a node's certificate, and a connector
/// that authenticates as that node.
async fn tls_listener(
    limits: TlsLimits,
) -> (
    std::net::SocketAddr,
    impl tokio_stream::Stream<Item = std::io::Result<impl tokio::io::AsyncRead + Unpin>>,
    tokio_rustls::TlsConnector,
    TestFederation,
) {
    let fed = TestFederation::new();
    let dir = fed.admit_node("a");
    let keys = cirfed::identity::load_node(&dir).unwrap();
    let ca = &keys.admission.federation.ca_cert;
    let config = pki::server_config(ca, &keys.admission.certificate, &keys.tls_key, &[]).unwrap();
    let client = pki::client_config(ca, &keys.admission.certificate, &keys.tls_key).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tls_incoming(listener, cirfed::transport::fixed(config), limits);
    (addr, incoming, tokio_rustls::TlsConnector::from(Arc::new(client)), fed)
}

async fn tls_connect(
    connector: &tokio_rustls::TlsConnector,
    addr: std::net::SocketAddr,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    connector.connect(rustls_pki_types::ServerName::try_from("localhost").unwrap(), tcp).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_publish_over_the_batch_limit_is_refused_whole() {
    let fed = TestFederation::new();
    let mut node = TestNode::start(&fed.admit_node("a")).await;
    let drafts = (0..=MAX_BATCH_RECORDS).map(|n| indicator(&format!("h{n}.example"), 2)).collect();
    let outcomes = node.publish(drafts).await;
    assert_eq!(outcomes.len(), MAX_BATCH_RECORDS + 1);
    assert!(outcomes.iter().all(|o| o.error_code == "batch_too_large"));
    assert_eq!(node.status().await.records, 1, "only the node's own card");
    node.publish_ok(indicator("after.example", 2)).await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lookup_over_the_batch_limit_is_refused() {
    let fed = TestFederation::new();
    let mut node = TestNode::start(&fed.admit_node("a")).await;
    let values = vec!["a.example".to_string(); MAX_LOOKUP_BATCH + 1];
    let request = proto::LookupRequest { values, r#type: 0, details: false, start: 0 };
    let status = node.client.lookup(request).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    assert!(status.message().contains(&MAX_LOOKUP_BATCH.to_string()), "{}", status.message());
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_over_the_api_message_limit_is_refused_and_the_node_keeps_serving() {
    let fed = TestFederation::new();
    let mut node = TestNode::start(&fed.admit_node("a")).await;
    let big = "x".repeat(1 << 20);
    let values = vec![big; MAX_API_MESSAGE_BYTES / (1 << 20) + 1];
    let mut client = node.client.clone().max_encoding_message_size(usize::MAX);
    let request = proto::LookupRequest { values, r#type: 0, details: false, start: 0 };
    let status = client.lookup(request.clone()).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains(&MAX_API_MESSAGE_BYTES.to_string()), "names the limit: {}", status.message());
    // The same over a stream: the batch is refused the same way.
    let mut replies = client.lookup_stream(tokio_stream::iter(vec![request])).await.unwrap().into_inner();
    let status = replies.message().await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains(&MAX_API_MESSAGE_BYTES.to_string()), "names the limit: {}", status.message());
    node.publish_ok(indicator("still.example", 2)).await;
    assert_eq!(node.matches("still.example").await.len(), 1);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_tls_handshake_is_dropped_after_the_timeout() {
    let fed = TestFederation::new();
    let dir = fed.admit_node("a");
    let keys = cirfed::identity::load_node(&dir).unwrap();
    let ca = &keys.admission.federation.ca_cert;
    let config = pki::server_config(ca, &keys.admission.certificate, &keys.tls_key, &[]).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = TlsLimits { handshake_timeout: Duration::from_millis(200), ..TlsLimits::default() };
    let _incoming = tls_incoming(listener, cirfed::transport::fixed(config), limits);

    let mut stalled = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(DEADLINE, stalled.read(&mut buf)).await.expect("server closes the connection");
    assert!(matches!(read, Ok(0) | Err(_)), "a silent client gets nothing but a close: {read:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn handshakes_over_the_concurrency_cap_wait_for_a_slot() {
    let limits = TlsLimits { handshake_timeout: Duration::from_secs(120), max_handshakes: 2, ..TlsLimits::default() };
    let (addr, incoming, connector, _fed) = tls_listener(limits).await;
    tokio::pin!(incoming);
    let stalled =
        [tokio::net::TcpStream::connect(addr).await.unwrap(), tokio::net::TcpStream::connect(addr).await.unwrap()];
    let third = tokio::spawn(async move { tls_connect(&connector, addr).await });
    // Both slots are held by silent clients: the third handshake cannot be served meanwhile.
    let waiting = tokio::time::timeout(Duration::from_millis(300), incoming.next()).await;
    assert!(waiting.is_err(), "a third handshake was served while the cap was reached");
    drop(stalled);
    let served = tokio::time::timeout(DEADLINE, incoming.next()).await.expect("served once a slot frees");
    assert!(served.expect("stream open").is_ok());
    third.await.unwrap().expect("the waiting client completes its handshake");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_established_connection_that_stays_silent_is_closed_as_idle() {
    let limits = TlsLimits { idle_timeout: Duration::from_millis(200), ..TlsLimits::default() };
    let (addr, incoming, connector, _fed) = tls_listener(limits).await;
    tokio::pin!(incoming);
    let _client = tls_connect(&connector, addr).await.expect("handshake completes");
    let mut connection = incoming.next().await.expect("stream open").expect("established");
    let read = tokio::time::timeout(DEADLINE, connection.read(&mut [0u8; 16])).await.expect("the read ends");
    let error = read.expect_err("a silent client's connection fails as idle");
    assert_eq!(error.kind(), std::io::ErrorKind::TimedOut, "{error}");
}
