//! Node results to wire messages.

use crate::federation::link::LinkStatus;
use crate::node::{Finding, IndicatorMatch, NodeError, NodeStatus, RecordView};
use crate::proto;
use crate::store::Inserted;

/// One publish or import outcome.
pub fn outcome(result: Result<Inserted, NodeError>) -> proto::Outcome {
    match result {
        Ok(inserted) => proto::Outcome { id: inserted.id.0.to_vec(), created: inserted.created, ..Default::default() },
        Err(e) => proto::Outcome { error_code: e.code().to_string(), error: e.to_string(), ..Default::default() },
    }
}

/// A stored record with its state.
pub fn stored_record(view: RecordView) -> proto::StoredRecord {
    let (retracted, retraction_reason) = match view.retraction {
        Some((_, reason)) => (true, reason),
        None => (false, String::new()),
    };
    proto::StoredRecord {
        id: view.stored.id.0.to_vec(),
        envelope: Some(view.stored.envelope),
        seq: view.stored.seq,
        received_at: view.stored.received_at,
        retracted,
        retraction_reason,
        expired: view.expired,
    }
}

/// The result for one looked-up value.
pub fn lookup_result(finding: Finding) -> proto::LookupResult {
    let mut result = proto::LookupResult {
        index: finding.index,
        max_cir_level: u32::from(finding.max_level()),
        confidence: u32::from(finding.confidence()),
        first_seen: finding.first_seen(),
        last_seen: finding.last_seen(),
        ..Default::default()
    };
    match finding.observable {
        Ok(observable) => {
            result.r#type = i32::from(observable.kind.code());
            result.canonical = observable.value;
        }
        Err(e) => result.error = e.to_string(),
    }
    result.matches = finding.matches.into_iter().map(indicator_match).collect();
    result
}

fn indicator_match(m: IndicatorMatch) -> proto::Match {
    proto::Match {
        record_id: m.entry.id.0.to_vec(),
        kind: m.how as i32,
        indicator_type: i32::from(m.entry.kind.code()),
        indicator_value: m.matched,
        cir_level: u32::from(m.entry.level),
        confidence: u32::from(m.entry.confidence),
        categories: (0..32).filter(|bit| m.entry.categories & (1 << bit) != 0).collect(),
        tlp: m.entry.tlp,
        valid_until: m.entry.valid_until,
        first_seen: m.entry.first_seen,
        last_seen: m.entry.last_seen,
        description: m.description.unwrap_or_default(),
    }
}

/// Node status; the caller adds its peers.
pub fn status(status: NodeStatus) -> proto::StatusReply {
    proto::StatusReply {
        version: env!("CARGO_PKG_VERSION").to_string(),
        member_id: status.member_id,
        signing_key: status.signing_key,
        started_at: status.started_at,
        records: status.kinds.iter().map(|(_, n)| n).sum(),
        kinds: status
            .kinds
            .into_iter()
            .map(|(kind, count)| proto::KindCount { kind: i32::from(kind.code()), count })
            .collect(),
        active_indicators: status.active_indicators,
        last_seq: status.last_seq,
        data_dir: status.data_dir,
        peers: Vec::new(),
    }
}

/// A link's state.
pub fn peer_status(link: LinkStatus) -> proto::PeerStatus {
    proto::PeerStatus {
        addr: link.addr,
        member_id: link.member_id,
        connected: link.connected,
        since: link.since,
        records_sent: link.sent,
        records_received: link.received,
        last_reconciled: link.last_reconciled,
        last_difference: link.last_difference,
        last_error: link.last_error,
    }
}
