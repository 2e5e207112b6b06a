//! `cirfed.v1.Federation`: the handlers. Each one names the caller from its
//! client certificate first; records go through the node's one ingest pipeline.

use super::inbound::{InboundPeers, InboundSession};
use super::peer::{peer_identity, PeerIdentity};
use super::reconcile::Responder;
use super::scoring::{is_misbehaviour, PeerRates, PeerScores};
use super::{
    limits, MAX_PEER_BATCH_BYTES, MAX_PEER_BATCH_RECORDS, MAX_RECONCILES_PER_PEER, MAX_RECONCILE_ROUNDS,
    MAX_SUBSCRIPTIONS_PER_PEER, PROTOCOL_VERSION, RECONCILE_TIMEOUT,
};
use crate::node::{unix_now, Node, StoredEvent};
use crate::proto::{self, federation_server};
use crate::record::RecordId;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

/// Reply messages a stream may have in flight before it waits for the peer.
const STREAM_BUFFER: usize = 16;

/// The peer service over one node.
#[derive(Clone)]
pub struct FederationService {
    node: Arc<Node>,
    /// Misbehaviour scores, shared with the links this node dials.
    scores: Arc<PeerScores>,
    /// Records per second each peer may push.
    rates: Arc<PeerRates>,
    /// Turns true when the node stops; ends live streams.
    shutdown: watch::Receiver<bool>,
    /// Reconciliations running, per peer.
    reconciling: Slots,
    /// Live streams open, per peer.
    subscribed: Slots,
    /// What `cirfed status` shows of peers that dialed in.
    inbound: Arc<InboundPeers>,
}

impl FederationService {
    /// A service over `node`.
    pub fn new(
        node: Arc<Node>,
        scores: Arc<PeerScores>,
        rates: Arc<PeerRates>,
        inbound: Arc<InboundPeers>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let (reconciling, subscribed) = (Slots::new(MAX_RECONCILES_PER_PEER), Slots::new(MAX_SUBSCRIPTIONS_PER_PEER));
        FederationService { node, scores, rates, shutdown, reconciling, subscribed, inbound }
    }

    /// The caller, unless the authority revoked it or it is cooling down
    /// after misbehaving. Every RPC starts here, so a revocation applies to
    /// the next call of a member whose certificate is still valid.
    fn admitted_peer<T>(&self, request: &Request<T>) -> Result<PeerIdentity, Status> {
        let peer = peer_identity(request)?;
        refuse_revoked(&self.node, &peer.member_id)?;
        if self.scores.banned_until(&peer.member_id).is_some() {
            return Err(Status::permission_denied(format!(
                "peer {} is cut off for sending invalid records; it may return after the cool-down",
                peer.member_id
            )));
        }
        Ok(peer)
    }

    async fn blocking<T: Send + 'static>(&self, work: impl FnOnce(&Node) -> T + Send + 'static) -> Result<T, Status> {
        let node = self.node.clone();
        tokio::task::spawn_blocking(move || work(&node)).await.map_err(crate::status::interrupted)
    }
}

type Replies<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// A refusal for a member the authority revoked.
fn refuse_revoked(node: &Node, member_id: &str) -> Result<(), Status> {
    match node.member_revoked(member_id) {
        Some(at) => Err(Status::permission_denied(format!(
            "member {member_id} was revoked by the federation authority at {at}"
        ))),
        None => Ok(()),
    }
}

/// Completes once `member_id` is revoked: open streams end at once, not at
/// their next message.
pub(super) async fn revoked(node: Arc<Node>, member_id: String) -> Status {
    let mut trust = node.watch_trust();
    loop {
        if let Err(refusal) = refuse_revoked(&node, &member_id) {
            return refusal;
        }
        if trust.changed().await.is_err() {
            // The node is going away; the stream ends with it.
            std::future::pending::<()>().await;
        }
    }
}

fn check_batch(count: usize) -> Result<(), Status> {
    if count > MAX_PEER_BATCH_RECORDS {
        return Err(Status::invalid_argument(format!(
            "{count} records in one batch, over the limit of {MAX_PEER_BATCH_RECORDS}"
        )));
    }
    Ok(())
}

#[tonic::async_trait]
impl federation_server::Federation for FederationService {
    async fn hello(&self, request: Request<proto::HelloRequest>) -> Result<Response<proto::HelloReply>, Status> {
        let peer = self.admitted_peer(&request)?;
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
            limits: Some(limits(self.rates.per_second())),
        }))
    }

    type ReconcileStream = Replies<proto::ReconcileMessage>;

    async fn reconcile(
        &self,
        request: Request<Streaming<proto::ReconcileMessage>>,
    ) -> Result<Response<Self::ReconcileStream>, Status> {
        let peer = self.admitted_peer(&request)?;
        // Each reconciliation holds a sorted copy of the shared set: a peer
        // gets a bounded number of them, each for a bounded time.
        let slot = self.reconciling.take(&peer.member_id, "reconciliations")?;
        let mut messages = request.into_inner();
        let member_id = peer.member_id.clone();
        let responder = self
            .blocking(move |node| Responder::new(node.shared_items(&member_id)))
            .await?
            .map_err(|e| Status::internal(format!("cannot prepare reconciliation: {e}")))?;
        let (replies, receiver) = mpsc::channel(STREAM_BUFFER);
        let (inbound, scores, shutdown) = (self.inbound.clone(), self.scores.clone(), self.shutdown.clone());
        let revoked = revoked(self.node.clone(), peer.member_id.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let answer =
                tokio::time::timeout(RECONCILE_TIMEOUT, answer_reconciliation(responder, &mut messages, &replies));
            // A stopping node does not wait for a peer that went quiet mid-exchange.
            let outcome = tokio::select! {
                answered = answer => match answered {
                    Ok(outcome) => outcome,
                    Err(_) => Err(Status::deadline_exceeded(format!("reconciliation took over {RECONCILE_TIMEOUT:?}"))),
                },
                refusal = revoked => Err(refusal),
                _ = super::stopped(shutdown) => Err(Status::unavailable("node stopping")),
            };
            match outcome {
                Ok(()) => inbound.update(&peer.member_id, |s| s.last_reconciled = unix_now()),
                Err(status) => {
                    tracing::warn!(peer = %peer.member_id, reason = %status.message(), "reconciliation cut off");
                    // A message negentropy cannot parse counts like an invalid record.
                    if status.code() == tonic::Code::InvalidArgument {
                        scores.record_invalid(&peer.member_id, 1, status.message());
                    }
                    let _ = replies.send(Err(status)).await;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    async fn fetch(&self, request: Request<proto::FetchRequest>) -> Result<Response<proto::RecordBatch>, Status> {
        // Admission check only: what may be fetched is the same for every peer.
        self.admitted_peer(&request)?;
        let ids = request.into_inner().ids;
        check_batch(ids.len())?;
        // Every id must be one: `served` counts a prefix of what was asked.
        let ids = ids
            .iter()
            .map(|id| RecordId::from_slice(id))
            .collect::<Option<Vec<RecordId>>>()
            .ok_or_else(|| Status::invalid_argument("a record id is 32 bytes"))?;
        let (envelopes, served) = self
            .blocking(move |node| node.shareable_envelopes(&ids, MAX_PEER_BATCH_BYTES))
            .await?
            .map_err(crate::status::to_status)?;
        Ok(Response::new(proto::RecordBatch { envelopes, stem: false, served: served as u32 }))
    }

    async fn push(&self, request: Request<proto::RecordBatch>) -> Result<Response<proto::PushReply>, Status> {
        let peer = self.admitted_peer(&request)?;
        let batch = request.into_inner();
        let envelopes = batch.envelopes;
        check_batch(envelopes.len())?;
        if !self.rates.admit(&peer.member_id, envelopes.len()) {
            return Err(Status::resource_exhausted(format!(
                "peer {} is sending over its rate of records per second; slow down",
                peer.member_id
            )));
        }
        self.inbound.update(&peer.member_id, |s| s.received += envelopes.len() as u64);
        let scores = self.scores.clone();
        let (accepted, refused) = match batch.stem {
            true => self.blocking(move |node| relay_from_peer(node, &scores, envelopes, &peer)).await?,
            false => self.blocking(move |node| ingest_from_peer(node, &scores, envelopes, &peer)).await?,
        };
        Ok(Response::new(proto::PushReply { accepted, refused }))
    }

    type SubscribeStream = Replies<proto::RecordBatch>;

    async fn subscribe(
        &self,
        request: Request<proto::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let peer = self.admitted_peer(&request)?;
        let slot = self.subscribed.take(&peer.member_id, "live streams")?;
        let addr = request.remote_addr().map_or_else(|| "inbound".to_string(), |addr| addr.to_string());
        let session = self.inbound.open(&peer.member_id, addr);
        let events = self.node.subscribe();
        let own = self.node.own_key();
        let (batches, receiver) = mpsc::channel(STREAM_BUFFER);
        let scores = self.scores.clone();
        let live = (LivePeer::new(&self.node, &peer.member_id), session, slot);
        let revoked = revoked(self.node.clone(), peer.member_id.clone());
        tokio::spawn(forward_events(events, own, peer, scores, batches, (self.shutdown.clone(), revoked), live));
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }
}

/// Answers the initiator's messages until it is done; each answer is
/// computed off the async workers (a first message fingerprints the whole set).
async fn answer_reconciliation(
    mut responder: Responder,
    messages: &mut Streaming<proto::ReconcileMessage>,
    replies: &mpsc::Sender<Result<proto::ReconcileMessage, Status>>,
) -> Result<(), Status> {
    for _ in 0..MAX_RECONCILE_ROUNDS {
        let Some(message) = messages.next().await.transpose()? else { return Ok(()) };
        let (back, reply) = tokio::task::spawn_blocking(move || {
            let reply = responder.respond(&message.payload);
            (responder, reply)
        })
        .await
        .map_err(crate::status::interrupted)?;
        responder = back;
        let payload = reply.map_err(|e| Status::invalid_argument(format!("reconciliation message refused: {e}")))?;
        if replies.send(Ok(proto::ReconcileMessage { payload })).await.is_err() {
            return Ok(());
        }
    }
    Err(Status::resource_exhausted(format!("over {MAX_RECONCILE_ROUNDS} reconciliation rounds")))
}

/// Streams of one kind a peer has open, capped per peer: each holds memory
/// (a copy of the shared set, or a buffer of live records) for as long as
/// the peer keeps it.
#[derive(Clone)]
struct Slots {
    max: usize,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

impl Slots {
    fn new(max: usize) -> Self {
        Slots { max, open: Arc::default() }
    }

    /// One of `peer`'s slots, or a refusal naming the cap.
    fn take(&self, peer: &str, what: &str) -> Result<Slot, Status> {
        let mut open = self.open.lock().expect("slots lock");
        let count = open.entry(peer.to_string()).or_default();
        if *count >= self.max {
            return Err(Status::resource_exhausted(format!("{} {what} with this peer are open already", self.max)));
        }
        *count += 1;
        Ok(Slot { slots: self.clone(), peer: peer.to_string() })
    }
}

/// A slot, given back when dropped.
struct Slot {
    slots: Slots,
    peer: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().expect("slots lock");
        if let Some(count) = open.get_mut(&self.peer) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.peer);
            }
        }
    }
}

/// Streams newly stored records that `peer` may receive until it goes away.
/// A peer that falls behind the event buffer is cut off, and catches up by
/// reconciliation when it reconnects.
async fn forward_events(
    mut events: broadcast::Receiver<Arc<StoredEvent>>,
    own: [u8; 32],
    peer: PeerIdentity,
    scores: Arc<PeerScores>,
    batches: mpsc::Sender<Result<proto::RecordBatch, Status>>,
    // The node stopping, and the peer's revocation: either ends the stream.
    (shutdown, revoked): (watch::Receiver<bool>, impl std::future::Future<Output = Status>),
    // Held until the stream ends: the peer is live for stem hops, and
    // connected in status, meanwhile.
    live: (LivePeer, InboundSession, Slot),
) {
    let stopping = super::stopped(shutdown);
    tokio::pin!(stopping, revoked);
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            _ = &mut stopping => return,
            refusal = &mut revoked => {
                tracing::warn!(peer = %peer.member_id, "live stream of a revoked member ended");
                let _ = batches.send(Err(refusal)).await;
                return;
            }
            // The peer went away: stop counting it as live for stem hops at once.
            _ = batches.closed() => return,
        };
        if scores.banned_until(&peer.member_id).is_some() {
            let _ = batches.send(Err(Status::permission_denied("cut off for sending invalid records"))).await;
            return;
        }
        // The roster learns of a revocation before any record stored after it
        // is announced, so this check leaves no window for one to slip out.
        if let Err(refusal) = refuse_revoked(&live.0.node, &peer.member_id) {
            let _ = batches.send(Err(refusal)).await;
            return;
        }
        let batch = match event {
            Ok(event) if event.may_send(&own, &peer.member_id) => Ok(proto::RecordBatch {
                envelopes: vec![event.envelope.clone()],
                stem: event.stem_to.is_some(),
                served: 0,
            }),
            Ok(_) => continue,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(peer = %peer.member_id, missed, "peer fell behind the live stream");
                Err(Status::resource_exhausted("fell behind the live stream: reconcile"))
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let failed = batch.is_err();
        if batches.send(batch).await.is_err() || failed {
            return;
        }
        live.1.sent(1);
    }
}

/// Counts a live session with a peer for as long as it lives, so that the
/// node's stem can pass records to it.
pub(super) struct LivePeer {
    node: Arc<Node>,
    member_id: String,
}

impl LivePeer {
    pub(super) fn new(node: &Arc<Node>, member_id: &str) -> LivePeer {
        node.peer_up(member_id);
        LivePeer { node: node.clone(), member_id: member_id.to_string() }
    }
}

impl Drop for LivePeer {
    fn drop(&mut self) {
        self.node.peer_down(&self.member_id);
    }
}

/// Relays stem hops a peer sent, scoring it for invalid ones like ingest does.
pub(super) fn relay_from_peer(
    node: &Node,
    scores: &PeerScores,
    envelopes: Vec<proto::Envelope>,
    peer: &PeerIdentity,
) -> (u32, u32) {
    let (mut accepted, mut refused, mut invalid) = (0, 0, 0);
    let mut last_reason = String::new();
    for outcome in node.relay_stem(envelopes, &peer.member_id) {
        match outcome {
            Ok(()) => accepted += 1,
            Err(error) => {
                refused += 1;
                tracing::warn!(peer = %peer.member_id, code = error.code(), reason = %error, "refused stem record from peer");
                if is_misbehaviour(error.code()) {
                    invalid += 1;
                    last_reason = error.to_string();
                }
            }
        }
    }
    scores.record_invalid(&peer.member_id, invalid, &last_reason);
    (accepted, refused)
}

/// Ingests what a peer sent; logs each refusal with its reason and scores
/// the peer for the ones that are misbehaviour.
pub(super) fn ingest_from_peer(
    node: &Node,
    scores: &PeerScores,
    envelopes: Vec<proto::Envelope>,
    peer: &PeerIdentity,
) -> (u32, u32) {
    let (mut accepted, mut refused, mut invalid) = (0, 0, 0);
    let mut last_reason = String::new();
    for outcome in node.ingest_from(envelopes, unix_now(), Some(&peer.member_id)) {
        match outcome {
            Ok(_) => accepted += 1,
            Err(error) => {
                refused += 1;
                tracing::warn!(peer = %peer.member_id, code = error.code(), reason = %error, "refused record from peer");
                if is_misbehaviour(error.code()) {
                    invalid += 1;
                    last_reason = error.to_string();
                }
            }
        }
    }
    scores.record_invalid(&peer.member_id, invalid, &last_reason);
    (accepted, refused)
}
