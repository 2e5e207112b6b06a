//! MISP events in: one event file (`{"Event": {...}}` or the bare event) read
//! into drafts, attribute by attribute. Public so the MISP feed import and
//! export can share the mappings (type names, TLP tags, threat levels).

use crate::cir;
use crate::interop::bulk::BulkLine;
use crate::interop::draft::{
    build_indicator, excerpt, resolve_kind, DraftError, IndicatorFields, Mapped, DEFAULT_LEVEL,
};
use crate::interop::InteropError;
use crate::normalize::ObservableType;
use crate::proto::Draft;
use serde_json::{Map, Value};
use std::str::FromStr;

/// Largest MISP event file read: the whole event is parsed in memory, so a
/// larger one is refused before parsing (a feed splits work into events).
pub const MAX_EVENT_BYTES: usize = 32 << 20;

/// MISP attribute types cirfed takes, and which part of a `a|b` value is the observable.
pub fn misp_type(name: &str) -> Option<(Mapped, Part)> {
    use ObservableType as T;
    Some(match name {
        "ip-src" | "ip-dst" => (Mapped::Ip, Part::Whole),
        "ip-src|port" | "ip-dst|port" => (Mapped::Ip, Part::First),
        "domain" | "hostname" => (Mapped::Fixed(T::Domain), Part::Whole),
        "domain|ip" => (Mapped::Fixed(T::Domain), Part::First),
        "url" => (Mapped::Fixed(T::Url), Part::Whole),
        "email-src" | "email-dst" | "email" => (Mapped::Fixed(T::Email), Part::Whole),
        "md5" => (Mapped::Fixed(T::Md5), Part::Whole),
        "sha1" => (Mapped::Fixed(T::Sha1), Part::Whole),
        "sha256" => (Mapped::Fixed(T::Sha256), Part::Whole),
        "filename|md5" => (Mapped::Fixed(T::Md5), Part::Second),
        "filename|sha1" => (Mapped::Fixed(T::Sha1), Part::Second),
        "filename|sha256" => (Mapped::Fixed(T::Sha256), Part::Second),
        "AS" => (Mapped::Fixed(T::Asn), Part::Whole),
        "user-agent" => (Mapped::Fixed(T::UserAgent), Part::Whole),
        "x509-fingerprint-sha1" | "x509-fingerprint-sha256" => (Mapped::Fixed(T::CertificateFingerprint), Part::Whole),
        _ => return None,
    })
}

/// Which side of a MISP composite (`a|b`) value holds the observable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The whole value.
    Whole,
    /// The part before the first `|`.
    First,
    /// The part after the first `|`.
    Second,
}

/// What a MISP event says about all of its attributes.
#[derive(Debug, Clone, Default)]
pub struct MispEvent {
    /// The most restrictive TLP tag of the event.
    pub tlp: Option<cir::Tlp>,
    /// CIR level from the event's threat level.
    pub level: u8,
    /// The event's shareable tags.
    pub tags: Vec<String>,
}

/// Reads a MISP event file: one line per attribute (of the event and of its
/// objects), numbered in file order.
pub fn read_event(text: &str, now: i64) -> Result<Vec<BulkLine>, InteropError> {
    if text.len() > MAX_EVENT_BYTES {
        return Err(InteropError::TooLarge {
            what: "the MISP event".to_owned(),
            size: text.len() as u64,
            limit: MAX_EVENT_BYTES as u64,
            name: "MAX_EVENT_BYTES",
        });
    }
    let unreadable = |reason: String| InteropError::invalid("misp event", reason);
    let root: Value = serde_json::from_str(text).map_err(|e| unreadable(e.to_string()))?;
    let event = match root.get("Event") {
        Some(Value::Object(event)) => event,
        Some(_) => return Err(unreadable("`Event` is not an object".to_owned())),
        None => match &root {
            Value::Object(event) if event.contains_key("Attribute") => event,
            _ => return Err(unreadable("no `Event` object and no `Attribute` list".to_owned())),
        },
    };
    let context = event_context(event);

    let mut attributes: Vec<&Map<String, Value>> = Vec::new();
    attributes.extend(object_list(event.get("Attribute")));
    for object in object_list(event.get("Object")) {
        attributes.extend(object_list(object.get("Attribute")));
    }
    let lines = attributes
        .into_iter()
        .enumerate()
        .map(|(index, attribute)| {
            let kind = attribute.get("type").and_then(Value::as_str).unwrap_or("");
            let value = attribute.get("value").and_then(Value::as_str).unwrap_or("");
            BulkLine {
                line: index + 1,
                source: excerpt(&format!("{kind} {value}")),
                draft: misp_attribute_draft(&context, attribute, now),
            }
        })
        .collect();
    Ok(lines)
}

/// What an event's tags and threat level say about all its attributes.
pub fn event_context(event: &Map<String, Value>) -> MispEvent {
    let (tlp, tags) = misp_tags(event.get("Tag"));
    MispEvent { tlp, level: misp_level(event.get("threat_level_id")), tags }
}

/// The JSON objects in a list, skipping anything else.
pub fn object_list(value: Option<&Value>) -> impl Iterator<Item = &Map<String, Value>> {
    value.and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_object)
}

/// The most restrictive `tlp:*` tag, and every other tag that may leave the MISP instance.
pub fn misp_tags(tags: Option<&Value>) -> (Option<cir::Tlp>, Vec<String>) {
    let mut tlp = None;
    let mut others = Vec::new();
    for tag in object_list(tags) {
        let Some(name) = tag.get("name").and_then(Value::as_str) else {
            continue;
        };
        // Local tags are for the MISP instance's own workflow, not for sharing.
        if tag.get("local").is_some_and(is_true) {
            continue;
        }
        if name.trim().to_ascii_lowercase().starts_with("tlp:") {
            // Unknown TLP-like tags (tlp:ex:chr, tlp:unclear) are ignored; standard ones set the marking.
            if let Ok(found) = cir::Tlp::from_str(name) {
                tlp = tlp.max(Some(found));
            }
        } else {
            others.push(name.to_owned());
        }
    }
    (tlp, others)
}

/// MISP writes booleans as true/false, 0/1 or "0"/"1" depending on version.
pub fn is_true(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_i64() == Some(1),
        Value::String(s) => matches!(s.as_str(), "1" | "true" | "True"),
        _ => false,
    }
}

/// MISP `threat_level_id` to a CIR level.
///
/// MISP has 1 high, 2 medium, 3 low, 4 undefined. High is read as "impact on customers"
/// (4) rather than 5, which CIR keeps for systemic impact that a MISP rating cannot show;
/// low as "no direct impact on customers" (2); medium and undefined as the default (3).
pub fn misp_level(threat_level: Option<&Value>) -> u8 {
    let id = match threat_level {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    match id {
        Some(1) => 4,
        Some(3) => 2,
        _ => DEFAULT_LEVEL,
    }
}

pub fn misp_attribute_draft(event: &MispEvent, attribute: &Map<String, Value>, now: i64) -> Result<Draft, DraftError> {
    let Some(kind_name) = attribute.get("type").and_then(Value::as_str) else {
        return Err(DraftError::Missing { field: "type" });
    };
    let Some((mapped, part)) = misp_type(kind_name) else {
        return Err(DraftError::Unsupported(format!(
            "MISP attribute type '{}' has no cirfed observable type",
            excerpt(kind_name)
        )));
    };
    if attribute.get("deleted").is_some_and(is_true) {
        return Err(DraftError::Withdrawn("the MISP attribute is deleted"));
    }
    if attribute.get("to_ids").is_some_and(|v| !is_true(v)) {
        return Err(DraftError::NotForDetection);
    }
    let raw = attribute.get("value").and_then(Value::as_str).unwrap_or("").trim();
    if raw.is_empty() {
        return Err(DraftError::Missing { field: "value" });
    }
    let value = match part {
        Part::Whole => Some(raw),
        Part::First => raw.split_once('|').map(|(first, _)| first),
        Part::Second => raw.split_once('|').map(|(_, second)| second),
    }
    .ok_or_else(|| DraftError::Observable {
        value: excerpt(raw),
        reason: format!("a MISP {kind_name} value has two parts separated by |"),
    })?;
    let kind = resolve_kind(mapped, value)?;

    let (attribute_tlp, attribute_tags) = misp_tags(attribute.get("Tag"));
    let mut tags = event.tags.clone();
    tags.extend(attribute_tags);
    let fields = IndicatorFields {
        value: value.to_owned(),
        level: Some(event.level),
        tlp: event.tlp.max(attribute_tlp).map(|t| t.as_str().to_owned()),
        description: attribute.get("comment").and_then(Value::as_str).map(str::to_owned),
        tags,
        first_seen: attribute.get("first_seen").and_then(Value::as_str).map(str::to_owned),
        last_seen: attribute.get("last_seen").and_then(Value::as_str).map(str::to_owned),
        ..IndicatorFields::default()
    };
    build_indicator(&fields, Some(kind), now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interop::bulk::{read_bulk, BulkFormat};
    use crate::interop::draft::testing::{counts, errors, indicator, read_shared, NOW};

    #[test]
    fn misp_feed_event_imports_hashes_as_tlp_clear_and_refuses_the_rest() {
        let lines =
            read_bulk(&read_shared("misp/57c4445b-c548-4654-af0b-4be3950d210f.json"), BulkFormat::MispEvent, NOW)
                .unwrap();
        assert_eq!(lines.len(), 9);
        assert_eq!(counts(&lines), (3, 6));
        let drafts: Vec<&Draft> = lines.iter().filter_map(|l| l.draft.as_ref().ok()).collect();
        let kinds: Vec<i32> = drafts.iter().map(|d| indicator(d).r#type).collect();
        let t = |k: ObservableType| i32::from(k.code());
        assert_eq!(kinds, [t(ObservableType::Md5), t(ObservableType::Sha1), t(ObservableType::Sha256)]);
        for draft in &drafts {
            assert_eq!(draft.tlp, cir::Tlp::Clear.code());
            let i = indicator(draft);
            assert_eq!(i.cir_level, 2, "threat level 3 (low) is CIR level 2");
            assert_eq!(i.description, "Imported via the Freetext Import Tool");
            assert!(i.tags.iter().any(|t| t == "circl:incident-classification=\"malware\""), "{:?}", i.tags);
            assert!(!i.tags.iter().any(|t| t.starts_with("tlp:")));
        }
        assert_eq!(lines[5].line, 6);
        assert_eq!(lines[5].source, "md5 0749bae92ca336a02c83d126e04ec628");
        let unsupported: Vec<String> = errors(&lines).into_iter().map(|(_, e)| e.to_string()).collect();
        assert_eq!(
            unsupported,
            [
                "unsupported: MISP attribute type 'link' has no cirfed observable type",
                "unsupported: MISP attribute type 'link' has no cirfed observable type",
                "unsupported: MISP attribute type 'comment' has no cirfed observable type",
                "unsupported: MISP attribute type 'text' has no cirfed observable type",
                "unsupported: MISP attribute type 'filename' has no cirfed observable type",
                "unsupported: MISP attribute type 'regkey|value' has no cirfed observable type",
            ]
        );
    }

    #[test]
    fn misp_bare_event_refuses_attributes_not_marked_for_detection() {
        let lines = read_bulk(&read_shared("misp/misp_event.json"), BulkFormat::MispEvent, NOW).unwrap();
        assert_eq!(counts(&lines), (0, 2));
        assert_eq!(
            errors(&lines),
            [
                (1, DraftError::NotForDetection),
                (2, DraftError::Unsupported("MISP attribute type 'text' has no cirfed observable type".into()))
            ]
        );
        assert_eq!(lines[0].source, "url http://fake.website.com/malware/is/here");
    }

    #[test]
    fn misp_event_with_sightings_imports_domains_and_url() {
        let lines = read_bulk(&read_shared("misp/sighting_1.json"), BulkFormat::MispEvent, NOW).unwrap();
        assert_eq!(counts(&lines), (5, 0));
        let t = |k: ObservableType| i32::from(k.code());
        let kinds: Vec<i32> = lines.iter().map(|l| indicator(l.draft.as_ref().unwrap()).r#type).collect();
        assert_eq!(
            kinds,
            [t(ObservableType::Domain); 4].into_iter().chain([t(ObservableType::Url)]).collect::<Vec<_>>()
        );
        let first = lines[0].draft.as_ref().unwrap();
        assert_eq!(first.tlp, 0, "no tlp tag: the node's default");
        assert_eq!(indicator(first).description, "Ursnif");
        assert_eq!(indicator(first).tags, ["PasteBin: MALWAREMESSIAGH", "misp-galaxy:banker=\"Gozi\""]);
    }

    #[test]
    fn misp_composite_and_ip_types_import_the_observable_part() {
        let event = serde_json::json!({"Event": {
            "threat_level_id": "1",
            "Tag": [{"name": "tlp:green"}, {"name": "tlp:amber"}, {"name": "workflow:todo", "local": 1}],
            "Attribute": [
                {"type": "ip-dst|port", "value": "203.0.113.5|443", "to_ids": true},
                {"type": "ip-src", "value": "2001:db8::/32", "to_ids": "1"},
                {"type": "filename|sha256", "value": "a.exe|b3c4ae251f8094fa15b510051835c657eaef2a6cea46075d3aec964b14a99f68", "to_ids": true},
                {"type": "domain|ip", "value": "evil.example|203.0.113.6", "to_ids": true},
                {"type": "AS", "value": "64496", "to_ids": true},
                {"type": "ip-dst", "value": "evil.example", "to_ids": true},
                {"type": "md5", "value": "0749bae92ca336a02c83d126e04ec628", "to_ids": true, "deleted": true},
                {"type": "x509-fingerprint-sha1", "value": "77b0c41b7d340b8a3d903f21347bbf06aa766b5b", "to_ids": true, "Tag": [{"name": "tlp:red"}]}
            ],
            "Object": [{"name": "file", "Attribute": [
                {"type": "sha1", "value": "77b0c41b7d340b8a3d903f21347bbf06aa766b5b", "to_ids": true},
                {"type": "size-in-bytes", "value": "1024", "to_ids": false}
            ]}]
        }})
        .to_string();
        let lines = read_bulk(&event, BulkFormat::MispEvent, NOW).unwrap();
        let t = |k: ObservableType| i32::from(k.code());
        let got: Vec<(usize, i32, String)> = lines
            .iter()
            .filter_map(|l| l.draft.as_ref().ok().map(|d| (l.line, indicator(d).r#type, indicator(d).value.clone())))
            .collect();
        assert_eq!(
            got,
            [
                (1, t(ObservableType::Ipv4), "203.0.113.5".to_owned()),
                (2, t(ObservableType::Cidr), "2001:db8::/32".to_owned()),
                (
                    3,
                    t(ObservableType::Sha256),
                    "b3c4ae251f8094fa15b510051835c657eaef2a6cea46075d3aec964b14a99f68".to_owned()
                ),
                (4, t(ObservableType::Domain), "evil.example".to_owned()),
                (5, t(ObservableType::Asn), "64496".to_owned()),
                (8, t(ObservableType::CertificateFingerprint), "77b0c41b7d340b8a3d903f21347bbf06aa766b5b".to_owned()),
                (9, t(ObservableType::Sha1), "77b0c41b7d340b8a3d903f21347bbf06aa766b5b".to_owned()),
            ]
        );
        let first = lines[0].draft.as_ref().unwrap();
        assert_eq!(first.tlp, cir::Tlp::Amber.code(), "the most restrictive tlp tag wins");
        assert_eq!(indicator(first).cir_level, 4, "threat level 1 (high) is CIR level 4");
        assert!(indicator(first).tags.is_empty(), "local tags stay home");
        assert_eq!(lines[7].draft.as_ref().unwrap().tlp, cir::Tlp::Red.code());
        let refused: Vec<(usize, String)> = errors(&lines).into_iter().map(|(n, e)| (n, e.to_string())).collect();
        assert_eq!(
            refused,
            [
                (6, "`value` 'evil.example': not an IP address or network".to_owned()),
                (7, "withdrawn: the MISP attribute is deleted".to_owned()),
                (10, "unsupported: MISP attribute type 'size-in-bytes' has no cirfed observable type".to_owned()),
            ]
        );
    }

    #[test]
    fn misp_level_maps_threat_levels_onto_cir_levels() {
        let level = |v: Value| misp_level(Some(&v));
        assert_eq!([level("1".into()), level("2".into()), level("3".into()), level("4".into())], [4, 3, 2, 3]);
        assert_eq!(level(1.into()), 4);
        assert_eq!(misp_level(None), DEFAULT_LEVEL);
    }

    #[test]
    fn json_that_is_not_a_misp_event_is_unreadable() {
        for text in ["[]", "{\"type\": \"bundle\"}", "not json", "{\"Event\": 3}"] {
            let err = read_bulk(text, BulkFormat::MispEvent, NOW).unwrap_err();
            assert!(matches!(&err, InteropError::Invalid { what, .. } if what == "misp event"), "{text}: {err}");
        }
    }
}
