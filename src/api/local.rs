//! `cirfed.v1.Node`: the handlers. Work that touches RocksDB or verifies
//! signatures runs on the blocking pool so it never stalls the runtime.

use super::convert;
use super::export::{self, Piece};
use super::lookup::lookup_page;
use crate::federation::link::Links;
use crate::node::Node;
use crate::proto::{self, node_server};
use crate::record::{RecordError, RecordId, RecordKind};
use crate::status;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

/// Reply batches a LookupStream may have in flight before it stops reading
/// requests (back-pressure on a slow client).
pub const LOOKUP_STREAM_BUFFER: usize = 8;
/// Page size of `List` when the request gives none.
pub const DEFAULT_LIST_LIMIT: u32 = 100;

/// The local API over one node.
#[derive(Clone)]
pub struct NodeService {
    node: Arc<Node>,
    /// The peers the node dials: reported by Status, added by AddPeer.
    links: Arc<Links>,
}

impl NodeService {
    /// A service over `node` and its links.
    pub fn new(node: Arc<Node>, links: Arc<Links>) -> Self {
        NodeService { node, links }
    }

    /// Sends one stream batch's answer as replies of at most `MAX_REPLY_BYTES`,
    /// each looked up once the previous one is queued (back-pressure).
    async fn answer_batch(&self, batch: Arc<proto::LookupRequest>, replies: &Replies) -> Result<(), Status> {
        let mut start = batch.start as usize;
        loop {
            let request = batch.clone();
            let reply = self.blocking(move |node| lookup_page(node, &request, start)).await?;
            let next = reply.next_index as usize;
            if replies.send(Ok(reply)).await.is_err() || next == 0 {
                return Ok(());
            }
            start = next;
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Node) -> Result<T, Status> + Send + 'static,
    ) -> Result<T, Status> {
        let node = self.node.clone();
        tokio::task::spawn_blocking(move || work(&node)).await.map_err(status::interrupted)?
    }
}

type Replies = mpsc::Sender<Result<proto::LookupReply, Status>>;
type ExportChunks = Pin<Box<dyn Stream<Item = Result<proto::ExportChunk, Status>> + Send>>;
type LookupReplies = Pin<Box<dyn Stream<Item = Result<proto::LookupReply, Status>> + Send>>;

#[tonic::async_trait]
impl node_server::Node for NodeService {
    async fn publish(&self, request: Request<proto::PublishRequest>) -> Result<Response<proto::PublishReply>, Status> {
        let request = request.into_inner();
        let outcomes = self
            .blocking(move |node| {
                Ok(match request.dry_run {
                    true => {
                        let prepared = node.prepare(request.drafts).map_err(status::to_status)?;
                        prepared.into_iter().map(convert::prepared).collect()
                    }
                    false => node.publish_reported(request.drafts).into_iter().map(convert::published).collect(),
                })
            })
            .await?;
        Ok(Response::new(proto::PublishReply { outcomes }))
    }

    async fn import(&self, request: Request<proto::ImportRequest>) -> Result<Response<proto::PublishReply>, Status> {
        let envelopes = request.into_inner().envelopes;
        let outcomes = self.blocking(move |node| Ok(node.import(envelopes))).await?;
        Ok(Response::new(proto::PublishReply { outcomes: outcomes.into_iter().map(convert::outcome).collect() }))
    }

    async fn get(&self, request: Request<proto::GetRequest>) -> Result<Response<proto::StoredRecord>, Status> {
        let raw = request.into_inner().id;
        let id =
            RecordId::from_slice(&raw).ok_or_else(|| status::invalid(RecordError::BadRecordId(hex::encode(&raw))))?;
        let view = self.blocking(move |node| node.get(&id).map_err(status::to_status)).await?;
        Ok(Response::new(convert::stored_record(view)))
    }

    async fn lookup(&self, request: Request<proto::LookupRequest>) -> Result<Response<proto::LookupReply>, Status> {
        let request = request.into_inner();
        let start = request.start as usize;
        Ok(Response::new(self.blocking(move |node| lookup_page(node, &request, start)).await?))
    }

    type LookupStreamStream = LookupReplies;

    async fn lookup_stream(
        &self,
        request: Request<Streaming<proto::LookupRequest>>,
    ) -> Result<Response<LookupReplies>, Status> {
        let mut requests = request.into_inner();
        let (replies, receiver) = mpsc::channel(LOOKUP_STREAM_BUFFER);
        let service = self.clone();
        tokio::spawn(async move {
            while let Some(batch) = requests.next().await {
                let answered = match batch {
                    Ok(batch) => service.answer_batch(Arc::new(batch), &replies).await,
                    Err(status) => Err(status::oversize(status)),
                };
                if let Err(status) = answered {
                    let _ = replies.send(Err(status)).await;
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    async fn list(&self, request: Request<proto::ListRequest>) -> Result<Response<proto::ListReply>, Status> {
        let request = request.into_inner();
        let kind = match request.kind {
            0 => None,
            code => Some(
                RecordKind::from_code(code)
                    .ok_or_else(|| status::invalid(RecordError::UnknownEnum { field: "kind", value: code }))?,
            ),
        };
        let limit = if request.limit == 0 { DEFAULT_LIST_LIMIT } else { request.limit } as usize;
        let (views, next) = self
            .blocking(move |node| {
                node.list(kind, request.after, limit, request.include_inactive).map_err(status::to_status)
            })
            .await?;
        Ok(Response::new(proto::ListReply { records: views.into_iter().map(convert::stored_record).collect(), next }))
    }

    async fn status(&self, _: Request<proto::StatusRequest>) -> Result<Response<proto::StatusReply>, Status> {
        let mut reply = convert::status(self.node.status());
        reply.peers = self.links.statuses().into_iter().map(convert::peer_status).collect();
        reply.trust = Some(convert::trust_status(self.node.transport_trust()));
        Ok(Response::new(reply))
    }

    type ExportStream = ExportChunks;

    async fn export(&self, request: Request<proto::ExportRequest>) -> Result<Response<ExportChunks>, Status> {
        let request = request.into_inner();
        let format = request.format.parse().map_err(status::interop)?;
        let filter = export::filter_of(&request).map_err(status::interop)?;
        let pieces = export::start(self.node.clone(), format, filter);
        let chunks = ReceiverStream::new(pieces).map(|piece| match piece {
            Piece::Data { file, data } => Ok(proto::ExportChunk { file, data, summary: None }),
            Piece::Done(summary) => {
                Ok(proto::ExportChunk { summary: Some(export::summary_message(summary)), ..Default::default() })
            }
            Piece::Failed(e) => Err(status::interop(e)),
        });
        Ok(Response::new(Box::pin(chunks)))
    }

    async fn add_peer(&self, request: Request<proto::AddPeerRequest>) -> Result<Response<proto::AddPeerReply>, Status> {
        let addr = request.into_inner().addr;
        let valid = addr.rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !valid {
            return Err(Status::invalid_argument(format!("'{addr}' is not a host:port address")));
        }
        Ok(Response::new(proto::AddPeerReply { added: self.links.add(&addr) }))
    }
}
