//! The peer service (`cirfed.v1.Federation`): mutual-TLS gRPC between member
//! nodes. Every caller presents a certificate from the federation CA; its
//! common name is the caller's pseudonymous member id.

mod dial; // mutual TLS to a peer, named by its certificate
pub mod inbound; // peers that dialed this node, for status
pub mod link; // dialing a peer: hello, reconcile, fetch/push, then live both ways
pub mod peer; // who is on the other end: the member id in the client certificate
pub mod reconcile; // negentropy range-based set reconciliation, transport-free
pub mod scoring; // invalid records count against a peer; past a threshold, a cool-down
mod service; // cirfed.v1.Federation handlers

pub use inbound::InboundPeers;
pub use scoring::{PeerRates, PeerScores};
pub use service::FederationService;

use crate::node::Node;
use crate::proto::federation_server::FederationServer;
use crate::proto::Limits;
use crate::status::OversizeExhausted;
use std::sync::Arc;
use tokio::sync::watch;

/// The peer service's gRPC name, for health checks.
pub const FEDERATION_SERVICE: &str = <FederationServer<FederationService> as tonic::server::NamedService>::NAME;
/// Version of the peer protocol this node speaks.
pub const PROTOCOL_VERSION: u32 = 1;
/// Largest message exchanged with a peer: a batch of records at most this big.
pub const MAX_PEER_MESSAGE_BYTES: usize = 8 << 20;
/// Most records in one batch from or to a peer.
pub const MAX_PEER_BATCH_RECORDS: usize = 1_000;
/// Most envelope bytes in one batch a node sends: half the message limit, so
/// framing always fits, and far above one envelope (`MAX_ENVELOPE_BYTES`).
/// A thousand large lessons would not fit in one message, so batches are cut
/// by bytes as well as by count.
pub const MAX_PEER_BATCH_BYTES: usize = MAX_PEER_MESSAGE_BYTES / 2;
/// Messages either side sends in one reconciliation before it is cut off:
/// an honest gap needs a handful (see BENCHMARKS.md), a hostile peer could
/// otherwise keep one going forever.
pub const MAX_RECONCILE_ROUNDS: usize = 1_024;
/// Reconciliations one peer may have running at once. A session runs one at
/// a time; the second covers a reconnect that overlaps the old stream's end.
pub const MAX_RECONCILES_PER_PEER: usize = 2;
/// Live streams one peer may have open at once: one per session, and one
/// more while a reconnect overlaps the old stream's end.
pub const MAX_SUBSCRIPTIONS_PER_PEER: usize = 2;
/// Longest a reconciliation may take: a million records settle in half a
/// second (BENCHMARKS.md), and each one holds a copy of the shared set.
pub const RECONCILE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The limits this node announces in Hello; `records_per_second` is what it
/// takes from one peer (`federation.max_peer_records_per_second`).
pub fn limits(records_per_second: u32) -> Limits {
    Limits {
        max_message_bytes: MAX_PEER_MESSAGE_BYTES as u32,
        max_batch_records: MAX_PEER_BATCH_RECORDS as u32,
        max_records_per_second: records_per_second,
    }
}

/// The tonic service for a node, with our message limits (a request over
/// them answers RESOURCE_EXHAUSTED). Live streams end when `shutdown` turns
/// true, so a stopping node does not wait on its peers.
pub fn federation_server(
    node: Arc<Node>,
    scores: Arc<PeerScores>,
    rates: Arc<PeerRates>,
    inbound: Arc<InboundPeers>,
    shutdown: watch::Receiver<bool>,
) -> OversizeExhausted<FederationServer<FederationService>> {
    OversizeExhausted(
        FederationServer::new(FederationService::new(node, scores, rates, inbound, shutdown))
            .max_decoding_message_size(MAX_PEER_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_PEER_MESSAGE_BYTES),
    )
}

/// Serves the peer service on established mutual-TLS connections until
/// `shutdown` turns true.
pub async fn serve<IO>(
    node: Arc<Node>,
    health: crate::health::HealthState,
    scores: Arc<PeerScores>,
    rates: Arc<PeerRates>,
    inbound: Arc<InboundPeers>,
    incoming: impl tokio_stream::Stream<Item = Result<IO, std::io::Error>>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), tonic::transport::Error>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + tonic::transport::server::Connected + Unpin + Send + 'static,
{
    tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(crate::transport::KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(crate::transport::KEEPALIVE_TIMEOUT))
        .add_service(health.service(FEDERATION_SERVICE))
        .add_service(federation_server(node, scores, rates, inbound, shutdown.clone()))
        .serve_with_incoming_shutdown(incoming, stopped(shutdown))
        .await
}

/// Completes when `shutdown` turns true.
pub async fn stopped(mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
