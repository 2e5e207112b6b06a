//! A MISP feed directory in: which events changed since the last import
//! (by `manifest.json` timestamps, as MISP itself polls a feed), and what
//! each changed event brings: indicator drafts for its attributes marked
//! `to_ids`, and the sightings to report on them.
//!
//! Incremental at two levels, so a re-read event does not republish what
//! is already stored: an event is read again only when its manifest
//! timestamp differs from the one recorded, and within it only attributes
//! newer than the event's previous timestamp, or with sightings newer than
//! the last imported, become drafts. A source's later deletion of an
//! attribute is not turned into a retraction (that needs each attribute's
//! record id, which the state does not keep).
//!
//! Reading and publishing are apart: the CLI reads a whole event before it
//! publishes any of it, so a broken event file publishes nothing.

use crate::cir::SightingType;
use crate::interop::bulk::BulkLine;
use crate::interop::draft::{excerpt, DraftError};
use crate::interop::misp::event::{event_context, misp_attribute_draft, object_list, MAX_EVENT_BYTES};
use crate::interop::InteropError;
use crate::proto::Draft;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Largest `manifest.json` read: one entry per event, a few hundred bytes each.
pub const MAX_MANIFEST_BYTES: usize = 64 << 20;

/// What the last import of a feed directory saw: per event, the manifest
/// timestamp it imported and the newest sighting it reported.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportState {
    /// The feed directory, canonical, so a state file is not used for another feed.
    pub feed: String,
    /// By event uuid.
    pub events: BTreeMap<String, EventState>,
}

/// One event's import state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventState {
    /// The manifest timestamp imported.
    pub timestamp: i64,
    /// The newest `date_sighting` reported as a cirfed sighting.
    pub sightings_through: i64,
}

/// Each event's timestamp, from `manifest.json`.
pub fn read_manifest(text: &str) -> Result<BTreeMap<Uuid, i64>, InteropError> {
    if text.len() > MAX_MANIFEST_BYTES {
        return Err(InteropError::TooLarge {
            what: "manifest.json".into(),
            size: text.len() as u64,
            limit: MAX_MANIFEST_BYTES as u64,
            name: "MAX_MANIFEST_BYTES",
        });
    }
    let invalid = |reason: String| InteropError::invalid("manifest.json", reason);
    let root: Value = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
    let Value::Object(entries) = root else {
        return Err(invalid("not an object of events by uuid".into()));
    };
    let mut manifest = BTreeMap::new();
    for (key, entry) in &entries {
        let uuid = Uuid::parse_str(key).map_err(|_| invalid(format!("key {:?} is not an event uuid", excerpt(key))))?;
        let timestamp = epoch(entry.get("timestamp"))
            .ok_or_else(|| invalid(format!("event {key} has no timestamp (unix seconds)")))?;
        manifest.insert(uuid, timestamp);
    }
    Ok(manifest)
}

/// The events to read: in the manifest with a timestamp other than the one
/// last imported (or never imported), in uuid order.
pub fn changed_events(manifest: &BTreeMap<Uuid, i64>, state: &ImportState) -> Vec<Uuid> {
    manifest
        .iter()
        .filter(|(uuid, timestamp)| {
            state.events.get(&uuid.hyphenated().to_string()).is_none_or(|seen| seen.timestamp != **timestamp)
        })
        .map(|(uuid, _)| *uuid)
        .collect()
}

/// What one changed event brings.
#[derive(Debug, Clone, PartialEq)]
pub struct EventImport {
    /// Its uuid.
    pub uuid: Uuid,
    /// Attributes as drafts, or why not; unchanged attributes are not listed.
    pub lines: Vec<BulkLine>,
    /// Per line with a draft, the sightings to report once it is stored.
    pub sightings: BTreeMap<usize, Vec<(SightingType, u32)>>,
    /// Attributes left as they were imported before.
    pub unchanged: usize,
    /// The state to record once everything above is stored.
    pub state: EventState,
}

/// Reads a changed event: `previous` is what the last import recorded of it.
pub fn read_event(
    text: &str,
    uuid: Uuid,
    manifest_timestamp: i64,
    previous: Option<&EventState>,
    now: i64,
) -> Result<EventImport, InteropError> {
    if text.len() > MAX_EVENT_BYTES {
        return Err(InteropError::TooLarge {
            what: format!("{uuid}.json"),
            size: text.len() as u64,
            limit: MAX_EVENT_BYTES as u64,
            name: "MAX_EVENT_BYTES",
        });
    }
    let invalid = |reason: String| InteropError::invalid(format!("{uuid}.json"), reason);
    let root: Value = serde_json::from_str(text.trim_start_matches('\u{feff}')).map_err(|e| invalid(e.to_string()))?;
    let event = match root.get("Event") {
        Some(Value::Object(event)) => event,
        Some(_) => return Err(invalid("`Event` is not an object".into())),
        None => root.as_object().ok_or_else(|| invalid("not a MISP event".into()))?,
    };
    match event.get("uuid").and_then(Value::as_str).map(Uuid::parse_str) {
        Some(Ok(found)) if found != uuid => return Err(invalid(format!("the file holds event {found}"))),
        Some(Err(_)) => return Err(invalid("its `uuid` is not a uuid".into())),
        _ => {}
    }
    let context = event_context(event);
    let mut attributes: Vec<&Map<String, Value>> = object_list(event.get("Attribute")).collect();
    for object in object_list(event.get("Object")) {
        attributes.extend(object_list(object.get("Attribute")));
    }
    let since = previous.copied().unwrap_or_default();
    let mut out = EventImport {
        uuid,
        lines: Vec::new(),
        sightings: BTreeMap::new(),
        unchanged: 0,
        state: EventState { timestamp: manifest_timestamp, sightings_through: since.sightings_through },
    };
    for (index, attribute) in attributes.into_iter().enumerate() {
        let sightings = new_sightings(attribute, since.sightings_through);
        let updated = previous.is_none() || epoch(attribute.get("timestamp")).is_none_or(|t| t > since.timestamp);
        if !updated && sightings.is_empty() {
            out.unchanged += 1;
            continue;
        }
        if let Some(newest) = sightings.iter().map(|(_, date)| *date).max() {
            out.state.sightings_through = out.state.sightings_through.max(newest);
        }
        let counts = sighting_counts(&sightings);
        for part in split(attribute) {
            let kind = part.get("type").and_then(Value::as_str).unwrap_or("");
            let value = part.get("value").and_then(Value::as_str).unwrap_or("");
            let draft: Result<Draft, DraftError> = misp_attribute_draft(&context, &part, now);
            if draft.is_ok() && !counts.is_empty() {
                out.sightings.insert(out.lines.len(), counts.clone());
            }
            out.lines.push(BulkLine { line: index + 1, source: excerpt(&format!("{kind} {value}")), draft });
        }
    }
    Ok(out)
}

/// A composite attribute as the attributes cirfed reads: `domain|ip` is a
/// domain and an address (two indicators), `hostname|port` the host; other
/// composites (`ip-dst|port`, `filename|sha256`...) the import reads whole.
fn split(attribute: &Map<String, Value>) -> Vec<Map<String, Value>> {
    let kind = attribute.get("type").and_then(Value::as_str).unwrap_or("");
    let value = attribute.get("value").and_then(Value::as_str).unwrap_or("");
    let with = |kind: &str, value: &str| {
        let mut part = attribute.clone();
        part.insert("type".into(), Value::from(kind));
        part.insert("value".into(), Value::from(value));
        part
    };
    match (kind, value.split_once('|')) {
        ("domain|ip", Some((domain, ip))) => vec![with("domain", domain), with("ip-dst", ip)],
        ("hostname|port", Some((host, _))) => vec![with("hostname", host)],
        _ => vec![attribute.clone()],
    }
}

/// The attribute's sightings newer than `after`: (type, date).
fn new_sightings(attribute: &Map<String, Value>, after: i64) -> Vec<(SightingType, i64)> {
    object_list(attribute.get("Sighting"))
        .filter_map(|sighting| {
            let date = epoch(sighting.get("date_sighting"))?;
            let kind = match epoch(sighting.get("type")).unwrap_or(0) {
                1 => SightingType::FalsePositive,
                2 => SightingType::Expired,
                _ => SightingType::Seen,
            };
            (date > after).then_some((kind, date))
        })
        .collect()
}

/// One cirfed sighting per type, counting MISP's entries.
fn sighting_counts(sightings: &[(SightingType, i64)]) -> Vec<(SightingType, u32)> {
    let mut counts: Vec<(SightingType, u32)> = Vec::new();
    for (kind, _) in sightings {
        match counts.iter_mut().find(|(k, _)| k == kind) {
            Some((_, n)) => *n = n.saturating_add(1),
            None => counts.push((*kind, 1)),
        }
    }
    counts
}

/// Unix seconds from a JSON number or a numeric string (MISP writes both).
fn epoch(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interop::draft::testing::read_shared;
    use crate::proto::draft::Body;

    const NOW: i64 = 1_767_225_600;
    const SIGHTINGS: &str = "5b646415-7b48-40d5-86b4-c0070acd0835";

    fn uuid(text: &str) -> Uuid {
        Uuid::parse_str(text).unwrap()
    }

    #[test]
    fn the_manifest_gives_each_events_timestamp_as_number_or_string() {
        let text = r#"{"5b646415-7b48-40d5-86b4-c0070acd0835": {"timestamp": 1533306089, "info": "x"},
                       "57c4445b-c548-4654-af0b-4be3950d210f": {"timestamp": "1472541011"}}"#;
        let manifest = read_manifest(text).unwrap();
        assert_eq!(manifest[&uuid(SIGHTINGS)], 1_533_306_089);
        assert_eq!(manifest[&uuid("57c4445b-c548-4654-af0b-4be3950d210f")], 1_472_541_011);
    }

    #[test]
    fn a_bad_manifest_is_refused_naming_what_is_wrong() {
        for (text, needle) in [
            ("[]", "not an object"),
            (r#"{"nope": {"timestamp": 1}}"#, "is not an event uuid"),
            (r#"{"5b646415-7b48-40d5-86b4-c0070acd0835": {}}"#, "has no timestamp"),
            ("{", "manifest.json"),
        ] {
            let error = read_manifest(text).unwrap_err().to_string();
            assert!(error.contains(needle), "{text}: {error}");
        }
    }

    #[test]
    fn only_events_with_a_new_timestamp_are_read_again() {
        let (a, b) = (uuid(SIGHTINGS), uuid("57c4445b-c548-4654-af0b-4be3950d210f"));
        let manifest = BTreeMap::from([(a, 10), (b, 20)]);
        let mut state = ImportState::default();
        assert_eq!(changed_events(&manifest, &state), [b, a]);
        state.events.insert(a.to_string(), EventState { timestamp: 10, sightings_through: 0 });
        state.events.insert(b.to_string(), EventState { timestamp: 19, sightings_through: 0 });
        assert_eq!(changed_events(&manifest, &state), [b]);
    }

    #[test]
    fn an_event_gives_drafts_for_to_ids_attributes_and_sightings_by_type() {
        let text = read_shared("misp/sighting_1.json");
        let event = read_event(&text, uuid(SIGHTINGS), 1_533_306_089, None, NOW).unwrap();
        let drafts: Vec<&Draft> = event.lines.iter().filter_map(|l| l.draft.as_ref().ok()).collect();
        assert_eq!(drafts.len(), 5);
        // The fourth domain was marked expired, then a false positive.
        assert_eq!(event.sightings[&3], [(SightingType::Expired, 1), (SightingType::FalsePositive, 1)]);
        assert_eq!(event.sightings[&0], [(SightingType::Seen, 1)]);
        assert_eq!(event.state, EventState { timestamp: 1_533_306_089, sightings_through: 1_551_253_976 });
    }

    #[test]
    fn a_re_read_event_brings_only_what_changed_since() {
        let text = read_shared("misp/sighting_1.json");
        let previous = EventState { timestamp: 1_533_306_070, sightings_through: 1_551_253_960 };
        let event = read_event(&text, uuid(SIGHTINGS), 1_533_306_089, Some(&previous), NOW).unwrap();
        let values: Vec<&str> = event.lines.iter().map(|l| l.source.as_str()).collect();
        // Domains 3 and 4 have newer sightings; the URL is newer itself.
        assert_eq!(
            values,
            [
                "domain dquohwdihaewqdcas.com",
                "domain diqjwhebseqhbasdh.com",
                "url http://sistemait.it/softaculous/backup/client.rar"
            ]
        );
        assert_eq!(event.unchanged, 2);
        assert!(!event.sightings.contains_key(&2), "the URL's only sighting is older than the last import");
    }

    #[test]
    fn domain_ip_pairs_become_two_indicators_and_hostname_port_the_host() {
        let text = r#"{"Event": {"uuid": "5b646415-7b48-40d5-86b4-c0070acd0835", "Attribute": [
            {"type": "domain|ip", "value": "bad.example|198.51.100.7", "to_ids": true},
            {"type": "hostname|port", "value": "c2.bad.example|8443", "to_ids": "1"}]}}"#;
        let event = read_event(text, uuid(SIGHTINGS), 1, None, NOW).unwrap();
        let values: Vec<String> = event
            .lines
            .iter()
            .map(|l| match &l.draft.as_ref().unwrap().body {
                Some(Body::Indicator(i)) => i.value.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(values, ["bad.example", "198.51.100.7", "c2.bad.example"]);
    }

    #[test]
    fn an_event_file_holding_another_event_is_refused() {
        let text = read_shared("misp/sighting_1.json");
        let other = uuid("57c4445b-c548-4654-af0b-4be3950d210f");
        let error = read_event(&text, other, 1, None, NOW).unwrap_err().to_string();
        assert!(error.contains("holds event 5b646415"), "{error}");
        assert!(read_event("{", other, 1, None, NOW).unwrap_err().to_string().contains("57c4445b"));
    }
}
