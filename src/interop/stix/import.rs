//! STIX bundles and posted objects in, as drafts: indicators (one draft per
//! alternative of the pattern), reports as lessons, sightings of cirfed
//! indicators as sightings, revoked versions of cirfed records as
//! retractions. STIX 2.0 objects (no `spec_version`, the indicator's kind in
//! `labels`) read the same way.
//!
//! An object is imported whole or not at all: when one alternative of a
//! pattern cannot be matched (an operator, a path, a value), the object is
//! refused or skipped with the reason, and none of its alternatives is
//! published.

use super::ids::{is_record_of, parse_object_id, record_prefix};
use super::markings::tlp_of_marking;
use super::objects::default_description;
use super::pattern::{observable_of, parse_pattern};
use crate::cir::{Phase, ServiceModel, SightingType, Tlp};
use crate::interop::bulk::BulkLine;
use crate::interop::draft::{
    build_indicator, categories, clean_list, excerpt, trimmed, DraftError, IndicatorFields, DEFAULT_LEVEL,
    MAX_CONFIDENCE,
};
use crate::interop::{Feed, FeedRecord, InteropError};
use crate::normalize::ObservableType;
use crate::proto::{self, draft::Body, Draft, Lesson, PhaseAction};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::str::FromStr;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Largest bundle read from a file: the whole bundle is parsed in memory, so
/// a larger one is refused before parsing.
pub const MAX_BUNDLE_BYTES: usize = 32 << 20;

/// What became of one posted object.
#[derive(Debug)]
pub struct ObjectImport {
    /// Its `id` ("" when it has none).
    pub id: String,
    /// Its `modified` (or `created`; "" when it has neither).
    pub version: String,
    /// What to do with it.
    pub action: ImportAction,
}

/// What a posted object becomes.
#[derive(Debug)]
pub enum ImportAction {
    /// Drafts to publish (an indicator gives one per alternative of its pattern).
    Publish(Vec<proto::Draft>),
    /// Used to read the others (a marking definition, an identity, an
    /// extension-definition, an earlier version), not stored: why.
    Context(&'static str),
    /// Not importable: why, naming the object.
    Refuse(InteropError),
}

/// Why an object gives no drafts.
enum Refusal {
    Draft(DraftError),
    Feed(InteropError),
}

impl From<DraftError> for Refusal {
    fn from(e: DraftError) -> Self {
        Refusal::Draft(e)
    }
}

impl From<InteropError> for Refusal {
    fn from(e: InteropError) -> Self {
        Refusal::Feed(e)
    }
}

/// What the objects of one bundle or post share.
struct Context<'a> {
    /// Marking ids that mean a TLP: the standard ones are looked up directly; these are defined in the bundle.
    markings: HashMap<&'a str, Tlp>,
    /// Per id, the index of the object that is its latest version.
    latest: HashMap<&'a str, usize>,
    default_tlp: Option<Tlp>,
    feed: Option<&'a dyn Feed>,
    now: i64,
}

/// Reads the objects of a TAXII post (or of a bundle) into drafts, object by
/// object. `default_tlp` marks objects without a TLP marking (`None`: the
/// node's default); `feed` finds the cirfed records behind object ids
/// (sightings of cirfed indicators, revoked cirfed objects, a report's
/// indicators): without it, those cannot be resolved and are refused.
pub fn import_objects(
    objects: &[Value],
    default_tlp: Option<Tlp>,
    feed: Option<&dyn Feed>,
    now: i64,
) -> Vec<ObjectImport> {
    let context = Context::new(objects, default_tlp, feed, now);
    objects
        .iter()
        .enumerate()
        .map(|(index, object)| {
            let id = text(object, "id").unwrap_or_default().to_owned();
            let version = text(object, "modified").or_else(|| text(object, "created")).unwrap_or_default().to_owned();
            let action = match context.object(index, object) {
                Ok(drafts) => ImportAction::Publish(drafts.into_iter().map(|(draft, _)| draft).collect()),
                Err(Refusal::Draft(DraftError::Context(why))) => ImportAction::Context(why),
                Err(Refusal::Draft(e)) if e.is_skip() => {
                    ImportAction::Refuse(InteropError::Unsupported(format!("{}: {e}", name(&id))))
                }
                Err(Refusal::Draft(e)) => ImportAction::Refuse(InteropError::invalid(name(&id), e.to_string())),
                Err(Refusal::Feed(e)) => ImportAction::Refuse(e),
            };
            ObjectImport { id, version, action }
        })
        .collect()
}

fn name(id: &str) -> String {
    if id.is_empty() {
        "an object without an id".to_owned()
    } else {
        excerpt(id)
    }
}

/// Reads a bundle file for `publish --file`: one line per draft (numbered by
/// the object it came from) or per object that gives none, with the reason.
pub fn read_bundle(bundle: &str, now: i64) -> Result<Vec<BulkLine>, InteropError> {
    if bundle.len() > MAX_BUNDLE_BYTES {
        return Err(InteropError::TooLarge {
            what: "the STIX bundle".to_owned(),
            size: bundle.len() as u64,
            limit: MAX_BUNDLE_BYTES as u64,
            name: "MAX_BUNDLE_BYTES",
        });
    }
    let unreadable = |reason: &str| InteropError::invalid("stix bundle", reason);
    let root: Value = serde_json::from_str(bundle).map_err(|e| InteropError::invalid("stix bundle", e.to_string()))?;
    if root.get("type").and_then(Value::as_str) != Some("bundle") {
        return Err(unreadable("not a bundle: expected \"type\": \"bundle\""));
    }
    let Some(objects) = root.get("objects").and_then(Value::as_array) else {
        return Err(unreadable("the bundle has no `objects` list"));
    };
    let context = Context::new(objects, None, None, now);
    let mut lines = Vec::new();
    for (index, object) in objects.iter().enumerate() {
        let line = index + 1;
        match context.object(index, object) {
            Ok(drafts) => {
                lines.extend(drafts.into_iter().map(|(draft, source)| BulkLine { line, source, draft: Ok(draft) }))
            }
            Err(refusal) => {
                let error = match refusal {
                    Refusal::Draft(e) => e,
                    Refusal::Feed(e) => DraftError::Unsupported(e.to_string()),
                };
                let kind = text(object, "type").unwrap_or_default();
                let id = text(object, "id").unwrap_or_default();
                let source = match kind {
                    "indicator" => text(object, "pattern").unwrap_or(id).to_owned(),
                    _ => format!("{kind} {id}"),
                };
                lines.push(BulkLine { line, source: excerpt(&source), draft: Err(error) });
            }
        }
    }
    Ok(lines)
}

fn text<'v>(object: &'v Value, key: &str) -> Option<&'v str> {
    object.get(key).and_then(Value::as_str)
}

/// A STIX timestamp as unix nanoseconds, to order versions that differ in a
/// millisecond; `None` if absent or not one.
fn timestamp(object: &Value, key: &str) -> Option<i128> {
    text(object, key).and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok()).map(OffsetDateTime::unix_timestamp_nanos)
}

/// A TLP marking definition's TLP: TLP 1.0 style, the TLP 2.0 extension, or a "TLP:..." name.
fn marking_tlp(object: &Value) -> Option<Tlp> {
    let tlp_2_0 =
        || object.get("extensions").and_then(Value::as_object)?.values().find_map(|e| e.get("tlp_2_0")?.as_str());
    let name = match text(object, "definition_type") {
        Some("tlp") => object.pointer("/definition/tlp").and_then(Value::as_str),
        _ => tlp_2_0().or_else(|| text(object, "name").filter(|n| n.to_ascii_lowercase().starts_with("tlp:"))),
    };
    name.and_then(|n| Tlp::from_str(n).ok())
}

impl<'a> Context<'a> {
    fn new(objects: &'a [Value], default_tlp: Option<Tlp>, feed: Option<&'a dyn Feed>, now: i64) -> Self {
        let mut markings = HashMap::new();
        let mut latest: HashMap<&str, (usize, i128)> = HashMap::new();
        for (index, object) in objects.iter().enumerate() {
            let Some(id) = text(object, "id") else { continue };
            if text(object, "type") == Some("marking-definition") {
                if let Some(tlp) = marking_tlp(object) {
                    markings.entry(id).or_insert(tlp);
                }
            }
            let version = timestamp(object, "modified").or_else(|| timestamp(object, "created")).unwrap_or(i128::MIN);
            match latest.get(id) {
                Some((_, seen)) if *seen >= version => {}
                _ => {
                    latest.insert(id, (index, version));
                }
            }
        }
        let latest = latest.into_iter().map(|(id, (index, _))| (id, index)).collect();
        Context { markings, latest, default_tlp, feed, now }
    }

    /// The TLP of an object's most restrictive TLP marking, else the default.
    fn tlp(&self, object: &Value) -> Option<Tlp> {
        let refs = object.get("object_marking_refs").and_then(Value::as_array);
        let marked = refs
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter_map(|id| tlp_of_marking(id).or_else(|| self.markings.get(id).copied()))
            .max();
        marked.or(self.default_tlp)
    }

    /// The drafts of one object, each with a source excerpt.
    fn object(&self, index: usize, object: &Value) -> Result<Vec<(Draft, String)>, Refusal> {
        let Some(object_map) = object.as_object() else {
            return Err(DraftError::WrongType { field: "objects", expected: "a list of objects" }.into());
        };
        let Some(kind) = text(object, "type") else {
            return Err(DraftError::Missing { field: "type" }.into());
        };
        let id = text(object, "id").unwrap_or_default();
        if self.latest.get(id).is_some_and(|latest| *latest != index) {
            return Err(DraftError::Context("an earlier version of an object whose latest version is also here").into());
        }
        if matches!(kind, "indicator" | "report" | "sighting") && object.get("revoked").and_then(Value::as_bool) == Some(true)
        {
            return self.revoked(object, kind);
        }
        match kind {
            "indicator" => self.indicator(object, object_map),
            "report" => self.report(object),
            "sighting" => self.sighting(object),
            "marking-definition" => Err(DraftError::Context("a marking definition: read for the TLP of the objects that use it").into()),
            "identity" => Err(DraftError::Context("an identity: records are published under this node's pseudonym").into()),
            "extension-definition" => {
                Err(DraftError::Context("an extension definition: read for the properties it defines").into())
            }
            other => Err(DraftError::Unsupported(format!(
                "STIX object type '{}': cirfed imports indicators, reports and sightings",
                excerpt(other)
            ))
            .into()),
        }
    }

    fn draft(&self, object: &Value, body: Body) -> Draft {
        Draft { tlp: self.tlp(object).map_or(0, Tlp::code), body: Some(body) }
    }

    /// The cirfed record behind an object id, when there is a feed to look in.
    fn record_of(&self, object_id: &str) -> Result<Option<FeedRecord>, InteropError> {
        let (Some(feed), Some((_, uuid))) = (self.feed, parse_object_id(object_id)) else { return Ok(None) };
        let found = feed.records_with_prefix(&record_prefix(&uuid))?;
        Ok(found.into_iter().find(|record| is_record_of(&uuid, &record.id)))
    }

    /// A revoked version: the retraction of the cirfed record behind it.
    fn revoked(&self, object: &Value, kind: &str) -> Result<Vec<(Draft, String)>, Refusal> {
        let id = text(object, "id").unwrap_or_default();
        if self.feed.is_none() {
            return Err(DraftError::Withdrawn("the STIX object is revoked").into());
        }
        let Some(record) = self.record_of(id)? else {
            return Err(DraftError::Withdrawn("the STIX object is revoked and is not a record this node holds").into());
        };
        let reason = text(object, "x_cirfed_retraction_reason").filter(|r| !r.trim().is_empty());
        let retraction = proto::Retraction {
            target_id: record.id.0.to_vec(),
            reason: reason.unwrap_or("revoked in STIX").trim().to_owned(),
        };
        Ok(vec![(self.draft(object, Body::Retraction(retraction)), excerpt(&format!("{kind} {id} revoked")))])
    }

    fn indicator(&self, object: &Value, map: &Map<String, Value>) -> Result<Vec<(Draft, String)>, Refusal> {
        let pattern_type = text(object, "pattern_type").unwrap_or("stix");
        if pattern_type != "stix" {
            return Err(DraftError::UnsupportedPattern(format!(
                "pattern_type '{}': only STIX patterns are imported",
                excerpt(pattern_type)
            ))
            .into());
        }
        let Some(pattern) = text(object, "pattern") else {
            return Err(DraftError::Missing { field: "pattern" }.into());
        };
        let alternatives = parse_pattern(pattern)?;
        let declared = match text(object, "x_cirfed_observable_type") {
            None => None,
            Some(name) => Some(ObservableType::from_str(name).map_err(|e| DraftError::Vocabulary {
                field: "x_cirfed_observable_type",
                reason: e.to_string(),
            })?),
        };
        let mut observables = Vec::with_capacity(alternatives.len());
        for alternative in &alternatives {
            let source = alternative.iter().map(|c| c.text.as_str()).collect::<Vec<_>>().join(" AND ");
            observables.push((observable_of(alternative, declared)?, excerpt(&source)));
        }
        let (fields, valid_until) = self.indicator_fields(object, map)?;
        let mut drafts = Vec::with_capacity(observables.len());
        for ((kind, value), source) in observables {
            let fields = IndicatorFields { value, ..fields.clone() };
            let mut draft = build_indicator(&fields, Some(kind), self.now)?;
            if let Some(Body::Indicator(indicator)) = &mut draft.body {
                indicator.valid_until = valid_until;
            }
            draft.tlp = self.tlp(object).map_or(0, Tlp::code);
            drafts.push((draft, source));
        }
        Ok(drafts)
    }

    /// What an indicator's properties say about every value of its pattern, and its `valid_until`.
    fn indicator_fields(&self, object: &Value, map: &Map<String, Value>) -> Result<(IndicatorFields, i64), DraftError> {
        // Objects cirfed wrote carry their CIR fields; others get the defaults.
        let from_cirfed = map.contains_key("x_cirfed_cir_level");
        let confidence = match object.get("confidence") {
            None | Some(Value::Null) => None,
            Some(value) => {
                let n = value.as_i64().ok_or(DraftError::WrongType { field: "confidence", expected: "a whole number" })?;
                Some(u8::try_from(n).ok().filter(|c| i64::from(*c) <= MAX_CONFIDENCE).ok_or(DraftError::Confidence(n))?)
            }
        };
        let level = match object.get("x_cirfed_cir_level") {
            None => None,
            Some(value) => {
                let n = value.as_i64().ok_or(DraftError::WrongType { field: "x_cirfed_cir_level", expected: "a whole number" })?;
                Some(u8::try_from(n).map_err(|_| DraftError::Level { field: "x_cirfed_cir_level", value: n })?)
            }
        };
        let valid_until = match text(object, "valid_until") {
            None => 0,
            Some(text) => {
                let at = OffsetDateTime::parse(text, &Rfc3339)
                    .map_err(|_| DraftError::Time { field: "valid_until", input: excerpt(text) })?
                    .unix_timestamp();
                if at <= self.now {
                    return Err(DraftError::Expired(excerpt(text)));
                }
                at
            }
        };
        let mut description = ["description", "name"]
            .iter()
            .find_map(|key| text(object, key).filter(|d| !d.trim().is_empty()))
            .map(str::to_owned);
        if from_cirfed {
            // cirfed writes a default sentence where the author gave no description (STIX asks for one).
            let kind = text(object, "name").and_then(|n| n.split(' ').next()).and_then(|k| ObservableType::from_str(k).ok());
            let default = kind.map(|k| default_description(k, u32::from(level.unwrap_or(DEFAULT_LEVEL))));
            description = match (text(object, "description"), default) {
                (Some(given), Some(default)) if given == default => None,
                (Some(given), _) => Some(given.to_owned()),
                (None, _) => None,
            };
        }
        let mut tags = strings(object, "labels")?;
        // STIX 2.0 put the indicator's kind in `labels`, 2.1 in `indicator_types`: both become tags,
        // except on cirfed's own objects, whose indicator types only restate their categories.
        if !from_cirfed {
            tags.extend(strings(object, "indicator_types")?);
        }
        let fields = IndicatorFields {
            level,
            tlp: None,
            confidence,
            categories: strings(object, "x_cirfed_categories")?,
            description,
            tags,
            incident_ref: text(object, "x_cirfed_incident_ref").map(str::to_owned),
            first_seen: text(object, "x_cirfed_first_seen").map(str::to_owned),
            last_seen: text(object, "x_cirfed_last_seen").map(str::to_owned),
            ..IndicatorFields::default()
        };
        Ok((fields, valid_until))
    }

    fn sighting(&self, object: &Value) -> Result<Vec<(Draft, String)>, Refusal> {
        let Some(target) = text(object, "sighting_of_ref") else {
            return Err(DraftError::Missing { field: "sighting_of_ref" }.into());
        };
        let source = excerpt(&format!("sighting of {target}"));
        if self.feed.is_none() {
            return Err(DraftError::Unsupported(format!(
                "a sighting of '{}': sightings are imported through the node (TAXII), which finds the cirfed \
                 indicator behind sighting_of_ref",
                excerpt(target)
            ))
            .into());
        }
        let indicator = match self.record_of(target)? {
            Some(record) if matches!(record.record.body, Some(crate::proto::record::Body::Indicator(_))) => record,
            _ => {
                return Err(DraftError::Unsupported(format!(
                    "sighting_of_ref '{}' is not a cirfed indicator this node holds",
                    excerpt(target)
                ))
                .into())
            }
        };
        let kind = match text(object, "x_cirfed_sighting_type") {
            None => SightingType::Seen,
            Some(name) => SightingType::from_str(name)
                .map_err(|e| DraftError::Vocabulary { field: "x_cirfed_sighting_type", reason: e.to_string() })?,
        };
        let count = match object.get("count") {
            None => 0,
            Some(value) => value
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or(DraftError::WrongType { field: "count", expected: "a whole number 0 to 999999999" })?,
        };
        let sighting = proto::Sighting { indicator_id: indicator.id.0.to_vec(), r#type: kind.code(), count };
        Ok(vec![(self.draft(object, Body::Sighting(sighting)), source)])
    }

    fn report(&self, object: &Value) -> Result<Vec<(Draft, String)>, Refusal> {
        let required = |key: &'static str| match text(object, key).map(str::trim) {
            Some(t) if !t.is_empty() => Ok(t.to_owned()),
            _ => Err(DraftError::Missing { field: key }),
        };
        let title = required("name")?;
        let summary = required("description")?;
        let level = match object.get("x_cirfed_cir_level") {
            None => u32::from(DEFAULT_LEVEL),
            Some(value) => value
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| (1..=5).contains(n))
                .ok_or(DraftError::Level { field: "x_cirfed_cir_level", value: value.as_i64().unwrap_or(-1) })?,
        };
        let service_model = match text(object, "x_cirfed_service_model") {
            None => 0,
            Some(name) => ServiceModel::from_str(name)
                .map_err(|e| DraftError::Vocabulary { field: "x_cirfed_service_model", reason: e.to_string() })?
                .code(),
        };
        let seconds = |key: &'static str| match object.get(key) {
            None => Ok(0),
            Some(value) => value.as_u64().ok_or(DraftError::WrongType { field: key, expected: "a whole number of seconds" }),
        };
        let mut recommended_actions = Vec::new();
        for action in object.get("x_cirfed_recommended_actions").and_then(Value::as_array).into_iter().flatten() {
            let phase = text(action, "phase").ok_or(DraftError::Missing { field: "x_cirfed_recommended_actions.phase" })?;
            let phase = Phase::from_str(phase).map_err(|e| DraftError::Vocabulary {
                field: "x_cirfed_recommended_actions.phase",
                reason: e.to_string(),
            })?;
            let text = trimmed(text(action, "action"));
            if text.is_empty() {
                return Err(DraftError::Missing { field: "x_cirfed_recommended_actions.action" }.into());
            }
            recommended_actions.push(PhaseAction { phase: phase.code(), action: text });
        }
        let mut indicator_refs = Vec::new();
        for id in object.get("object_refs").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
            if !id.starts_with("indicator--") {
                continue;
            }
            // Only indicators this node holds can be referred to by record id; others are left out.
            if let Some(record) = self.record_of(id)? {
                indicator_refs.push(record.id.0.to_vec());
            }
        }
        let lesson = Lesson {
            title,
            summary,
            cir_level: level,
            categories: categories(&strings(object, "x_cirfed_categories")?, "x_cirfed_categories")?,
            service_model,
            detection_method: trimmed(text(object, "x_cirfed_detection_method")),
            time_to_detect_secs: seconds("x_cirfed_time_to_detect_secs")?,
            time_to_contain_secs: seconds("x_cirfed_time_to_contain_secs")?,
            time_to_recover_secs: seconds("x_cirfed_time_to_recover_secs")?,
            root_cause: trimmed(text(object, "x_cirfed_root_cause")),
            went_well: clean_list(&strings(object, "x_cirfed_went_well")?),
            to_improve: clean_list(&strings(object, "x_cirfed_to_improve")?),
            recommended_actions,
            indicator_refs,
            tags: clean_list(&strings(object, "labels")?),
        };
        let source = excerpt(&format!("report {}", lesson.title));
        Ok(vec![(self.draft(object, Body::Lesson(lesson)), source)])
    }
}

/// A list of strings, empty when absent.
fn strings(object: &Value, field: &'static str) -> Result<Vec<String>, DraftError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned).ok_or(DraftError::WrongType { field, expected: "a list of text" }))
            .collect(),
        Some(_) => Err(DraftError::WrongType { field, expected: "a list of text" }),
    }
}
