//! `cirfed.v1.Federation`: the handlers.

use super::peer::peer_identity;
use super::{limits, PROTOCOL_VERSION};
use crate::node::Node;
use crate::proto::{self, federation_server};
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The peer service over one node.
#[derive(Clone)]
pub struct FederationService {
    node: Arc<Node>,
}

impl FederationService {
    /// A service over `node`.
    pub fn new(node: Arc<Node>) -> Self {
        FederationService { node }
    }
}

#[tonic::async_trait]
impl federation_server::Federation for FederationService {
    async fn hello(&self, request: Request<proto::HelloRequest>) -> Result<Response<proto::HelloReply>, Status> {
        let peer = peer_identity(&request)?;
        let hello = request.into_inner();
        if hello.protocol_version != PROTOCOL_VERSION {
            return Err(Status::failed_precondition(format!(
                "peer protocol version {} is not supported: this node speaks version {PROTOCOL_VERSION}",
                hello.protocol_version
            )));
        }
        tracing::info!(peer = %peer.member_id, "peer hello");
        Ok(Response::new(proto::HelloReply {
            protocol_version: PROTOCOL_VERSION,
            member_id: self.node.identity().member_id.clone(),
            peer_member_id: peer.member_id,
            limits: Some(limits()),
        }))
    }
}
