//! Dialing a peer: one session is hello, set reconciliation, fetch and push of
//! the difference, then live records both ways (the peer's stream in, this
//! node's new records out) with anti-entropy on an interval. A session that
//! ends is retried with exponential backoff, and every reconnect reconciles
//! again, so downtime and partitions heal without a full transfer.

use super::peer::PeerIdentity;
use super::reconcile::{Initiator, ReconcileError};
use super::scoring::PeerScores;
use super::service::ingest_from_peer;
use super::{MAX_PEER_BATCH_RECORDS, MAX_PEER_MESSAGE_BYTES, PROTOCOL_VERSION};
use crate::node::Node;
use crate::proto::{self, federation_client::FederationClient};
use crate::record::RecordId;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

/// First wait before redialing a peer that went away.
pub const BACKOFF_MIN: Duration = Duration::from_millis(200);
/// Longest wait between redials.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How long a dial may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default interval of anti-entropy within a live session.
pub const ANTI_ENTROPY_INTERVAL: Duration = Duration::from_secs(60);

/// Why a session with a peer ended.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("cannot connect: {0}")]
    Connect(#[from] tonic::transport::Error),
    #[error("peer answered: {0}")]
    Status(#[from] tonic::Status),
    #[error("reconciliation failed: {0}")]
    Reconcile(#[from] ReconcileError),
    #[error("peer closed the {0} stream")]
    Closed(&'static str),
    #[error("node work interrupted: {0}")]
    Interrupted(String),
    #[error("peer {0} is cut off for sending invalid records")]
    CutOff(String),
}

/// How to reach one peer.
#[derive(Clone, Debug)]
pub struct PeerAddress {
    /// host:port of its peer service.
    pub addr: String,
    /// Mutual TLS with this node's certificate, trusting the federation CA.
    pub tls: ClientTlsConfig,
    /// Anti-entropy interval within a live session.
    pub anti_entropy: Duration,
}

/// Keeps a link to `peer` until `shutdown` turns true.
pub async fn run(node: Arc<Node>, peer: PeerAddress, scores: Arc<PeerScores>, mut shutdown: watch::Receiver<bool>) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let session = tokio::select! {
            result = session(&node, &peer, &scores) => result,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        match session {
            Ok(()) => backoff = BACKOFF_MIN,
            Err(error) => tracing::warn!(peer = %peer.addr, reason = %error, "peer session ended"),
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

async fn connect(peer: &PeerAddress) -> Result<FederationClient<Channel>, LinkError> {
    let host = peer.addr.rsplit_once(':').map_or(peer.addr.as_str(), |(host, _)| host).trim_matches(['[', ']']);
    let channel = Endpoint::from_shared(format!("https://{}", peer.addr))?
        .tls_config(peer.tls.clone().domain_name(host))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .connect()
        .await?;
    Ok(FederationClient::new(channel)
        .max_decoding_message_size(MAX_PEER_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_PEER_MESSAGE_BYTES))
}

/// One session: returns when the peer goes away or misbehaves.
async fn session(node: &Arc<Node>, peer: &PeerAddress, scores: &Arc<PeerScores>) -> Result<(), LinkError> {
    let mut client = connect(peer).await?;
    let hello =
        client.hello(proto::HelloRequest { protocol_version: PROTOCOL_VERSION, limits: Some(super::limits()) }).await?;
    let remote = PeerIdentity { member_id: hello.into_inner().member_id };
    if scores.banned_until(&remote.member_id).is_some() {
        return Err(LinkError::CutOff(remote.member_id));
    }
    tracing::info!(peer = %remote.member_id, addr = %peer.addr, "peer session open");
    // Subscribe on both sides before reconciling, so nothing stored meanwhile is missed.
    let mut inbound = client.subscribe(proto::SubscribeRequest {}).await?.into_inner();
    let mut outbound = node.subscribe();
    anti_entropy(node, scores, &mut client, &remote).await?;
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + peer.anti_entropy, peer.anti_entropy);
    let own = node.own_key();
    loop {
        tokio::select! {
            batch = inbound.message() => {
                let batch = batch?.ok_or(LinkError::Closed("live"))?;
                ingest(node, scores, batch.envelopes, &remote).await?;
            }
            event = outbound.recv() => match event {
                Ok(event) if event.may_send(&own, &remote.member_id) => {
                    client.push(proto::RecordBatch { envelopes: vec![event.envelope.clone()] }).await?;
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => anti_entropy(node, scores, &mut client, &remote).await?,
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
            _ = interval.tick() => anti_entropy(node, scores, &mut client, &remote).await?,
        }
    }
}

async fn ingest(
    node: &Arc<Node>,
    scores: &Arc<PeerScores>,
    envelopes: Vec<proto::Envelope>,
    peer: &PeerIdentity,
) -> Result<(), LinkError> {
    let (node, shared_scores, remote) = (node.clone(), scores.clone(), peer.clone());
    tokio::task::spawn_blocking(move || ingest_from_peer(&node, &shared_scores, envelopes, &remote))
        .await
        .map_err(|e| LinkError::Interrupted(e.to_string()))?;
    if scores.banned_until(&peer.member_id).is_some() {
        return Err(LinkError::CutOff(peer.member_id.clone()));
    }
    Ok(())
}

/// Reconciles the two shared sets, then fetches what this node lacks and
/// pushes what the peer lacks.
async fn anti_entropy(
    node: &Arc<Node>,
    scores: &Arc<PeerScores>,
    client: &mut FederationClient<Channel>,
    peer: &PeerIdentity,
) -> Result<(), LinkError> {
    let items = node.shared_items();
    let mut initiator = Initiator::new(items)?;
    let (messages, receiver) = mpsc::channel(2);
    messages.send(proto::ReconcileMessage { payload: initiator.initiate()? }).await.ok();
    let mut replies = client.reconcile(ReceiverStream::new(receiver)).await?.into_inner();
    loop {
        let reply = replies.message().await?.ok_or(LinkError::Closed("reconciliation"))?;
        match initiator.step(&reply.payload)? {
            Some(next) => {
                messages
                    .send(proto::ReconcileMessage { payload: next })
                    .await
                    .map_err(|_| LinkError::Closed("reconciliation"))?;
            }
            None => break,
        }
    }
    drop(messages);
    let need = missing(node, initiator.need()).await?;
    for ids in need.chunks(MAX_PEER_BATCH_RECORDS) {
        let ids = ids.iter().map(|id| id.0.to_vec()).collect();
        let batch = client.fetch(proto::FetchRequest { ids }).await?.into_inner();
        ingest(node, scores, batch.envelopes, peer).await?;
    }
    for ids in initiator.have().chunks(MAX_PEER_BATCH_RECORDS) {
        let ids: Vec<RecordId> = ids.iter().map(|id| RecordId(*id)).collect();
        let (node, member) = (node.clone(), peer.member_id.clone());
        let envelopes = tokio::task::spawn_blocking(move || node.fetch_for(&ids, &member))
            .await
            .map_err(|e| LinkError::Interrupted(e.to_string()))?
            .map_err(|e| LinkError::Interrupted(e.to_string()))?;
        if !envelopes.is_empty() {
            client.push(proto::RecordBatch { envelopes }).await?;
        }
    }
    tracing::debug!(peer = %peer.member_id, fetched = need.len(), pushed = initiator.have().len(), "anti-entropy done");
    Ok(())
}

/// The ids in `need` this node does not store yet (some it stores but may not
/// share, such as a neighbour's AMBER records).
async fn missing(node: &Arc<Node>, need: &[[u8; 32]]) -> Result<Vec<RecordId>, LinkError> {
    let ids: Vec<RecordId> = need.iter().map(|id| RecordId(*id)).collect();
    let node = node.clone();
    tokio::task::spawn_blocking(move || {
        let stored = node.store().contains_many(&ids).unwrap_or_else(|_| vec![false; ids.len()]);
        ids.into_iter().zip(stored).filter(|(_, stored)| !stored).map(|(id, _)| id).collect()
    })
    .await
    .map_err(|e| LinkError::Interrupted(e.to_string()))
}
