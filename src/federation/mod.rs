//! The peer service (`cirfed.v1.Federation`): mutual-TLS gRPC between member
//! nodes. Every caller presents a certificate from the federation CA; its
//! common name is the caller's pseudonymous member id.

pub mod peer; // who is on the other end: the member id in the client certificate
pub mod reconcile; // negentropy range-based set reconciliation, transport-free
mod service; // cirfed.v1.Federation handlers

pub use service::FederationService;

use crate::node::Node;
use crate::proto::federation_server::FederationServer;
use crate::proto::Limits;
use std::future::Future;
use std::sync::Arc;

/// Version of the peer protocol this node speaks.
pub const PROTOCOL_VERSION: u32 = 1;
/// Largest message exchanged with a peer: a batch of records at most this big.
pub const MAX_PEER_MESSAGE_BYTES: usize = 8 << 20;
/// Most records in one batch from or to a peer.
pub const MAX_PEER_BATCH_RECORDS: usize = 1_000;
/// Records per second a node accepts from one peer.
pub const MAX_PEER_RECORDS_PER_SECOND: u32 = 20_000;

/// The limits this node announces in Hello.
pub fn limits() -> Limits {
    Limits {
        max_message_bytes: MAX_PEER_MESSAGE_BYTES as u32,
        max_records_per_second: MAX_PEER_RECORDS_PER_SECOND,
        max_batch_records: MAX_PEER_BATCH_RECORDS as u32,
    }
}

/// The tonic service for a node, with our message limits.
pub fn federation_server(node: Arc<Node>) -> FederationServer<FederationService> {
    FederationServer::new(FederationService::new(node))
        .max_decoding_message_size(MAX_PEER_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_PEER_MESSAGE_BYTES)
}

/// Serves the peer service on established mutual-TLS connections until `shutdown`.
pub async fn serve<IO>(
    node: Arc<Node>,
    incoming: impl tokio_stream::Stream<Item = Result<IO, std::io::Error>>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + tonic::transport::server::Connected + Unpin + Send + 'static,
{
    tonic::transport::Server::builder()
        .add_service(federation_server(node))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}
