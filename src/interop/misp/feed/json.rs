//! The JSON of MISP feed events, as PyMISP's `to_feed` writes it: numbers
//! as strings inside events (`"timestamp": "1472541011"`), as numbers in the
//! manifest; tags as `{name, colour, exportable}`.

use super::{EventStats, LessonHead, Orgs, SightingEntry};
use crate::cir::{Category, Phase, ServiceModel, SightingType, Tlp};
use crate::interop::stix::ids;
use crate::interop::FeedRecord;
use crate::normalize::ObservableType;
use crate::proto::{Indicator, Lesson};
use md5::{Digest, Md5};
use serde_json::{json, Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

/// MISP `analysis`: 2, completed (a record is published work).
const ANALYSIS_COMPLETED: i64 = 2;
/// MISP `threat_level_id` 4, undefined: the rolling event mixes levels
/// (each attribute carries its own in a `cirfed:cir-level` tag).
const THREAT_LEVEL_UNDEFINED: i64 = 4;
/// The colour of cirfed's own machine tags in MISP.
const CIRFED_TAG_COLOUR: &str = "#004d80";

/// An indicator as a MISP attribute.
pub(super) struct Attribute<'r> {
    pub record: &'r FeedRecord,
    pub indicator: &'r Indicator,
    pub misp_type: &'static str,
    pub category: &'static str,
    /// The value as MISP spells it.
    pub value: String,
    pub tlp: Tlp,
    /// When it was retracted or expired, if it was.
    pub removed_at: Option<i64>,
}

impl Attribute<'_> {
    /// The attribute's `timestamp`: its creation, or its removal.
    fn timestamp(&self) -> i64 {
        self.removed_at.unwrap_or(self.record.record.created_at)
    }

    /// The newest change it brings to its event: itself or a sighting.
    pub fn changed(&self, sightings: &[SightingEntry]) -> i64 {
        let newest_sighting = match self.removed_at {
            None => sightings.iter().map(|s| s.created_at).max().unwrap_or(0),
            Some(_) => 0,
        };
        self.timestamp().max(newest_sighting)
    }
}

/// The MISP attribute type and category for a cirfed observable type (the
/// reverse of the import mapping in INTEROP.md); `None` for types MISP has
/// no attribute for (cloud key ids, resource names, keyed hashes).
pub(super) fn misp_type_of(kind: ObservableType, value: &str) -> Option<(&'static str, &'static str)> {
    use ObservableType as T;
    const NETWORK: &str = "Network activity";
    const PAYLOAD: &str = "Payload delivery";
    Some(match kind {
        T::Ipv4 | T::Ipv6 | T::Cidr => ("ip-dst", NETWORK),
        T::Domain => ("domain", NETWORK),
        T::Url => ("url", NETWORK),
        // A shared address is most often a phishing sender.
        T::Email => ("email-src", PAYLOAD),
        T::Md5 => ("md5", PAYLOAD),
        T::Sha1 => ("sha1", PAYLOAD),
        T::Sha256 => ("sha256", PAYLOAD),
        T::Asn => ("AS", NETWORK),
        T::UserAgent => ("user-agent", NETWORK),
        T::CertificateFingerprint if value.len() == 40 => ("x509-fingerprint-sha1", NETWORK),
        T::CertificateFingerprint => ("x509-fingerprint-sha256", NETWORK),
        T::CloudAccessKeyId | T::CloudResourceName | T::KeyedHash => return None,
    })
}

/// The value as MISP stores it: an AS number without its `AS` prefix
/// (MISP's own validation strips it); everything else canonical as is.
pub(super) fn misp_value(kind: ObservableType, value: &str) -> String {
    match kind {
        ObservableType::Asn => value.strip_prefix("AS").unwrap_or(value).to_string(),
        _ => value.to_string(),
    }
}

/// The parts of a value `hashes.csv` lists: a composite type (`a|b`) is
/// split on `|` and each part hashed, as PyMISP's `hash_values` does.
pub(super) fn hashed_parts<'v>(misp_type: &str, value: &'v str) -> Vec<&'v str> {
    match misp_type.contains('|') {
        true => value.split('|').collect(),
        false => vec![value],
    }
}

/// A MISP `threat_level_id` for a CIR level: 1 high for 4-5 (impact on
/// customers), 2 medium for 3, 3 low for 1-2; the reverse of the import.
fn threat_level(cir_level: u32) -> i64 {
    match cir_level {
        4.. => 1,
        3 => 2,
        _ => 3,
    }
}

/// A tag object; TLP tags in the MISP taxonomy's colours.
fn tag(name: &str) -> Value {
    let colour = match name {
        "tlp:clear" | "tlp:white" => "#ffffff".to_string(),
        "tlp:green" => "#33FF00".to_string(),
        "tlp:amber" | "tlp:amber+strict" => "#FFC000".to_string(),
        _ if name.starts_with("cirfed:") => CIRFED_TAG_COLOUR.to_string(),
        // Free tags: a stable colour of their own, as MISP would pick one at random.
        _ => format!("#{}", hex::encode(&Md5::digest(name.as_bytes())[..3])),
    };
    json!({ "colour": colour, "exportable": true, "name": name })
}

/// The TLP tags of a marking. CLEAR also gets `tlp:white`: MISP instances
/// on the TLP 1.0 taxonomy, and feed filter rules written for it, know only
/// that name; both mean the same, so the most restrictive stays CLEAR.
fn tlp_tags(tlp: Tlp) -> Vec<Value> {
    match tlp {
        Tlp::Clear => vec![tag("tlp:clear"), tag("tlp:white")],
        other => vec![tag(&format!("tlp:{other}"))],
    }
}

/// Tags saying what MISP has no field for, under cirfed's namespace.
fn cirfed_tags(level: u32, categories: &[i32], tags: &[String]) -> Vec<Value> {
    let mut out = vec![tag(&format!("cirfed:cir-level=\"{level}\""))];
    for category in categories.iter().filter_map(|&c| Category::from_code(c)) {
        out.push(tag(&format!("cirfed:category=\"{category}\"")));
    }
    for free in tags {
        // A free tag must not pose as a marking or as one of cirfed's own.
        let lower = free.to_ascii_lowercase();
        if !lower.starts_with("tlp:") && !lower.starts_with("cirfed:") && !free.trim().is_empty() {
            out.push(tag(free));
        }
    }
    out
}

fn org(orgs: &Orgs, n: u32) -> Value {
    let name = orgs.name(n);
    json!({ "name": name, "uuid": ids::named_uuid("cirfed/identity", name).hyphenated().to_string() })
}

/// `YYYY-MM-DD` of a unix time (1970-01-01 for one out of range).
fn date(unix: i64) -> String {
    let date = OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH).date();
    format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day())
}

/// MISP's `first_seen` / `last_seen` form, in microseconds, UTC.
fn seen(unix: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!("{}T{:02}:{:02}:{:02}.000000+00:00", date(unix), t.hour(), t.minute(), t.second())
}

/// An event's head: every field but its attributes.
pub(super) struct Head {
    uuid: Uuid,
    info: String,
    timestamp: i64,
    threat_level: i64,
    org: Value,
    tags: Vec<Value>,
}

impl Head {
    /// The event object without `Attribute`.
    pub fn event(&self) -> Map<String, Value> {
        let mut event = Map::new();
        event.insert("uuid".into(), json!(self.uuid.hyphenated().to_string()));
        event.insert("info".into(), json!(self.info));
        event.insert("date".into(), json!(date(self.timestamp)));
        event.insert("timestamp".into(), json!(self.timestamp.to_string()));
        event.insert("publish_timestamp".into(), json!(self.timestamp.to_string()));
        event.insert("published".into(), json!(true));
        event.insert("analysis".into(), json!(ANALYSIS_COMPLETED.to_string()));
        event.insert("threat_level_id".into(), json!(self.threat_level.to_string()));
        event.insert("Orgc".into(), self.org.clone());
        event.insert("Tag".into(), Value::Array(self.tags.clone()));
        event
    }

    /// The event's `manifest.json` entry (PyMISP `MISPEvent.manifest`).
    pub fn manifest_entry(&self) -> Value {
        json!({
            "Orgc": self.org,
            "Tag": self.tags,
            "info": self.info,
            "date": date(self.timestamp),
            "analysis": ANALYSIS_COMPLETED,
            "threat_level_id": self.threat_level,
            "timestamp": self.timestamp,
        })
    }
}

/// A lesson's event head. Its `date` is the day of its newest change, as
/// for every event here, so the manifest's date and timestamp agree.
pub(super) fn lesson_head(lesson: &LessonHead, timestamp: i64, orgs: &Orgs) -> Head {
    let mut tags = tlp_tags(lesson.tlp);
    tags.extend(cirfed_tags(lesson.level, &lesson.categories, &lesson.tags));
    Head {
        uuid: lesson.uuid,
        info: lesson.title.clone(),
        timestamp,
        threat_level: threat_level(lesson.level),
        org: org(orgs, lesson.org),
        tags,
    }
}

/// The rolling event's head: marked with the least restrictive TLP of its
/// attributes (each carries its own).
pub(super) fn rolling_head(uuid: Uuid, stats: &EventStats) -> Head {
    let name = "cirfed";
    Head {
        uuid,
        info: "cirfed federation feed: indicators not named by a lesson".to_string(),
        timestamp: stats.timestamp,
        threat_level: THREAT_LEVEL_UNDEFINED,
        org: json!({ "name": name, "uuid": ids::named_uuid("cirfed/identity", name).hyphenated().to_string() }),
        tags: stats.tlp.map(tlp_tags).unwrap_or_default(),
    }
}

/// An attribute in the event `event`. In the indicator's first event
/// (`primary`) its uuid is the indicator's; elsewhere one derived from both.
pub(super) fn attribute(
    attribute: &Attribute<'_>,
    event: Uuid,
    primary: bool,
    sightings: &[SightingEntry],
    orgs: &Orgs,
) -> Value {
    let record = attribute.record;
    let indicator = attribute.indicator;
    let uuid = match primary {
        true => ids::record_uuid(&record.id),
        false => ids::named_uuid("cirfed/misp-attribute", &format!("{event}/{}", record.id)),
    };
    let uuid = uuid.hyphenated().to_string();
    let deleted = attribute.removed_at.is_some();
    let mut tags = tlp_tags(attribute.tlp);
    tags.extend(cirfed_tags(indicator.cir_level, &indicator.categories, &indicator.tags));
    tags.push(tag(&format!("cirfed:member=\"{}\"", super::org_name(record))));
    let mut out = Map::new();
    out.insert("uuid".into(), json!(uuid));
    out.insert("type".into(), json!(attribute.misp_type));
    out.insert("category".into(), json!(attribute.category));
    out.insert("value".into(), json!(attribute.value));
    // A withdrawn value must stop feeding detection even where `deleted` is not understood.
    out.insert("to_ids".into(), json!(!deleted));
    out.insert("deleted".into(), json!(deleted));
    out.insert("disable_correlation".into(), json!(false));
    out.insert("comment".into(), json!(indicator.description));
    out.insert("timestamp".into(), json!(attribute.timestamp().to_string()));
    if indicator.first_seen > 0 {
        out.insert("first_seen".into(), json!(seen(indicator.first_seen)));
    }
    if indicator.last_seen > 0 {
        out.insert("last_seen".into(), json!(seen(indicator.last_seen)));
    }
    out.insert("Tag".into(), Value::Array(tags));
    if !deleted && !sightings.is_empty() {
        let entries = sightings.iter().map(|s| sighting(s, event, primary, &uuid, orgs)).collect();
        out.insert("Sighting".into(), Value::Array(entries));
    }
    Value::Object(out)
}

/// A MISP sighting: type 0 seen, 1 false positive, 2 expiration.
fn sighting(entry: &SightingEntry, event: Uuid, primary: bool, attribute_uuid: &str, orgs: &Orgs) -> Value {
    let kind = match SightingType::from_code(entry.kind) {
        Some(SightingType::FalsePositive) => "1",
        Some(SightingType::Expired) => "2",
        Some(SightingType::Seen) | None => "0",
    };
    let uuid = match primary {
        true => ids::record_uuid(&entry.id),
        false => ids::named_uuid("cirfed/misp-sighting", &format!("{event}/{}", entry.id)),
    };
    // MISP counts one sighting per entry; a cirfed sighting's count goes in `source`.
    let source = match entry.count {
        0 | 1 => "cirfed".to_string(),
        n => format!("cirfed (count {n})"),
    };
    json!({
        "uuid": uuid.hyphenated().to_string(),
        "attribute_uuid": attribute_uuid,
        "date_sighting": entry.created_at.to_string(),
        "type": kind,
        "source": source,
        "Organisation": org(orgs, entry.org),
    })
}

/// The lesson itself as an event report (Markdown), so a MISP analyst reads
/// the post-mortem beside its indicators.
pub(super) fn lesson_report(head: &LessonHead, lesson: &Lesson) -> Value {
    let mut text = format!("# {}\n\n{}\n\n", lesson.title, lesson.summary.trim());
    text.push_str(&format!("- CIR level: {}\n", lesson.cir_level));
    let categories: Vec<&str> =
        lesson.categories.iter().filter_map(|&c| Category::from_code(c)).map(|c| c.as_str()).collect();
    if !categories.is_empty() {
        text.push_str(&format!("- Categories: {}\n", categories.join(", ")));
    }
    if let Some(model) = ServiceModel::from_code(lesson.service_model) {
        text.push_str(&format!("- Service model: {model}\n"));
    }
    for (label, value) in [("Detection", &lesson.detection_method), ("Root cause", &lesson.root_cause)] {
        if !value.trim().is_empty() {
            text.push_str(&format!("- {label}: {}\n", value.trim()));
        }
    }
    for (label, secs) in [
        ("Time to detect", lesson.time_to_detect_secs),
        ("Time to contain", lesson.time_to_contain_secs),
        ("Time to recover", lesson.time_to_recover_secs),
    ] {
        if secs > 0 {
            text.push_str(&format!("- {label}: {}\n", duration(secs)));
        }
    }
    for (heading, items) in [("What went well", &lesson.went_well), ("To improve", &lesson.to_improve)] {
        if !items.is_empty() {
            text.push_str(&format!("\n## {heading}\n\n"));
            for item in items {
                text.push_str(&format!("- {}\n", item.trim()));
            }
        }
    }
    if !lesson.recommended_actions.is_empty() {
        text.push_str("\n## Recommended actions\n\n");
        for action in &lesson.recommended_actions {
            let phase = Phase::from_code(action.phase).map_or("any phase", |p| p.as_str());
            text.push_str(&format!("- {phase}: {}\n", action.action.trim()));
        }
    }
    json!({
        "uuid": ids::named_uuid("cirfed/misp-report", &head.id.to_string()).hyphenated().to_string(),
        "name": lesson.title,
        "content": text,
        "timestamp": head.created_at.to_string(),
        "deleted": false,
    })
}

/// "2d 3h 5m" for a number of seconds.
fn duration(mut secs: u64) -> String {
    let mut parts = Vec::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        let n = secs / size;
        secs %= size;
        if n > 0 {
            parts.push(format!("{n}{unit}"));
        }
    }
    parts.join(" ")
}
