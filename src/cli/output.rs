//! Tables for people, JSON for tools. Every read command prints either.

use cirfed::cir::{Category, Phase, Role, ServiceModel, SightingType, Tlp};
use cirfed::normalize::ObservableType;
use cirfed::proto::{self, record::Body, Record};
use cirfed::record::RecordKind;
use comfy_table::{presets, ContentArrangement, Table};
use prost::Message;
use serde_json::{json, Value};

/// RFC 3339 time, or "-" when unknown (0).
pub fn time(t: i64) -> String {
    if t == 0 {
        return "-".into();
    }
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| t.to_string())
}

/// First 16 hex characters of an id: enough to recognise, short enough for a table.
pub fn short_id(id: &[u8]) -> String {
    hex::encode(id).chars().take(16).collect()
}

/// A table with our house style.
pub fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_preset(presets::UTF8_BORDERS_ONLY).set_content_arrangement(ContentArrangement::Dynamic);
    table.set_header(header.to_vec());
    table
}

/// Prints JSON, pretty.
pub fn print_json(value: &Value) {
    println!("{}", serde_json::to_string_pretty(value).expect("json serializes"));
}

/// Name of a TLP code.
pub fn tlp(code: i32) -> String {
    Tlp::from_code(code).map_or_else(|| format!("unknown({code})"), |t| t.to_string())
}

/// Name of an observable type code.
pub fn observable_type(code: i32) -> String {
    u8::try_from(code)
        .ok()
        .and_then(ObservableType::from_code)
        .map_or_else(|| format!("unknown({code})"), |t| t.to_string())
}

/// Names of category codes.
pub fn categories(codes: &[i32]) -> Vec<String> {
    codes.iter().map(|c| Category::from_code(*c).map_or_else(|| format!("unknown({c})"), |c| c.to_string())).collect()
}

/// Name of a record kind code.
pub fn kind(code: i32) -> String {
    RecordKind::from_code(code).map_or_else(|| format!("unknown({code})"), |k| k.to_string())
}

/// Name of a match kind code.
pub fn match_kind(code: i32) -> &'static str {
    match proto::MatchKind::try_from(code) {
        Ok(proto::MatchKind::Exact) => "exact",
        Ok(proto::MatchKind::CidrContains) => "in-cidr",
        Ok(proto::MatchKind::ParentDomain) => "parent-domain",
        Ok(proto::MatchKind::UrlHost) => "url-host",
        _ => "unknown",
    }
}

/// Decodes the record inside a stored record.
pub fn decode(stored: &proto::StoredRecord) -> Option<Record> {
    stored.envelope.as_ref().and_then(|e| Record::decode(e.record.as_slice()).ok())
}

/// One-line summary of a record: its value, title or target.
pub fn summary(record: &Record) -> String {
    match &record.body {
        Some(Body::Indicator(i)) => format!("{} {}", observable_type(i.r#type), i.value),
        Some(Body::Lesson(l)) => l.title.clone(),
        Some(Body::Sighting(s)) => format!("{} of {}", sighting_type(s.r#type), short_id(&s.indicator_id)),
        Some(Body::Retraction(r)) => format!("retracts {}: {}", short_id(&r.target_id), r.reason),
        Some(Body::MemberCard(c)) => format!("card of {}", c.member_id),
        Some(Body::MemberRevocation(r)) => format!("revokes {} from {}", short_id(&r.signing_key), time(r.revoked_at)),
        None => "-".into(),
    }
}

fn sighting_type(code: i32) -> String {
    SightingType::from_code(code).map_or_else(|| format!("unknown({code})"), |t| t.to_string())
}

/// The state column: active, retracted or expired.
pub fn state(stored: &proto::StoredRecord) -> &'static str {
    match (stored.retracted, stored.expired) {
        (true, _) => "retracted",
        (false, true) => "expired",
        _ => "active",
    }
}

/// The full JSON view of a stored record.
pub fn record_json(stored: &proto::StoredRecord) -> Value {
    let mut value = json!({
        "id": hex::encode(&stored.id),
        "seq": stored.seq,
        "received_at": time(stored.received_at),
        "state": state(stored),
    });
    if stored.retracted {
        value["retraction_reason"] = json!(stored.retraction_reason);
    }
    if let Some(record) = decode(stored) {
        add_record_fields(&mut value, &record);
    }
    value
}

fn add_record_fields(value: &mut Value, record: &Record) {
    value["kind"] = json!(record.body.as_ref().map(|b| RecordKind::of(b).to_string()));
    value["author"] = json!(hex::encode(&record.author));
    value["created_at"] = json!(time(record.created_at));
    value["tlp"] = json!(tlp(record.tlp));
    if let Some(body) = &record.body {
        let (key, body) = body_json(body);
        value[key] = body;
    }
}

/// What a dry run would sign: the id, the exact bytes (hex) and the decoded record.
pub fn prepared_json(outcome: &proto::Outcome) -> Value {
    let mut value = json!({ "id": hex::encode(&outcome.id), "record_bytes": hex::encode(&outcome.record) });
    if let Ok(record) = Record::decode(outcome.record.as_slice()) {
        add_record_fields(&mut value, &record);
    }
    value
}

/// A key/value table of what a dry run would sign.
pub fn prepared_table(outcome: &proto::Outcome) -> Table {
    let mut table = table(&["field", "value"]);
    let mut value = prepared_json(outcome);
    value.as_object_mut().map(|o| o.remove("record_bytes"));
    flatten("", &value, &mut |key, value| {
        table.add_row(vec![key.to_string(), value]);
    });
    table
}

pub fn redactions_json(redactions: &[proto::Redaction]) -> Value {
    json!(redactions
        .iter()
        .map(|r| json!({
            "field": r.field, "detector": r.detector, "action": r.action, "found": r.found, "shared_as": r.replacement,
        }))
        .collect::<Vec<_>>())
}

pub fn redactions_table(redactions: &[proto::Redaction]) -> Table {
    let mut table = table(&["field", "detector", "action", "found", "shared as"]);
    for r in redactions {
        table.add_row(vec![&r.field, &r.detector, &r.action, &r.found, &r.replacement]);
    }
    table
}

fn body_json(body: &Body) -> (&'static str, Value) {
    match body {
        Body::Indicator(i) => (
            "indicator",
            json!({
                "type": observable_type(i.r#type), "value": i.value, "cir_level": i.cir_level,
                "categories": categories(&i.categories), "confidence": i.confidence,
                "valid_until": time(i.valid_until), "first_seen": time(i.first_seen), "last_seen": time(i.last_seen),
                "tags": i.tags, "description": i.description, "incident_ref": i.incident_ref,
                "supersedes": (!i.supersedes.is_empty()).then(|| hex::encode(&i.supersedes)),
            }),
        ),
        Body::Lesson(l) => ("lesson", lesson_json(l)),
        Body::Sighting(s) => (
            "sighting",
            json!({
                "indicator_id": hex::encode(&s.indicator_id), "type": sighting_type(s.r#type), "count": s.count,
            }),
        ),
        Body::Retraction(r) => ("retraction", json!({ "target_id": hex::encode(&r.target_id), "reason": r.reason })),
        Body::MemberCard(c) => (
            "member_card",
            json!({
                "member_id": c.member_id, "signing_key": hex::encode(&c.signing_key),
                "roles": c.roles.iter().map(|r| Role::from_code(*r).map_or_else(|| r.to_string(), |r| r.to_string())).collect::<Vec<_>>(),
                "valid_from": time(c.valid_from), "valid_until": time(c.valid_until),
            }),
        ),
        Body::MemberRevocation(r) => (
            "member_revocation",
            json!({
                "signing_key": hex::encode(&r.signing_key), "revoked_at": time(r.revoked_at), "reason": r.reason,
            }),
        ),
    }
}

fn lesson_json(l: &proto::Lesson) -> Value {
    json!({
        "title": l.title, "summary": l.summary, "cir_level": l.cir_level, "categories": categories(&l.categories),
        "service_model": ServiceModel::from_code(l.service_model).map(|s| s.to_string()),
        "detection_method": l.detection_method,
        "time_to_detect_secs": l.time_to_detect_secs, "time_to_contain_secs": l.time_to_contain_secs,
        "time_to_recover_secs": l.time_to_recover_secs, "root_cause": l.root_cause,
        "went_well": l.went_well, "to_improve": l.to_improve,
        "recommended_actions": l.recommended_actions.iter().map(|a| json!({
            "phase": Phase::from_code(a.phase).map(|p| p.to_string()), "action": a.action,
        })).collect::<Vec<_>>(),
        "indicator_refs": l.indicator_refs.iter().map(hex::encode).collect::<Vec<_>>(),
        "tags": l.tags,
    })
}

/// A key/value table of one record.
pub fn record_table(stored: &proto::StoredRecord) -> Table {
    let mut table = table(&["field", "value"]);
    flatten("", &record_json(stored), &mut |key, value| {
        table.add_row(vec![key.to_string(), value]);
    });
    table
}

/// Walks a JSON value, calling `row` for each leaf with its dotted path.
fn flatten(prefix: &str, value: &Value, row: &mut impl FnMut(&str, String)) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                flatten(&path, value, row);
            }
        }
        Value::Array(items) if items.iter().all(|i| !i.is_object()) => {
            row(prefix, items.iter().map(plain).collect::<Vec<_>>().join(", "));
        }
        Value::Array(items) => {
            for (n, item) in items.iter().enumerate() {
                flatten(&format!("{prefix}[{n}]"), item, row);
            }
        }
        Value::Null => {}
        leaf => row(prefix, plain(leaf)),
    }
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// JSON of one lookup result, with the value that was looked up; each match
/// carries its record's description from the reply's `descriptions`.
pub fn lookup_json(query: &str, result: Option<&proto::LookupResult>, descriptions: &Descriptions) -> Value {
    let Some(result) = result else {
        return json!({ "value": query, "matched": false, "matches": [] });
    };
    let mut value = json!({
        "value": query,
        "matched": !result.matches.is_empty(),
        "type": observable_type(result.r#type),
        "canonical": result.canonical,
        "max_cir_level": result.max_cir_level,
        "confidence": result.confidence,
        "score": result.score,
        "first_seen": time(result.first_seen),
        "last_seen": time(result.last_seen),
        "matches": result.matches.iter().map(|m| match_json(m, descriptions)).collect::<Vec<_>>(),
        "omitted_matches": result.omitted_matches,
        "benign": (!result.benign.is_empty()).then_some(&result.benign),
        "filtered": result.filtered,
    });
    if !result.error.is_empty() {
        value = json!({ "value": query, "matched": false, "error": result.error, "matches": [] });
    }
    value
}

fn match_json(m: &proto::Match, descriptions: &Descriptions) -> Value {
    let description = descriptions.get(&hex::encode(&m.record_id)).map_or("", String::as_str);
    json!({
        "record_id": hex::encode(&m.record_id), "match": match_kind(m.kind),
        "indicator_type": observable_type(m.indicator_type), "indicator_value": m.indicator_value,
        "cir_level": m.cir_level, "confidence": m.confidence, "categories": categories(&m.categories),
        "tlp": tlp(m.tlp), "valid_until": time(m.valid_until), "first_seen": time(m.first_seen),
        "last_seen": time(m.last_seen), "description": description, "score": m.score,
        "sightings": {
            "seen": m.sightings_seen, "false_positive": m.sightings_false_positive,
            "expired": m.sightings_expired, "last_seen": time(m.last_sighting),
        },
        "author_revoked": m.author_revoked,
        "author_revoked_at": m.author_revoked.then(|| time(m.author_revoked_at)),
    })
}

/// Sightings and the author's standing, in a few words.
fn match_notes(m: &proto::Match) -> String {
    let mut notes = Vec::new();
    if m.sightings_seen + m.sightings_false_positive + m.sightings_expired > 0 {
        notes.push(format!(
            "seen {} / false positive {} / expired {}",
            m.sightings_seen, m.sightings_false_positive, m.sightings_expired
        ));
    }
    if m.author_revoked {
        notes.push(format!("author revoked {}", time(m.author_revoked_at)));
    }
    notes.join("; ")
}

/// A lookup reply's descriptions, by record id in hex.
pub type Descriptions = std::collections::HashMap<String, String>;

/// Adds a lookup result's rows to a lookup table.
pub fn lookup_rows(table: &mut Table, query: &str, result: Option<&proto::LookupResult>) {
    match result {
        None => {
            table.add_row(vec![query, "-", "no match", "", "", "", "", "", "", ""]);
        }
        Some(r) if !r.error.is_empty() => {
            table.add_row(vec![query.to_string(), "-".into(), format!("invalid: {}", r.error)]);
        }
        Some(r) if !r.benign.is_empty() => {
            table.add_row(vec![
                query.to_string(),
                observable_type(r.r#type),
                format!("benign: on warninglist {}", r.benign),
            ]);
        }
        Some(r) => {
            for reason in &r.filtered {
                table.add_row(vec![query.to_string(), observable_type(r.r#type), format!("held back: {reason}")]);
            }
            for m in &r.matches {
                table.add_row(vec![
                    query.to_string(),
                    observable_type(r.r#type),
                    match_kind(m.kind).to_string(),
                    m.indicator_value.clone(),
                    format!("L{}", m.cir_level),
                    m.confidence.to_string(),
                    m.score.to_string(),
                    tlp(m.tlp),
                    short_id(&m.record_id),
                    match_notes(m),
                ]);
            }
            if r.omitted_matches > 0 {
                table.add_row(vec![
                    query.to_string(),
                    observable_type(r.r#type),
                    format!("{} more matches", r.omitted_matches),
                ]);
            }
        }
    }
}

/// Header of the lookup table.
pub const LOOKUP_HEADER: [&str; 10] =
    ["value", "type", "match", "published", "level", "confidence", "score", "tlp", "record", "notes"];
