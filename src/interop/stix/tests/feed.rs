//! A [`Feed`] over a list of records, and records to put in it.

use crate::cir::Tlp;
use crate::interop::{Feed, FeedRecord, InteropError, LiveIndicator, Retracted};
use crate::proto::record::Body;
use crate::proto::{Indicator, Record};
use crate::record::RecordId;
use prost::Message;
use std::sync::atomic::{AtomicUsize, Ordering};

/// 2026-01-01T00:00:00Z: when the test records are made.
pub const T0: i64 = 1_767_225_600;
/// An hour, the default coarsening of `created_at`.
pub const HOUR: i64 = 3_600;
/// The member the test records are by.
pub const MEMBER: &str = "m-3f2a9c";

/// Records in arrival order; counts the reads so tests can see an export stream.
#[derive(Default)]
pub struct VecFeed {
    pub records: Vec<FeedRecord>,
    /// `records_after` calls, and the largest `limit` asked for.
    pub reads: AtomicUsize,
    pub largest_read: AtomicUsize,
}

impl VecFeed {
    /// Appends a record with the next sequence number; returns its id.
    pub fn push(&mut self, mut record: FeedRecord) -> RecordId {
        record.seq = self.records.len() as u64 + 1;
        record.added_micros = record.seq as i64;
        let id = record.id;
        self.records.push(record);
        id
    }

    /// Marks `target` as retracted by `retraction` (as the node does when the retraction is authorised).
    pub fn retract(&mut self, target: &RecordId, retraction: &RecordId) {
        let at = self.records.iter().find(|r| r.id == *retraction).expect("retraction stored").record.created_at;
        let target = self.records.iter_mut().find(|r| r.id == *target).expect("target stored");
        target.retraction = Some(Retracted { id: *retraction, at, reason: "wrong".into() });
    }
}

impl Feed for VecFeed {
    fn records_after(&self, after: u64, limit: usize) -> Result<Vec<FeedRecord>, InteropError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.largest_read.fetch_max(limit, Ordering::Relaxed);
        Ok(self.records.iter().filter(|r| r.seq > after).take(limit).cloned().collect())
    }

    fn record(&self, id: &RecordId) -> Result<Option<FeedRecord>, InteropError> {
        Ok(self.records.iter().find(|r| r.id == *id).cloned())
    }

    fn last_seq_added_by(&self, micros: i64) -> Result<u64, InteropError> {
        Ok(self.records.iter().filter(|r| r.added_micros <= micros).map(|r| r.seq).max().unwrap_or(0))
    }

    fn last_seq(&self) -> u64 {
        self.records.last().map_or(0, |r| r.seq)
    }

    fn records_with_prefix(&self, prefix: &[u8]) -> Result<Vec<FeedRecord>, InteropError> {
        Ok(self.records.iter().filter(|r| r.id.0.starts_with(prefix)).cloned().collect())
    }

    fn for_each_live_indicator(&self, _now: i64, _visit: &mut dyn FnMut(&LiveIndicator<'_>)) {}
}

/// A record by `member` (`None`: the authority), its id the SHA-256 of its bytes.
pub fn record(body: Body, tlp: Tlp, created_at: i64, member: Option<&str>) -> FeedRecord {
    let record = Record { version: 1, author: vec![7; 32], created_at, tlp: tlp.code(), body: Some(body) };
    FeedRecord {
        id: RecordId::of(&record.encode_to_vec()),
        seq: 0,
        added_micros: 0,
        record,
        author_member: member.map(str::to_owned),
        retraction: None,
        expired: false,
    }
}

/// An indicator body with typical fields.
pub fn indicator(kind: crate::normalize::ObservableType, value: &str) -> Indicator {
    Indicator {
        r#type: i32::from(kind.code()),
        value: value.into(),
        cir_level: 3,
        confidence: 70,
        valid_until: T0 + 30 * 86_400,
        ..Indicator::default()
    }
}

/// The indicator record of `indicator` at GREEN by [`MEMBER`].
pub fn indicator_record(indicator: Indicator, created_at: i64) -> FeedRecord {
    record(Body::Indicator(indicator), Tlp::Green, created_at, Some(MEMBER))
}
