//! The local API for SOC tools (`cirfed.v1.Node`), served on loopback or
//! over mutual TLS.

mod convert;
pub mod export;
mod local;
mod lookup;

pub use local::NodeService;
pub use lookup::MAX_REPLY_BYTES;

use crate::federation::link::Links;
use crate::health::HealthState;
use crate::node::Node;
use crate::proto::node_server::NodeServer;
use crate::status::OversizeExhausted;
use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use tokio::net::TcpListener;
use tonic::codegen::{http, BoxFuture, Service};
use tonic::server::NamedService;
use tonic::transport::server::{Router, TcpIncoming};
use tonic::Status;
use tonic_reflection::server::v1::{ServerReflection, ServerReflectionServer};

/// The local API's gRPC service name.
pub const NODE_SERVICE: &str = <NodeServer<NodeService> as NamedService>::NAME;
/// The reflection service's name (v1).
const REFLECTION_SERVICE: &str = "grpc.reflection.v1.ServerReflection";

/// Largest request or reply message on the local API.
pub const MAX_API_MESSAGE_BYTES: usize = 32 << 20;

/// The tonic service for a node, with our message limits; a request over
/// them answers RESOURCE_EXHAUSTED.
pub fn node_server(node: Arc<Node>, links: Arc<Links>) -> OversizeExhausted<NodeServer<NodeService>> {
    OversizeExhausted(
        NodeServer::new(NodeService::new(node, links))
            .max_decoding_message_size(MAX_API_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_API_MESSAGE_BYTES),
    )
}

/// Server reflection v1: grpcurl and similar tools discover the local API
/// and health without a copy of the .proto files.
pub fn reflection() -> ServerReflectionServer<impl ServerReflection> {
    let health = <tonic_health::pb::health_server::HealthServer<crate::health::NodeHealth> as NamedService>::NAME;
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name(NODE_SERVICE)
        .with_service_name(health)
        .with_service_name(REFLECTION_SERVICE)
        .build_v1()
        // Only fails on a malformed descriptor set; both are generated at build time.
        .expect("generated file descriptor sets decode")
}

type NodeApi = OversizeExhausted<NodeServer<NodeService>>;

/// The local API's node service, filled once the node is open. Until then
/// every call answers UNAVAILABLE (and health NOT_SERVING), so clients and
/// load balancers can tell a starting node from a dead one.
#[derive(Clone, Default)]
pub struct NodeSlot(Arc<OnceLock<NodeApi>>);

impl NodeSlot {
    /// Serves `node` from now on; a second fill is ignored.
    pub fn fill(&self, node: Arc<Node>, links: Arc<Links>) {
        let _ = self.0.set(node_server(node, links));
    }
}

impl NamedService for NodeSlot {
    const NAME: &'static str = NODE_SERVICE;
}

impl Service<http::Request<tonic::body::Body>> for NodeSlot {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Generated servers are always ready; so is the starting answer.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        match self.0.get() {
            Some(api) => {
                let mut api = api.clone();
                Box::pin(async move { api.call(request).await })
            }
            None => {
                let starting = Status::unavailable("the node is starting: its store is not open yet");
                Box::pin(std::future::ready(Ok(starting.into_http())))
            }
        }
    }
}

/// The local API with health and reflection beside it.
fn services(mut server: tonic::transport::Server, node: NodeSlot, health: &HealthState) -> Router {
    server.add_service(health.service(NODE_SERVICE)).add_service(reflection()).add_service(node)
}

/// Serves the local API in plain gRPC on an already-bound listener until
/// `shutdown` completes. Callers bind; config validation keeps plain gRPC on
/// loopback.
pub async fn serve(
    node: NodeSlot,
    health: HealthState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    services(tonic::transport::Server::builder(), node, &health)
        // Without TCP_NODELAY small replies wait out the peer's delayed ACK (~40 ms).
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), shutdown)
        .await
}

/// Serves the local API on already-established connections (mutual TLS).
pub async fn serve_incoming<IO>(
    node: NodeSlot,
    health: HealthState,
    incoming: impl tokio_stream::Stream<Item = Result<IO, std::io::Error>>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + tonic::transport::server::Connected + Unpin + Send + 'static,
{
    let server = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(crate::transport::KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(crate::transport::KEEPALIVE_TIMEOUT));
    services(server, node, &health).serve_with_incoming_shutdown(incoming, shutdown).await
}
