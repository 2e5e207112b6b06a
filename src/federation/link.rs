//! Dialing peers. One session is hello, set reconciliation, fetch and push of
//! the difference, then live records both ways (the peer's stream in, this
//! node's new records out) with anti-entropy on an interval. A session that
//! ends is retried with exponential backoff, and every reconnect reconciles
//! again, so downtime and partitions heal without a full transfer.

use super::peer::PeerIdentity;
use super::reconcile::{Initiator, ReconcileError};
use super::scoring::PeerScores;
use super::service::{ingest_from_peer, relay_from_peer, LivePeer};
use super::{MAX_PEER_BATCH_RECORDS, MAX_PEER_MESSAGE_BYTES, PROTOCOL_VERSION};
use crate::node::{unix_now, Node};
use crate::proto::{self, federation_client::FederationClient};
use crate::record::RecordId;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

/// First wait before redialing a peer that went away.
pub const BACKOFF_MIN: Duration = Duration::from_millis(200);
/// Longest wait between redials.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How long a dial may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Reconciliation passes in one anti-entropy run. A record can be refused in
/// one pass because its author's member card comes in a later batch; the next
/// pass fetches it again, now that the card is known.
pub const MAX_ANTI_ENTROPY_PASSES: usize = 4;

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

/// What `cirfed status` shows of one link.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkStatus {
    /// host:port dialed.
    pub addr: String,
    /// The peer's member id, once it said hello.
    pub member_id: String,
    /// A session is open.
    pub connected: bool,
    /// When the link last connected or went down (unix seconds).
    pub since: i64,
    /// Records pushed to the peer.
    pub sent: u64,
    /// Records received from the peer.
    pub received: u64,
    /// When the last reconciliation finished (unix seconds, 0: never).
    pub last_reconciled: i64,
    /// Records the last reconciliation found missing on either side: how far behind they were.
    pub last_difference: u64,
    /// Bytes of negentropy messages exchanged with the peer, both ways, over all sessions.
    pub reconcile_bytes: u64,
    /// Why the last session ended.
    pub last_error: String,
}

/// The links a node keeps, one per peer it dials; more can be added at run time.
pub struct Links {
    node: Arc<Node>,
    scores: Arc<PeerScores>,
    /// Mutual TLS with this node's certificate, trusting the federation CA.
    tls: ClientTlsConfig,
    /// Anti-entropy interval within a live session.
    anti_entropy: Duration,
    stop: watch::Receiver<bool>,
    links: Mutex<Vec<(SharedStatus, JoinHandle<()>)>>,
}

/// A link's status, updated by its task and read by `cirfed status`.
type SharedStatus = Arc<Mutex<LinkStatus>>;

impl Links {
    /// No links yet.
    pub fn new(
        node: Arc<Node>,
        scores: Arc<PeerScores>,
        tls: ClientTlsConfig,
        anti_entropy: Duration,
        stop: watch::Receiver<bool>,
    ) -> Self {
        Links { node, scores, tls, anti_entropy, stop, links: Mutex::new(Vec::new()) }
    }

    /// Starts keeping a link to `addr`; false when there already is one.
    pub fn add(&self, addr: &str) -> bool {
        let mut links = self.links.lock().expect("links lock");
        if links.iter().any(|(status, _)| status.lock().expect("status lock").addr == addr) {
            return false;
        }
        let status = Arc::new(Mutex::new(LinkStatus { addr: addr.to_string(), ..LinkStatus::default() }));
        let link = Link {
            node: self.node.clone(),
            scores: self.scores.clone(),
            tls: self.tls.clone(),
            anti_entropy: self.anti_entropy,
            status: status.clone(),
            addr: addr.to_string(),
        };
        links.push((status, tokio::spawn(link.run(self.stop.clone()))));
        true
    }

    /// The state of every link.
    pub fn statuses(&self) -> Vec<LinkStatus> {
        self.links
            .lock()
            .expect("links lock")
            .iter()
            .map(|(status, _)| status.lock().expect("status lock").clone())
            .collect()
    }

    /// Waits for every link to end (after the node's stop signal).
    pub async fn join(&self) {
        let handles: Vec<JoinHandle<()>> = self.links.lock().expect("links lock").drain(..).map(|(_, h)| h).collect();
        for handle in handles {
            let _ = handle.await;
        }
    }
}

/// One peer this node dials.
struct Link {
    node: Arc<Node>,
    scores: Arc<PeerScores>,
    tls: ClientTlsConfig,
    anti_entropy: Duration,
    status: SharedStatus,
    addr: String,
}

impl Link {
    /// Keeps the link up until `shutdown` turns true.
    async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = BACKOFF_MIN;
        loop {
            let session = tokio::select! {
                result = self.session() => result,
                _ = shutdown.wait_for(|stop| *stop) => return,
            };
            self.update(|s| {
                s.connected = false;
                s.since = unix_now();
            });
            match session {
                Ok(()) => backoff = BACKOFF_MIN,
                Err(error) => {
                    tracing::warn!(peer = %self.addr, reason = %error, "peer session ended");
                    self.update(|s| s.last_error = error.to_string());
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    fn update(&self, change: impl FnOnce(&mut LinkStatus)) {
        change(&mut self.status.lock().expect("status lock"));
    }

    async fn connect(&self) -> Result<FederationClient<Channel>, LinkError> {
        let host = self.addr.rsplit_once(':').map_or(self.addr.as_str(), |(host, _)| host).trim_matches(['[', ']']);
        let channel = Endpoint::from_shared(format!("https://{}", self.addr))?
            .tls_config(self.tls.clone().domain_name(host))?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(crate::transport::KEEPALIVE_INTERVAL)
            .keep_alive_timeout(crate::transport::KEEPALIVE_TIMEOUT)
            .keep_alive_while_idle(true)
            .connect()
            .await?;
        Ok(FederationClient::new(channel)
            .max_decoding_message_size(MAX_PEER_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_PEER_MESSAGE_BYTES))
    }

    /// One session: returns when the peer goes away or misbehaves.
    async fn session(&self) -> Result<(), LinkError> {
        let mut client = self.connect().await?;
        let hello = proto::HelloRequest { protocol_version: PROTOCOL_VERSION, limits: Some(super::limits()) };
        let remote = PeerIdentity { member_id: client.hello(hello).await?.into_inner().member_id };
        if self.scores.banned_until(&remote.member_id).is_some() {
            return Err(LinkError::CutOff(remote.member_id));
        }
        tracing::info!(peer = %remote.member_id, addr = %self.addr, "peer session open");
        self.update(|s| {
            s.member_id = remote.member_id.clone();
            s.connected = true;
            s.since = unix_now();
        });
        // Subscribe on both sides before reconciling, so nothing stored meanwhile is missed.
        let mut inbound = client.subscribe(proto::SubscribeRequest {}).await?.into_inner();
        let mut outbound = self.node.subscribe();
        let _live = LivePeer::new(&self.node, &remote.member_id);
        self.anti_entropy(&mut client, &remote).await?;
        let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + self.anti_entropy, self.anti_entropy);
        let own = self.node.own_key();
        loop {
            tokio::select! {
                batch = inbound.message() => {
                    let batch = batch?.ok_or(LinkError::Closed("live"))?;
                    match batch.stem {
                        true => self.relay(batch.envelopes, &remote).await?,
                        false => self.ingest(batch.envelopes, &remote).await.map(|_| ())?,
                    }
                }
                event = outbound.recv() => match event {
                    Ok(event) if event.may_send(&own, &remote.member_id) => {
                        self.push_batch(&mut client, vec![event.envelope.clone()], event.stem_to.is_some()).await?;
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => self.anti_entropy(&mut client, &remote).await?,
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                },
                _ = interval.tick() => self.anti_entropy(&mut client, &remote).await?,
            }
        }
    }

    /// Pushes records; returns how many the peer accepted.
    async fn push(
        &self,
        client: &mut FederationClient<Channel>,
        envelopes: Vec<proto::Envelope>,
    ) -> Result<u32, LinkError> {
        self.push_batch(client, envelopes, false).await
    }

    /// Pushes records, as a stem hop or to be stored and flooded.
    async fn push_batch(
        &self,
        client: &mut FederationClient<Channel>,
        envelopes: Vec<proto::Envelope>,
        stem: bool,
    ) -> Result<u32, LinkError> {
        let count = envelopes.len() as u64;
        let reply = client.push(proto::RecordBatch { envelopes, stem }).await?.into_inner();
        self.update(|s| s.sent += count);
        Ok(reply.accepted)
    }

    /// Stem hops from the peer: passed on or flooded by this node's stem.
    async fn relay(&self, envelopes: Vec<proto::Envelope>, peer: &PeerIdentity) -> Result<(), LinkError> {
        let count = envelopes.len() as u64;
        let (node, scores, remote) = (self.node.clone(), self.scores.clone(), peer.clone());
        tokio::task::spawn_blocking(move || relay_from_peer(&node, &scores, envelopes, &remote))
            .await
            .map_err(|e| LinkError::Interrupted(e.to_string()))?;
        self.update(|s| s.received += count);
        if self.scores.banned_until(&peer.member_id).is_some() {
            return Err(LinkError::CutOff(peer.member_id.clone()));
        }
        Ok(())
    }

    /// Ingests records from the peer; returns how many were accepted.
    async fn ingest(&self, envelopes: Vec<proto::Envelope>, peer: &PeerIdentity) -> Result<u32, LinkError> {
        let count = envelopes.len() as u64;
        let (node, scores, remote) = (self.node.clone(), self.scores.clone(), peer.clone());
        let (accepted, _) = tokio::task::spawn_blocking(move || ingest_from_peer(&node, &scores, envelopes, &remote))
            .await
            .map_err(|e| LinkError::Interrupted(e.to_string()))?;
        self.update(|s| s.received += count);
        if self.scores.banned_until(&peer.member_id).is_some() {
            return Err(LinkError::CutOff(peer.member_id.clone()));
        }
        Ok(accepted)
    }

    /// Reconciles the two shared sets, then fetches what this node lacks and
    /// pushes what the peer lacks; again while a pass makes progress.
    async fn anti_entropy(&self, client: &mut FederationClient<Channel>, peer: &PeerIdentity) -> Result<(), LinkError> {
        for _ in 0..MAX_ANTI_ENTROPY_PASSES {
            if !self.reconcile_once(client, peer).await? {
                break;
            }
        }
        Ok(())
    }

    /// One pass; returns true when it moved records and differences remain
    /// that a further pass may settle.
    async fn reconcile_once(
        &self,
        client: &mut FederationClient<Channel>,
        peer: &PeerIdentity,
    ) -> Result<bool, LinkError> {
        let mut initiator = Initiator::new(self.node.shared_items())?;
        let (messages, receiver) = mpsc::channel(2);
        let first = initiator.initiate()?;
        let mut exchanged = first.len() as u64;
        messages.send(proto::ReconcileMessage { payload: first }).await.ok();
        let mut replies = client.reconcile(ReceiverStream::new(receiver)).await?.into_inner();
        loop {
            let reply = replies.message().await?.ok_or(LinkError::Closed("reconciliation"))?;
            exchanged += reply.payload.len() as u64;
            match initiator.step(&reply.payload)? {
                Some(next) => {
                    exchanged += next.len() as u64;
                    messages
                        .send(proto::ReconcileMessage { payload: next })
                        .await
                        .map_err(|_| LinkError::Closed("reconciliation"))?
                }
                None => break,
            }
        }
        drop(messages);
        self.update(|s| s.reconcile_bytes += exchanged);
        let need = self.missing(initiator.need()).await?;
        let mut moved = 0;
        for ids in need.chunks(MAX_PEER_BATCH_RECORDS) {
            let ids = ids.iter().map(|id| id.0.to_vec()).collect();
            let batch = client.fetch(proto::FetchRequest { ids }).await?.into_inner();
            moved += self.ingest(batch.envelopes, peer).await?;
        }
        for ids in initiator.have().chunks(MAX_PEER_BATCH_RECORDS) {
            let ids: Vec<RecordId> = ids.iter().map(|id| RecordId(*id)).collect();
            let node = self.node.clone();
            let envelopes = tokio::task::spawn_blocking(move || node.shareable_envelopes(&ids))
                .await
                .map_err(|e| LinkError::Interrupted(e.to_string()))?
                .map_err(|e| LinkError::Interrupted(e.to_string()))?;
            if !envelopes.is_empty() {
                moved += self.push(client, envelopes).await?;
            }
        }
        let difference = (need.len() + initiator.have().len()) as u64;
        self.update(|s| {
            s.last_reconciled = unix_now();
            s.last_difference = difference;
        });
        tracing::debug!(peer = %peer.member_id, fetched = need.len(), pushed = initiator.have().len(), "anti-entropy pass done");
        let settled = moved as usize == need.len() + initiator.have().len();
        Ok(moved > 0 && !settled)
    }

    /// The ids in `need` this node does not store yet (some it stores but may
    /// not share, such as a neighbour's AMBER records).
    async fn missing(&self, need: &[[u8; 32]]) -> Result<Vec<RecordId>, LinkError> {
        let ids: Vec<RecordId> = need.iter().map(|id| RecordId(*id)).collect();
        let node = self.node.clone();
        tokio::task::spawn_blocking(move || {
            let stored = node.store().contains_many(&ids).unwrap_or_else(|_| vec![false; ids.len()]);
            ids.into_iter().zip(stored).filter(|(_, stored)| !stored).map(|(id, _)| id).collect()
        })
        .await
        .map_err(|e| LinkError::Interrupted(e.to_string()))
    }
}
