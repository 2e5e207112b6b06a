//! The node's feed as a MISP feed directory, the layout PyMISP's feed
//! generator writes and MISP instances pull: `manifest.json` (each event's
//! uuid with its timestamp and headline fields), `hashes.csv` (MD5 of each
//! attribute value and the event holding it) and one `<uuid>.json` per event.
//!
//! Events: one per lesson, with the indicators it refers to, and one rolling
//! event for the indicators no lesson names. An indicator named by several
//! lessons appears in each; its attribute keeps the indicator's own uuid in
//! the first lesson (by arrival) and a derived uuid in the others, since a
//! MISP instance refuses one attribute uuid in two events.
//!
//! Withdrawn indicators (retracted, or past `valid_until`) stay in their event
//! for [`REMOVED_KEPT_SECS`] as `deleted: true, to_ids: false`, their
//! timestamp the time of removal: MISP updates an attribute it already holds
//! only from a newer timestamp and never removes one that is simply missing
//! from a newer event, so leaving it out would keep a withdrawn value on
//! every instance that pulled it before. They are not in `hashes.csv`.
//!
//! A filter with `min_score` is refused here: a score is live state
//! (sightings, decay) that blocklists reflect; an event is history.
//!
//! Reading is three passes over the feed (index, counts and hashes, the
//! rolling event's attributes), each a page of records at a time. Memory
//! holds the lessons' headlines and references (at most
//! `record::validate::MAX_LIST_ITEMS` each), and the sightings (about 64
//! bytes each); never the indicators, and never a whole event: the rolling
//! event is written attribute by attribute.

pub mod import;
mod json;
#[cfg(test)]
mod tests;

use crate::cir::Tlp;
use crate::interop::export::{Sink, Summary};
use crate::interop::stix::ids;
use crate::interop::{Feed, FeedRecord, Filter, InteropError};
use crate::normalize::ObservableType;
use crate::proto::record::Body;
use crate::proto::{Indicator, Lesson};
use crate::record::{RecordId, RecordKind};
use md5::{Digest, Md5};
use std::cell::OnceCell;
use std::collections::HashMap;
use std::io::Write;
use uuid::Uuid;

/// Records read from the feed per page.
pub const FEED_PAGE: usize = 1_000;
/// How long a withdrawn indicator stays in its event as deleted, so
/// instances that pull at least this often learn of every withdrawal.
pub const REMOVED_KEPT_SECS: i64 = 30 * 86_400;
/// The rolling event's uuid, under its own domain.
pub const ROLLING_NAME: &str = "feed";

/// The feed's file names.
pub const MANIFEST: &str = "manifest.json";
/// See [`MANIFEST`].
pub const HASHES: &str = "hashes.csv";

/// Writes the feed as a MISP feed: `hashes.csv`, every `<uuid>.json`, then
/// `manifest.json` (last, so a consumer reading a new manifest finds its files).
pub fn export(feed: &dyn Feed, filter: &Filter, now: i64, sink: &mut dyn Sink) -> Result<Summary, InteropError> {
    let misp = MispFeed::open(feed, filter, now)?;
    let mut summary = misp.index.summary.clone();
    sink.start_file(HASHES)?;
    let stats = misp.scan(Some(&mut *sink as &mut dyn Write), Some(&mut summary))?;
    for lesson in 0..misp.index.lessons.len() {
        sink.start_file(&format!("{}.json", misp.index.lessons[lesson].uuid))?;
        misp.write_lesson_event(lesson, sink)?;
        summary.wrote("event");
    }
    if stats.rolling.attributes > 0 {
        sink.start_file(&format!("{}.json", misp.index.rolling_uuid))?;
        misp.write_rolling_event(&stats.rolling, sink)?;
        summary.wrote("event");
    }
    sink.start_file(MANIFEST)?;
    misp.write_manifest_from(&stats, sink)?;
    Ok(summary)
}

/// A MISP feed over a [`Feed`], indexed once, serving each file on its own
/// (what the HTTP listener's `/misp-feed/` routes need).
pub struct MispFeed<'a> {
    feed: &'a dyn Feed,
    filter: Filter,
    now: i64,
    index: Index,
    /// Each event's timestamp and TLP, from the first pass that needed them.
    stats: OnceCell<Stats>,
}

impl<'a> MispFeed<'a> {
    /// Indexes `feed` (one pass): lessons, which indicators they name, sightings.
    pub fn open(feed: &'a dyn Feed, filter: &Filter, now: i64) -> Result<Self, InteropError> {
        if filter.min_score != 0 {
            return Err(InteropError::Unsupported(
                "a MISP feed holds events, which have no score: --min-score applies to blocklists".to_owned(),
            ));
        }
        let index = Index::build(feed, filter)?;
        Ok(MispFeed { feed, filter: filter.clone(), now, index, stats: OnceCell::new() })
    }

    /// The rolling event's uuid.
    pub fn rolling_uuid(&self) -> Uuid {
        self.index.rolling_uuid
    }

    /// Whether the feed has an event with this uuid (the rolling event only
    /// when it holds an attribute: one pass).
    pub fn has_event(&self, uuid: &Uuid) -> Result<bool, InteropError> {
        if self.index.lesson_by_uuid.contains_key(uuid) {
            return Ok(true);
        }
        Ok(*uuid == self.index.rolling_uuid && self.stats()?.rolling.attributes > 0)
    }

    /// Writes `manifest.json` (one pass).
    pub fn write_manifest(&self, out: &mut dyn Write) -> Result<(), InteropError> {
        self.write_manifest_from(self.stats()?, out)
    }

    /// The events' timestamps and TLPs, read once.
    fn stats(&self) -> Result<&Stats, InteropError> {
        if let Some(stats) = self.stats.get() {
            return Ok(stats);
        }
        let stats = self.scan(None, None)?;
        Ok(self.stats.get_or_init(|| stats))
    }

    /// Writes `hashes.csv` (one pass).
    pub fn write_hashes(&self, out: &mut dyn Write) -> Result<(), InteropError> {
        self.scan(Some(out), None).map(|_| ())
    }

    /// Writes `<uuid>.json`; false, with nothing written, when there is no
    /// such event.
    pub fn write_event(&self, uuid: &Uuid, out: &mut dyn Write) -> Result<bool, InteropError> {
        if let Some(&lesson) = self.index.lesson_by_uuid.get(uuid) {
            self.write_lesson_event(lesson, out)?;
            return Ok(true);
        }
        if *uuid != self.index.rolling_uuid {
            return Ok(false);
        }
        let stats = self.stats()?;
        if stats.rolling.attributes == 0 {
            return Ok(false);
        }
        self.write_rolling_event(&stats.rolling, out)?;
        Ok(true)
    }

    /// One pass over the indicators: each event's timestamp and TLP, the
    /// summary's counts, and `hashes.csv` when `hashes` is given.
    fn scan(
        &self,
        mut hashes: Option<&mut dyn Write>,
        mut summary: Option<&mut Summary>,
    ) -> Result<Stats, InteropError> {
        let index = &self.index;
        let mut stats = Stats {
            lessons: index.lessons.iter().map(|l| EventStats::new(l.created_at, Some(l.tlp))).collect(),
            rolling: EventStats::new(0, None),
        };
        let mut line = String::with_capacity(80);
        self.for_each_indicator(|record, indicator| {
            let attribute = match self.attribute_of(record, indicator) {
                Ok(Some(attribute)) => attribute,
                Ok(None) => return Ok(()),
                Err(reason) => {
                    if let Some(summary) = summary.as_deref_mut() {
                        summary.skip(reason);
                    }
                    return Ok(());
                }
            };
            let changed = attribute.changed(index.sightings_of(&record.id));
            if let Some(summary) = summary.as_deref_mut() {
                summary.wrote(if attribute.removed_at.is_some() { "deleted_attribute" } else { "attribute" });
                if attribute.removed_at.is_none() {
                    for _ in index.sightings_of(&record.id) {
                        summary.wrote("sighting");
                    }
                }
            }
            for slot in index.events_of(&record.id) {
                let (event, uuid) = match slot {
                    Slot::Lesson(n) => (&mut stats.lessons[n], index.lessons[n].uuid),
                    Slot::Rolling => (&mut stats.rolling, index.rolling_uuid),
                };
                event.add(changed, attribute.tlp);
                if let (Some(out), None) = (hashes.as_deref_mut(), attribute.removed_at) {
                    for part in json::hashed_parts(attribute.misp_type, &attribute.value) {
                        line.clear();
                        line.push_str(&hex::encode(Md5::digest(part.as_bytes())));
                        line.push(',');
                        line.push_str(&uuid.hyphenated().to_string());
                        line.push('\n');
                        out.write_all(line.as_bytes())?;
                    }
                }
            }
            Ok(())
        })?;
        Ok(stats)
    }

    /// Calls `visit` with every indicator record of the feed, in arrival order.
    fn for_each_indicator(
        &self,
        mut visit: impl FnMut(&FeedRecord, &Indicator) -> Result<(), InteropError>,
    ) -> Result<(), InteropError> {
        let mut after = 0;
        loop {
            let page = self.feed.records_after(after, FEED_PAGE)?;
            let Some(last) = page.last() else { return Ok(()) };
            after = last.seq;
            for record in &page {
                if let Some(Body::Indicator(indicator)) = &record.record.body {
                    visit(record, indicator)?;
                }
            }
        }
    }

    /// The attribute an indicator record becomes: `Ok(None)` when the filter
    /// leaves it out, `Err(reason)` when MISP cannot carry it (counted).
    fn attribute_of<'r>(
        &self,
        record: &'r FeedRecord,
        indicator: &'r Indicator,
    ) -> Result<Option<json::Attribute<'r>>, &'static str> {
        let filter = &self.filter;
        if !filter.kinds.is_empty() && !filter.kinds.contains(&RecordKind::Indicator) {
            return Ok(None);
        }
        let tlp = record.tlp();
        if tlp == Tlp::Red {
            return Err("tlp_red");
        }
        let kind = u8::try_from(indicator.r#type).ok().and_then(ObservableType::from_code);
        let Some(kind) = kind else { return Err("unknown_type") };
        let categories = categories_mask(&indicator.categories);
        let level = u8::try_from(indicator.cir_level).unwrap_or(u8::MAX);
        if tlp > filter.tlp_ceiling()
            || (!filter.types.is_empty() && !filter.types.contains(&kind))
            || level < filter.min_level
            || (filter.categories != 0 && filter.categories & categories == 0)
            || record.record.created_at < filter.since
        {
            return Ok(None);
        }
        if kind == ObservableType::KeyedHash {
            return Err("keyed_hash");
        }
        let Some((misp_type, category)) = json::misp_type_of(kind, &indicator.value) else {
            return Err("no_misp_type");
        };
        let removed_at = match (&record.retraction, indicator.valid_until) {
            (Some(retraction), _) => Some(retraction.at),
            (None, until) if until != 0 && until <= self.now => Some(until),
            _ => None,
        };
        if removed_at.is_some_and(|at| at < self.now - REMOVED_KEPT_SECS) {
            return Ok(None);
        }
        let value = json::misp_value(kind, &indicator.value);
        Ok(Some(json::Attribute { record, indicator, misp_type, category, value, tlp, removed_at }))
    }

    fn write_manifest_from(&self, stats: &Stats, out: &mut dyn Write) -> Result<(), InteropError> {
        let mut manifest = serde_json::Map::new();
        for (lesson, event) in self.index.lessons.iter().zip(&stats.lessons) {
            let head = json::lesson_head(lesson, event.timestamp, &self.index.orgs);
            manifest.insert(lesson.uuid.hyphenated().to_string(), head.manifest_entry());
        }
        if stats.rolling.attributes > 0 {
            let head = json::rolling_head(self.index.rolling_uuid, &stats.rolling);
            manifest.insert(self.index.rolling_uuid.hyphenated().to_string(), head.manifest_entry());
        }
        serde_json::to_writer(&mut *out, &manifest).map_err(std::io::Error::from)?;
        Ok(())
    }

    /// A lesson's event, built in memory: a lesson names at most
    /// `MAX_LIST_ITEMS` indicators, read by id.
    fn write_lesson_event(&self, lesson: usize, out: &mut dyn Write) -> Result<(), InteropError> {
        let head = &self.index.lessons[lesson];
        let record =
            self.feed.record(&head.id)?.ok_or_else(|| InteropError::Feed(format!("lesson {} vanished", head.id)))?;
        let Some(Body::Lesson(body)) = &record.record.body else {
            return Err(InteropError::Feed(format!("record {} is no longer a lesson", head.id)));
        };
        let mut stats = EventStats::new(head.created_at, Some(head.tlp));
        let mut attributes = Vec::new();
        let referenced: Vec<FeedRecord> =
            head.refs.iter().map(|id| self.feed.record(id)).filter_map(Result::transpose).collect::<Result<_, _>>()?;
        for indicator_record in &referenced {
            let Some(Body::Indicator(indicator)) = &indicator_record.record.body else { continue };
            let Ok(Some(attribute)) = self.attribute_of(indicator_record, indicator) else { continue };
            let sightings = self.index.sightings_of(&indicator_record.id);
            stats.add(attribute.changed(sightings), attribute.tlp);
            let primary = self.index.events_of(&indicator_record.id).first() == Some(&Slot::Lesson(lesson));
            attributes.push(json::attribute(&attribute, head.uuid, primary, sightings, &self.index.orgs));
        }
        let mut event = json::lesson_head(head, stats.timestamp, &self.index.orgs).event();
        event.insert("Attribute".into(), serde_json::Value::Array(attributes));
        event.insert("EventReport".into(), serde_json::Value::Array(vec![json::lesson_report(head, body)]));
        serde_json::to_writer(&mut *out, &serde_json::json!({ "Event": event })).map_err(std::io::Error::from)?;
        Ok(())
    }

    /// The rolling event, streamed: its head, then each attribute as the
    /// feed is read.
    fn write_rolling_event(&self, rolling: &EventStats, out: &mut dyn Write) -> Result<(), InteropError> {
        let head = json::rolling_head(self.index.rolling_uuid, rolling).event();
        let head = serde_json::to_string(&head).map_err(std::io::Error::from)?;
        // The head is an object: reopen it to append the attribute list.
        out.write_all(b"{\"Event\":")?;
        out.write_all(&head.as_bytes()[..head.len() - 1])?;
        out.write_all(b",\"Attribute\":[")?;
        let mut first = true;
        self.for_each_indicator(|record, indicator| {
            if !matches!(self.index.events_of(&record.id).first(), Some(Slot::Rolling)) {
                return Ok(());
            }
            let Ok(Some(attribute)) = self.attribute_of(record, indicator) else { return Ok(()) };
            let sightings = self.index.sightings_of(&record.id);
            let value = json::attribute(&attribute, self.index.rolling_uuid, true, sightings, &self.index.orgs);
            if !first {
                out.write_all(b",")?;
            }
            first = false;
            serde_json::to_writer(&mut *out, &value).map_err(std::io::Error::from)?;
            Ok(())
        })?;
        out.write_all(b"]}}")?;
        Ok(())
    }
}

/// What pass 1 learns: the lesson events, which indicators they name, and
/// the sightings to attach.
struct Index {
    lessons: Vec<LessonHead>,
    lesson_by_uuid: HashMap<Uuid, usize>,
    /// Indicator id -> the lessons naming it, in arrival order.
    named_by: HashMap<RecordId, Vec<u32>>,
    sightings: HashMap<RecordId, Vec<SightingEntry>>,
    orgs: Orgs,
    rolling_uuid: Uuid,
    /// Lessons and sightings left out, by reason.
    summary: Summary,
}

/// Where an attribute goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Lesson(usize),
    Rolling,
}

/// What a lesson's event and manifest entry say before its attributes.
#[derive(Debug, Clone)]
pub(crate) struct LessonHead {
    id: RecordId,
    uuid: Uuid,
    created_at: i64,
    title: String,
    level: u32,
    categories: Vec<i32>,
    tags: Vec<String>,
    tlp: Tlp,
    org: u32,
    /// The indicators it names, each once, in its order.
    refs: Vec<RecordId>,
}

/// One sighting to attach to its indicator's attributes.
#[derive(Debug, Clone)]
pub(crate) struct SightingEntry {
    id: RecordId,
    created_at: i64,
    /// The proto sighting type.
    kind: i32,
    count: u32,
    org: u32,
}

/// Organisation names (pseudonymous member ids), each stored once.
#[derive(Debug, Default)]
pub(crate) struct Orgs {
    names: Vec<String>,
    by_name: HashMap<String, u32>,
}

impl Orgs {
    fn of(&mut self, record: &FeedRecord) -> u32 {
        let name = org_name(record);
        if let Some(&n) = self.by_name.get(&name) {
            return n;
        }
        let n = self.names.len() as u32;
        self.by_name.insert(name.clone(), n);
        self.names.push(name);
        n
    }

    fn name(&self, n: u32) -> &str {
        &self.names[n as usize]
    }
}

/// The author as MISP names an organisation: the pseudonymous member id,
/// or for a key the roster does not know, a name made from the key.
fn org_name(record: &FeedRecord) -> String {
    match &record.author_member {
        Some(member) => member.clone(),
        None => format!("key-{}", hex::encode(&record.record.author[..record.record.author.len().min(8)])),
    }
}

impl Index {
    fn build(feed: &dyn Feed, filter: &Filter) -> Result<Index, InteropError> {
        let wants = |kind: RecordKind| filter.kinds.is_empty() || filter.kinds.contains(&kind);
        let ceiling = filter.tlp_ceiling();
        let mut index = Index {
            lessons: Vec::new(),
            lesson_by_uuid: HashMap::new(),
            named_by: HashMap::new(),
            sightings: HashMap::new(),
            orgs: Orgs::default(),
            rolling_uuid: ids::named_uuid("cirfed/misp-rolling", ROLLING_NAME),
            summary: Summary::default(),
        };
        let mut after = 0;
        loop {
            let page = feed.records_after(after, FEED_PAGE)?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for record in &page {
                match &record.record.body {
                    Some(Body::Lesson(lesson)) if wants(RecordKind::Lesson) => {
                        index.add_lesson(record, lesson, filter, ceiling);
                    }
                    Some(Body::Sighting(sighting)) if wants(RecordKind::Sighting) => {
                        let tlp = record.tlp();
                        let Some(target) = RecordId::from_slice(&sighting.indicator_id) else { continue };
                        if tlp == Tlp::Red
                            || tlp > ceiling
                            || record.retraction.is_some()
                            || record.record.created_at < filter.since
                        {
                            continue;
                        }
                        let org = index.orgs.of(record);
                        index.sightings.entry(target).or_default().push(SightingEntry {
                            id: record.id,
                            created_at: record.record.created_at,
                            kind: sighting.r#type,
                            count: sighting.count,
                            org,
                        });
                    }
                    _ => {}
                }
            }
        }
        Ok(index)
    }

    fn add_lesson(&mut self, record: &FeedRecord, lesson: &Lesson, filter: &Filter, ceiling: Tlp) {
        let tlp = record.tlp();
        if tlp == Tlp::Red {
            return self.summary.skip("tlp_red");
        }
        if record.retraction.is_some() {
            return self.summary.skip("retracted_lesson");
        }
        let level = u8::try_from(lesson.cir_level).unwrap_or(u8::MAX);
        if tlp > ceiling
            || level < filter.min_level
            || (filter.categories != 0 && filter.categories & categories_mask(&lesson.categories) == 0)
            || record.record.created_at < filter.since
        {
            return;
        }
        let n = self.lessons.len();
        let mut refs: Vec<RecordId> = Vec::new();
        for id in lesson.indicator_refs.iter().filter_map(|r| RecordId::from_slice(r)) {
            if !refs.contains(&id) {
                refs.push(id);
                self.named_by.entry(id).or_default().push(n as u32);
            }
        }
        let head = LessonHead {
            id: record.id,
            uuid: ids::record_uuid(&record.id),
            created_at: record.record.created_at,
            title: lesson.title.clone(),
            level: lesson.cir_level,
            categories: lesson.categories.clone(),
            tags: lesson.tags.clone(),
            tlp,
            org: self.orgs.of(record),
            refs,
        };
        self.lesson_by_uuid.insert(head.uuid, n);
        self.lessons.push(head);
    }

    /// The events an indicator's attribute goes in: the lessons naming it,
    /// or the rolling event.
    fn events_of(&self, id: &RecordId) -> Vec<Slot> {
        match self.named_by.get(id) {
            Some(lessons) => lessons.iter().map(|&n| Slot::Lesson(n as usize)).collect(),
            None => vec![Slot::Rolling],
        }
    }

    fn sightings_of(&self, id: &RecordId) -> &[SightingEntry] {
        self.sightings.get(id).map_or(&[], Vec::as_slice)
    }
}

/// Category codes as a bitmask (bit n: code n), as `Filter::categories`.
fn categories_mask(codes: &[i32]) -> u32 {
    codes.iter().fold(0, |mask, &code| mask | u32::try_from(code).ok().and_then(|c| 1u32.checked_shl(c)).unwrap_or(0))
}

/// What the scan learns of each event.
struct Stats {
    lessons: Vec<EventStats>,
    rolling: EventStats,
}

/// An event's newest change and least restrictive TLP.
#[derive(Debug, Clone)]
pub(crate) struct EventStats {
    timestamp: i64,
    tlp: Option<Tlp>,
    attributes: u64,
}

impl EventStats {
    fn new(timestamp: i64, tlp: Option<Tlp>) -> Self {
        EventStats { timestamp, tlp, attributes: 0 }
    }

    fn add(&mut self, changed: i64, tlp: Tlp) {
        self.timestamp = self.timestamp.max(changed);
        self.attributes += 1;
        // A lesson's event keeps the lesson's TLP; the rolling event takes the least restrictive.
        self.tlp = Some(self.tlp.map_or(tlp, |t| t.min(tlp)));
    }
}
