//! Range-based set reconciliation (negentropy) of the records two nodes may share.
//!
//! The initiator sends a message, the responder answers, and so on until the
//! initiator has nothing left to ask; the initiator then knows which record ids
//! it should push (`have`) and which it should fetch (`need`). Only ids travel
//! here: fetching and pushing the records is the session's job.
//!
//! This module is pure (no tonic, RocksDB or tokio) so it can be tested and
//! benchmarked alone; the session code carries its messages over gRPC.
//!
//! Both sides must map `created_at` to the [`Item`] timestamp the same way:
//! fingerprints cover only ids, but range bounds are timestamps, so two nodes
//! that placed the same record at different timestamps would report it as a
//! difference. The mapping is therefore part of the wire protocol.

use negentropy::{Id, Negentropy, NegentropyStorageVector};
use std::fmt;

/// Largest reconciliation message either side sends (bytes); negentropy's frame size limit.
///
/// negentropy refuses limits under 4096 bytes and keeps 200 bytes of slack
/// below the limit, so every message it builds fits. The limit trades round
/// trips for message size. With 100,000 common records and 1,000 differences
/// on each side spread over a year of history, 64 KiB takes 28 round trips,
/// 256 KiB takes 8 and 1 MiB takes 4, for 1.4 to 1.9 MB in all; differences
/// clustered in recent hours (the usual outage) take 3 round trips at any of
/// these. 256 KiB keeps round trips few on slow links while a message stays far
/// below the peer message size limit and cheap to hold per session. Both sides
/// refuse larger incoming messages, so the transport limit must leave room for
/// it plus the envelope.
pub const FRAME_SIZE_LIMIT: u64 = 256 * 1024;

/// One item of the set: (created_at, record id).
///
/// `created_at` is in seconds, mapped to `u64` the same way on every node (see
/// the module doc); `u64::MAX` is reserved by negentropy as "past the end".
pub type Item = (u64, [u8; 32]);

/// Why a reconciliation could not be built or continued.
///
/// Display includes negentropy's reason because log lines print an error with
/// `%err`, which shows no source chain.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// A local item has the timestamp negentropy uses as its open upper bound,
    /// so it would silently fall outside every range and never be reconciled.
    #[error("record {} has created_at u64::MAX, which negentropy reserves as its end bound", Hex(.id))]
    ReservedTimestamp {
        /// The offending record id.
        id: [u8; 32],
    },
    /// The peer sent more than the agreed frame size limit: it misbehaves, and
    /// refusing the message unread bounds what one message can cost us.
    #[error("peer reconciliation message is {len} bytes, over the {limit} byte frame limit")]
    MessageTooLarge {
        /// Size of the message received.
        len: usize,
        /// The limit it broke.
        limit: u64,
    },
    /// The peer's message does not parse as negentropy; counts against the peer.
    #[error("malformed reconciliation message from peer: {0}")]
    Malformed(negentropy::Error),
    /// The peer answered in a negentropy protocol version we do not speak: a
    /// version mismatch between honest nodes, not misbehaviour.
    #[error("peer answered in an unsupported negentropy protocol version")]
    UnsupportedVersion,
    /// The caller used the initiator out of order (a bug in the session code).
    #[error("reconciliation used out of order: {0}")]
    OutOfOrder(&'static str),
    /// negentropy failed on local state; not caused by the peer.
    #[error("negentropy failed: {0}")]
    Negentropy(negentropy::Error),
}

/// Formats an id as lowercase hex in error messages.
struct Hex<'a>(&'a [u8; 32]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

/// Sorts, deduplicates and seals the items into an owned negentropy session.
///
/// negentropy's `Negentropy<'a, T>` borrows its storage unless built with
/// `Negentropy::owned`; owning it gives a `'static` session, so [`Initiator`]
/// and [`Responder`] need no lifetime and can live across awaits in a session
/// task. negentropy keeps no state between messages except which side it is,
/// so one session serves a whole exchange.
fn session(items: Vec<Item>) -> Result<Negentropy<'static, NegentropyStorageVector>, ReconcileError> {
    let mut storage = NegentropyStorageVector::with_capacity(items.len());
    for (created_at, id) in items {
        if created_at == u64::MAX {
            return Err(ReconcileError::ReservedTimestamp { id });
        }
        storage.insert(created_at, Id::from_byte_array(id)).map_err(ReconcileError::Negentropy)?;
    }
    storage.seal().map_err(ReconcileError::Negentropy)?;
    Negentropy::owned(storage, FRAME_SIZE_LIMIT).map_err(ReconcileError::Negentropy)
}

/// Refuses a peer message over the frame limit before negentropy parses it.
fn check_size(message: &[u8]) -> Result<(), ReconcileError> {
    if message.len() as u64 > FRAME_SIZE_LIMIT {
        return Err(ReconcileError::MessageTooLarge { len: message.len(), limit: FRAME_SIZE_LIMIT });
    }
    Ok(())
}

/// Sorts negentropy's errors on a peer message into the peer's fault or ours,
/// so misbehaviour scoring only counts what the peer did.
fn peer_error(err: negentropy::Error) -> ReconcileError {
    use negentropy::Error as E;
    match err {
        E::UnsupportedProtocolVersion => ReconcileError::UnsupportedVersion,
        E::ParseEndsPrematurely
        | E::ProtocolVersionNotFound
        | E::InvalidProtocolVersion
        | E::UnexpectedMode(_)
        | E::IdTooBig
        | E::InvalidIdSize
        | E::TryFromSlice => ReconcileError::Malformed(err),
        other => ReconcileError::Negentropy(other),
    }
}

/// Where an [`Initiator`] is in the exchange; negentropy does not track the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// `initiate` not called yet.
    Fresh,
    /// Waiting for the peer's replies.
    Running,
    /// The last reply settled every range.
    Done,
}

/// The side that starts.
///
/// The caller must bound the exchange (timeout or round cap): a peer that keeps
/// answering with mismatching fingerprints can prolong it indefinitely.
pub struct Initiator {
    /// The negentropy session over this side's items.
    session: Negentropy<'static, NegentropyStorageVector>,
    /// Guards against calls out of order, which negentropy would not all catch.
    phase: Phase,
    /// Ids this side has and the peer lacks: what to push.
    have: Vec<[u8; 32]>,
    /// Ids the peer has and this side lacks: what to fetch.
    need: Vec<[u8; 32]>,
}

impl Initiator {
    /// Builds the initiating side over `items`, in any order; duplicates are dropped.
    pub fn new(items: Vec<Item>) -> Result<Self, ReconcileError> {
        Ok(Self { session: session(items)?, phase: Phase::Fresh, have: Vec::new(), need: Vec::new() })
    }

    /// Returns the first message to send to the responder.
    pub fn initiate(&mut self) -> Result<Vec<u8>, ReconcileError> {
        if self.phase != Phase::Fresh {
            return Err(ReconcileError::OutOfOrder("initiate called twice"));
        }
        let message = self.session.initiate().map_err(ReconcileError::Negentropy)?;
        self.phase = Phase::Running;
        Ok(message)
    }

    /// Feeds the peer's reply; returns Some(next message) or None when done.
    ///
    /// Accumulates ids this side has and the peer lacks (`have`) and ids the
    /// peer has and this side lacks (`need`). On error nothing from `reply` is
    /// kept, so a half-parsed message cannot add ids.
    pub fn step(&mut self, reply: &[u8]) -> Result<Option<Vec<u8>>, ReconcileError> {
        match self.phase {
            Phase::Fresh => return Err(ReconcileError::OutOfOrder("step called before initiate")),
            Phase::Done => return Err(ReconcileError::OutOfOrder("step called after reconciliation finished")),
            Phase::Running => {}
        }
        check_size(reply)?;
        let mut have = Vec::new();
        let mut need = Vec::new();
        let next = self.session.reconcile_with_ids(reply, &mut have, &mut need).map_err(peer_error)?;
        self.have.extend(have.into_iter().map(Id::to_bytes));
        self.need.extend(need.into_iter().map(Id::to_bytes));
        if next.is_none() {
            self.phase = Phase::Done;
        }
        Ok(next)
    }

    /// Ids this side has and the peer lacks, so far.
    pub fn have(&self) -> &[[u8; 32]] {
        &self.have
    }

    /// Ids the peer has and this side lacks, so far.
    pub fn need(&self) -> &[[u8; 32]] {
        &self.need
    }
}

impl fmt::Debug for Initiator {
    /// Shows progress, not the item set, which can hold millions of ids.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Initiator")
            .field("phase", &self.phase)
            .field("have", &self.have.len())
            .field("need", &self.need.len())
            .finish_non_exhaustive()
    }
}

/// The side that answers.
pub struct Responder {
    /// The negentropy session over this side's items.
    session: Negentropy<'static, NegentropyStorageVector>,
}

impl Responder {
    /// Builds the answering side over `items`, in any order; duplicates are dropped.
    pub fn new(items: Vec<Item>) -> Result<Self, ReconcileError> {
        Ok(Self { session: session(items)? })
    }

    /// Answers one message from the initiator.
    ///
    /// The responder never learns the differences itself: the initiator fetches
    /// and pushes, so the reply is all this side produces.
    pub fn respond(&mut self, message: &[u8]) -> Result<Vec<u8>, ReconcileError> {
        check_size(message)?;
        self.session.reconcile(message).map_err(peer_error)
    }
}

impl fmt::Debug for Responder {
    /// Omits the item set, which can hold millions of ids.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Responder").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sha2::{Digest, Sha256};
    use std::collections::BTreeSet;

    /// A record id as the node computes one: SHA-256 of some bytes.
    fn record_id(n: u64) -> [u8; 32] {
        Sha256::digest(n.to_be_bytes()).into()
    }

    /// Timestamps coarsened to the hour, as anonymisation does by default, so
    /// many items share one and bounds must split on id prefixes.
    fn hour(n: u64) -> u64 {
        1_700_000_000 / 3600 * 3600 + (n % 8760) * 3600
    }

    fn items(range: std::ops::Range<u64>) -> Vec<Item> {
        range.map(|n| (hour(n), record_id(n))).collect()
    }

    /// What one full exchange produced.
    struct Outcome {
        have: BTreeSet<[u8; 32]>,
        need: BTreeSet<[u8; 32]>,
        round_trips: usize,
        bytes: usize,
        largest_message: usize,
    }

    /// Runs initiator against responder until done, as the session will.
    fn reconcile(ours: Vec<Item>, theirs: Vec<Item>) -> Outcome {
        let mut initiator = Initiator::new(ours).unwrap();
        let mut responder = Responder::new(theirs).unwrap();
        let mut message = initiator.initiate().unwrap();
        let (mut round_trips, mut bytes, mut largest_message) = (0, 0, 0);
        loop {
            let reply = responder.respond(&message).unwrap();
            round_trips += 1;
            bytes += message.len() + reply.len();
            largest_message = largest_message.max(message.len()).max(reply.len());
            assert!(round_trips < 1000, "reconciliation does not terminate");
            match initiator.step(&reply).unwrap() {
                Some(next) => message = next,
                None => break,
            }
        }
        let have: BTreeSet<_> = initiator.have().iter().copied().collect();
        let need: BTreeSet<_> = initiator.need().iter().copied().collect();
        assert_eq!(have.len(), initiator.have().len(), "have lists an id twice");
        assert_eq!(need.len(), initiator.need().len(), "need lists an id twice");
        Outcome { have, need, round_trips, bytes, largest_message }
    }

    fn ids(items: &[Item]) -> BTreeSet<[u8; 32]> {
        items.iter().map(|(_, id)| *id).collect()
    }

    #[test]
    fn identical_sets_finish_in_one_round_trip_with_no_differences() {
        let outcome = reconcile(items(0..5_000), items(0..5_000));
        assert_eq!(outcome.round_trips, 1);
        assert!(outcome.have.is_empty());
        assert!(outcome.need.is_empty());
    }

    #[test]
    fn disjoint_sets_learn_each_others_whole_set() {
        let ours = items(0..300);
        let theirs = items(300..700);
        let outcome = reconcile(ours.clone(), theirs.clone());
        assert_eq!(outcome.have, ids(&ours));
        assert_eq!(outcome.need, ids(&theirs));
    }

    #[test]
    fn overlapping_sets_learn_exactly_their_differences() {
        let ours = items(0..2_000);
        let theirs = items(1_500..4_000);
        let outcome = reconcile(ours, theirs);
        assert_eq!(outcome.have, ids(&items(0..1_500)));
        assert_eq!(outcome.need, ids(&items(2_000..4_000)));
    }

    #[test]
    fn items_are_accepted_in_any_order_and_duplicates_are_ignored() {
        let mut ours = items(0..200);
        ours.reverse();
        ours.extend(items(0..50));
        let outcome = reconcile(ours, items(100..300));
        assert_eq!(outcome.have, ids(&items(0..100)));
        assert_eq!(outcome.need, ids(&items(200..300)));
    }

    #[test]
    fn empty_initiator_needs_everything_the_peer_has() {
        let theirs = items(0..1_000);
        let outcome = reconcile(Vec::new(), theirs.clone());
        assert!(outcome.have.is_empty());
        assert_eq!(outcome.need, ids(&theirs));
    }

    #[test]
    fn empty_responder_leaves_the_initiator_everything_to_push() {
        let ours = items(0..1_000);
        let outcome = reconcile(ours.clone(), Vec::new());
        assert_eq!(outcome.have, ids(&ours));
        assert!(outcome.need.is_empty());
    }

    #[test]
    fn both_sets_empty_finish_in_one_round_trip_with_no_differences() {
        let outcome = reconcile(Vec::new(), Vec::new());
        assert_eq!(outcome.round_trips, 1);
        assert!(outcome.have.is_empty());
        assert!(outcome.need.is_empty());
    }

    /// Two large sets and the differences reconciliation must find.
    struct LargeSets {
        ours: Vec<Item>,
        theirs: Vec<Item>,
        have: BTreeSet<[u8; 32]>,
        need: BTreeSet<[u8; 32]>,
    }

    /// Spreads differing items over the whole history (`scattered`) or puts them
    /// all after the common ones, as after an outage (`recent`).
    fn large_sets(recent: bool) -> LargeSets {
        const COMMON: u64 = 100_000;
        const DIFFERING: u64 = 1_000;
        let common = items(0..COMMON);
        let differing = |range: std::ops::Range<u64>| -> Vec<Item> {
            range
                .map(|n| {
                    let created_at = if recent { hour(COMMON) + 3600 * (n % 24) } else { hour(n.wrapping_mul(7919)) };
                    (created_at, record_id(n))
                })
                .collect()
        };
        let ours_only = differing(COMMON..COMMON + DIFFERING);
        let theirs_only = differing(COMMON + DIFFERING..COMMON + 2 * DIFFERING);
        let (have, need) = (ids(&ours_only), ids(&theirs_only));
        let ours = common.iter().copied().chain(ours_only).collect();
        let theirs = common.into_iter().chain(theirs_only).collect();
        LargeSets { ours, theirs, have, need }
    }

    #[test]
    fn large_sets_with_a_thousand_differences_each_side_learn_exactly_those() {
        for (scenario, recent) in [("scattered", false), ("recent", true)] {
            let LargeSets { ours, theirs, have, need } = large_sets(recent);
            let outcome = reconcile(ours, theirs);
            assert_eq!(outcome.have, have, "{scenario}");
            assert_eq!(outcome.need, need, "{scenario}");
            assert!(outcome.largest_message as u64 <= FRAME_SIZE_LIMIT, "{scenario}");
            println!(
                "100000 common + 1000 differing each side ({scenario}): {} round trips, {} bytes exchanged, \
                 largest message {} bytes (frame limit {FRAME_SIZE_LIMIT})",
                outcome.round_trips, outcome.bytes, outcome.largest_message
            );
        }
    }

    #[test]
    fn every_message_fits_the_frame_limit_when_one_side_holds_everything() {
        let outcome = reconcile(Vec::new(), items(0..20_000));
        assert_eq!(outcome.need.len(), 20_000);
        assert!(outcome.largest_message as u64 <= FRAME_SIZE_LIMIT);
        assert!(outcome.round_trips > 1, "20,000 ids cannot fit one frame");
    }

    /// Messages a broken or hostile peer might send.
    fn garbage() -> Vec<Vec<u8>> {
        vec![
            vec![],                                                                                   // nothing at all
            vec![0x00],                               // not a protocol version
            vec![0x61, 0x00, 0x00, 0x07],             // unknown mode
            vec![0x61, 0x00, 0x21],                   // bound id longer than an id
            vec![0x61, 0x00, 0x00, 0x01, 0xaa],       // fingerprint cut short
            vec![0x61, 0x00, 0x00, 0x02, 0x03, 0xbb], // id list shorter than its count
            vec![0x61, 0x00, 0x00, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], // huge count
        ]
    }

    #[test]
    fn responder_rejects_garbage_with_an_error() {
        let mut responder = Responder::new(items(0..100)).unwrap();
        for message in garbage() {
            let err = responder.respond(&message).unwrap_err();
            assert!(matches!(err, ReconcileError::Malformed(_)), "{message:02x?}: {err}");
        }
    }

    #[test]
    fn initiator_rejects_garbage_replies_with_an_error() {
        for reply in garbage() {
            let mut initiator = Initiator::new(items(0..100)).unwrap();
            initiator.initiate().unwrap();
            let err = initiator.step(&reply).unwrap_err();
            assert!(matches!(err, ReconcileError::Malformed(_)), "{reply:02x?}: {err}");
            assert!(initiator.have().is_empty() && initiator.need().is_empty());
        }
    }

    #[test]
    fn initiator_reports_a_reply_in_another_protocol_version_as_unsupported() {
        let mut initiator = Initiator::new(items(0..10)).unwrap();
        initiator.initiate().unwrap();
        let err = initiator.step(&[0x62]).unwrap_err();
        assert!(matches!(err, ReconcileError::UnsupportedVersion), "{err}");
    }

    #[test]
    fn messages_over_the_frame_limit_are_refused_unread() {
        let oversized = vec![0x61; FRAME_SIZE_LIMIT as usize + 1];
        let mut responder = Responder::new(Vec::new()).unwrap();
        let err = responder.respond(&oversized).unwrap_err();
        assert!(matches!(err, ReconcileError::MessageTooLarge { .. }), "{err}");
        let mut initiator = Initiator::new(Vec::new()).unwrap();
        initiator.initiate().unwrap();
        let err = initiator.step(&oversized).unwrap_err();
        assert!(matches!(err, ReconcileError::MessageTooLarge { .. }), "{err}");
    }

    #[test]
    fn initiator_calls_out_of_order_are_errors() {
        let mut initiator = Initiator::new(items(0..10)).unwrap();
        assert!(matches!(initiator.step(&[0x61]), Err(ReconcileError::OutOfOrder(_))));
        let message = initiator.initiate().unwrap();
        assert!(matches!(initiator.initiate(), Err(ReconcileError::OutOfOrder(_))));
        let reply = Responder::new(items(0..10)).unwrap().respond(&message).unwrap();
        assert_eq!(initiator.step(&reply).unwrap(), None);
        assert!(matches!(initiator.step(&reply), Err(ReconcileError::OutOfOrder(_))));
    }

    #[test]
    fn an_item_at_the_reserved_timestamp_is_refused() {
        let id = record_id(1);
        let err = Initiator::new(vec![(u64::MAX, id)]).unwrap_err();
        assert!(matches!(err, ReconcileError::ReservedTimestamp { id: bad } if bad == id));
        assert!(err.to_string().contains(&Hex(&id).to_string()));
        assert!(Responder::new(vec![(u64::MAX, id)]).is_err());
    }

    #[test]
    fn both_sides_can_be_moved_into_a_session_task() {
        fn assert_send<T: Send + 'static>() {}
        assert_send::<Initiator>();
        assert_send::<Responder>();
    }

    /// Three disjoint groups of ids (common, ours only, theirs only) with
    /// timestamps from a small range, so equal timestamps are frequent.
    fn overlapping_sets() -> impl Strategy<Value = (Vec<Item>, Vec<Item>, Vec<Item>)> {
        prop::collection::btree_set(any::<[u8; 32]>(), 0..400).prop_flat_map(|ids| {
            let n = ids.len();
            (Just(ids), prop::collection::vec((0u8..3, 0u64..40), n)).prop_map(|(ids, placement)| {
                let mut groups = (Vec::new(), Vec::new(), Vec::new());
                for (id, (group, created_at)) in ids.into_iter().zip(placement) {
                    match group {
                        0 => groups.0.push((created_at, id)),
                        1 => groups.1.push((created_at, id)),
                        _ => groups.2.push((created_at, id)),
                    }
                }
                groups
            })
        })
    }

    proptest! {
        #[test]
        fn random_overlapping_sets_learn_exactly_their_differences((common, ours_only, theirs_only) in overlapping_sets()) {
            let ours: Vec<Item> = common.iter().chain(&ours_only).copied().collect();
            let theirs: Vec<Item> = common.iter().chain(&theirs_only).copied().collect();
            let outcome = reconcile(ours, theirs);
            prop_assert_eq!(outcome.have, ids(&ours_only));
            prop_assert_eq!(outcome.need, ids(&theirs_only));
        }

        #[test]
        fn arbitrary_peer_bytes_never_panic(message in prop::collection::vec(any::<u8>(), 0..2_000), valid_start in any::<bool>()) {
            // Starting with the real version byte gets past the first check into the range parser.
            let mut message = message;
            if valid_start {
                message.insert(0, 0x61);
            }
            let _ = Responder::new(items(0..100)).unwrap().respond(&message);
            let mut initiator = Initiator::new(items(0..100)).unwrap();
            initiator.initiate().unwrap();
            let _ = initiator.step(&message);
        }
    }
}
