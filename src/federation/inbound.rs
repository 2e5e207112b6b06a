//! Peers that dialed this node: what `cirfed status` shows of them, beside
//! the links this node dials itself.

use super::link::LinkStatus;
use crate::node::unix_now;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Inbound sessions by member id, with their live stream count: a peer
/// that reconnects may briefly hold two.
#[derive(Debug, Default)]
pub struct InboundPeers {
    peers: Mutex<HashMap<String, (LinkStatus, u32)>>,
}

impl InboundPeers {
    /// Changes what is shown of `member_id`.
    pub fn update(&self, member_id: &str, change: impl FnOnce(&mut LinkStatus)) {
        let mut peers = self.peers.lock().expect("inbound lock");
        let (status, _) = peers
            .entry(member_id.to_string())
            .or_insert_with(|| (LinkStatus { member_id: member_id.to_string(), ..LinkStatus::default() }, 0));
        change(status);
    }

    /// Every peer that has dialed this node since it started, by member id.
    pub fn statuses(&self) -> Vec<LinkStatus> {
        let peers = self.peers.lock().expect("inbound lock");
        let mut statuses: Vec<LinkStatus> = peers.values().map(|(status, _)| status.clone()).collect();
        statuses.sort_by(|a, b| a.member_id.cmp(&b.member_id));
        statuses
    }

    /// Counts a live stream from `member_id`, shown connected until the
    /// returned guard drops.
    pub fn open(self: &Arc<Self>, member_id: &str, addr: String) -> InboundSession {
        let mut peers = self.peers.lock().expect("inbound lock");
        let (status, live) = peers.entry(member_id.to_string()).or_default();
        *live += 1;
        status.member_id = member_id.to_string();
        status.addr = addr;
        if !status.connected {
            status.connected = true;
            status.since = unix_now();
        }
        InboundSession { peers: self.clone(), member_id: member_id.to_string() }
    }
}

/// A peer's live stream to this node; the peer shows as down once its last one ends.
pub struct InboundSession {
    peers: Arc<InboundPeers>,
    member_id: String,
}

impl InboundSession {
    /// Counts records sent to the peer on this stream.
    pub fn sent(&self, records: u64) {
        self.peers.update(&self.member_id, |s| s.sent += records);
    }
}

impl Drop for InboundSession {
    fn drop(&mut self) {
        let mut peers = self.peers.peers.lock().expect("inbound lock");
        if let Some((status, live)) = peers.get_mut(&self.member_id) {
            *live = live.saturating_sub(1);
            if *live == 0 {
                status.connected = false;
                status.since = unix_now();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_is_connected_while_any_of_its_streams_lives() {
        let peers = Arc::new(InboundPeers::default());
        let first = peers.open("m-a", "127.0.0.1:5000".into());
        let second = peers.open("m-a", "127.0.0.1:5001".into());
        peers.update("m-a", |s| s.received += 3);
        drop(first);
        assert!(peers.statuses()[0].connected, "the second stream is still open");
        drop(second);
        let status = &peers.statuses()[0];
        assert!(!status.connected);
        assert_eq!((status.member_id.as_str(), status.addr.as_str(), status.received), ("m-a", "127.0.0.1:5001", 3));
    }
}
