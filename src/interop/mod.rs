//! The feed in the ecosystem's formats: STIX 2.1 bundles, TAXII 2.1
//! resources, MISP events and feeds, blocklists for firewalls and resolvers,
//! and the CSV / JSON-lines bulk files.
//!
//! Everything here is a pure conversion over domain types: records in, bytes
//! out, and files in, `Draft`s out. Where records come from is the [`Feed`]
//! trait (the node implements it over its store and engine); where bytes go
//! is a `std::io::Write`. The HTTP listener, the local API and the CLI call
//! these functions and add nothing to the formats themselves.

pub mod blocklist;
pub mod bulk;
pub mod draft;
pub mod export;
pub mod misp;
pub mod stix;
pub mod taxii;

use crate::cir::Tlp;
use crate::lookup::Entry;
use crate::normalize::ObservableType;
use crate::proto::Record;
use crate::record::{RecordId, RecordKind};

/// A stored record as the export formats see it: the decoded record and what
/// this node knows about it now.
#[derive(Debug, Clone)]
pub struct FeedRecord {
    /// SHA-256 of the record bytes.
    pub id: RecordId,
    /// Local arrival order.
    pub seq: u64,
    /// When this node stored it, unix microseconds; strictly increasing with
    /// `seq` (TAXII's `date_added`).
    pub added_micros: i64,
    /// The signed record, decoded.
    pub record: Record,
    /// The author's pseudonymous member id, when the roster knows the key
    /// (`None` for the federation authority or an unknown key).
    pub author_member: Option<String>,
    /// The authorised retraction of this record, if any.
    pub retraction: Option<Retracted>,
    /// An indicator past its `valid_until`.
    pub expired: bool,
}

/// A retraction in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retracted {
    /// The retraction record.
    pub id: RecordId,
    /// Its `created_at`, unix seconds.
    pub at: i64,
    /// Its reason.
    pub reason: String,
}

impl FeedRecord {
    /// The record's kind (records in a feed always have a body).
    pub fn kind(&self) -> Option<RecordKind> {
        self.record.body.as_ref().map(RecordKind::of)
    }

    /// The record's TLP; an unknown code reads as RED, the most restrictive.
    pub fn tlp(&self) -> Tlp {
        Tlp::from_code(self.record.tlp).unwrap_or(Tlp::Red)
    }
}

/// One indicator value the node's lookups would report now: active, not
/// expired, accepted by the accept policy, on no warninglist. What blocklists
/// are made of.
#[derive(Debug, Clone)]
pub struct LiveIndicator<'a> {
    /// Canonical value.
    pub value: &'a str,
    /// Its observable type.
    pub kind: ObservableType,
    /// What the engine keeps of the indicator (level, TLP, categories, times).
    pub entry: &'a Entry,
    /// Confidence after sightings and decay, 0-100.
    pub score: u8,
}

/// Where the export formats read records from. Implemented by the node over
/// its store and engine; by a plain list in tests.
pub trait Feed: Send + Sync {
    /// Up to `limit` records with a sequence number above `after`, in order.
    fn records_after(&self, after: u64, limit: usize) -> Result<Vec<FeedRecord>, InteropError>;

    /// The record with this id, if stored.
    fn record(&self, id: &RecordId) -> Result<Option<FeedRecord>, InteropError>;

    /// The highest sequence number added at or before `micros` (0 if none):
    /// where a feed read "added after `micros`" starts.
    fn last_seq_added_by(&self, micros: i64) -> Result<u64, InteropError>;

    /// The highest sequence number stored.
    fn last_seq(&self) -> u64;

    /// The records whose id starts with `prefix` (to find the record behind
    /// a STIX object id, see `stix::ids`).
    fn records_with_prefix(&self, prefix: &[u8]) -> Result<Vec<FeedRecord>, InteropError>;

    /// Calls `visit` with every indicator value lookups would report at
    /// `now`, in no particular order.
    fn for_each_live_indicator(&self, now: i64, visit: &mut dyn FnMut(&LiveIndicator<'_>));
}

/// What an export includes. Every field narrows; the default is everything
/// the format can carry (RED never, whatever the filter says).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Record kinds; empty: all.
    pub kinds: Vec<RecordKind>,
    /// Observable types of indicators; empty: all.
    pub types: Vec<ObservableType>,
    /// Lowest CIR level (indicators and lessons); 0: any.
    pub min_level: u8,
    /// Lowest score (indicators); 0: any.
    pub min_score: u8,
    /// Category codes as a bitmask (bit n: code n); 0: any.
    pub categories: u32,
    /// Most permissive TLP included; `None`: up to AMBER+STRICT.
    pub max_tlp: Option<Tlp>,
    /// Records created at or after this, unix seconds; 0: any.
    pub since: i64,
}

impl Filter {
    /// The most permissive TLP this filter lets out (never RED).
    pub fn tlp_ceiling(&self) -> Tlp {
        self.max_tlp.unwrap_or(Tlp::AmberStrict).min(Tlp::AmberStrict)
    }
}

/// Failures of the format layer: bad input with what and where, or a feed
/// that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InteropError {
    /// The input is not what the format allows.
    #[error("{what}: {reason}")]
    Invalid { what: String, reason: String },
    /// The input is larger than a named limit.
    #[error("{what} is {size} bytes, over the limit of {limit} ({name})")]
    TooLarge { what: String, size: u64, limit: u64, name: &'static str },
    /// The format has no way to say this (a keyed hash as a STIX pattern...).
    #[error("{0}")]
    Unsupported(String),
    /// Reading the feed or a file failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The node could not serve the records.
    #[error("feed: {0}")]
    Feed(String),
}

impl InteropError {
    /// Machine-readable code, as in the CLI's JSON and the HTTP error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            InteropError::Invalid { .. } => "invalid_input",
            InteropError::TooLarge { .. } => "too_large",
            InteropError::Unsupported(_) => "unsupported",
            InteropError::Io(_) => "io",
            InteropError::Feed(_) => "feed",
        }
    }

    /// Shorthand for [`InteropError::Invalid`].
    pub fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Self {
        InteropError::Invalid { what: what.into(), reason: reason.into() }
    }
}
