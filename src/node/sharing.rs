//! What this node may send to which peer, and the stream of newly stored
//! records that feeds gossip.
//!
//! TLP decides: CLEAR and GREEN flood the federation; AMBER and AMBER+STRICT
//! go only from their author to its direct peers and are never relayed; RED
//! never leaves the node.

use crate::cir::Tlp;
use crate::proto::Envelope;
use crate::record::RecordId;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// One item of the set a node reconciles: (created_at, id), with the time
/// offset by 2^63 so that signed times order as unsigned ones (as in the store keys).
pub type Item = (u64, [u8; 32]);

/// The reconciliation item of a record.
pub fn item(created_at: i64, id: &RecordId) -> Item {
    ((created_at as u64) ^ (1 << 63), id.0)
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

    #[test]
    fn items_order_by_time_then_id() {
        assert!(item(-5, &RecordId([9; 32])) < item(0, &RecordId([0; 32])));
        assert!(item(7, &RecordId([1; 32])) < item(7, &RecordId([2; 32])));
    }
}
