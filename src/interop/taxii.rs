//! TAXII 2.1 resources over the feed: collections per audience, the objects,
//! manifest and versions listings with their filters, and the paging cursor.
//!
//! A collection lists STIX objects in the order the node stored the records
//! behind them (`date_added`, which the store makes strictly increasing, then
//! the object's place among its record's objects). The `next` cursor carries
//! that position together with the listing's collection and filters and is
//! authenticated: a client that sends it alone gets the filtered listing it
//! started, and one that alters it is told so instead of getting wrong pages.

use super::stix::{self, ids, StixObject};
use super::{Feed, FeedRecord, InteropError};
use crate::cir::Tlp;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::BTreeSet;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The media type of every TAXII 2.1 request and response body.
pub const TAXII_MEDIA_TYPE: &str = "application/taxii+json;version=2.1";
/// The media type of the STIX content a collection holds.
pub const STIX_MEDIA_TYPE: &str = "application/stix+json;version=2.1";
/// Records read for one page at most: a page of a narrow collection (or a
/// filter few objects pass) ends early, with `more` and a `next`, rather
/// than reading the whole feed in one request.
pub const MAX_RECORDS_SCANNED_PER_PAGE: usize = 20_000;
/// Records read from the feed per step while filling a page.
const READ_CHUNK: usize = 512;
/// Most values in one `match[...]` parameter.
pub const MAX_MATCH_VALUES: usize = 100;

/// A collection: the slice of the feed one audience may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Collection {
    /// Short name, also accepted in URLs in place of the id.
    pub alias: &'static str,
    /// Shown to TAXII clients.
    pub title: &'static str,
    /// Shown to TAXII clients.
    pub description: &'static str,
    /// The most permissive TLP listed (RED never is).
    pub max_tlp: Tlp,
    /// TLP of posted objects that carry no marking.
    pub default_tlp: Tlp,
}

/// The node's collections.
pub const COLLECTIONS: [Collection; 2] = [
    Collection {
        alias: "analysts",
        title: "cirfed: everything this node shows its analysts",
        description: "Indicators, lessons learned, sightings and retractions up to TLP:AMBER+STRICT. TLP:RED never leaves the node.",
        max_tlp: Tlp::AmberStrict,
        default_tlp: Tlp::Amber,
    },
    Collection {
        alias: "community",
        title: "cirfed: TLP:CLEAR and TLP:GREEN",
        description: "What may be shared with the whole community: TLP:CLEAR and TLP:GREEN records only.",
        max_tlp: Tlp::Green,
        default_tlp: Tlp::Green,
    },
];

impl Collection {
    /// The collection's id: a UUID fixed by its alias.
    pub fn id(&self) -> String {
        ids::named_uuid("cirfed/taxii-collection", self.alias).hyphenated().to_string()
    }

    /// The collection with this id or alias.
    pub fn find(id_or_alias: &str) -> Option<&'static Collection> {
        COLLECTIONS.iter().find(|c| c.alias == id_or_alias || c.id() == id_or_alias)
    }

    /// Whether a record of this TLP belongs here.
    pub fn admits(&self, tlp: Tlp) -> bool {
        tlp <= self.max_tlp && tlp.leaves_node()
    }
}

/// `match[version]`: which versions of each object a listing returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Versions {
    /// `all`.
    pub all: bool,
    /// `first`.
    pub first: bool,
    /// `last` (the default).
    pub last: bool,
    /// Exact `modified` timestamps, as given.
    pub at: BTreeSet<String>,
}

/// A listing request's parameters, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// `added_after`, unix microseconds.
    pub added_after: Option<i64>,
    /// `limit`, capped by the server.
    pub limit: usize,
    /// `next`, as given.
    pub next: Option<String>,
    /// `match[id]`.
    pub ids: BTreeSet<String>,
    /// `match[type]`.
    pub types: BTreeSet<String>,
    /// `match[version]`.
    pub versions: Versions,
    /// `match[spec_version]`.
    pub spec_versions: BTreeSet<String>,
    /// The filter parameters as given (all but `limit` and `next`): what a
    /// cursor carries to the next page.
    pub filter_params: Vec<(String, String)>,
}

impl Query {
    /// Parses query parameters; `limit` is capped at `max_limit` and
    /// defaults to it.
    pub fn parse(params: &[(String, String)], max_limit: usize) -> Result<Query, InteropError> {
        let mut query = Query {
            added_after: None,
            limit: max_limit,
            next: None,
            ids: BTreeSet::new(),
            types: BTreeSet::new(),
            versions: Versions::default(),
            spec_versions: BTreeSet::new(),
            filter_params: params.iter().filter(|(k, _)| k != "limit" && k != "next").cloned().collect(),
        };
        for (key, value) in params {
            match key.as_str() {
                "added_after" => query.added_after = Some(parse_timestamp("added_after", value)?),
                "limit" => {
                    let limit: usize = value.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                        InteropError::invalid("limit", format!("{value:?} is not a positive integer"))
                    })?;
                    query.limit = limit.min(max_limit);
                }
                "next" => query.next = Some(value.clone()).filter(|v| !v.is_empty()),
                "match[id]" => query.ids.extend(values(key, value)?),
                "match[type]" => query.types.extend(values(key, value)?),
                "match[spec_version]" => query.spec_versions.extend(values(key, value)?),
                "match[version]" => {
                    for version in values(key, value)? {
                        match version.as_str() {
                            "all" => query.versions.all = true,
                            "first" => query.versions.first = true,
                            "last" => query.versions.last = true,
                            _ => {
                                parse_timestamp("match[version]", &version)?;
                                query.versions.at.insert(version);
                            }
                        }
                    }
                }
                other => {
                    return Err(InteropError::invalid(
                        format!("query parameter {other:?}"),
                        "expected added_after, limit, next or match[id|type|version|spec_version]",
                    ))
                }
            }
        }
        if query.versions == Versions::default() {
            query.versions.last = true;
        }
        Ok(query)
    }

    /// Whether both ask for the same `match[...]` filters.
    pub fn same_matches(&self, other: &Query) -> bool {
        (&self.ids, &self.types, &self.versions, &self.spec_versions)
            == (&other.ids, &other.types, &other.versions, &other.spec_versions)
    }

    /// Whether any `match[...]` parameter was given.
    pub fn has_matches(&self) -> bool {
        self.filter_params.iter().any(|(k, _)| k.starts_with("match["))
    }

    /// Whether an object passes the `match[...]` filters. `first` and
    /// `last` say whether it is its object's first or latest version.
    fn matches(&self, object: &StixObject, first: bool, last: bool) -> bool {
        let v = &self.versions;
        let version_ok = v.all || (v.first && first) || (v.last && last) || v.at.contains(&object.version);
        version_ok
            && (self.ids.is_empty() || self.ids.contains(&object.id))
            && (self.types.is_empty() || self.types.contains(object.kind))
            && (self.spec_versions.is_empty() || self.spec_versions.contains("2.1"))
    }
}

fn values(key: &str, value: &str) -> Result<Vec<String>, InteropError> {
    let items: Vec<String> = value.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect();
    if items.is_empty() {
        return Err(InteropError::invalid(key, "is empty"));
    }
    if items.len() > MAX_MATCH_VALUES {
        return Err(InteropError::invalid(
            key,
            format!("{} values, over the limit of {MAX_MATCH_VALUES}", items.len()),
        ));
    }
    Ok(items)
}

/// Where a listing resumes: the record with sequence number `seq` (0: the
/// collection's preamble), skipping its first `skip` objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Position {
    /// Record sequence number; 0 is the preamble.
    pub seq: u64,
    /// Objects of that record already returned.
    pub skip: u32,
}

type CursorMac = Hmac<Sha256>;
/// Bytes of the cursor's authentication tag.
const CURSOR_TAG_LEN: usize = 16;

/// What a `next` cursor holds: where the listing resumes, and the collection
/// and filters of the listing it continues. Those travel in the cursor, so a
/// client that sends `next` alone on later pages (Elastic's TAXII input does)
/// still gets the filtered listing it started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Where the next page starts.
    pub position: Position,
    /// The collection's alias.
    pub collection: String,
    /// The listing's filter parameters (`added_after`, `match[...]`), as given.
    pub filters: Vec<(String, String)>,
}

/// Encodes a cursor, authenticated under `key`.
pub fn encode_cursor(key: &[u8; 32], cursor: &Cursor) -> String {
    let payload = serde_json::json!([cursor.position.seq, cursor.position.skip, cursor.collection, cursor.filters]);
    let mut bytes = payload.to_string().into_bytes();
    let tag = cursor_tag(key, &bytes);
    bytes.extend_from_slice(&tag);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes a cursor made by [`encode_cursor`] under the same key.
pub fn decode_cursor(key: &[u8; 32], cursor: &str) -> Result<Cursor, InteropError> {
    let bad = |reason: &str| InteropError::invalid("next", reason.to_string());
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim()).map_err(|_| bad("not a cursor this server made"))?;
    if bytes.len() <= CURSOR_TAG_LEN {
        return Err(bad("not a cursor this server made"));
    }
    let (body, tag) = bytes.split_at(bytes.len() - CURSOR_TAG_LEN);
    if cursor_tag(key, body)[..] != *tag {
        return Err(bad(
            "the cursor was altered or was made by an earlier run of the node (start again from added_after)",
        ));
    }
    let (seq, skip, collection, filters): (u64, u32, String, Vec<(String, String)>) =
        serde_json::from_slice(body).map_err(|_| bad("not a cursor this server made"))?;
    Ok(Cursor { position: Position { seq, skip }, collection, filters })
}

fn cursor_tag(key: &[u8; 32], body: &[u8]) -> [u8; CURSOR_TAG_LEN] {
    let mut mac = CursorMac::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(body);
    mac.finalize().into_bytes()[..CURSOR_TAG_LEN].try_into().expect("tag is 32 bytes")
}

/// One object of a listing with its `date_added`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The object.
    pub object: StixObject,
    /// When the node stored the record behind it (microseconds).
    pub date_added: i64,
}

/// A page of a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// The objects, in collection order.
    pub objects: Vec<Listed>,
    /// Where the next page starts, when there may be more.
    pub next: Option<Position>,
}

/// Which objects of the feed a page may hold, beyond the query's filters.
pub trait Admission {
    /// Whether `record`'s objects may be listed (its TLP, the accept policy).
    fn admits(&self, record: &FeedRecord) -> bool;
}

/// Lists a page of `collection` from `from` (or from `added_after`).
pub fn list(
    feed: &dyn Feed,
    admission: &dyn Admission,
    query: &Query,
    from: Option<Position>,
) -> Result<Page, InteropError> {
    let mut position = match (from, query.added_after) {
        (Some(position), _) => position,
        (None, Some(after)) => Position { seq: first_after(feed, after)?, skip: 0 },
        (None, None) => Position::default(),
    };
    let mut page = Page::default();
    if position.seq == 0 {
        let preamble = stix::preamble();
        for (n, object) in preamble.iter().enumerate().skip(position.skip as usize) {
            let date_added = preamble_added(object);
            if query.added_after.is_some_and(|after| date_added <= after) || !query.matches(object, true, true) {
                continue;
            }
            if page.objects.len() == query.limit {
                page.next = Some(Position { seq: 0, skip: n as u32 });
                return Ok(page);
            }
            page.objects.push(Listed { object: object.clone(), date_added });
        }
        position = Position { seq: 1, skip: 0 };
    }
    let mut scanned = 0;
    loop {
        let records = feed.records_after(position.seq - 1, READ_CHUNK)?;
        if records.is_empty() {
            return Ok(page);
        }
        for record in records {
            if scanned == MAX_RECORDS_SCANNED_PER_PAGE {
                page.next = Some(Position { seq: record.seq, skip: 0 });
                return Ok(page);
            }
            scanned += 1;
            let skip = if record.seq == position.seq { position.skip } else { 0 };
            if let Some(next) = add_record(feed, admission, query, &record, skip, &mut page)? {
                page.next = Some(next);
                return Ok(page);
            }
            position = Position { seq: record.seq + 1, skip: 0 };
        }
    }
}

/// Adds a record's objects to the page from its `skip`th; returns where to
/// resume when the page filled up before the record's last object.
fn add_record(
    feed: &dyn Feed,
    admission: &dyn Admission,
    query: &Query,
    record: &FeedRecord,
    skip: u32,
    page: &mut Page,
) -> Result<Option<Position>, InteropError> {
    if !admission.admits(record) {
        return Ok(None);
    }
    let Ok(objects) = stix::objects_of(feed, record)? else { return Ok(None) };
    for (n, object) in objects.into_iter().enumerate().skip(skip as usize) {
        let (first, last) = version_place(record);
        if !query.matches(&object, first, last) {
            continue;
        }
        if page.objects.len() == query.limit {
            return Ok(Some(Position { seq: record.seq, skip: n as u32 }));
        }
        page.objects.push(Listed { object, date_added: record.added_micros });
    }
    Ok(None)
}

/// Whether an object from `record` is its object's first and its latest
/// version. A retracted record's object is followed by the revoked version
/// its retraction adds; a revoked version is never the first; a superseding
/// indicator is a later version of the object it supersedes.
fn version_place(record: &FeedRecord) -> (bool, bool) {
    use crate::proto::record::Body;
    match &record.record.body {
        Some(Body::Retraction(_)) => (false, true),
        Some(Body::Indicator(i)) if !i.supersedes.is_empty() => (false, record.retraction.is_none()),
        _ => (true, record.retraction.is_none()),
    }
}

/// The first sequence number added after `after` microseconds.
fn first_after(feed: &dyn Feed, after: i64) -> Result<u64, InteropError> {
    Ok(feed.last_seq_added_by(after)? + 1)
}

/// The `date_added` of a preamble object: its `created` time, before any record.
fn preamble_added(object: &StixObject) -> i64 {
    parse_timestamp("created", &object.version).unwrap_or(0)
}

/// Every version of one object in `collection`, by its id: the record
/// behind it (found by the id's prefix) and the revoked version of its
/// retraction. Versions added by superseding records are found by listing.
pub fn object_versions(
    feed: &dyn Feed,
    admission: &dyn Admission,
    query: &Query,
    object_id: &str,
) -> Result<Vec<Listed>, InteropError> {
    if let Some(object) = stix::preamble().into_iter().find(|o| o.id == object_id) {
        let date_added = preamble_added(&object);
        return Ok(if query.matches(&object, true, true) { vec![Listed { object, date_added }] } else { vec![] });
    }
    let Some((_, uuid)) = ids::parse_object_id(object_id) else {
        return Err(InteropError::invalid("object id", format!("{object_id:?} is not <type>--<uuid>")));
    };
    let mut found = Vec::new();
    for record in feed.records_with_prefix(&ids::record_prefix(&uuid))? {
        if !ids::is_record_of(&uuid, &record.id) {
            continue;
        }
        let mut records = vec![record.clone()];
        if let Some(retraction) = &record.retraction {
            records.extend(feed.record(&retraction.id)?);
        }
        for record in records.iter().filter(|r| admission.admits(r)) {
            let Ok(objects) = stix::objects_of(feed, record)? else { continue };
            for object in objects.into_iter().filter(|o| o.id == object_id) {
                let (first, last) = version_place(record);
                if query.matches(&object, first, last) {
                    found.push(Listed { object, date_added: record.added_micros });
                }
            }
        }
    }
    Ok(found)
}

/// A STIX / TAXII timestamp (RFC 3339, any precision) as unix microseconds.
pub fn parse_timestamp(field: &str, text: &str) -> Result<i64, InteropError> {
    OffsetDateTime::parse(text.trim(), &Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000) as i64)
        .map_err(|_| InteropError::invalid(field, format!("{text:?} is not an RFC 3339 timestamp")))
}

/// Unix microseconds as a TAXII timestamp with microsecond precision
/// (`date_added` must tell apart records stored in the same second).
pub fn format_micros(micros: i64) -> String {
    let seconds = micros.div_euclid(1_000_000);
    let fraction = micros.rem_euclid(1_000_000);
    let date = OffsetDateTime::from_unix_timestamp(seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{fraction:06}Z",
        date.year(),
        u8::from(date.month()),
        date.day(),
        date.hour(),
        date.minute(),
        date.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn limit_is_capped_and_version_defaults_to_last() {
        let query = Query::parse(&params(&[("limit", "5000")]), 1000).unwrap();
        assert_eq!(query.limit, 1000);
        assert!(query.versions.last && !query.versions.all);
        assert!(Query::parse(&params(&[("limit", "0")]), 1000).is_err());
        assert!(Query::parse(&params(&[("limit", "ten")]), 1000).is_err());
    }

    #[test]
    fn unknown_parameters_and_bad_timestamps_are_refused_by_name() {
        let error = Query::parse(&params(&[("match[colour]", "red")]), 10).unwrap_err();
        assert!(error.to_string().contains("match[colour]"), "{error}");
        let error = Query::parse(&params(&[("added_after", "yesterday")]), 10).unwrap_err();
        assert!(error.to_string().contains("added_after"), "{error}");
    }

    fn cursor(seq: u64, filters: &[(&str, &str)]) -> Cursor {
        Cursor { position: Position { seq, skip: 1 }, collection: "analysts".into(), filters: params(filters) }
    }

    #[test]
    fn a_cursor_carries_its_filters_and_refuses_tampering_or_another_key() {
        let key = [7; 32];
        let made = cursor(42, &[("match[type]", "indicator"), ("added_after", "2026-01-01T00:00:00Z")]);
        let text = encode_cursor(&key, &made);
        assert_eq!(decode_cursor(&key, &text).unwrap(), made);
        assert!(decode_cursor(&[8; 32], &text).is_err());
        let mut tampered = text.into_bytes();
        tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
        let error = decode_cursor(&key, std::str::from_utf8(&tampered).unwrap()).unwrap_err();
        assert!(error.to_string().contains("next"), "{error}");
        assert!(decode_cursor(&key, "bm90IGEgY3Vyc29y").is_err());
    }

    #[test]
    fn collection_ids_are_the_ones_the_readme_gives_to_tool_configs() {
        assert_eq!(Collection::find("analysts").unwrap().id(), "c2ac26b5-8a64-40bd-8acf-4b26685aa20b");
        assert_eq!(Collection::find("community").unwrap().id(), "36f66511-cd29-4550-be41-ef0c1ec290bc");
    }

    #[test]
    fn collections_are_found_by_alias_or_id_and_never_admit_red() {
        for collection in &COLLECTIONS {
            assert_eq!(Collection::find(collection.alias), Some(collection));
            assert_eq!(Collection::find(&collection.id()), Some(collection));
            assert!(!collection.admits(Tlp::Red));
        }
        let community = Collection::find("community").unwrap();
        assert!(community.admits(Tlp::Green) && !community.admits(Tlp::Amber));
    }

    proptest! {
        #[test]
        fn microsecond_timestamps_round_trip(micros in 0i64..4_102_444_800_000_000) {
            prop_assert_eq!(parse_timestamp("t", &format_micros(micros)).unwrap(), micros);
        }

        #[test]
        fn cursors_round_trip(seq in any::<u64>(), skip in any::<u32>(), value in ".{0,40}") {
            let key = [1; 32];
            let made = Cursor {
                position: Position { seq, skip },
                collection: "community".into(),
                filters: vec![("match[id]".into(), value)],
            };
            prop_assert_eq!(decode_cursor(&key, &encode_cursor(&key, &made)).unwrap(), made);
        }
    }
}
