//! The read paths the APIs serve: one record with its state, pages in
//! arrival order, the node's counts, and a record's retraction.

use super::{decode_record, unix_now, Node, NodeError, NodeStatus, MAX_LIST_LIMIT, MAX_LIST_PAGE_BYTES};
use crate::interop::Retracted;
use crate::proto::{record::Body, Record};
use crate::record::{self, RecordId, RecordKind, Trust};
use crate::store::{self, StoredRecord};
use prost::Message;

/// A stored record with what the node knows about it now.
#[derive(Debug, Clone)]
pub struct RecordView {
    /// As stored.
    pub stored: StoredRecord,
    /// Decoded record.
    pub record: Record,
    /// The authorised retraction, if any.
    pub retraction: Option<Retracted>,
    /// An indicator past its valid_until.
    pub expired: bool,
}

impl RecordView {
    /// Neither retracted nor expired.
    pub fn is_active(&self) -> bool {
        self.retraction.is_none() && !self.expired
    }
}

impl Node {
    /// The first retraction of `id` signed by its author or the authority.
    pub(super) fn retraction_of(&self, id: &RecordId, author: &[u8]) -> Result<Option<Retracted>, NodeError> {
        let ids = self.store.pairs(store::CF_RETRACTIONS, &id.0)?;
        if ids.is_empty() {
            return Ok(None);
        }
        for stored in self.store.get_many(&ids)? {
            let record = decode_record(&stored)?;
            if let Some(Body::Retraction(r)) = &record.body {
                if record.author == author || record.author == self.identity().authority {
                    return Ok(Some(Retracted { id: stored.id, at: record.created_at, reason: r.reason.clone() }));
                }
            }
        }
        Ok(None)
    }

    /// A stored record with its current state.
    pub fn get(&self, id: &RecordId) -> Result<RecordView, NodeError> {
        let stored = self.store.get(id)?.ok_or(NodeError::NotFound(*id))?;
        self.view(stored, unix_now())
    }

    fn view(&self, stored: StoredRecord, now: i64) -> Result<RecordView, NodeError> {
        let record = decode_record(&stored)?;
        let retraction = self.retraction_of(&stored.id, &record.author)?;
        let expired = matches!(&record.body, Some(Body::Indicator(i)) if i.valid_until <= now);
        Ok(RecordView { stored, record, retraction, expired })
    }

    /// A page of records in arrival order; retracted and expired ones are
    /// skipped unless `include_inactive`. Returns the page and the next cursor
    /// (0 when there is nothing after it).
    pub fn list(
        &self,
        kind: Option<RecordKind>,
        after: u64,
        limit: usize,
        include_inactive: bool,
    ) -> Result<(Vec<RecordView>, u64), NodeError> {
        let limit = limit.clamp(1, MAX_LIST_LIMIT);
        let now = unix_now();
        let (mut views, mut bytes, mut cursor) = (Vec::with_capacity(limit), 0, after);
        loop {
            let page = self.store.list(kind, cursor, limit)?;
            let exhausted = page.len() < limit;
            for stored in page {
                let (seq, size) = (stored.seq, stored.envelope.encoded_len());
                let view = self.view(stored, now)?;
                if include_inactive || view.is_active() {
                    if !views.is_empty() && bytes + size > MAX_LIST_PAGE_BYTES {
                        return Ok((views, cursor));
                    }
                    bytes += size;
                    views.push(view);
                }
                cursor = seq;
                if views.len() == limit {
                    return Ok((views, cursor));
                }
            }
            if exhausted {
                return Ok((views, 0));
            }
        }
    }

    /// Counts for `cirfed status`.
    pub fn status(&self) -> NodeStatus {
        let identity = self.identity();
        NodeStatus {
            member_id: identity.member_id.clone(),
            signing_key: hex::encode(identity.signer.public_key().to_bytes()),
            started_at: self.started_at,
            kinds: RecordKind::ALL.iter().map(|k| (*k, self.store.count(*k))).collect(),
            active_indicators: self.engine.read().expect("engine lock").active_len() as u64,
            last_seq: self.store.last_seq(),
            data_dir: self.store.path().display().to_string(),
        }
    }

    /// The roster's view of a signing key (for status and tests).
    pub fn membership(&self, key: &[u8; 32]) -> Option<record::Membership> {
        self.roster.read().expect("roster lock").membership(key)
    }
}
