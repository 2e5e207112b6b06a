//! The node's feed in RocksDB: records by id plus the indexes lookups,
//! listing and reconciliation need.
//!
//! A record and all its index entries go in one `WriteBatch`, written with the
//! WAL (and fsync when configured) before the record is acknowledged, so a
//! crash never leaves half an insert and an acknowledged record survives a kill.

pub mod keys;

use crate::normalize::ObservableType;
use crate::proto::{record::Body, Envelope};
use crate::record::{RecordId, RecordKind, Verified};
use keys::KeyError;
use prost::Message;
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, Direction, IteratorMode, Options, WriteBatch,
    WriteOptions, DB,
};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Records by id: header (seq, received_at) and envelope bytes.
pub const CF_RECORDS: &str = "records";
/// Local sequence -> id: cursors over everything stored.
pub const CF_SEQ: &str = "seq";
/// (kind, seq) -> id: listing one kind in arrival order.
pub const CF_KIND_SEQ: &str = "kind_seq";
/// (created_at, id): the order set reconciliation walks.
pub const CF_TIME: &str = "time";
/// (type, canonical value, id): exact-value index of indicators.
pub const CF_EXACT: &str = "exact";
/// (family, prefix length, network, id): published CIDR ranges.
pub const CF_CIDR: &str = "cidr";
/// (reversed domain, id): published domains, grouped by parent.
pub const CF_DOMAIN: &str = "domain";
/// (target id, retraction id).
pub const CF_RETRACTIONS: &str = "retractions";
/// (indicator id, sighting id).
pub const CF_SIGHTINGS: &str = "sightings";
/// (signing key, member card id).
pub const CF_MEMBERS: &str = "members";
/// (signing key, revocation id).
pub const CF_REVOCATIONS: &str = "revocations";
/// Peer bookkeeping owned by the federation layer.
pub const CF_PEERS: &str = "peers";

/// Every column family with its tuning: `point` families get bloom filters
/// because they are read by exact key; the rest are scanned in order.
const FAMILIES: &[(&str, Tuning)] = &[
    (CF_RECORDS, Tuning::Point),
    (CF_SEQ, Tuning::Scan),
    (CF_KIND_SEQ, Tuning::Scan),
    (CF_TIME, Tuning::Scan),
    (CF_EXACT, Tuning::Scan),
    (CF_CIDR, Tuning::Scan),
    (CF_DOMAIN, Tuning::Scan),
    (CF_RETRACTIONS, Tuning::Scan),
    (CF_SIGHTINGS, Tuning::Scan),
    (CF_MEMBERS, Tuning::Scan),
    (CF_REVOCATIONS, Tuning::Scan),
    (CF_PEERS, Tuning::Point),
];

/// Block cache shared by all column families.
pub const BLOCK_CACHE_BYTES: usize = 64 << 20;

#[derive(Clone, Copy)]
enum Tuning {
    Point,
    Scan,
}

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("data directory {0} is in use by another cirfed process")]
    Locked(PathBuf),
    #[error("rocksdb: {0}")]
    Db(#[from] rocksdb::Error),
    #[error(transparent)]
    Corrupt(#[from] KeyError),
    #[error("stored record {id} is unreadable: {reason}")]
    BadRecord { id: RecordId, reason: String },
}

/// A record as the store holds it.
#[derive(Debug, Clone)]
pub struct StoredRecord {
    /// SHA-256 of the record bytes.
    pub id: RecordId,
    /// Local arrival order; a cursor.
    pub seq: u64,
    /// When this node stored it, unix seconds.
    pub received_at: i64,
    /// When this node stored it, unix microseconds: strictly increasing with
    /// `seq`, so it orders the feed as `seq` does (TAXII's `date_added`).
    pub added_micros: i64,
    /// The signed envelope exactly as received.
    pub envelope: Envelope,
}

/// What an insert did with one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inserted {
    /// The record's id.
    pub id: RecordId,
    /// Its sequence number, or 0 when it was already stored.
    pub seq: u64,
    /// False when the record was already stored (a no-op).
    pub created: bool,
}

/// Microseconds per second.
const MICROS: i64 = 1_000_000;

/// What the store hands out to each new record: its sequence number and its
/// `added_micros`.
struct Clock {
    next_seq: u64,
    last_added: i64,
}

impl Clock {
    /// The next `added_micros` for a record received at `received_at`
    /// (seconds): the start of that second, or just after the last one given,
    /// so records stored in one second get 0, 1, 2... microseconds into it.
    fn added(&mut self, received_at: i64) -> i64 {
        self.last_added = received_at.saturating_mul(MICROS).max(self.last_added + 1);
        self.last_added
    }
}

/// The RocksDB feed.
pub struct Store {
    db: DB,
    /// fsync each acknowledged write, not only append it to the WAL.
    sync_writes: bool,
    /// Next sequence number and the last `added_micros` given; the lock also
    /// makes "already stored?" and "assign a seq" one step for concurrent writers.
    next_seq: Mutex<Clock>,
    /// Records per kind, indexed by kind code; kept for a cheap status.
    counts: [AtomicU64; 7],
    path: PathBuf,
}

impl Store {
    /// Opens (or creates) the store in `path`.
    pub fn open(path: &Path, sync_writes: bool) -> Result<Store, StoreError> {
        let cache = Cache::new_lru_cache(BLOCK_CACHE_BYTES);
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        options.set_max_background_jobs(2);
        options.set_keep_log_file_num(4);
        let families =
            FAMILIES.iter().map(|(name, tuning)| ColumnFamilyDescriptor::new(*name, family_options(*tuning, &cache)));
        let db = DB::open_cf_descriptors(&options, path, families).map_err(|e| open_error(e, path))?;
        let store = Store {
            db,
            sync_writes,
            next_seq: Mutex::new(Clock { next_seq: 1, last_added: 0 }),
            counts: Default::default(),
            path: path.to_path_buf(),
        };
        store.load_counters()?;
        Ok(store)
    }

    /// Where the store lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn cf(&self, name: &str) -> &ColumnFamily {
        self.db.cf_handle(name).expect("every column family is opened")
    }

    fn load_counters(&self) -> Result<(), StoreError> {
        for item in self.db.iterator_cf(self.cf(CF_KIND_SEQ), IteratorMode::Start) {
            let (key, _) = item?;
            let (kind, _) = keys::decode_kind_seq(&key)?;
            if let Some(count) = self.counts.get(kind as usize) {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Some(item) = self.db.iterator_cf(self.cf(CF_SEQ), IteratorMode::End).next() {
            let (key, _) = item?;
            let last = keys::decode_seq(&key)?;
            let last_added = self.added_at(last)?.unwrap_or(0);
            *self.next_seq.lock().expect("seq lock") = Clock { next_seq: last + 1, last_added };
        }
        Ok(())
    }

    /// Stores verified records with their index entries in one durable batch.
    /// Records already stored (or repeated in `records`) are reported as not created.
    pub fn insert(&self, records: &[Verified], received_at: i64) -> Result<Vec<Inserted>, StoreError> {
        let mut clock = self.next_seq.lock().expect("seq lock");
        let ids: Vec<RecordId> = records.iter().map(|r| r.id).collect();
        let stored = self.contains_many(&ids)?;
        let mut seen = HashSet::with_capacity(records.len());
        let mut entries = Entries::new();
        let mut outcomes = Vec::with_capacity(records.len());
        let mut seq = clock.next_seq;
        // Given out only once the batch is written.
        let mut next_clock = Clock { next_seq: seq, last_added: clock.last_added };
        for (record, already) in records.iter().zip(stored) {
            if already || !seen.insert(record.id) {
                outcomes.push(Inserted { id: record.id, seq: 0, created: false });
                continue;
            }
            add_entries(&mut entries, record, seq, next_clock.added(received_at));
            outcomes.push(Inserted { id: record.id, seq, created: true });
            seq += 1;
        }
        if entries.is_empty() {
            return Ok(outcomes);
        }
        // The memtable inserts a run of ascending keys much faster than the
        // same keys in random order (it reuses its skiplist position).
        entries.sort_unstable_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let mut batch = WriteBatch::default();
        for (cf, key, value) in &entries {
            batch.put_cf(self.cf(cf), key, value);
        }
        let mut write_options = WriteOptions::default();
        write_options.set_sync(self.sync_writes);
        self.db.write_opt(batch, &write_options)?;
        next_clock.next_seq = seq;
        *clock = next_clock;
        for (record, outcome) in records.iter().zip(&outcomes) {
            if outcome.created {
                self.counts[record.kind.code() as usize].fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(outcomes)
    }

    /// Which of `ids` are stored.
    pub fn contains_many(&self, ids: &[RecordId]) -> Result<Vec<bool>, StoreError> {
        let cf = self.cf(CF_RECORDS);
        self.db
            .batched_multi_get_cf(cf, ids.iter().map(|id| &id.0), false)
            .into_iter()
            .map(|r| Ok(r?.is_some()))
            .collect()
    }

    /// The record with this id.
    pub fn get(&self, id: &RecordId) -> Result<Option<StoredRecord>, StoreError> {
        match self.db.get_pinned_cf(self.cf(CF_RECORDS), id.0)? {
            Some(value) => Ok(Some(decode_stored(*id, &value)?)),
            None => Ok(None),
        }
    }

    /// Records with these ids, in order, skipping ids not stored.
    pub fn get_many(&self, ids: &[RecordId]) -> Result<Vec<StoredRecord>, StoreError> {
        let cf = self.cf(CF_RECORDS);
        let values = self.db.batched_multi_get_cf(cf, ids.iter().map(|id| &id.0), false);
        let mut records = Vec::with_capacity(ids.len());
        for (id, value) in ids.iter().zip(values) {
            if let Some(value) = value? {
                records.push(decode_stored(*id, &value)?);
            }
        }
        Ok(records)
    }

    /// Up to `limit` records after sequence `after`, of one kind or of all.
    pub fn list(&self, kind: Option<RecordKind>, after: u64, limit: usize) -> Result<Vec<StoredRecord>, StoreError> {
        let mut ids = Vec::with_capacity(limit);
        self.scan_ids(kind, after, |id| {
            ids.push(id);
            ids.len() < limit
        })?;
        self.get_many(&ids)
    }

    /// Calls `visit` with ids in sequence order after `after` until it returns false.
    pub fn scan_ids(
        &self,
        kind: Option<RecordKind>,
        after: u64,
        mut visit: impl FnMut(RecordId) -> bool,
    ) -> Result<(), StoreError> {
        let start = after.saturating_add(1);
        let (cf, from, prefix): (_, Vec<u8>, Vec<u8>) = match kind {
            Some(kind) => (CF_KIND_SEQ, keys::kind_seq(kind.code(), start).to_vec(), vec![kind.code()]),
            None => (CF_SEQ, keys::seq(start).to_vec(), vec![]),
        };
        let iter = self.db.iterator_cf(self.cf(cf), IteratorMode::From(&from, Direction::Forward));
        for item in iter {
            let (key, value) = item?;
            if !key.starts_with(&prefix) || !visit(keys::record_id(&value)?) {
                break;
            }
        }
        Ok(())
    }

    /// Ids of the records filed under `subject` in a pair family
    /// (retractions of a record, cards of a key, ...).
    pub fn pairs(&self, cf: &str, subject: &[u8; keys::ID_LEN]) -> Result<Vec<RecordId>, StoreError> {
        let mut ids = Vec::new();
        for item in self.db.prefix_iterator_cf(self.cf(cf), subject) {
            let (key, _) = item?;
            if !key.starts_with(subject) {
                break;
            }
            ids.push(keys::decode_pair(&key)?.1);
        }
        Ok(ids)
    }

    /// How many records of a kind are stored.
    pub fn count(&self, kind: RecordKind) -> u64 {
        self.counts[kind.code() as usize].load(Ordering::Relaxed)
    }

    /// The highest sequence number assigned.
    pub fn last_seq(&self) -> u64 {
        self.next_seq.lock().expect("seq lock").next_seq - 1
    }

    /// Records whose id starts with `prefix`, at most `limit`.
    pub fn with_id_prefix(&self, prefix: &[u8], limit: usize) -> Result<Vec<StoredRecord>, StoreError> {
        let mut records = Vec::new();
        let iter = self.db.iterator_cf(self.cf(CF_RECORDS), IteratorMode::From(prefix, Direction::Forward));
        for item in iter.take(limit) {
            let (key, value) = item?;
            if !key.starts_with(prefix) {
                break;
            }
            records.push(decode_stored(keys::record_id(&key)?, &value)?);
        }
        Ok(records)
    }

    /// The `added_micros` of the record with sequence number `seq`.
    pub fn added_at(&self, seq: u64) -> Result<Option<i64>, StoreError> {
        let Some(id) = self.db.get_pinned_cf(self.cf(CF_SEQ), keys::seq(seq))? else { return Ok(None) };
        let id = keys::record_id(&id)?;
        Ok(self.get(&id)?.map(|stored| stored.added_micros))
    }

    /// The highest sequence number whose record was added at or before
    /// `micros` (0 when none was): where a TAXII `added_after` starts.
    /// Sequence numbers have no gaps and `added_micros` grows with them, so
    /// this is a binary search of a few dozen reads.
    pub fn last_seq_added_by(&self, micros: i64) -> Result<u64, StoreError> {
        let (mut low, mut high) = (0, self.last_seq());
        while low < high {
            let middle = low + (high - low).div_ceil(2);
            match self.added_at(middle)? {
                Some(added) if added <= micros => low = middle,
                _ => high = middle - 1,
            }
        }
        Ok(low)
    }

    /// Bytes of live SST files over every column family (what the feed costs
    /// on disk once flushed, without logs).
    pub fn sst_bytes(&self) -> Result<u64, StoreError> {
        let mut total = 0;
        for (name, _) in FAMILIES {
            total += self.db.property_int_value_cf(self.cf(name), "rocksdb.total-sst-files-size")?.unwrap_or(0);
        }
        Ok(total)
    }

    /// Flushes memtables to SST files (for size measurements and clean shutdown).
    pub fn flush(&self) -> Result<(), StoreError> {
        for (name, _) in FAMILIES {
            self.db.flush_cf(self.cf(name))?;
        }
        Ok(())
    }
}

/// The key-value pairs of one insert, by column family.
type Entries = Vec<(&'static str, Vec<u8>, Vec<u8>)>;

/// A record and its index entries.
fn add_entries(entries: &mut Entries, record: &Verified, seq: u64, added_micros: i64) {
    let id = &record.id;
    let envelope = record.envelope.encode_to_vec();
    entries.push((CF_RECORDS, id.0.to_vec(), keys::record_value(seq, added_micros, &envelope)));
    entries.push((CF_SEQ, keys::seq(seq).to_vec(), id.0.to_vec()));
    entries.push((CF_KIND_SEQ, keys::kind_seq(record.kind.code(), seq).to_vec(), id.0.to_vec()));
    entries.push((CF_TIME, keys::time_id(record.record.created_at, id).to_vec(), Vec::new()));
    match record.body() {
        Body::Indicator(indicator) => add_indicator_entries(entries, indicator.r#type, &indicator.value, id),
        Body::Retraction(r) => add_pair(entries, CF_RETRACTIONS, &r.target_id, id),
        Body::Sighting(s) => add_pair(entries, CF_SIGHTINGS, &s.indicator_id, id),
        Body::MemberCard(card) => add_pair(entries, CF_MEMBERS, &card.signing_key, id),
        Body::MemberRevocation(r) => add_pair(entries, CF_REVOCATIONS, &r.signing_key, id),
        Body::Lesson(_) => {}
    }
}

fn add_indicator_entries(entries: &mut Entries, kind: i32, value: &str, id: &RecordId) {
    let code = kind as u8;
    entries.push((CF_EXACT, keys::exact(code, value, id), Vec::new()));
    match ObservableType::from_code(code) {
        Some(ObservableType::Cidr) => {
            if let Ok(net) = value.parse::<ipnet::IpNet>() {
                entries.push((CF_CIDR, keys::cidr(net.network(), net.prefix_len(), id), Vec::new()));
            }
        }
        Some(ObservableType::Domain) => entries.push((CF_DOMAIN, keys::domain(value, id), Vec::new())),
        _ => {}
    }
}

fn add_pair(entries: &mut Entries, cf: &'static str, subject: &[u8], id: &RecordId) {
    // Validation guarantees 32-byte subjects; anything else is not indexed.
    if let Ok(subject) = <[u8; keys::ID_LEN]>::try_from(subject) {
        entries.push((cf, keys::pair(&subject, id).to_vec(), Vec::new()));
    }
}

fn family_options(tuning: Tuning, cache: &Cache) -> Options {
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(cache);
    let mut options = Options::default();
    options.set_compression_type(rocksdb::DBCompressionType::Lz4);
    if let Tuning::Point = tuning {
        table.set_bloom_filter(10.0, false);
    }
    options.set_block_based_table_factory(&table);
    options
}

fn open_error(error: rocksdb::Error, path: &Path) -> StoreError {
    // RocksDB reports a held LOCK file as an I/O error; name it for the user.
    if error.to_string().contains("lock") {
        StoreError::Locked(path.to_path_buf())
    } else {
        StoreError::Db(error)
    }
}

fn decode_stored(id: RecordId, value: &[u8]) -> Result<StoredRecord, StoreError> {
    let (seq, added_micros, envelope) = keys::decode_record_value(value)?;
    let envelope = Envelope::decode(envelope).map_err(|e| StoreError::BadRecord { id, reason: e.to_string() })?;
    Ok(StoredRecord { id, seq, received_at: added_micros.div_euclid(MICROS), added_micros, envelope })
}

#[cfg(test)]
mod tests {
    use super::Clock;

    #[test]
    fn records_stored_in_one_second_get_distinct_increasing_microseconds() {
        let mut clock = Clock { next_seq: 1, last_added: 0 };
        assert_eq!(clock.added(1_800_000_000), 1_800_000_000_000_000);
        assert_eq!(clock.added(1_800_000_000), 1_800_000_000_000_001);
        assert_eq!(clock.added(1_800_000_001), 1_800_000_001_000_000);
        // A clock that steps back never reorders the feed.
        assert_eq!(clock.added(1_799_999_000), 1_800_000_001_000_001);
    }
}
