//! The local API for SOC tools (`cirfed.v1.Node`), served on loopback or
//! over mutual TLS.

mod convert;
mod local;

pub use local::NodeService;

use crate::federation::link::Links;
use crate::node::Node;
use crate::proto::node_server::NodeServer;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

/// Largest request or reply message on the local API.
pub const MAX_API_MESSAGE_BYTES: usize = 32 << 20;

/// The tonic service for a node, with our message limits.
pub fn node_server(node: Arc<Node>, links: Arc<Links>) -> NodeServer<NodeService> {
    NodeServer::new(NodeService::new(node, links))
        .max_decoding_message_size(MAX_API_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_API_MESSAGE_BYTES)
}

/// Serves the local API in plain gRPC on an already-bound listener until
/// `shutdown` completes. Callers bind; config validation keeps plain gRPC on
/// loopback.
pub async fn serve(
    node: Arc<Node>,
    links: Arc<Links>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .add_service(node_server(node, links))
        // Without TCP_NODELAY small replies wait out the peer's delayed ACK (~40 ms).
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), shutdown)
        .await
}

/// Serves the local API on already-established connections (mutual TLS).
pub async fn serve_incoming<IO>(
    node: Arc<Node>,
    links: Arc<Links>,
    incoming: impl tokio_stream::Stream<Item = Result<IO, std::io::Error>>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + tonic::transport::server::Connected + Unpin + Send + 'static,
{
    tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(crate::transport::KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(crate::transport::KEEPALIVE_TIMEOUT))
        .add_service(node_server(node, links))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}
