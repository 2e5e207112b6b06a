//! The node as a [`Feed`] for the export formats: records in arrival order
//! with their state, and the live indicator values blocklists are made of.

use super::{decode_record, unix_now, Node, NodeError};
use crate::decay::{self, SightingBook};
use crate::interop::{Feed, FeedRecord, InteropError, LiveIndicator};
use crate::lookup::Entry;
use crate::normalize::Observable;
use crate::proto::record::Body;
use crate::record::{RecordId, Trust};
use crate::store::StoredRecord;

/// Records read for one id prefix: a 6-byte prefix of SHA-256 ids is shared
/// by two records only by chance, so more than a handful means a short prefix.
const MAX_PREFIX_MATCHES: usize = 16;

impl From<NodeError> for InteropError {
    fn from(e: NodeError) -> Self {
        InteropError::Feed(e.to_string())
    }
}

impl Node {
    fn feed_record(&self, stored: StoredRecord, now: i64) -> Result<FeedRecord, NodeError> {
        let record = decode_record(&stored)?;
        let retraction = self.retraction_of(&stored.id, &record.author)?;
        let expired = matches!(&record.body, Some(Body::Indicator(i)) if i.valid_until <= now);
        let author_member = <[u8; 32]>::try_from(record.author.as_slice())
            .ok()
            .and_then(|key| self.roster.read().expect("roster lock").membership(&key))
            .map(|m| m.member_id);
        Ok(FeedRecord {
            id: stored.id,
            seq: stored.seq,
            added_micros: stored.added_micros,
            record,
            author_member,
            retraction,
            expired,
        })
    }
}

impl Node {
    /// Whether lookups would report this record now: any record but an
    /// indicator always; an indicator when the accept policy takes its score
    /// and no warninglist holds its value (what a SIEM pulling the feed acts
    /// on, as `lookup` would).
    pub fn reports(&self, record: &FeedRecord, now: i64) -> bool {
        let Some(Body::Indicator(indicator)) = &record.record.body else { return true };
        let engine = self.engine.read().expect("engine lock");
        let Some(entry) = engine.entry_of(&record.id) else { return true };
        let sightings = self.sightings.read().expect("sightings lock");
        self.accepted_now(entry, &indicator.value, &sightings, now).is_some()
    }

    /// The score of an indicator when the accept policy takes it and no
    /// warninglist holds its value; `None` when lookups hold it back.
    fn accepted_now(&self, entry: &Entry, value: &str, sightings: &SightingBook, now: i64) -> Option<u8> {
        let score = decay::score(entry.evidence(), &sightings.of(&entry.id), now);
        if !self.accept.accepts(entry, score) {
            return None;
        }
        let warninglists = self.accept.warninglists();
        let listed = !warninglists.is_empty()
            && warninglists.check(&Observable { kind: entry.kind, value: value.to_string() }).is_some();
        (!listed).then_some(score)
    }
}

impl Feed for Node {
    fn records_after(&self, after: u64, limit: usize) -> Result<Vec<FeedRecord>, InteropError> {
        let now = unix_now();
        let page = self.store.list(None, after, limit).map_err(NodeError::from)?;
        Ok(page.into_iter().map(|stored| self.feed_record(stored, now)).collect::<Result<_, _>>()?)
    }

    fn record(&self, id: &RecordId) -> Result<Option<FeedRecord>, InteropError> {
        match self.store.get(id).map_err(NodeError::from)? {
            Some(stored) => Ok(Some(self.feed_record(stored, unix_now())?)),
            None => Ok(None),
        }
    }

    fn last_seq_added_by(&self, micros: i64) -> Result<u64, InteropError> {
        Ok(self.store.last_seq_added_by(micros).map_err(NodeError::from)?)
    }

    fn last_seq(&self) -> u64 {
        self.store.last_seq()
    }

    fn records_with_prefix(&self, prefix: &[u8]) -> Result<Vec<FeedRecord>, InteropError> {
        let now = unix_now();
        let found = self.store.with_id_prefix(prefix, MAX_PREFIX_MATCHES).map_err(NodeError::from)?;
        Ok(found.into_iter().map(|stored| self.feed_record(stored, now)).collect::<Result<_, _>>()?)
    }

    fn for_each_live_indicator(&self, now: i64, visit: &mut dyn FnMut(&LiveIndicator<'_>)) {
        let engine = self.engine.read().expect("engine lock");
        let sightings = self.sightings.read().expect("sightings lock");
        engine.for_each_value(|value, entry| {
            if !entry.active || entry.valid_until <= now {
                return;
            }
            if let Some(score) = self.accepted_now(entry, value, &sightings, now) {
                visit(&LiveIndicator { value, kind: entry.kind, entry, score });
            }
        });
    }
}
