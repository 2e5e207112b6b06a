//! The node core: one ingest pipeline for every record a node stores, whether
//! published locally, imported from a file, or received from a peer, plus the
//! read paths (get, list, lookup, status) the APIs serve.

mod feed;
mod identity;
mod lookup;
mod publish;
mod read;
mod roster;
mod sharing;
pub mod stem;
mod trust;

pub(crate) use identity::Issuer;
pub use identity::NodeIdentity;
pub use lookup::{Finding, IndicatorMatch, Summary, MAX_LOOKUP_BATCH, MAX_MATCHES_PER_VALUE};
pub use publish::{Prepared, Published};
pub use read::RecordView;
pub use roster::Roster;
pub use sharing::{item, shareable, Audience, Item, SharedSet, StoredEvent};
pub use trust::{TransportTrust, TrustNews};

use crate::accept::AcceptPolicy;
use crate::cir::{SightingType, Tlp};
use crate::config::PublishSection;
use crate::decay::SightingBook;
use crate::lookup::{Engine, Entry};
use crate::normalize::ObservableType;
use crate::proto::{record::Body, Envelope, Indicator, Record};
use crate::record::{self, RecordError, RecordId, RecordKind, Verified};
use crate::store::{Inserted, Store, StoreError, StoredRecord};
use prost::Message;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};
use stem::{Stem, StemSettings};
use tokio::sync::{broadcast, watch};

/// Most drafts or envelopes in one publish or import request.
pub const MAX_BATCH_RECORDS: usize = 10_000;
/// Most records returned by one list page.
pub const MAX_LIST_LIMIT: usize = 1_000;
/// Most envelope bytes in one list page (at least one record goes): a page
/// of large lessons stays under a stock gRPC client's 4 MiB message limit.
pub const MAX_LIST_PAGE_BYTES: usize = 3 << 20;
/// Batches smaller than this are sealed and validated on the calling thread:
/// spawning costs more than it saves.
const PARALLEL_MIN: usize = 256;
/// Records read from the store per step while rebuilding the engine.
const REBUILD_CHUNK: usize = 4_096;
/// The order kinds are read in at start-up: membership before the records
/// whose authors it vouches for.
const REBUILD_ORDER: [RecordKind; 6] = [
    RecordKind::MemberCard,
    RecordKind::MemberRevocation,
    RecordKind::Indicator,
    RecordKind::Retraction,
    RecordKind::Sighting,
    RecordKind::Lesson,
];

/// Node-level failures; record and store failures pass through unchanged.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("only the author of {target} or the federation authority may {action} it")]
    NotAuthor { target: RecordId, action: &'static str },
    #[error("no record {0}")]
    NotFound(RecordId),
    #[error("{count} records in one request, over the limit of {max}")]
    BatchTooLarge { count: usize, max: usize },
    #[error("draft has no body")]
    EmptyDraft,
    #[error("store write failed: {0}")]
    Write(String),
    #[error("TLP:{tlp} record refused: {reason}")]
    TlpViolation { tlp: Tlp, reason: String },
    #[error(transparent)]
    Scrub(#[from] crate::anonymize::Refused),
    #[error("{value} is on warninglist '{list}' of well-known benign values: publishing it would only cause false positives")]
    Warninglisted { list: String, value: String },
    #[error("a renewed identity must keep the member id and federation: {0}")]
    IdentityChanged(String),
}

impl NodeError {
    /// A stable machine-readable name, for bulk reports.
    pub fn code(&self) -> &'static str {
        match self {
            NodeError::Record(e) => e.code(),
            NodeError::Store(_) => "store",
            NodeError::NotAuthor { .. } => "not_author",
            NodeError::NotFound(_) => "not_found",
            NodeError::BatchTooLarge { .. } => "batch_too_large",
            NodeError::EmptyDraft => "empty_draft",
            NodeError::Write(_) => "store",
            NodeError::TlpViolation { .. } => "tlp_violation",
            NodeError::Scrub(_) => "refused_by_scrub_policy",
            NodeError::Warninglisted { .. } => "warninglisted",
            NodeError::IdentityChanged(_) => "identity_changed",
        }
    }
}

/// Counts for `cirfed status`.
#[derive(Debug, Clone)]
pub struct NodeStatus {
    /// Pseudonymous member id.
    pub member_id: String,
    /// Hex signing key.
    pub signing_key: String,
    /// Unix seconds.
    pub started_at: i64,
    /// Records per kind.
    pub kinds: Vec<(RecordKind, u64)>,
    /// Indicators indexed and not retracted.
    pub active_indicators: u64,
    /// Highest local sequence number.
    pub last_seq: u64,
    /// The store's directory.
    pub data_dir: String,
}

/// A running node's state.
pub struct Node {
    store: Store,
    engine: RwLock<Engine>,
    roster: RwLock<Roster>,
    /// Who signs, and the scrub policy every published record goes through
    /// before signing (with the current sharing key): swapped together when
    /// a renewal rotates the signing or sharing keys.
    issuer: RwLock<Issuer>,
    publish: PublishSection,
    /// What lookups report, and the warninglists.
    accept: AcceptPolicy,
    started_at: i64,
    /// Records this node may send to its peers, for set reconciliation.
    shared: RwLock<SharedSet>,
    /// Newly stored records, for gossip to live peers.
    events: broadcast::Sender<Arc<StoredEvent>>,
    /// Sightings per indicator id, summed, so lookups never read them from disk.
    sightings: RwLock<SightingBook>,
    /// Origin hiding: records on their stem, and the live peers to pass them to.
    stem: Mutex<Stem>,
    /// Revocations as they arrive, for the peer sessions and TLS that must
    /// act on them at once.
    trust: watch::Sender<TrustNews>,
    /// The transport's standing (CRL in force, certificate expiry), as the
    /// server's TLS keeper last saw it, for status.
    transport: Mutex<TransportTrust>,
}

/// Stored-record events buffered for a slow peer; one that falls further
/// behind catches up by reconciliation instead.
pub const EVENT_BUFFER: usize = 8_192;

/// Current unix time in seconds.
pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

impl Node {
    /// Opens the node over its store, rebuilding the roster and the match
    /// engine from what is stored, and imports the node's own member card.
    pub fn open(
        store: Store,
        identity: NodeIdentity,
        publish: PublishSection,
        accept: AcceptPolicy,
        card: Envelope,
    ) -> Result<Node, NodeError> {
        let mut engine = Engine::new();
        engine.set_hash_keys(identity.sharing.all().iter().map(|k| k.key).collect());
        let node = Node {
            store,
            engine: RwLock::new(engine),
            roster: RwLock::new(Roster::new(identity.authority)),
            issuer: RwLock::new(Issuer::new(identity, &publish.scrub)),
            publish,
            accept,
            started_at: unix_now(),
            shared: RwLock::new(SharedSet::default()),
            events: broadcast::channel(EVENT_BUFFER).0,
            sightings: RwLock::new(SightingBook::default()),
            stem: Mutex::new(Stem::new(StemSettings::disabled())),
            trust: watch::channel(TrustNews::default()).0,
            transport: Mutex::new(TransportTrust::default()),
        };
        node.rebuild()?;
        if let Some(Err(e)) = node.import(vec![card]).into_iter().next() {
            return Err(e);
        }
        Ok(node)
    }

    /// The store under this node.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Rebuilds the roster, match engine, sightings and shared set in one
    /// pass over the store. Cards and revocations are read first, so that
    /// revocations apply to every indicator read after them.
    fn rebuild(&self) -> Result<(), NodeError> {
        let mut shared = SharedSet::default();
        let mut roster = self.roster.write().expect("roster lock");
        let mut engine = self.engine.write().expect("engine lock");
        let mut sightings = self.sightings.write().expect("sightings lock");
        let mut withdrawn = Vec::new();
        let mut crl = None;
        for kind in REBUILD_ORDER {
            self.for_each_stored(kind, |stored, record| {
                shared.add(&stored.id, &record);
                match &record.body {
                    Some(Body::MemberCard(card)) => roster.add_card(card),
                    Some(Body::MemberRevocation(revocation)) => {
                        roster.revoke(revocation);
                        if !revocation.crl.is_empty() {
                            crl = Some(Arc::new(revocation.crl.clone()));
                        }
                    }
                    Some(Body::Indicator(indicator)) => {
                        let entry = entry_of(stored.id, &record, indicator, &mut engine);
                        engine.add(entry, &indicator.value);
                        if let Some(old) = RecordId::from_slice(&indicator.supersedes) {
                            withdrawn.push((old, record.author.clone()));
                        }
                    }
                    Some(Body::Retraction(r)) => {
                        if let Some(target) = RecordId::from_slice(&r.target_id) {
                            withdrawn.push((target, record.author.clone()));
                        }
                    }
                    Some(Body::Sighting(_)) => add_sighting(&mut sightings, &record, &roster),
                    Some(Body::Lesson(_)) | None => {}
                }
            })?;
        }
        for (target, author) in withdrawn {
            if self.authored_by(&target, &author)? {
                engine.retract(&target);
            }
        }
        for (key, revoked_at) in roster.revocations() {
            engine.revoke_author(&key, revoked_at);
        }
        *self.shared.write().expect("shared lock") = shared;
        self.trust.send_modify(|news| news.crl = crl);
        Ok(())
    }

    /// What status shows of the transport's trust.
    pub fn transport_trust(&self) -> TransportTrust {
        self.transport.lock().expect("transport lock").clone()
    }

    /// Changes what status shows of the transport's trust.
    pub fn update_transport_trust(&self, change: impl FnOnce(&mut TransportTrust)) {
        change(&mut self.transport.lock().expect("transport lock"));
    }

    /// Revocations and CRLs as they arrive.
    pub fn watch_trust(&self) -> watch::Receiver<TrustNews> {
        self.trust.subscribe()
    }

    /// When the member `member_id` was revoked, if it was: its peer sessions
    /// are refused from the moment the revocation is stored.
    pub fn member_revoked(&self, member_id: &str) -> Option<i64> {
        self.roster.read().expect("roster lock").member_revoked(member_id)
    }

    /// This node's signing key.
    pub fn own_key(&self) -> [u8; 32] {
        self.identity().signer.public_key().to_bytes()
    }

    /// The records this node reconciles with the peer `member_id` now, as
    /// reconciliation items.
    pub fn shared_items(&self, member_id: &str) -> Vec<Item> {
        let roster = self.roster.read().expect("roster lock");
        let revoked = roster.revocations().into_iter().collect();
        let audience =
            Audience { own: self.own_key(), peer: roster.key_of(member_id), revoked: &revoked, now: unix_now() };
        drop(roster);
        self.shared.read().expect("shared lock").items_for(&audience)
    }

    /// Records stored from now on, as they are stored.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<StoredEvent>> {
        self.events.subscribe()
    }

    /// The envelopes of `ids` that this node may send to its peers, up to
    /// `max_bytes` of them (at least one), and how many of `ids` that covers:
    /// the caller asks again for the rest.
    pub fn shareable_envelopes(&self, ids: &[RecordId], max_bytes: usize) -> Result<(Vec<Envelope>, usize), NodeError> {
        let own = self.own_key();
        let (mut envelopes, mut bytes, mut next) = (Vec::with_capacity(ids.len()), 0, 0);
        let stem = self.stem.lock().expect("stem lock");
        for stored in self.store.get_many(ids)? {
            // The store answers in the order asked, skipping ids it lacks.
            let at = next + ids[next..].iter().position(|id| *id == stored.id).expect("an id that was asked for");
            next = at + 1;
            if !record_shareable(&decode_record(&stored)?, &own) || stem.embargoed(&stored.id) {
                continue;
            }
            let size = stored.envelope.encoded_len();
            if !envelopes.is_empty() && bytes + size > max_bytes {
                return Ok((envelopes, at));
            }
            bytes += size;
            envelopes.push(stored.envelope);
        }
        Ok((envelopes, ids.len()))
    }

    fn for_each_stored(&self, kind: RecordKind, mut visit: impl FnMut(&StoredRecord, Record)) -> Result<(), NodeError> {
        let mut after = 0;
        loop {
            let page = self.store.list(Some(kind), after, REBUILD_CHUNK)?;
            let Some(last) = page.last() else { return Ok(()) };
            after = last.seq;
            for stored in &page {
                visit(stored, decode_record(stored)?);
            }
        }
    }

    /// True when `target` is stored and was signed by `author` or the
    /// authority signed the retraction.
    fn authored_by(&self, target: &RecordId, author: &[u8]) -> Result<bool, NodeError> {
        if author == self.identity().authority {
            return Ok(true);
        }
        match self.store.get(target)? {
            Some(stored) => Ok(decode_record(&stored)?.author == author),
            None => Ok(false),
        }
    }

    /// Validates and stores records signed elsewhere; one outcome per envelope.
    pub fn import(&self, envelopes: Vec<Envelope>) -> Vec<Result<Inserted, NodeError>> {
        if envelopes.len() > MAX_BATCH_RECORDS {
            return refuse_batch(envelopes.len());
        }
        self.ingest(envelopes, unix_now())
    }

    /// The one ingest pipeline: validate (in parallel), check against what is
    /// stored, store durably, then update the roster, the match engine and
    /// the shared set, and tell live peers.
    pub fn ingest(&self, envelopes: Vec<Envelope>, now: i64) -> Vec<Result<Inserted, NodeError>> {
        self.ingest_from(envelopes, now, None)
    }

    /// [`Node::ingest`] for records received from `source` (a peer's member
    /// id), which must also respect TLP: a peer never sends RED, and sends
    /// AMBER only of its own.
    pub fn ingest_from(
        &self,
        envelopes: Vec<Envelope>,
        now: i64,
        source: Option<&str>,
    ) -> Vec<Result<Inserted, NodeError>> {
        let mut validated = self.validate(envelopes.clone(), now);
        // A card in this batch may vouch for records that came before it.
        let has_card = validated.iter().any(|v| matches!(v, Ok(v) if v.kind == RecordKind::MemberCard));
        if has_card {
            self.apply_membership(validated.iter().flatten());
            for (slot, envelope) in validated.iter_mut().zip(envelopes) {
                if matches!(slot, Err(RecordError::UnknownMember { .. } | RecordError::MemberNotValid { .. })) {
                    *slot = record::validate_envelope(envelope, &*self.roster.read().expect("roster lock"), now);
                }
            }
        }
        let mut outcomes: Vec<Result<Inserted, NodeError>> = Vec::with_capacity(validated.len());
        let mut accepted = Vec::new();
        for result in validated {
            let checked = result
                .map_err(NodeError::from)
                .and_then(|v| self.check_source(&v, source).map(|_| v))
                .and_then(|v| self.check_against_store(&v).map(|_| v));
            match checked {
                Ok(verified) => {
                    outcomes.push(Ok(Inserted { id: verified.id, seq: 0, created: false }));
                    accepted.push(verified);
                }
                Err(e) => outcomes.push(Err(e)),
            }
        }
        let inserted = match self.store.insert(&accepted, now) {
            Ok(inserted) => inserted,
            Err(e) => {
                let reason = e.to_string();
                return outcomes.into_iter().map(|o| o.and_then(|_| Err(NodeError::Write(reason.clone())))).collect();
            }
        };
        self.apply(&accepted, &inserted, source);
        let mut inserted = inserted.into_iter();
        outcomes.into_iter().map(|o| o.map(|_| inserted.next().expect("one per accepted"))).collect()
    }

    fn validate(&self, envelopes: Vec<Envelope>, now: i64) -> Vec<Result<Verified, RecordError>> {
        let roster = self.roster.read().expect("roster lock");
        let roster = &*roster;
        in_parallel(envelopes, |chunk| record::validate_batch(chunk, roster, now))
    }

    /// TLP as a receiver enforces it: what a peer must never have sent.
    fn check_source(&self, verified: &Verified, source: Option<&str>) -> Result<(), NodeError> {
        let Some(peer) = source else { return Ok(()) };
        match verified.tlp {
            Tlp::Red => Err(NodeError::TlpViolation { tlp: Tlp::Red, reason: "RED never leaves its node".into() }),
            Tlp::Amber | Tlp::AmberStrict => {
                let author = self.membership(&verified.author).map(|m| m.member_id);
                if author.as_deref() == Some(peer) {
                    Ok(())
                } else {
                    Err(NodeError::TlpViolation {
                        tlp: verified.tlp,
                        reason: format!("relayed by {peer}, not sent by its author"),
                    })
                }
            }
            Tlp::Clear | Tlp::Green => Ok(()),
        }
    }

    /// Checks that need the store: who may retract or supersede what.
    fn check_against_store(&self, verified: &Verified) -> Result<(), NodeError> {
        let (target, action) = match verified.body() {
            Body::Retraction(r) => (&r.target_id, "retract"),
            Body::Indicator(i) if !i.supersedes.is_empty() => (&i.supersedes, "supersede"),
            _ => return Ok(()),
        };
        let target = RecordId::from_slice(target).expect("validated ids are 32 bytes");
        // A retraction may arrive before its target; it is honoured only if
        // the authors match once the target arrives (see `apply_indicator`).
        if self.store.get(&target)?.is_some() && !self.authored_by(&target, &verified.author)? {
            return Err(NodeError::NotAuthor { target, action });
        }
        Ok(())
    }

    fn apply_membership<'a>(&self, records: impl Iterator<Item = &'a Verified>) {
        let mut roster = self.roster.write().expect("roster lock");
        for verified in records {
            match verified.body() {
                Body::MemberCard(card) => roster.add_card(card),
                Body::MemberRevocation(revocation) => roster.revoke(revocation),
                _ => {}
            }
        }
    }

    /// Effects of newly stored records on the roster and the engine.
    fn apply(&self, accepted: &[Verified], inserted: &[Inserted], source: Option<&str>) {
        let created: Vec<&Verified> =
            accepted.iter().zip(inserted).filter(|(_, i)| i.created).map(|(v, _)| v).collect();
        self.apply_membership(created.iter().copied());
        let mut engine = self.engine.write().expect("engine lock");
        for verified in &created {
            match verified.body() {
                Body::Indicator(indicator) => self.apply_indicator(&mut engine, verified, indicator),
                Body::Retraction(r) => {
                    engine.retract(&RecordId::from_slice(&r.target_id).expect("validated"));
                }
                Body::MemberRevocation(r) => {
                    if let Ok(key) = <[u8; 32]>::try_from(r.signing_key.as_slice()) {
                        engine.revoke_author(&key, r.revoked_at);
                    }
                }
                Body::Sighting(_) => {
                    // Locks in the order lookups take them: roster, then sightings.
                    let roster = self.roster.read().expect("roster lock");
                    add_sighting(&mut self.sightings.write().expect("sightings lock"), &verified.record, &roster)
                }
                _ => {}
            }
        }
        drop(engine);
        if created.iter().any(|v| v.kind == RecordKind::MemberRevocation) {
            if let Err(error) = self.recount_sightings() {
                tracing::error!(reason = %error, "cannot recount sightings after a revocation");
            }
            self.tell_revocations(&created);
        }
        let delayed = match source {
            Some(peer) => self.seen_flooded(accepted, peer),
            None => Vec::new(),
        };
        self.announce(&created, source, &delayed);
    }

    /// Records that arrived flooded from `peer` end their stems here. Those
    /// this node held in a stem pass on to its other peers after a random
    /// delay (returned, so that `announce` does not send them at once); its
    /// own ones leave their embargo and join the shared set.
    fn seen_flooded(&self, accepted: &[Verified], peer: &str) -> Vec<RecordId> {
        let mut stem = self.stem.lock().expect("stem lock");
        let (now, mut rng) = (std::time::Instant::now(), rand::thread_rng());
        let (mut delayed, mut released) = (Vec::new(), Vec::new());
        for verified in accepted {
            let Some(own) = stem.flooded(&verified.id) else { continue };
            stem.flooded_back(verified.id, verified.envelope.clone(), peer, now, &mut rng);
            delayed.push(verified.id);
            if own {
                released.push(verified);
            }
        }
        drop(stem);
        let mut shared = self.shared.write().expect("shared lock");
        for verified in released {
            shared.add(&verified.id, &verified.record);
        }
        delayed
    }

    /// Adds newly stored records to the shared set and tells live peers.
    /// This node's own CLEAR and GREEN records start on a stem instead.
    fn announce(&self, created: &[&Verified], source: Option<&str>, delayed: &[RecordId]) {
        let own = self.own_key();
        let mut stem = self.stem.lock().expect("stem lock");
        let enabled = stem.settings().enabled;
        let stemmed =
            |v: &Verified| enabled && source.is_none() && v.author == own && matches!(v.tlp, Tlp::Clear | Tlp::Green);
        let mut rng = rand::thread_rng();
        let now = std::time::Instant::now();
        let mut to_flood: Vec<&Verified> = created
            .iter()
            .copied()
            .filter(|v| !(stemmed(v) && stem.start(v.id, v.envelope.clone(), now, &mut rng)))
            .collect();
        // Membership first: a peer can only accept a record once it knows
        // the author's card, and gossip sends one record at a time.
        to_flood.sort_by_key(|v| !matches!(v.kind, RecordKind::MemberCard | RecordKind::MemberRevocation));
        drop(stem);
        let mut shared = self.shared.write().expect("shared lock");
        for verified in &to_flood {
            shared.add(&verified.id, &verified.record);
        }
        drop(shared);
        for verified in to_flood.into_iter().filter(|v| !delayed.contains(&v.id)) {
            let event = StoredEvent {
                id: verified.id,
                envelope: verified.envelope.clone(),
                tlp: verified.tlp,
                author: verified.author,
                source: source.map(str::to_string),
                stem_to: None,
            };
            // No live peer is not an error: reconciliation catches them up.
            let _ = self.events.send(Arc::new(event));
        }
    }

    /// Wakes whoever watches trust: revoked members' sessions end, and a CRL
    /// carried by a revocation is offered for installation.
    fn tell_revocations(&self, created: &[&Verified]) {
        let revocations = created.iter().filter_map(|v| match v.body() {
            Body::MemberRevocation(r) => Some(r),
            _ => None,
        });
        let (mut count, mut crl) = (0, None);
        for revocation in revocations {
            count += 1;
            tracing::warn!(member = %revocation.member_id, revoked_at = revocation.revoked_at, reason = %revocation.reason, "member revoked");
            if !revocation.crl.is_empty() {
                crl = Some(Arc::new(revocation.crl.clone()));
            }
        }
        self.trust.send_modify(|news| {
            news.revocations += count;
            if crl.is_some() {
                news.crl = crl;
            }
        });
    }

    fn apply_indicator(&self, engine: &mut Engine, verified: &Verified, indicator: &Indicator) {
        let mut entry = entry_of(verified.id, &verified.record, indicator, engine);
        if let Ok(Some(_)) = self.retraction_of(&verified.id, &verified.author) {
            entry.active = false;
        }
        engine.add(entry, &indicator.value);
        if let Some(old) = RecordId::from_slice(&indicator.supersedes) {
            engine.retract(&old);
        }
    }

    /// Sums every stored sighting again: a revocation withdraws the
    /// sightings its key made after the revocation time. Revocations are
    /// rare, so a scan of the sightings is cheap enough.
    fn recount_sightings(&self) -> Result<(), NodeError> {
        // Both locks for the whole scan (in lookup order), so a sighting
        // stored meanwhile is counted in the new book, not lost with the old.
        let roster = self.roster.read().expect("roster lock");
        let mut sightings = self.sightings.write().expect("sightings lock");
        let mut book = SightingBook::default();
        self.for_each_stored(RecordKind::Sighting, |_, record| add_sighting(&mut book, &record, &roster))?;
        *sightings = book;
        Ok(())
    }
}

/// One refusal per item of a request over `MAX_BATCH_RECORDS`.
fn refuse_batch(count: usize) -> Vec<Result<Inserted, NodeError>> {
    (0..count).map(|_| Err(NodeError::BatchTooLarge { count, max: MAX_BATCH_RECORDS })).collect()
}

/// Runs `work` over `items` split into one chunk per core, keeping order.
/// Small inputs stay on the calling thread: spawning costs more than it saves.
fn in_parallel<T: Send, R: Send>(items: Vec<T>, work: impl Fn(Vec<T>) -> Vec<R> + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if items.len() < PARALLEL_MIN || threads == 1 {
        return work(items);
    }
    let chunk = items.len().div_ceil(threads);
    let mut chunks = Vec::with_capacity(threads);
    let mut rest = items;
    while rest.len() > chunk {
        let tail = rest.split_off(chunk);
        chunks.push(rest);
        rest = tail;
    }
    chunks.push(rest);
    let work = &work;
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks.into_iter().map(|c| scope.spawn(move || work(c))).collect();
        handles.into_iter().flat_map(|h| h.join().expect("worker thread")).collect()
    })
}

/// Decodes the record inside a stored envelope; the store only holds
/// validated records, so a failure means corruption.
pub fn decode_record(stored: &StoredRecord) -> Result<Record, NodeError> {
    Record::decode(stored.envelope.record.as_slice())
        .map_err(|e| NodeError::Store(StoreError::BadRecord { id: stored.id, reason: e.to_string() }))
}

/// Whether this node may send a stored record to its peers (see `sharing`).
fn record_shareable(record: &Record, own: &[u8; 32]) -> bool {
    let tlp = Tlp::from_code(record.tlp).unwrap_or(Tlp::Red);
    let author: [u8; 32] = record.author.as_slice().try_into().unwrap_or([0; 32]);
    shareable(tlp, &author, own)
}

/// Adds a sighting record to the sums of its indicator, unless its author's
/// key was revoked before it was made.
fn add_sighting(sightings: &mut SightingBook, record: &Record, roster: &Roster) {
    if let Some(Body::Sighting(s)) = &record.body {
        let (Some(target), Some(kind)) = (RecordId::from_slice(&s.indicator_id), SightingType::from_code(s.r#type))
        else {
            return;
        };
        let Ok(member) = <[u8; 32]>::try_from(record.author.as_slice()) else { return };
        if roster.revoked_at(&member).is_some_and(|at| record.created_at >= at) {
            return;
        }
        sightings.add(target, member, kind, record.created_at);
    }
}

fn entry_of(id: RecordId, record: &Record, indicator: &Indicator, engine: &mut Engine) -> Entry {
    let author = <[u8; 32]>::try_from(record.author.as_slice()).expect("validated author key");
    Entry {
        id,
        created_at: record.created_at,
        author: engine.author_index(&author),
        kind: u8::try_from(indicator.r#type).ok().and_then(ObservableType::from_code).expect("validated type"),
        level: indicator.cir_level as u8,
        confidence: indicator.confidence as u8,
        tlp: record.tlp,
        // Validation admits only known codes, all below 32.
        categories: indicator
            .categories
            .iter()
            .fold(0, |bits, code| bits | 1u32.checked_shl(*code as u32).unwrap_or(0)),
        valid_until: indicator.valid_until,
        first_seen: indicator.first_seen,
        last_seen: indicator.last_seen,
        active: true,
    }
}
