//! The peer service (`cirfed.v1.Federation`): mutual-TLS gRPC between member
//! nodes. Every caller presents a certificate from the federation CA; its
//! common name is the caller's pseudonymous member id.

pub mod link; // dialing a peer: hello, reconcile, fetch/push, then live both ways
pub mod peer; // who is on the other end: the member id in the client certificate
pub mod reconcile; // negentropy range-based set reconciliation, transport-free
pub mod scoring; // invalid records count against a peer; past a threshold, a cool-down
mod service; // cirfed.v1.Federation handlers

pub use scoring::{PeerRates, PeerScores};
pub use service::FederationService;

use crate::node::Node;
use crate::proto::federation_server::FederationServer;
use crate::proto::Limits;
use std::sync::Arc;
use tokio::sync::watch;

/// Version of the peer protocol this node speaks.
pub const PROTOCOL_VERSION: u32 = 1;
/// Largest message exchanged with a peer: a batch of records at most this big.
pub const MAX_PEER_MESSAGE_BYTES: usize = 8 << 20;
/// Most records in one batch from or to a peer.
pub const MAX_PEER_BATCH_RECORDS: usize = 1_000;
/// Messages either side sends in one reconciliation before it is cut off:
/// an honest gap needs a handful (see BENCHMARKS.md), a hostile peer could
/// otherwise keep one going forever.
pub const MAX_RECONCILE_ROUNDS: usize = 1_024;

/// The limits this node announces in Hello.
pub fn limits() -> Limits {
    Limits { max_message_bytes: MAX_PEER_MESSAGE_BYTES as u32, max_batch_records: MAX_PEER_BATCH_RECORDS as u32 }
}

/// The tonic service for a node, with our message limits. Live streams end
/// when `shutdown` turns true, so a stopping node does not wait on its peers.
pub fn federation_server(
    node: Arc<Node>,
    scores: Arc<PeerScores>,
    rates: Arc<PeerRates>,
    shutdown: watch::Receiver<bool>,
) -> FederationServer<FederationService> {
    FederationServer::new(FederationService::new(node, scores, rates, shutdown))
        .max_decoding_message_size(MAX_PEER_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_PEER_MESSAGE_BYTES)
}

/// Serves the peer service on established mutual-TLS connections until
/// `shutdown` turns true.
pub async fn serve<IO>(
    node: Arc<Node>,
    scores: Arc<PeerScores>,
    rates: Arc<PeerRates>,
    incoming: impl tokio_stream::Stream<Item = Result<IO, std::io::Error>>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), tonic::transport::Error>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + tonic::transport::server::Connected + Unpin + Send + 'static,
{
    tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(crate::transport::KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(crate::transport::KEEPALIVE_TIMEOUT))
        .add_service(federation_server(node, scores, rates, shutdown.clone()))
        .serve_with_incoming_shutdown(incoming, stopped(shutdown))
        .await
}

/// Completes when `shutdown` turns true.
pub async fn stopped(mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
