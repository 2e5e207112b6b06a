//! What this node may send to which peer, and the stream of newly stored
//! records that feeds gossip.
//!
//! TLP decides: CLEAR and GREEN flood the federation; AMBER and AMBER+STRICT
//! go only from their author to its direct peers and are never relayed; RED
//! never leaves the node.

use crate::cir::Tlp;
use crate::proto::{record::Body, Envelope, Record};
use crate::record::RecordId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// One item of the set a node reconciles: (created_at, id), with the time
/// offset by 2^63 so that signed times order as unsigned ones (as in the store keys).
pub type Item = (u64, [u8; 32]);

/// The reconciliation item of a record.
pub fn item(created_at: i64, id: &RecordId) -> Item {
    ((created_at as u64) ^ (1 << 63), id.0)
}

/// The records a node reconciles with its peers, with what decides whether
/// each still goes to a given peer: records expire, a revocation withdraws
/// what its key signed after the revocation time, and AMBER is reconciled
/// only between its author and the author's direct peers. Filtering when a
/// reconciliation starts keeps the set append-only and keeps honest nodes
/// from offering what their peers must refuse.
#[derive(Debug, Default)]
pub struct SharedSet {
    entries: Vec<SharedEntry>,
    /// Author keys, so an entry holds a 4-byte index instead of a 32-byte key.
    authors: Vec<[u8; 32]>,
    author_index: HashMap<[u8; 32], u32>,
}

#[derive(Debug, Clone, Copy)]
struct SharedEntry {
    item: Item,
    author: u32,
    amber: bool,
    /// Unix seconds after which peers refuse it; `i64::MAX` when never.
    expires_at: i64,
}

/// Who a reconciliation is with, and what is known at its start.
pub struct Audience<'a> {
    /// This node's key.
    pub own: [u8; 32],
    /// The peer's key, when this node has its member card.
    pub peer: Option<[u8; 32]>,
    /// Revoked keys with their revocation times.
    pub revoked: &'a HashMap<[u8; 32], i64>,
    pub now: i64,
}

impl SharedSet {
    /// Adds a stored record; RED ones never leave the node and are not kept.
    pub fn add(&mut self, id: &RecordId, record: &Record) {
        let Some(tlp) = Tlp::from_code(record.tlp).filter(|tlp| *tlp != Tlp::Red) else { return };
        let Ok(key) = <[u8; 32]>::try_from(record.author.as_slice()) else { return };
        let next = self.authors.len() as u32;
        let author = *self.author_index.entry(key).or_insert(next);
        if author == next {
            self.authors.push(key);
        }
        let expires_at = match &record.body {
            Some(Body::Indicator(indicator)) => indicator.valid_until,
            _ => i64::MAX,
        };
        let amber = matches!(tlp, Tlp::Amber | Tlp::AmberStrict);
        self.entries.push(SharedEntry { item: item(record.created_at, id), author, amber, expires_at });
    }

    /// The items to reconcile with one peer now.
    pub fn items_for(&self, audience: &Audience) -> Vec<Item> {
        // Per author, once: may its AMBER go, and from when are its records withdrawn.
        let rules: Vec<(bool, i64)> = self
            .authors
            .iter()
            .map(|key| {
                let amber = *key == audience.own || Some(*key) == audience.peer;
                (amber, audience.revoked.get(key).copied().unwrap_or(i64::MAX))
            })
            .collect();
        self.entries
            .iter()
            .filter(|entry| {
                let (amber_ok, revoked_at) = rules[entry.author as usize];
                entry.expires_at > audience.now && created_at(entry.item) < revoked_at && (!entry.amber || amber_ok)
            })
            .map(|entry| entry.item)
            .collect()
    }

    /// Records in the set, withdrawn ones included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing was ever shared.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The creation time an item was made from.
fn created_at(item: Item) -> i64 {
    (item.0 ^ (1 << 63)) as i64
}

/// True when this node may send a record of `tlp` by `author` to its peers.
pub fn shareable(tlp: Tlp, author: &[u8; 32], own_key: &[u8; 32]) -> bool {
    match tlp {
        Tlp::Red => false,
        Tlp::Amber | Tlp::AmberStrict => author == own_key,
        Tlp::Clear | Tlp::Green => true,
    }
}

/// A record this node has just stored, as gossip sees it.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// The record id.
    pub id: RecordId,
    /// The envelope as received.
    pub envelope: Envelope,
    /// Its sharing restriction.
    pub tlp: Tlp,
    /// Its author's key.
    pub author: [u8; 32],
    /// The peer it came from, None when published or imported locally.
    pub source: Option<String>,
    /// A stem hop: the one peer this goes to (see `stem`).
    pub stem_to: Option<StemTarget>,
}

/// The peer a stem hop goes to. Two nodes may hold two sessions (each dialed
/// the other); the hop goes out on exactly one, or the stem would branch.
#[derive(Debug, Clone)]
pub struct StemTarget {
    pub peer: String,
    claimed: Arc<AtomicBool>,
}

impl StemTarget {
    pub fn new(peer: String) -> StemTarget {
        StemTarget { peer, claimed: Arc::new(AtomicBool::new(false)) }
    }

    /// True for the first session to `peer` that asks.
    fn claim(&self, peer: &str) -> bool {
        self.peer == peer && !self.claimed.swap(true, Ordering::AcqRel)
    }
}

impl StoredEvent {
    /// True when this node may forward the record to `peer`: shareable, and
    /// not back to the peer it came from.
    pub fn may_send(&self, own_key: &[u8; 32], peer: &str) -> bool {
        match &self.stem_to {
            Some(target) => target.claim(peer),
            None => shareable(self.tlp, &self.author, own_key) && self.source.as_deref() != Some(peer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: [u8; 32] = [1; 32];
    const OTHER: [u8; 32] = [2; 32];

    #[test]
    fn red_never_leaves_and_amber_only_from_its_author() {
        assert!(!shareable(Tlp::Red, &OWN, &OWN));
        assert!(shareable(Tlp::Amber, &OWN, &OWN));
        assert!(shareable(Tlp::AmberStrict, &OWN, &OWN));
        assert!(!shareable(Tlp::Amber, &OTHER, &OWN), "AMBER is never relayed");
        assert!(!shareable(Tlp::AmberStrict, &OTHER, &OWN));
        assert!(shareable(Tlp::Green, &OTHER, &OWN));
        assert!(shareable(Tlp::Clear, &OTHER, &OWN));
    }

    #[test]
    fn a_stem_hop_goes_out_on_one_session_only() {
        let event = StoredEvent {
            id: RecordId([0; 32]),
            envelope: Envelope::default(),
            tlp: Tlp::Green,
            author: OWN,
            source: None,
            stem_to: Some(StemTarget::new("m-b".into())),
        };
        assert!(!event.may_send(&OWN, "m-c"), "not to another peer");
        assert!(event.may_send(&OWN, "m-b"));
        assert!(!event.may_send(&OWN, "m-b"), "not twice, over a second session to the same peer");
    }

    #[test]
    fn records_are_not_sent_back_to_the_peer_they_came_from() {
        let event = StoredEvent {
            id: RecordId([0; 32]),
            envelope: Envelope::default(),
            tlp: Tlp::Green,
            author: OTHER,
            source: Some("m-b".into()),
            stem_to: None,
        };
        assert!(!event.may_send(&OWN, "m-b"));
        assert!(event.may_send(&OWN, "m-c"));
    }

    fn record(tlp: Tlp, author: [u8; 32], created_at: i64, valid_until: Option<i64>) -> Record {
        let body = valid_until
            .map(|valid_until| Body::Indicator(crate::proto::Indicator { valid_until, ..Default::default() }));
        Record { version: 1, author: author.to_vec(), created_at, tlp: tlp.code(), body }
    }

    fn set_of(records: &[(u8, Record)]) -> SharedSet {
        let mut set = SharedSet::default();
        for (id, record) in records {
            set.add(&RecordId([*id; 32]), record);
        }
        set
    }

    fn ids(items: Vec<Item>) -> Vec<u8> {
        items.into_iter().map(|(_, id)| id[0]).collect()
    }

    #[test]
    fn the_shared_set_keeps_amber_between_its_author_and_that_authors_peers() {
        const PEER: [u8; 32] = [3; 32];
        let set = set_of(&[
            (1, record(Tlp::Green, OTHER, 10, None)),
            (2, record(Tlp::Amber, OWN, 10, None)),
            (3, record(Tlp::AmberStrict, PEER, 10, None)),
            (4, record(Tlp::Amber, OTHER, 10, None)),
            (5, record(Tlp::Red, OWN, 10, None)),
        ]);
        assert_eq!(set.len(), 4, "RED is never kept");
        let revoked = HashMap::new();
        let with_peer = Audience { own: OWN, peer: Some(PEER), revoked: &revoked, now: 20 };
        assert_eq!(ids(set.items_for(&with_peer)), vec![1, 2, 3], "the peer's own AMBER is reconciled with it");
        let with_other = Audience { own: OWN, peer: Some([7; 32]), revoked: &revoked, now: 20 };
        assert_eq!(ids(set.items_for(&with_other)), vec![1, 2], "a neighbour's AMBER goes to no one else");
    }

    #[test]
    fn expired_records_and_records_signed_after_a_revocation_leave_the_set() {
        let set = set_of(&[
            (1, record(Tlp::Green, OTHER, 10, Some(100))),
            (2, record(Tlp::Green, OTHER, 50, None)),
            (3, record(Tlp::Green, OTHER, 60, None)),
            (4, record(Tlp::Green, OWN, 60, Some(1_000))),
        ]);
        let none = HashMap::new();
        let early = Audience { own: OWN, peer: None, revoked: &none, now: 99 };
        assert_eq!(ids(set.items_for(&early)), vec![1, 2, 3, 4]);
        let revoked = HashMap::from([(OTHER, 55)]);
        let later = Audience { own: OWN, peer: None, revoked: &revoked, now: 100 };
        assert_eq!(ids(set.items_for(&later)), vec![2, 4], "1 expired at 100, 3 was signed after the revocation");
    }

    #[test]
    fn items_order_by_time_then_id() {
        assert!(item(-5, &RecordId([9; 32])) < item(0, &RecordId([0; 32])));
        assert!(item(7, &RecordId([1; 32])) < item(7, &RecordId([2; 32])));
    }
}
