//! Node results to wire messages.

use crate::anonymize::{Action, Redaction};
use crate::federation::link::LinkStatus;
use crate::node::{Finding, IndicatorMatch, NodeError, NodeStatus, RecordView};
use crate::node::{Prepared, Published};
use crate::proto;
use crate::store::Inserted;

/// One publish or import outcome.
pub fn outcome(result: Result<Inserted, NodeError>) -> proto::Outcome {
    match result {
        Ok(inserted) => proto::Outcome { id: inserted.id.0.to_vec(), created: inserted.created, ..Default::default() },
        Err(e) => refused(e),
    }
}

fn refused(error: NodeError) -> proto::Outcome {
    let redactions = match &error {
        NodeError::Scrub(refused) => vec![proto::Redaction {
            field: refused.field.clone(),
            detector: refused.detector.to_string(),
            action: Action::Refuse.name().into(),
            found: refused.found.clone(),
            replacement: String::new(),
        }],
        _ => Vec::new(),
    };
    proto::Outcome { error_code: error.code().to_string(), error: error.to_string(), redactions, ..Default::default() }
}

/// A published draft's outcome with its redactions.
pub fn published(published: Published) -> proto::Outcome {
    let mut outcome = outcome(published.outcome);
    outcome.redactions.extend(redactions(published.redactions));
    outcome
}

/// A dry run's outcome: the bytes that would be signed, and the redactions.
pub fn prepared(result: Result<Prepared, NodeError>) -> proto::Outcome {
    match result {
        Ok(p) => proto::Outcome {
            id: p.id.0.to_vec(),
            already_stored: p.stored,
            record: p.record,
            redactions: redactions(p.redactions),
            ..Default::default()
        },
        Err(e) => refused(e),
    }
}

fn redactions(redactions: Vec<Redaction>) -> Vec<proto::Redaction> {
    redactions
        .into_iter()
        .map(|r| proto::Redaction {
            field: r.field,
            detector: r.detector.to_string(),
            action: r.action.name().into(),
            found: r.found,
            replacement: r.replacement,
        })
        .collect()
}

/// A stored record with its state.
pub fn stored_record(view: RecordView) -> proto::StoredRecord {
    let (retracted, retraction_reason) = match view.retraction {
        Some(retraction) => (true, retraction.reason),
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
    let summary = finding.summary;
    let mut result = proto::LookupResult {
        index: finding.index,
        max_cir_level: u32::from(summary.max_level),
        confidence: u32::from(summary.confidence),
        first_seen: summary.first_seen,
        last_seen: summary.last_seen,
        score: u32::from(summary.score),
        benign: finding.benign.unwrap_or_default(),
        filtered: finding.filtered,
        omitted_matches: finding.omitted_matches,
        omitted_filtered: finding.omitted_filtered,
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
        author_revoked: m.author_revoked_at.is_some(),
        author_revoked_at: m.author_revoked_at.unwrap_or_default(),
        sightings_seen: m.sightings.seen,
        sightings_false_positive: m.sightings.false_positive,
        sightings_expired: m.sightings.expired,
        last_sighting: m.sightings.last_seen,
        score: u32::from(m.score),
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
        trust: None,
    }
}

/// A link's state.
pub fn peer_status(link: LinkStatus) -> proto::PeerStatus {
    proto::PeerStatus {
        addr: link.addr,
        dialed: link.dialed,
        member_id: link.member_id,
        connected: link.connected,
        since: link.since,
        records_sent: link.sent,
        records_received: link.received,
        last_reconciled: link.last_reconciled,
        last_difference: link.last_difference,
        last_error: link.last_error,
        revoked_at: link.revoked_at,
    }
}

/// What status shows of the transport's trust.
pub fn trust_status(trust: crate::node::TransportTrust) -> proto::TrustStatus {
    proto::TrustStatus {
        crl_number: trust.crl_number,
        crl_this_update: trust.crl_this_update,
        crl_next_update: trust.crl_next_update,
        crl_revoked: trust.crl_revoked,
        crl_source: trust.crl_source,
        crl_refused: trust.crl_refused,
        certificate_not_after: trust.certificate_not_after,
        card_valid_until: trust.card_valid_until,
        warnings: trust.warnings,
    }
}
