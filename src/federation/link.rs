//! Dialing peers. One session is hello, set reconciliation, fetch and push of
//! the difference, then live records both ways (the peer's stream in, this
//! node's new records out) with anti-entropy on an interval. A session that
//! ends is retried with exponential backoff, and every reconnect reconciles
//! again, so downtime and partitions heal without a full transfer.

use super::dial::{dial, Dialed};
use super::inbound::InboundPeers;
use super::peer::PeerIdentity;
use super::reconcile::{Initiator, ReconcileError};
use super::scoring::PeerScores;
use super::service::{ingest_from_peer, relay_from_peer, LivePeer};
use super::{MAX_PEER_BATCH_BYTES, MAX_PEER_BATCH_RECORDS, PROTOCOL_VERSION};
use crate::node::{unix_now, Node};
use crate::proto::{self, federation_client::FederationClient};
use crate::record::RecordId;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

/// First wait before redialing a peer that went away.
pub const BACKOFF_MIN: Duration = Duration::from_millis(200);
/// Longest wait between redials.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Reconciliation passes in one anti-entropy run. A record can be refused in
/// one pass because its author's member card comes in a later batch; the next
/// pass fetches it again, now that the card is known.
pub const MAX_ANTI_ENTROPY_PASSES: usize = 4;

/// Why a session with a peer ended.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// With the causes spelled out: tonic's own message is only "transport
    /// error", and an operator needs to read "invalid peer certificate: Revoked".
    #[error("cannot connect: {0}")]
    Connect(String),
    /// A failed call, with its causes (a refused reconnect, say).
    #[error("peer answered: {0}")]
    Status(String),
    #[error("reconciliation failed: {0}")]
    Reconcile(#[from] ReconcileError),
    #[error("peer closed the {0} stream")]
    Closed(&'static str),
    #[error("node work interrupted: {0}")]
    Interrupted(String),
    #[error("peer {0} is cut off for sending invalid records")]
    CutOff(String),
    #[error("peer's certificate names {certified}, but it says it is {claimed}")]
    Impostor { certified: String, claimed: String },
    #[error("peer speaks protocol version {0}, this node version {PROTOCOL_VERSION}")]
    Version(u32),
    #[error("member {member_id} was revoked by the federation authority at {at}")]
    Revoked { member_id: String, at: i64 },
    /// The connection broke before the peer answered: no answer to report.
    #[error("connection reset during {during}: {cause}")]
    Reset { during: &'static str, cause: String },
}

impl LinkError {
    /// A failed call: the peer's answer, or a connection that broke before
    /// one came (tonic makes those statuses itself, with the transport error
    /// as their source; a peer's answer has none).
    fn from_call(during: &'static str, status: tonic::Status) -> LinkError {
        match std::error::Error::source(&status) {
            Some(_) => LinkError::Reset { during, cause: with_causes(&status) },
            None => LinkError::from(status),
        }
    }
}

impl From<tonic::transport::Error> for LinkError {
    fn from(error: tonic::transport::Error) -> Self {
        LinkError::Connect(with_causes(&error))
    }
}

impl From<tonic::Status> for LinkError {
    fn from(status: tonic::Status) -> Self {
        LinkError::Status(with_causes(&status))
    }
}

/// An error with its causes spelled out, as an operator needs to read them,
/// each once: layers often repeat their source's message in their own.
pub(crate) fn with_causes(error: &dyn std::error::Error) -> String {
    let mut reason = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !text.is_empty() && !reason.contains(&text) {
            reason.push_str(": ");
            reason.push_str(&text);
        }
        source = cause.source();
    }
    reason
}

/// What `cirfed status` shows of one peer, dialed or dialing in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkStatus {
    /// host:port dialed, or the address the peer dialed in from.
    pub addr: String,
    /// This node dials the peer; false for a peer that dialed in, whose
    /// reconciliations the peer drives (and measures).
    pub dialed: bool,
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
    /// When the authority revoked the peer (unix seconds, 0: not revoked):
    /// its sessions are refused and this node no longer dials it.
    pub revoked_at: i64,
}

/// The links a node keeps, one per peer it dials; more can be added at run time.
pub struct Links {
    node: Arc<Node>,
    scores: Arc<PeerScores>,
    /// Peers that dialed this node, for `statuses`.
    inbound: Arc<InboundPeers>,
    settings: LinkSettings,
    stop: watch::Receiver<bool>,
    links: Mutex<Vec<(SharedStatus, JoinHandle<()>)>>,
}

/// The TLS configuration links dial with, in force now.
pub type PeerTls = watch::Receiver<Arc<rustls::ClientConfig>>;

/// What every link of a node dials with.
#[derive(Clone)]
pub struct LinkSettings {
    /// Mutual TLS with this node's certificate, trusting the federation CA
    /// and honouring the operator's CRL; replaced when a new CRL loads.
    pub tls: PeerTls,
    /// Anti-entropy interval within a live session.
    pub anti_entropy: Duration,
    /// Records per second this node takes from a peer's live stream
    /// (`federation.max_peer_records_per_second`, as for pushes).
    pub inbound_rate: u32,
}

/// A link's status, updated by its task and read by `cirfed status`.
type SharedStatus = Arc<Mutex<LinkStatus>>;

impl Links {
    /// No links yet.
    pub fn new(
        node: Arc<Node>,
        scores: Arc<PeerScores>,
        inbound: Arc<InboundPeers>,
        settings: LinkSettings,
        stop: watch::Receiver<bool>,
    ) -> Self {
        Links { node, scores, inbound, settings, stop, links: Mutex::new(Vec::new()) }
    }

    /// Starts keeping a link to `addr`; false when there already is one.
    pub fn add(&self, addr: &str) -> bool {
        let mut links = self.links.lock().expect("links lock");
        if links.iter().any(|(status, _)| status.lock().expect("status lock").addr == addr) {
            return false;
        }
        let status = Arc::new(Mutex::new(LinkStatus { addr: addr.to_string(), dialed: true, ..LinkStatus::default() }));
        let link = Link {
            node: self.node.clone(),
            scores: self.scores.clone(),
            settings: self.settings.clone(),
            status: status.clone(),
            addr: addr.to_string(),
        };
        links.push((status, tokio::spawn(link.run(self.stop.clone()))));
        true
    }

    /// The state of every link, then of every peer that dialed in, each
    /// marked with its revocation time if the authority revoked it.
    pub fn statuses(&self) -> Vec<LinkStatus> {
        let links = self.links.lock().expect("links lock");
        let dialed = links.iter().map(|(status, _)| status.lock().expect("status lock").clone());
        let mut statuses: Vec<LinkStatus> = dialed.chain(self.inbound.statuses()).collect();
        for status in statuses.iter_mut().filter(|s| !s.member_id.is_empty()) {
            status.revoked_at = self.node.member_revoked(&status.member_id).unwrap_or(0);
        }
        statuses
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
    settings: LinkSettings,
    status: SharedStatus,
    addr: String,
}

/// One open session: the connection, who is on the other end, and how fast
/// it may be sent records.
struct Session {
    client: FederationClient<Channel>,
    remote: PeerIdentity,
    /// Paces pushes to the rate the peer announced, so catch-up never trips
    /// its limit.
    outbound: Pacer,
    /// Paces the peer's live stream to this node's own limit: while it waits,
    /// HTTP/2 flow control holds the peer back.
    inbound: Pacer,
    /// Records per push: the peer's batch limit, and no more than it takes in a second.
    batch_records: usize,
}

impl Link {
    /// Keeps the link up until `shutdown` turns true.
    async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = BACKOFF_MIN;
        loop {
            if let Some(at) = self.revoked_peer() {
                tracing::warn!(peer = %self.addr, revoked_at = at, "peer was revoked: no longer dialing it");
                return self.update(|s| s.revoked_at = at);
            }
            let session_started = unix_now();
            let session = tokio::select! {
                result = self.session() => result,
                _ = shutdown.wait_for(|stop| *stop) => return,
            };
            // A session that got as far as a reconciliation starts the
            // backoff afresh: the peer was up and working, so this is a new
            // outage. One that fails before (hello, then a refusal) keeps
            // backing off, or a broken peer would be redialed every 200 ms.
            let worked = {
                let mut status = self.status.lock().expect("status lock");
                status.connected = false;
                status.since = unix_now();
                status.last_reconciled >= session_started
            };
            if worked {
                backoff = BACKOFF_MIN;
            }
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

    /// When the member at the other end was revoked, once it has said who it is.
    fn revoked_peer(&self) -> Option<i64> {
        let member_id = self.status.lock().expect("status lock").member_id.clone();
        (!member_id.is_empty()).then(|| self.node.member_revoked(&member_id)).flatten()
    }

    /// Dials and says hello. The peer is the member its certificate names; a
    /// peer whose hello claims another name is refused.
    async fn open(&self) -> Result<Session, LinkError> {
        let tls = self.settings.tls.borrow().clone();
        let Dialed { mut client, member_id } = dial(&self.addr, tls).await?;
        let hello = proto::HelloRequest {
            protocol_version: PROTOCOL_VERSION,
            limits: Some(super::limits(self.settings.inbound_rate)),
        };
        let reply = client.hello(hello).await.map_err(|status| LinkError::from_call("hello", status))?.into_inner();
        if reply.protocol_version != PROTOCOL_VERSION {
            return Err(LinkError::Version(reply.protocol_version));
        }
        if reply.member_id != member_id {
            return Err(LinkError::Impostor { certified: member_id, claimed: reply.member_id });
        }
        if let Some(at) = self.node.member_revoked(&member_id) {
            self.update(|s| s.member_id = member_id.clone());
            return Err(LinkError::Revoked { member_id, at });
        }
        if self.scores.banned_until(&member_id).is_some() {
            return Err(LinkError::CutOff(member_id));
        }
        let limits = reply.limits.unwrap_or_default();
        let peer_rate = limits.max_records_per_second;
        let mut batch_records = MAX_PEER_BATCH_RECORDS;
        for limit in [limits.max_batch_records, peer_rate] {
            if limit > 0 {
                batch_records = batch_records.min(limit as usize);
            }
        }
        Ok(Session {
            client,
            remote: PeerIdentity { member_id },
            outbound: Pacer::new(peer_rate),
            inbound: Pacer::new(self.settings.inbound_rate),
            batch_records,
        })
    }

    /// One session: returns when the peer goes away or misbehaves.
    async fn session(&self) -> Result<(), LinkError> {
        let mut session = self.open().await?;
        let remote = session.remote.clone();
        tracing::info!(peer = %remote.member_id, addr = %self.addr, "peer session open");
        self.update(|s| {
            s.member_id = remote.member_id.clone();
            s.connected = true;
            s.since = unix_now();
            // The error was the last session's: this one works.
            s.last_error.clear();
        });
        // Subscribe on both sides before reconciling, so nothing stored meanwhile is missed.
        let mut inbound = session.client.subscribe(proto::SubscribeRequest {}).await?.into_inner();
        let mut outbound = self.node.subscribe();
        let _live = LivePeer::new(&self.node, &remote.member_id);
        self.anti_entropy(&mut session).await?;
        let mut interval = tokio::time::interval_at(
            tokio::time::Instant::now() + self.settings.anti_entropy,
            self.settings.anti_entropy,
        );
        let own = self.node.own_key();
        // A revocation ends the session at once, in both directions.
        let revoked = super::service::revoked(self.node.clone(), remote.member_id.clone());
        tokio::pin!(revoked);
        loop {
            tokio::select! {
                _ = &mut revoked => {
                    let at = self.node.member_revoked(&remote.member_id).unwrap_or_default();
                    return Err(LinkError::Revoked { member_id: remote.member_id.clone(), at });
                }
                batch = inbound.message() => {
                    let batch = batch?.ok_or(LinkError::Closed("live"))?;
                    session.inbound.wait(batch.envelopes.len()).await;
                    match batch.stem {
                        true => self.relay(batch.envelopes, &remote).await?,
                        false => self.ingest(batch.envelopes, &remote).await.map(|_| ())?,
                    }
                }
                event = outbound.recv() => match event {
                    // Records stored after a revocation are announced after the roster knows of it.
                    Ok(_) if self.node.member_revoked(&remote.member_id).is_some() => {}
                    Ok(event) if event.may_send(&own, &remote.member_id) => {
                        self.push(&mut session, vec![event.envelope.clone()], event.stem_to.is_some()).await?;
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => self.anti_entropy(&mut session).await?,
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                },
                _ = interval.tick() => self.anti_entropy(&mut session).await?,
            }
        }
    }

    /// Pushes records, as a stem hop or to be stored and flooded; returns how
    /// many the peer accepted.
    async fn push(&self, session: &mut Session, envelopes: Vec<proto::Envelope>, stem: bool) -> Result<u32, LinkError> {
        let count = envelopes.len();
        session.outbound.wait(count).await;
        // Checked at every push: a revocation may arrive mid-reconciliation.
        if let Some(at) = self.node.member_revoked(&session.remote.member_id) {
            return Err(LinkError::Revoked { member_id: session.remote.member_id.clone(), at });
        }
        let batch = proto::RecordBatch { envelopes, stem, served: 0 };
        let reply = session.client.push(batch).await?.into_inner();
        self.update(|s| s.sent += count as u64);
        Ok(reply.accepted)
    }

    /// Stem hops from the peer: passed on or flooded by this node's stem.
    async fn relay(&self, envelopes: Vec<proto::Envelope>, peer: &PeerIdentity) -> Result<(), LinkError> {
        let count = envelopes.len() as u64;
        let (node, scores, remote) = (self.node.clone(), self.scores.clone(), peer.clone());
        blocking(move || relay_from_peer(&node, &scores, envelopes, &remote)).await?;
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
        let (accepted, _) = blocking(move || ingest_from_peer(&node, &scores, envelopes, &remote)).await?;
        self.update(|s| s.received += count);
        if self.scores.banned_until(&peer.member_id).is_some() {
            return Err(LinkError::CutOff(peer.member_id.clone()));
        }
        Ok(accepted)
    }

    /// Reconciles the two shared sets, then fetches what this node lacks and
    /// pushes what the peer lacks; again while a pass makes progress.
    async fn anti_entropy(&self, session: &mut Session) -> Result<(), LinkError> {
        for _ in 0..MAX_ANTI_ENTROPY_PASSES {
            if !self.reconcile_once(session).await? {
                break;
            }
        }
        Ok(())
    }

    /// One pass; returns true when it moved records and differences remain
    /// that a further pass may settle.
    async fn reconcile_once(&self, session: &mut Session) -> Result<bool, LinkError> {
        let (need, have) = self.reconcile(session).await?;
        let need = self.missing(need).await?;
        let fetched = self.fetch(session, &need).await?;
        let pushed = self.push_stored(session, &have).await?;
        let difference = need.len() + have.len();
        self.update(|s| {
            s.last_reconciled = unix_now();
            s.last_difference = difference as u64;
        });
        tracing::debug!(peer = %session.remote.member_id, fetched = need.len(), pushed = have.len(), "anti-entropy pass done");
        let moved = (fetched + pushed) as usize;
        Ok(moved > 0 && moved != difference)
    }

    /// Runs the negentropy exchange; returns (ids to fetch, ids to push). The
    /// set is sorted and fingerprinted off the async workers: at a million
    /// records that is tens of milliseconds.
    async fn reconcile(&self, session: &mut Session) -> Result<(Vec<RecordId>, Vec<RecordId>), LinkError> {
        let (node, peer) = (self.node.clone(), session.remote.member_id.clone());
        let (mut initiator, first) = blocking(move || {
            let mut initiator = Initiator::new(node.shared_items(&peer))?;
            let first = initiator.initiate()?;
            Ok::<_, ReconcileError>((initiator, first))
        })
        .await??;
        let (messages, receiver) = mpsc::channel(2);
        let mut exchanged = first.len() as u64;
        messages.send(proto::ReconcileMessage { payload: first }).await.ok();
        let mut replies = session.client.reconcile(ReceiverStream::new(receiver)).await?.into_inner();
        loop {
            let reply = replies.message().await?.ok_or(LinkError::Closed("reconciliation"))?;
            exchanged += reply.payload.len() as u64;
            let (back, next) = blocking(move || {
                let next = initiator.step(&reply.payload);
                (initiator, next)
            })
            .await?;
            initiator = back;
            let Some(next) = next? else { break };
            exchanged += next.len() as u64;
            messages
                .send(proto::ReconcileMessage { payload: next })
                .await
                .map_err(|_| LinkError::Closed("reconciliation"))?;
        }
        // End the request stream, then read the responder's end, so the
        // exchange closes cleanly instead of being reset mid-stream.
        drop(messages);
        while replies.message().await?.is_some() {}
        self.update(|s| s.reconcile_bytes += exchanged);
        let ids = |ids: &[[u8; 32]]| ids.iter().map(|id| RecordId(*id)).collect::<Vec<_>>();
        Ok((ids(initiator.need()), ids(initiator.have())))
    }

    /// Fetches `ids` from the peer in batches it cuts to its byte limit;
    /// returns how many records were accepted.
    async fn fetch(&self, session: &mut Session, ids: &[RecordId]) -> Result<u32, LinkError> {
        let (mut accepted, mut rest) = (0, ids);
        while !rest.is_empty() {
            let asked = &rest[..rest.len().min(MAX_PEER_BATCH_RECORDS)];
            let request = proto::FetchRequest { ids: asked.iter().map(|id| id.0.to_vec()).collect() };
            let batch = session.client.fetch(request).await?.into_inner();
            // A reply covers a prefix of what was asked; zero means all of it.
            let served = match batch.served as usize {
                0 => asked.len(),
                served => served.min(asked.len()),
            };
            accepted += self.ingest(batch.envelopes, &session.remote).await?;
            rest = &rest[served..];
        }
        Ok(accepted)
    }

    /// Pushes the stored records `ids` that may go to the peer, in batches
    /// within its count and this node's byte limit; returns how many it accepted.
    async fn push_stored(&self, session: &mut Session, ids: &[RecordId]) -> Result<u32, LinkError> {
        let (mut accepted, mut rest) = (0, ids);
        while !rest.is_empty() {
            let asked = rest[..rest.len().min(session.batch_records)].to_vec();
            let node = self.node.clone();
            let (envelopes, served) =
                blocking(move || node.shareable_envelopes(&asked, MAX_PEER_BATCH_BYTES)).await?.map_err(interrupted)?;
            if !envelopes.is_empty() {
                accepted += self.push(session, envelopes, false).await?;
            }
            rest = &rest[served.max(1)..];
        }
        Ok(accepted)
    }

    /// The ids in `need` this node does not store yet (some it stores but may
    /// not share, such as a neighbour's AMBER records).
    async fn missing(&self, ids: Vec<RecordId>) -> Result<Vec<RecordId>, LinkError> {
        let node = self.node.clone();
        blocking(move || {
            let stored = node.store().contains_many(&ids).unwrap_or_else(|_| vec![false; ids.len()]);
            ids.into_iter().zip(stored).filter(|(_, stored)| !stored).map(|(id, _)| id).collect()
        })
        .await
    }
}

/// Runs store and CPU work off the async workers.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, LinkError> {
    tokio::task::spawn_blocking(work).await.map_err(interrupted)
}

fn interrupted(error: impl std::fmt::Display) -> LinkError {
    LinkError::Interrupted(error.to_string())
}

/// Spaces out records to stay under a rate: each batch reserves its records,
/// and waits until the rate has paid for them. It starts empty, not with a
/// burst: the peer's bucket may still be low from the last session. Zero
/// means no limit.
struct Pacer {
    /// Records per second; slightly under the limit, so that the other
    /// side's clock never sees a burst.
    rate: f64,
    /// Records available now; negative while waiting for a reservation.
    balance: f64,
    last: tokio::time::Instant,
}

/// The share of a peer's announced rate a link uses.
const PACING_MARGIN: f64 = 0.9;

impl Pacer {
    fn new(per_second: u32) -> Self {
        let rate = f64::from(per_second) * PACING_MARGIN;
        Pacer { rate, balance: 0.0, last: tokio::time::Instant::now() }
    }

    /// Waits until `records` may go.
    async fn wait(&mut self, records: usize) {
        let delay = self.reserve(records, tokio::time::Instant::now());
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }

    /// Reserves `records` at `now`; returns how long until they may go.
    fn reserve(&mut self, records: usize, now: tokio::time::Instant) -> Duration {
        if self.rate <= 0.0 {
            return Duration::ZERO;
        }
        let earned = now.saturating_duration_since(self.last).as_secs_f64() * self.rate;
        self.balance = (self.balance + earned).min(self.rate) - records as f64;
        self.last = now;
        Duration::from_secs_f64((-self.balance / self.rate).max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pacer_spaces_records_to_its_rate() {
        let mut pacer = Pacer::new(1_000);
        let start = pacer.last;
        let waits = |d: Duration| d.as_secs_f64();
        assert!((0.49..0.51).contains(&waits(pacer.reserve(450, start))), "450 at 900/s");
        assert!((0.99..1.01).contains(&waits(pacer.reserve(450, start))), "900 in all");
        let later = start + Duration::from_secs(3);
        assert_eq!(pacer.reserve(900, later), Duration::ZERO, "paid for by the quiet seconds since");
        assert!(pacer.reserve(1, later) > Duration::ZERO, "but no burst beyond one second's worth");
    }

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);
    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    #[test]
    fn each_cause_is_said_once() {
        let refused = Layer("Connection refused (os error 111)", None);
        let chain = Layer(
            "transport error",
            Some(Box::new(Layer(
                "tcp connect error",
                Some(Box::new(Layer("tcp connect error", Some(Box::new(refused))))),
            ))),
        );
        assert_eq!(with_causes(&chain), "transport error: tcp connect error: Connection refused (os error 111)");
    }

    #[test]
    fn a_call_that_broke_says_reset_and_a_peer_answer_says_answered() {
        let broken = tonic::Status::from_error(Box::new(Layer("connection reset", None)));
        let error = LinkError::from_call("hello", broken);
        assert!(error.to_string().starts_with("connection reset during hello: "), "{error}");
        let answered = LinkError::from_call("hello", tonic::Status::permission_denied("revoked"));
        assert!(error_is_answer(&answered), "{answered}");
    }

    fn error_is_answer(error: &LinkError) -> bool {
        error.to_string().starts_with("peer answered: ")
    }

    #[test]
    fn a_pacer_without_a_rate_never_waits() {
        let mut pacer = Pacer::new(0);
        assert_eq!(pacer.reserve(1_000_000, pacer.last), Duration::ZERO);
    }
}
