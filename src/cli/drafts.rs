//! Turns what a user types or imports into `Draft`s for the local Publish API: one
//! indicator from flags, a post-mortem lesson from TOML, and bulk files (JSON lines,
//! CSV, a MISP event, a STIX 2.1 bundle).
//!
//! Drafts are checked here as far as a client can (vocabulary, ranges, observable
//! syntax) so that a bulk import names the bad line; the node still normalises and
//! validates everything it signs, so observable values are sent as given.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

use cirfed::normalize::ObservableType;
use cirfed::{cir, normalize, proto};
use proto::draft::Body;
use proto::{Draft, Indicator, Lesson, PhaseAction};
use serde::Deserialize;
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// CIR level of an indicator when the input gives none: "impact on assets, minor impact on customers".
pub const DEFAULT_LEVEL: u8 = 3;
/// Confidence of an indicator when the input gives none: the middle of the STIX 0-100 scale.
pub const DEFAULT_CONFIDENCE: u8 = 50;
/// Longest `BulkLine::source` excerpt, in characters, so a refusal report stays one line.
pub const MAX_SOURCE_CHARS: usize = 80;

/// Highest confidence (STIX 2.1 convention).
const MAX_CONFIDENCE: i64 = 100;
const SECONDS_PER_DAY: i64 = 86_400;
/// A record id is SHA-256 of the record bytes.
const RECORD_ID_LEN: usize = 32;

/// Why an input could not become a draft; messages are lowercase and name the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DraftError {
    /// A required field is absent or blank.
    #[error("missing `{field}`")]
    Missing {
        /// The field, as the input names it.
        field: &'static str,
    },
    /// A field holds a value of the wrong kind (text for a number, a number for a list, ...).
    #[error("`{field}` must be {expected}")]
    WrongType {
        /// The field, as the input names it.
        field: &'static str,
        /// What the field takes.
        expected: &'static str,
    },
    /// Two fields that mean the same thing were both given.
    #[error("`{first}` and `{second}` are the same field: give only one")]
    Conflict {
        /// The field met first.
        first: &'static str,
        /// Its alias.
        second: &'static str,
    },
    /// A CIR level outside 1 to 5.
    #[error("`{field}` {value} is out of range: expected 1 to 5")]
    Level {
        /// `level` for indicators, `cir_level` for lessons.
        field: &'static str,
        /// The number given.
        value: i64,
    },
    /// A confidence outside 0 to 100.
    #[error("`confidence` {0} is out of range: expected 0 to 100")]
    Confidence(i64),
    /// A validity that is not a positive number of days.
    #[error("`valid_days` {0} is out of range: expected 1 or more days")]
    ValidDays(i64),
    /// A name that the field's vocabulary (TLP, category, phase, ...) does not know.
    #[error("`{field}`: {reason}")]
    Vocabulary {
        /// The field, as the input names it.
        field: &'static str,
        /// The vocabulary's own message, which lists the accepted names.
        reason: String,
    },
    /// An observable value that does not parse as its type.
    #[error("`value` '{value}': {reason}")]
    Observable {
        /// An excerpt of the value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A time that is neither RFC 3339 nor unix seconds.
    #[error("`{field}` '{input}' is not a time: expected RFC 3339 (2024-05-01T12:00:00Z) or unix seconds")]
    Time {
        /// The field, as the input names it.
        field: &'static str,
        /// An excerpt of the text given.
        input: String,
    },
    /// `first_seen` later than `last_seen`.
    #[error("`first_seen` is after `last_seen`")]
    SeenOrder,
    /// An indicator whose validity already ended.
    #[error("`valid_until` {0} is in the past: the indicator has expired")]
    Expired(String),
    /// A duration that is neither a number of seconds nor like "90m", "4h" or "2d 3h".
    #[error("`{field}` '{input}' is not a duration: expected seconds or units like \"90m\", \"4h\", \"2d 3h\"")]
    Duration {
        /// The field, as the input names it.
        field: &'static str,
        /// An excerpt of the text given.
        input: String,
    },
    /// A record id that is not 64 hex digits.
    #[error("`indicator_refs` '{0}' is not a record id: expected 64 hex digits")]
    RecordId(String),
    /// A key or column that the format does not have.
    #[error("unknown field `{field}`: expected one of {expected}")]
    UnknownField {
        /// The key as given.
        field: String,
        /// The accepted keys, comma separated.
        expected: &'static str,
    },
    /// A lesson field that TOML could not read as its type.
    #[error("lesson line {line}, `{field}`: {reason}")]
    LessonField {
        /// 1-based line of the field.
        line: usize,
        /// The key on that line.
        field: String,
        /// The TOML reader's message.
        reason: String,
    },
    /// Text that is not valid JSON, CSV, TOML or STIX pattern syntax.
    #[error("invalid {format}: {reason}")]
    Syntax {
        /// "json", "csv", "toml" or "stix pattern".
        format: &'static str,
        /// The parser's message.
        reason: String,
    },
    /// A MISP attribute its author did not mark for detection: sharing it as an indicator would cause false alarms.
    #[error("not for detection: the MISP attribute has `to_ids` false")]
    NotForDetection,
    /// An item withdrawn at its source (a deleted MISP attribute, a revoked STIX indicator).
    #[error("withdrawn: {0}")]
    Withdrawn(&'static str),
    /// An item cirfed has no record for (an object type, an attribute type, a pattern operator).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A whole bulk file that cannot be read in the given format.
    #[error("unreadable {format} file: {reason}")]
    Unreadable {
        /// The format tried.
        format: &'static str,
        /// Why nothing could be read.
        reason: String,
    },
}

impl DraftError {
    /// Content cirfed does not carry (a STIX identity, a MISP comment, an
    /// attribute marked not for detection, a deleted one): skipped with a
    /// reason, not a mistake in the file.
    pub fn is_skip(&self) -> bool {
        matches!(self, DraftError::Unsupported(_) | DraftError::NotForDetection | DraftError::Withdrawn(_))
    }
}

// ---------------------------------------------------------------------------
// One indicator
// ---------------------------------------------------------------------------

/// One indicator as the CLI flags, a JSON line or a CSV row give it: text as typed, checked by `indicator_draft`.
#[derive(Debug, Clone, Default)]
pub struct IndicatorFields {
    /// Observable type name; `None` lets the node detect it from the value.
    pub kind: Option<String>,
    /// The observable, in any spelling `normalize` accepts (defanged, upper case, ...).
    pub value: String,
    /// CIR level 1-5; `None` means `DEFAULT_LEVEL`.
    pub level: Option<u8>,
    /// TLP name; `None` leaves the node's default marking.
    pub tlp: Option<String>,
    /// Confidence 0-100; `None` means `DEFAULT_CONFIDENCE`.
    pub confidence: Option<u8>,
    /// Incident category names.
    pub categories: Vec<String>,
    /// Days until the indicator expires; `None` leaves the node's default.
    pub valid_days: Option<u32>,
    /// Free text for analysts.
    pub description: Option<String>,
    /// Free-form tags.
    pub tags: Vec<String>,
    /// Opaque reference grouping the records of one incident.
    pub incident_ref: Option<String>,
    /// First sighting, RFC 3339 or unix seconds.
    pub first_seen: Option<String>,
    /// Last sighting, RFC 3339 or unix seconds.
    pub last_seen: Option<String>,
}

/// Checks `fields` and builds an indicator draft; `now` (unix seconds) anchors `valid_days`.
///
/// `Draft.tlp` 0 and `valid_until` 0 ask the node for its defaults; `type` 0 asks it to detect.
pub fn indicator_draft(fields: &IndicatorFields, now: i64) -> Result<Draft, DraftError> {
    let kind = match fields.kind.as_deref().map(str::trim).filter(|k| !k.is_empty()) {
        Some(name) => Some(
            ObservableType::from_str(name)
                .map_err(|e| DraftError::Vocabulary { field: "type", reason: e.to_string() })?,
        ),
        None => None,
    };
    build_indicator(fields, kind, now)
}

/// `indicator_draft` with the type already resolved (imports decide it from their own type names).
fn build_indicator(fields: &IndicatorFields, kind: Option<ObservableType>, now: i64) -> Result<Draft, DraftError> {
    let value = fields.value.trim();
    if value.is_empty() {
        return Err(DraftError::Missing { field: "value" });
    }
    // Checked here only to report the bad line; the node normalises the value itself.
    normalize::parse(kind, value)
        .map_err(|e| DraftError::Observable { value: excerpt(value), reason: e.to_string() })?;

    let level = fields.level.unwrap_or(DEFAULT_LEVEL);
    let level = cir::CirLevel::new(level).map_err(|_| DraftError::Level { field: "level", value: level.into() })?;
    let confidence = fields.confidence.unwrap_or(DEFAULT_CONFIDENCE);
    if i64::from(confidence) > MAX_CONFIDENCE {
        return Err(DraftError::Confidence(confidence.into()));
    }
    let tlp = tlp_code(fields.tlp.as_deref())?;
    let categories = categories(&fields.categories, "categories")?;
    let valid_until = match fields.valid_days {
        None => 0,
        Some(0) => return Err(DraftError::ValidDays(0)),
        Some(days) => i64::from(days)
            .checked_mul(SECONDS_PER_DAY)
            .and_then(|secs| now.checked_add(secs))
            .ok_or(DraftError::ValidDays(days.into()))?,
    };
    let first_seen = optional_time(fields.first_seen.as_deref(), "first_seen")?;
    let last_seen = optional_time(fields.last_seen.as_deref(), "last_seen")?;
    if first_seen != 0 && last_seen != 0 && first_seen > last_seen {
        return Err(DraftError::SeenOrder);
    }
    let indicator = Indicator {
        r#type: kind.map_or(0, |k| i32::from(k.code())),
        value: value.to_owned(),
        cir_level: u32::from(level.get()),
        categories,
        confidence: u32::from(confidence),
        valid_until,
        first_seen,
        last_seen,
        tags: clean_list(&fields.tags),
        description: trimmed(fields.description.as_deref()),
        incident_ref: trimmed(fields.incident_ref.as_deref()),
        supersedes: Vec::new(),
        hash_epoch: 0,
    };
    Ok(Draft { tlp, body: Some(Body::Indicator(indicator)) })
}

/// The proto TLP number for a name; 0 (the node's default) when there is none.
fn tlp_code(name: Option<&str>) -> Result<i32, DraftError> {
    match name.map(str::trim).filter(|n| !n.is_empty()) {
        None => Ok(0),
        Some(name) => cir::Tlp::from_str(name)
            .map(cir::Tlp::code)
            .map_err(|e| DraftError::Vocabulary { field: "tlp", reason: e.to_string() }),
    }
}

/// Category names to proto numbers, in the order given, without repeats.
fn categories(names: &[String], field: &'static str) -> Result<Vec<i32>, DraftError> {
    let mut codes = Vec::new();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let code =
            cir::Category::from_str(name).map_err(|e| DraftError::Vocabulary { field, reason: e.to_string() })?.code();
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    Ok(codes)
}

/// Trimmed, non-empty entries in the order given, without repeats.
fn clean_list(items: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in items.iter().map(|i| i.trim()).filter(|i| !i.is_empty()) {
        if !out.iter().any(|o| o == item) {
            out.push(item.to_owned());
        }
    }
    out
}

fn trimmed(text: Option<&str>) -> String {
    text.map(str::trim).unwrap_or_default().to_owned()
}

/// Unix seconds from RFC 3339 or a plain number of seconds; 0 (unset) when absent.
fn optional_time(text: Option<&str>, field: &'static str) -> Result<i64, DraftError> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(0),
        Some(text) => parse_time(text, field),
    }
}

pub fn parse_time(text: &str, field: &'static str) -> Result<i64, DraftError> {
    let text = text.trim();
    let parsed = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse::<i64>().ok()
    } else {
        OffsetDateTime::parse(text, &Rfc3339).ok().map(OffsetDateTime::unix_timestamp)
    };
    parsed.ok_or_else(|| DraftError::Time { field, input: excerpt(text) })
}

// ---------------------------------------------------------------------------
// Lessons
// ---------------------------------------------------------------------------

/// A post-mortem to fill in for `cirfed publish lesson`; `lesson_draft` reads it as it is.
pub const LESSON_TEMPLATE: &str = r#"# Post-mortem (lessons learned) for `cirfed publish lesson FILE`.
# Everything here is shared with the federation: never name customers, staff, accounts
# or ticket numbers. Delete the example text and write your own; empty values are fine
# except for title and summary.

# One line that says what happened (required).
title = "Leaked cloud access key used for crypto-mining in a CI account"

# What happened, how it was found and how it ended (required).
summary = """
A long-lived access key of a CI service user was committed to a public source repository.
About three hours later it was used from hosting-provider addresses to start GPU instances
in regions the account never used; the instances mined cryptocurrency until a billing
anomaly alert fired. The key was disabled, the instances were snapshotted for evidence and
terminated, and the account was rebuilt from infrastructure-as-code."""

# CIR incident classification, 1 (exercise, no impact) to 5 (major impact on customers);
# `cirfed classify` derives it from ENISA, NIST or TR 62 ratings. Default 3.
cir_level = 3

# Incident categories: malware, intrusion, phishing, denial-of-service, data-exfiltration,
# credential-theft, misconfiguration, operational-error, infrastructure-failure,
# power-loss, network-cut, natural-disaster, capacity-exhaustion, provider-outage.
categories = ["credential-theft", "intrusion"]

# Cloud service model the incident happened in: iaas, paas or saas.
service_model = "iaas"

# How the incident was detected: the alert, report or log that first showed it.
detection_method = "billing anomaly alert on GPU spend, confirmed in control-plane audit logs"

# Durations are seconds or units like "90m", "4h", "2d 3h" (w, d, h, m, s).
# From the first malicious activity to detection.
time_to_detect = "5h 20m"
# From detection to the attacker losing all access.
time_to_contain = "45m"
# From containment to normal service.
time_to_recover = "1d 2h"

# The underlying cause, not the symptom.
root_cause = """
a long-lived access key in a CI configuration file, no secret scanning on push,
and no limit on GPU quotas in regions the account never uses"""

# What helped; one entry per point.
went_well = [
  "the billing anomaly alert fired within hours",
  "control-plane audit logs were retained and showed every API call made with the key",
  "infrastructure-as-code let us rebuild the account instead of cleaning it",
]

# What to change; one entry per point.
to_improve = [
  "replace long-lived keys with short-lived federated credentials for CI",
  "scan every push for secrets and revoke leaked keys automatically",
  "deny compute in regions the organisation does not use",
]

# Ids (64 hex digits) of indicator records published for this incident, as printed
# by `cirfed publish indicator`, e.g. ["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"].
indicator_refs = []

# Free-form tags that help others find this lesson.
tags = ["cryptomining", "leaked-credentials", "ci-cd"]

# TLP marking: clear, green, amber, amber+strict or red (red never leaves this node).
# Remove the line to use the node's default.
tlp = "green"

# Recommended actions, one [[actions]] table each, in the order to take them.
[[actions]]
# Lifecycle phase: preparation, detection, containment, post-mortem or coordination.
phase = "preparation"
# What to do, as an instruction another team can follow.
action = "Enable secret scanning with push protection on every repository"

[[actions]]
phase = "detection"
action = "Alert on API calls from new regions and on sudden GPU or instance quota use"

[[actions]]
phase = "containment"
action = "Disable the key first, snapshot affected instances for evidence, then terminate them"

[[actions]]
phase = "coordination"
action = "Report the abusing addresses to their hosting providers and share them as indicators"
"#;

/// A lesson file as written; every field optional so that a missing one gets our own error.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LessonFile {
    title: Option<String>,
    summary: Option<String>,
    cir_level: Option<i64>,
    #[serde(default)]
    categories: Vec<String>,
    service_model: Option<String>,
    detection_method: Option<String>,
    time_to_detect: Option<toml::Value>,
    time_to_contain: Option<toml::Value>,
    time_to_recover: Option<toml::Value>,
    root_cause: Option<String>,
    #[serde(default)]
    went_well: Vec<String>,
    #[serde(default)]
    to_improve: Vec<String>,
    #[serde(default)]
    actions: Vec<ActionFile>,
    #[serde(default)]
    indicator_refs: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    tlp: Option<String>,
}

/// One `[[actions]]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionFile {
    phase: Option<String>,
    action: Option<String>,
}

/// Reads a post-mortem TOML file (see `LESSON_TEMPLATE`) into a lesson draft.
pub fn lesson_draft(toml_text: &str) -> Result<Draft, DraftError> {
    let file: LessonFile = toml::from_str(toml_text).map_err(|e| toml_error(toml_text, &e))?;
    let title = required(file.title.as_deref(), "title")?;
    let summary = required(file.summary.as_deref(), "summary")?;
    let level = match file.cir_level {
        None => cir::CirLevel::new(DEFAULT_LEVEL).expect("the default level is valid"),
        Some(n) => u8::try_from(n)
            .ok()
            .and_then(|n| cir::CirLevel::new(n).ok())
            .ok_or(DraftError::Level { field: "cir_level", value: n })?,
    };
    let service_model = match file.service_model.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => 0,
        Some(name) => cir::ServiceModel::from_str(name)
            .map_err(|e| DraftError::Vocabulary { field: "service_model", reason: e.to_string() })?
            .code(),
    };
    let mut recommended_actions = Vec::with_capacity(file.actions.len());
    for action in &file.actions {
        let phase = required(action.phase.as_deref(), "actions.phase")?;
        let phase = cir::Phase::from_str(&phase)
            .map_err(|e| DraftError::Vocabulary { field: "actions.phase", reason: e.to_string() })?;
        let action = required(action.action.as_deref(), "actions.action")?;
        recommended_actions.push(PhaseAction { phase: phase.code(), action });
    }
    let mut indicator_refs = Vec::with_capacity(file.indicator_refs.len());
    for id in &file.indicator_refs {
        indicator_refs.push(record_id(id)?);
    }
    let lesson = Lesson {
        title,
        summary,
        cir_level: u32::from(level.get()),
        categories: categories(&file.categories, "categories")?,
        service_model,
        detection_method: trimmed(file.detection_method.as_deref()),
        time_to_detect_secs: duration(file.time_to_detect.as_ref(), "time_to_detect")?,
        time_to_contain_secs: duration(file.time_to_contain.as_ref(), "time_to_contain")?,
        time_to_recover_secs: duration(file.time_to_recover.as_ref(), "time_to_recover")?,
        root_cause: trimmed(file.root_cause.as_deref()),
        went_well: clean_list(&file.went_well),
        to_improve: clean_list(&file.to_improve),
        recommended_actions,
        indicator_refs,
        tags: clean_list(&file.tags),
    };
    Ok(Draft { tlp: tlp_code(file.tlp.as_deref())?, body: Some(Body::Lesson(lesson)) })
}

fn required(text: Option<&str>, field: &'static str) -> Result<String, DraftError> {
    match text.map(str::trim) {
        Some(text) if !text.is_empty() => Ok(text.to_owned()),
        _ => Err(DraftError::Missing { field }),
    }
}

fn record_id(text: &str) -> Result<Vec<u8>, DraftError> {
    match hex::decode(text.trim()) {
        Ok(bytes) if bytes.len() == RECORD_ID_LEN => Ok(bytes),
        _ => Err(DraftError::RecordId(excerpt(text))),
    }
}

/// Names the key of the line a TOML error points at, since serde's messages do not.
fn toml_error(text: &str, err: &toml::de::Error) -> DraftError {
    let reason = err.message().trim().to_owned();
    let Some(span) = err.span() else {
        return DraftError::Syntax { format: "toml", reason };
    };
    let start = span.start.min(text.len());
    let line = text.as_bytes()[..start].iter().filter(|&&b| b == b'\n').count() + 1;
    let key = text.lines().nth(line - 1).and_then(toml_key);
    match key {
        Some(field) => DraftError::LessonField { line, field, reason },
        None => DraftError::Syntax { format: "toml", reason: format!("line {line}: {reason}") },
    }
}

/// The key of a `key = value` line, or the name of a `[table]` header.
fn toml_key(line: &str) -> Option<String> {
    let line = line.trim();
    let key =
        if line.starts_with('[') { line.trim_start_matches('[').split(']').next()? } else { line.split_once('=')?.0 };
    let key = key.trim().trim_matches(|c| c == '"' || c == '\'');
    let is_key = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    (!key.is_empty() && key.chars().all(is_key)).then(|| key.to_owned())
}

/// Seconds from a TOML integer or a text like "4h", "2d 3h", "90m"; 0 (unknown) when absent.
fn duration(value: Option<&toml::Value>, field: &'static str) -> Result<u64, DraftError> {
    match value {
        None => Ok(0),
        Some(toml::Value::Integer(n)) => {
            u64::try_from(*n).map_err(|_| DraftError::Duration { field, input: n.to_string() })
        }
        Some(toml::Value::String(text)) => {
            parse_duration(text).ok_or_else(|| DraftError::Duration { field, input: excerpt(text) })
        }
        Some(other) => Err(DraftError::Duration { field, input: excerpt(&other.to_string()) }),
    }
}

/// Parses "3600", "90m", "4h", "2d 3h", "1h30m"; units w, d, h, m, s.
fn parse_duration(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let number: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit = match rest.chars().next()? {
            'w' | 'W' => 7 * 86_400,
            'd' | 'D' => 86_400,
            'h' | 'H' => 3_600,
            'm' | 'M' => 60,
            's' | 'S' => 1,
            _ => return None,
        };
        total = total.checked_add(number.checked_mul(unit)?)?;
        rest = rest[1..].trim_start();
    }
    Some(total)
}

// ---------------------------------------------------------------------------
// Bulk files
// ---------------------------------------------------------------------------

/// Formats `cirfed publish --file` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkFormat {
    /// One JSON object per line.
    JsonLines,
    /// CSV with a header row.
    Csv,
    /// A MISP event (`{"Event": {...}}` or the bare event).
    MispEvent,
    /// A STIX 2.1 bundle.
    StixBundle,
}

/// Guesses the format from the file name, then from the content.
pub fn detect_format(path: &Path, text: &str) -> BulkFormat {
    let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("csv") => return BulkFormat::Csv,
        Some("jsonl" | "ndjson") => return BulkFormat::JsonLines,
        _ => {}
    }
    let text = text.trim_start_matches('\u{feff}').trim_start();
    if !text.starts_with('{') {
        return BulkFormat::JsonLines;
    }
    // A JSON lines file fails to parse as one document at its second line, so this stays cheap.
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(object)) if object.contains_key("Event") || object.contains_key("Attribute") => {
            BulkFormat::MispEvent
        }
        Ok(Value::Object(object)) if object.get("type").and_then(Value::as_str) == Some("bundle") => {
            BulkFormat::StixBundle
        }
        _ => BulkFormat::JsonLines,
    }
}

/// One item of a bulk file and the draft made of it, or why none could be.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkLine {
    /// 1-based line (JSON lines, CSV), or 1-based item number (MISP attributes, STIX objects).
    pub line: usize,
    /// A short excerpt of the input (at most `MAX_SOURCE_CHARS` characters), to show with a refusal.
    pub source: String,
    /// The draft, or why this item cannot be published.
    pub draft: Result<Draft, DraftError>,
}

/// Reads every item of a bulk file; `Err` only when the file as a whole cannot be read.
pub fn read_bulk(text: &str, format: BulkFormat, now: i64) -> Result<Vec<BulkLine>, DraftError> {
    let text = text.trim_start_matches('\u{feff}');
    match format {
        BulkFormat::JsonLines => read_json_lines(text, now),
        BulkFormat::Csv => read_csv(text, now),
        BulkFormat::MispEvent => read_misp(text, now),
        BulkFormat::StixBundle => read_stix(text, now),
    }
}

/// At most `MAX_SOURCE_CHARS` characters of `text`, whitespace runs shown as one space.
fn excerpt(text: &str) -> String {
    let flat: Vec<&str> = text.split_whitespace().collect();
    let flat = flat.join(" ");
    if flat.chars().count() <= MAX_SOURCE_CHARS {
        return flat;
    }
    let mut cut: String = flat.chars().take(MAX_SOURCE_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// Keys of JSON lines and columns of CSV files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Type,
    Value,
    Level,
    Tlp,
    Confidence,
    Categories,
    Category,
    ValidDays,
    Description,
    Comment,
    Tags,
    IncidentRef,
    FirstSeen,
    LastSeen,
}

const COLUMNS: [(&str, Column); 14] = [
    ("type", Column::Type),
    ("value", Column::Value),
    ("level", Column::Level),
    ("tlp", Column::Tlp),
    ("confidence", Column::Confidence),
    ("categories", Column::Categories),
    ("category", Column::Category),
    ("valid_days", Column::ValidDays),
    ("description", Column::Description),
    ("comment", Column::Comment),
    ("tags", Column::Tags),
    ("incident_ref", Column::IncidentRef),
    ("first_seen", Column::FirstSeen),
    ("last_seen", Column::LastSeen),
];

/// `COLUMNS` for error messages.
const COLUMN_NAMES: &str = "type, value, level, tlp, confidence, categories, category, valid_days, description, \
                            comment, tags, incident_ref, first_seen, last_seen";

impl Column {
    fn parse(name: &str) -> Result<Column, DraftError> {
        COLUMNS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, c)| *c)
            .ok_or_else(|| DraftError::UnknownField { field: excerpt(name), expected: COLUMN_NAMES })
    }

    fn name(self) -> &'static str {
        COLUMNS.iter().find(|(_, c)| *c == self).map(|(n, _)| *n).expect("every column is listed")
    }
}

/// A value of a JSON key or CSV cell, before it is checked against its column.
enum Cell {
    Text(String),
    Number(serde_json::Number),
    List(Vec<String>),
}

impl Cell {
    /// `None` for JSON null, which means "default" like an empty CSV cell.
    fn from_json(column: Column, value: Value) -> Result<Option<Cell>, DraftError> {
        let wrong = || DraftError::WrongType { field: column.name(), expected: "text, a number or a list of text" };
        Ok(Some(match value {
            Value::Null => return Ok(None),
            Value::String(s) => Cell::Text(s),
            Value::Number(n) => Cell::Number(n),
            Value::Array(items) => Cell::List(
                items
                    .into_iter()
                    .map(|item| match item {
                        Value::String(s) => Ok(s),
                        _ => Err(DraftError::WrongType { field: column.name(), expected: "a list of text" }),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Value::Bool(_) | Value::Object(_) => return Err(wrong()),
        }))
    }

    fn text(self, field: &'static str) -> Result<String, DraftError> {
        match self {
            Cell::Text(s) => Ok(s),
            Cell::Number(n) => Ok(n.to_string()),
            Cell::List(_) => Err(DraftError::WrongType { field, expected: "text" }),
        }
    }

    fn integer(self, field: &'static str) -> Result<i64, DraftError> {
        let wrong = DraftError::WrongType { field, expected: "a whole number" };
        match self {
            Cell::Number(n) => n.as_i64().ok_or(wrong),
            Cell::Text(s) => s.trim().parse().map_err(|_| wrong),
            Cell::List(_) => Err(wrong),
        }
    }

    /// A list from a JSON array or from ";"-separated text.
    fn list(self, field: &'static str) -> Result<Vec<String>, DraftError> {
        match self {
            Cell::List(items) => Ok(items),
            Cell::Text(s) => Ok(s.split(';').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()),
            Cell::Number(_) => Err(DraftError::WrongType { field, expected: "a list of text" }),
        }
    }
}

/// Stores one key's value in `fields`.
fn set_column(fields: &mut IndicatorFields, column: Column, cell: Cell) -> Result<(), DraftError> {
    let field = column.name();
    match column {
        Column::Type => fields.kind = Some(cell.text(field)?),
        Column::Value => fields.value = cell.text(field)?,
        Column::Level => {
            let n = cell.integer(field)?;
            fields.level = Some(u8::try_from(n).map_err(|_| DraftError::Level { field, value: n })?);
        }
        Column::Tlp => fields.tlp = Some(cell.text(field)?),
        Column::Confidence => {
            let n = cell.integer(field)?;
            fields.confidence = Some(u8::try_from(n).map_err(|_| DraftError::Confidence(n))?);
        }
        Column::Categories => fields.categories.extend(cell.list(field)?),
        Column::Category => fields.categories.push(cell.text(field)?),
        Column::ValidDays => {
            let n = cell.integer(field)?;
            fields.valid_days = Some(u32::try_from(n).map_err(|_| DraftError::ValidDays(n))?);
        }
        Column::Description | Column::Comment => {
            if fields.description.is_some() {
                return Err(DraftError::Conflict { first: "description", second: "comment" });
            }
            fields.description = Some(cell.text(field)?);
        }
        Column::Tags => fields.tags.extend(cell.list(field)?),
        Column::IncidentRef => fields.incident_ref = Some(cell.text(field)?),
        Column::FirstSeen => fields.first_seen = Some(cell.text(field)?),
        Column::LastSeen => fields.last_seen = Some(cell.text(field)?),
    }
    Ok(())
}

fn read_json_lines(text: &str, now: i64) -> Result<Vec<BulkLine>, DraftError> {
    let mut lines = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        lines.push(BulkLine { line: index + 1, source: excerpt(trimmed), draft: json_line_draft(trimmed, now) });
    }
    let first_is_syntax = matches!(lines.first(), Some(BulkLine { draft: Err(DraftError::Syntax { .. }), .. }));
    if first_is_syntax && serde_json::from_str::<Value>(text).is_ok() {
        return Err(DraftError::Unreadable {
            format: "json lines",
            reason: "the file is one JSON document, not one object per line: give --format misp or stix for MISP \
                     events and STIX bundles"
                .to_owned(),
        });
    }
    Ok(lines)
}

fn json_line_draft(line: &str, now: i64) -> Result<Draft, DraftError> {
    let value: Value =
        serde_json::from_str(line).map_err(|e| DraftError::Syntax { format: "json", reason: e.to_string() })?;
    let Value::Object(object) = value else {
        return Err(DraftError::Syntax { format: "json", reason: "expected an object per line".to_owned() });
    };
    let mut fields = IndicatorFields::default();
    for (key, value) in object {
        let column = Column::parse(&key)?;
        if let Some(cell) = Cell::from_json(column, value)? {
            set_column(&mut fields, column, cell)?;
        }
    }
    indicator_draft(&fields, now)
}

fn read_csv(text: &str, now: i64) -> Result<Vec<BulkLine>, DraftError> {
    let unreadable = |reason: String| DraftError::Unreadable { format: "csv", reason };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|e| unreadable(e.to_string()))?.clone();
    if headers.iter().all(str::is_empty) {
        return Err(unreadable("no header row: the first line must name the columns, e.g. type,value".to_owned()));
    }
    let mut columns = Vec::with_capacity(headers.len());
    for name in &headers {
        columns.push(Column::parse(&name.to_ascii_lowercase()).map_err(|e| unreadable(e.to_string()))?);
    }
    if !columns.contains(&Column::Value) {
        return Err(unreadable("no `value` column".to_owned()));
    }
    let source_lines: Vec<&str> = text.lines().collect();
    let mut lines = Vec::new();
    for record in reader.records() {
        let (line, draft) = match record {
            Ok(record) => (csv_line(text, record.position()), csv_row_draft(&columns, &record, now)),
            Err(e) => {
                let line = csv_line(text, e.position());
                (line, Err(DraftError::Syntax { format: "csv", reason: e.to_string() }))
            }
        };
        let source = source_lines.get(line.wrapping_sub(1)).map_or_else(String::new, |l| excerpt(l));
        lines.push(BulkLine { line, source, draft });
    }
    Ok(lines)
}

/// The 1-based line a CSV record starts on.
///
/// The csv crate's position points at the blank and comment lines it skipped before
/// the record (and its line count lags behind them), so walk past those here.
fn csv_line(text: &str, position: Option<&csv::Position>) -> usize {
    let Some(start) = position.and_then(|p| usize::try_from(p.byte()).ok()) else {
        return 0;
    };
    let Some(mut rest) = text.get(start..) else { return 0 };
    let mut line = text.as_bytes()[..start].iter().filter(|&&b| b == b'\n').count() + 1;
    while let Some((first, tail)) = rest.split_once('\n') {
        if !(first.is_empty() || first == "\r" || first.starts_with('#')) {
            break;
        }
        line += 1;
        rest = tail;
    }
    line
}

fn csv_row_draft(columns: &[Column], record: &csv::StringRecord, now: i64) -> Result<Draft, DraftError> {
    if record.len() != columns.len() {
        return Err(DraftError::Syntax {
            format: "csv",
            reason: format!("{} fields, but the header has {}", record.len(), columns.len()),
        });
    }
    let mut fields = IndicatorFields::default();
    for (&column, cell) in columns.iter().zip(record.iter()) {
        if !cell.is_empty() {
            set_column(&mut fields, column, Cell::Text(cell.to_owned()))?;
        }
    }
    indicator_draft(&fields, now)
}

// ---------------------------------------------------------------------------
// MISP
// ---------------------------------------------------------------------------

/// How an imported type name becomes a cirfed observable type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mapped {
    /// Always this type.
    Fixed(ObservableType),
    /// An address or network: the value decides between ipv4, ipv6 and cidr.
    Ip,
}

/// MISP attribute types cirfed takes, and which part of a `a|b` value is the observable.
fn misp_type(name: &str) -> Option<(Mapped, Part)> {
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
enum Part {
    Whole,
    First,
    Second,
}

/// The type for `value` under `mapped`, checking that an address really is one.
fn resolve_kind(mapped: Mapped, value: &str) -> Result<ObservableType, DraftError> {
    match mapped {
        Mapped::Fixed(kind) => Ok(kind),
        Mapped::Ip => match normalize::detect(value) {
            Ok(observable)
                if matches!(observable.kind, ObservableType::Ipv4 | ObservableType::Ipv6 | ObservableType::Cidr) =>
            {
                Ok(observable.kind)
            }
            _ => {
                Err(DraftError::Observable { value: excerpt(value), reason: "not an IP address or network".to_owned() })
            }
        },
    }
}

/// What a MISP event says about all of its attributes.
struct MispEvent {
    tlp: Option<cir::Tlp>,
    level: u8,
    tags: Vec<String>,
}

fn read_misp(text: &str, now: i64) -> Result<Vec<BulkLine>, DraftError> {
    let unreadable = |reason: String| DraftError::Unreadable { format: "misp", reason };
    let root: Value = serde_json::from_str(text).map_err(|e| unreadable(e.to_string()))?;
    let event = match root.get("Event") {
        Some(Value::Object(event)) => event,
        Some(_) => return Err(unreadable("`Event` is not an object".to_owned())),
        None => match &root {
            Value::Object(event) if event.contains_key("Attribute") => event,
            _ => return Err(unreadable("no `Event` object and no `Attribute` list".to_owned())),
        },
    };
    let (tlp, tags) = misp_tags(event.get("Tag"));
    let context = MispEvent { tlp, level: misp_level(event.get("threat_level_id")), tags };

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

/// The JSON objects in a list, skipping anything else.
fn object_list(value: Option<&Value>) -> impl Iterator<Item = &Map<String, Value>> {
    value.and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_object)
}

/// The most restrictive `tlp:*` tag, and every other tag that may leave the MISP instance.
fn misp_tags(tags: Option<&Value>) -> (Option<cir::Tlp>, Vec<String>) {
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
fn is_true(value: &Value) -> bool {
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
fn misp_level(threat_level: Option<&Value>) -> u8 {
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

fn misp_attribute_draft(event: &MispEvent, attribute: &Map<String, Value>, now: i64) -> Result<Draft, DraftError> {
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

// ---------------------------------------------------------------------------
// STIX 2.1
// ---------------------------------------------------------------------------

/// Standard TLP marking-definition ids: TLP 1.0 from the STIX 2.1 specification
/// (section 7.2.1.4), TLP 2.0 from the OASIS CTI TC's TLP 2.0 marking definitions.
const STIX_TLP_MARKINGS: [(&str, cir::Tlp); 9] = [
    ("marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9", cir::Tlp::Clear),
    ("marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da", cir::Tlp::Green),
    ("marking-definition--f88d31f6-486f-44da-b317-01333bde0b82", cir::Tlp::Amber),
    ("marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed", cir::Tlp::Red),
    ("marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487", cir::Tlp::Clear),
    ("marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb", cir::Tlp::Green),
    ("marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421", cir::Tlp::Amber),
    ("marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003", cir::Tlp::AmberStrict),
    ("marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1", cir::Tlp::Red),
];

fn read_stix(text: &str, now: i64) -> Result<Vec<BulkLine>, DraftError> {
    let unreadable = |reason: String| DraftError::Unreadable { format: "stix", reason };
    let root: Value = serde_json::from_str(text).map_err(|e| unreadable(e.to_string()))?;
    if root.get("type").and_then(Value::as_str) != Some("bundle") {
        return Err(unreadable("not a bundle: expected \"type\": \"bundle\"".to_owned()));
    }
    let Some(objects) = root.get("objects").and_then(Value::as_array) else {
        return Err(unreadable("the bundle has no `objects` list".to_owned()));
    };
    let markings = stix_markings(objects);
    let mut lines = Vec::new();
    for (index, object) in objects.iter().enumerate() {
        let item = index + 1;
        let object_type = object.get("type").and_then(Value::as_str).unwrap_or("");
        let id = object.get("id").and_then(Value::as_str).unwrap_or("");
        if object_type != "indicator" {
            let what =
                if object_type.is_empty() { "an object without a type".to_owned() } else { object_type.to_owned() };
            lines.push(BulkLine {
                line: item,
                source: excerpt(&format!("{object_type} {id}")),
                draft: Err(DraftError::Unsupported(format!(
                    "STIX object type '{}': only indicators are imported",
                    excerpt(&what)
                ))),
            });
            continue;
        }
        match stix_indicator(object, item, &markings, now) {
            Ok(drafts) => lines.extend(drafts),
            Err(e) => {
                let pattern = object.get("pattern").and_then(Value::as_str).unwrap_or(id);
                lines.push(BulkLine { line: item, source: excerpt(pattern), draft: Err(e) });
            }
        }
    }
    Ok(lines)
}

/// Marking ids that mean a TLP: the standard ones, plus TLP marking definitions in the bundle itself.
fn stix_markings(objects: &[Value]) -> HashMap<String, cir::Tlp> {
    let mut markings: HashMap<String, cir::Tlp> =
        STIX_TLP_MARKINGS.iter().map(|(id, tlp)| ((*id).to_owned(), *tlp)).collect();
    for object in objects {
        if object.get("type").and_then(Value::as_str) != Some("marking-definition") {
            continue;
        }
        let Some(id) = object.get("id").and_then(Value::as_str) else {
            continue;
        };
        // STIX 2.1 TLP 1.0 style, then the TLP 2.0 extension (`tlp_2_0`), then a "TLP:..." name.
        let tlp_2_0 =
            || object.get("extensions").and_then(Value::as_object)?.values().find_map(|e| e.get("tlp_2_0")?.as_str());
        let tlp_name = match object.get("definition_type").and_then(Value::as_str) {
            Some("tlp") => object.pointer("/definition/tlp").and_then(Value::as_str),
            _ => tlp_2_0().or_else(|| {
                object.get("name").and_then(Value::as_str).filter(|n| n.to_ascii_lowercase().starts_with("tlp:"))
            }),
        };
        if let Some(tlp) = tlp_name.and_then(|n| cir::Tlp::from_str(n).ok()) {
            markings.entry(id.to_owned()).or_insert(tlp);
        }
    }
    markings
}

/// One line per comparison of the indicator's pattern (all numbered `item`), or why there are none.
fn stix_indicator(
    object: &Value,
    item: usize,
    markings: &HashMap<String, cir::Tlp>,
    now: i64,
) -> Result<Vec<BulkLine>, DraftError> {
    if object.get("revoked").and_then(Value::as_bool) == Some(true) {
        return Err(DraftError::Withdrawn("the STIX indicator is revoked"));
    }
    let pattern_type = object.get("pattern_type").and_then(Value::as_str).unwrap_or("stix");
    if pattern_type != "stix" {
        return Err(DraftError::Unsupported(format!("STIX pattern_type '{}'", excerpt(pattern_type))));
    }
    let Some(pattern) = object.get("pattern").and_then(Value::as_str) else {
        return Err(DraftError::Missing { field: "pattern" });
    };
    let comparisons = parse_pattern(pattern)?;

    let confidence = match object.get("confidence") {
        None | Some(Value::Null) => None,
        Some(value) => {
            let n = value.as_i64().ok_or(DraftError::WrongType { field: "confidence", expected: "a whole number" })?;
            Some(u8::try_from(n).ok().filter(|c| i64::from(*c) <= MAX_CONFIDENCE).ok_or(DraftError::Confidence(n))?)
        }
    };
    let valid_until = match object.get("valid_until").and_then(Value::as_str) {
        None => 0,
        Some(text) => {
            let at = OffsetDateTime::parse(text, &Rfc3339)
                .map_err(|_| DraftError::Time { field: "valid_until", input: excerpt(text) })?
                .unix_timestamp();
            if at <= now {
                return Err(DraftError::Expired(excerpt(text)));
            }
            at
        }
    };
    let description = ["description", "name"]
        .iter()
        .find_map(|key| object.get(*key).and_then(Value::as_str).filter(|d| !d.trim().is_empty()))
        .map(str::to_owned);
    // STIX 2.0 put the indicator's kind in `labels`, 2.1 in `indicator_types`: both become tags.
    let tags: Vec<String> = ["labels", "indicator_types"]
        .iter()
        .filter_map(|key| object.get(*key).and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    let tlp = object
        .get("object_marking_refs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|id| markings.get(id).copied())
        .max();

    let fields = IndicatorFields {
        tlp: tlp.map(|t| t.as_str().to_owned()),
        confidence,
        description,
        tags,
        ..IndicatorFields::default()
    };
    let drafts = comparisons
        .into_iter()
        .map(|comparison| {
            let draft = stix_comparison_draft(&comparison, &fields, now).map(|mut draft| {
                if let Some(Body::Indicator(indicator)) = &mut draft.body {
                    indicator.valid_until = valid_until;
                }
                draft
            });
            BulkLine { line: item, source: excerpt(&comparison.text), draft }
        })
        .collect();
    Ok(drafts)
}

fn stix_comparison_draft(comparison: &Comparison, fields: &IndicatorFields, now: i64) -> Result<Draft, DraftError> {
    if comparison.operator != "=" {
        return Err(DraftError::Unsupported(format!(
            "STIX pattern operator '{}' in `{}`: only = comparisons are imported",
            comparison.operator,
            excerpt(&comparison.text)
        )));
    }
    let Some(mapped) = stix_path(&comparison.path) else {
        return Err(DraftError::Unsupported(format!(
            "STIX object path '{}' has no cirfed observable type",
            excerpt(&comparison.path)
        )));
    };
    let value = match &comparison.literal {
        Literal::Text(text) => text.clone(),
        Literal::Number(n) => n.clone(),
        Literal::Other(kind) => {
            return Err(DraftError::Unsupported(format!(
                "a {kind} literal in `{}`: only text and numbers are imported",
                excerpt(&comparison.text)
            )))
        }
    };
    let kind = resolve_kind(mapped, &value)?;
    let fields = IndicatorFields { value, ..fields.clone() };
    build_indicator(&fields, Some(kind), now)
}

/// STIX object paths cirfed takes, compared without case and without quotes.
fn stix_path(path: &str) -> Option<Mapped> {
    use ObservableType as T;
    let path = path.replace('\'', "").to_ascii_lowercase();
    Some(match path.as_str() {
        "ipv4-addr:value" | "ipv6-addr:value" => Mapped::Ip,
        "domain-name:value" => Mapped::Fixed(T::Domain),
        "url:value" => Mapped::Fixed(T::Url),
        "email-addr:value" => Mapped::Fixed(T::Email),
        "file:hashes.md5" => Mapped::Fixed(T::Md5),
        "file:hashes.sha-1" | "file:hashes.sha1" => Mapped::Fixed(T::Sha1),
        "file:hashes.sha-256" | "file:hashes.sha256" => Mapped::Fixed(T::Sha256),
        "autonomous-system:number" => Mapped::Fixed(T::Asn),
        "x509-certificate:hashes.sha-1"
        | "x509-certificate:hashes.sha1"
        | "x509-certificate:hashes.sha-256"
        | "x509-certificate:hashes.sha256" => Mapped::Fixed(T::CertificateFingerprint),
        "network-traffic:extensions.http-request-ext.request_header.user-agent" => Mapped::Fixed(T::UserAgent),
        _ => return None,
    })
}

// --- STIX patterning: the subset of equality comparisons joined by OR ---

/// One `path op literal` comparison of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Comparison {
    path: String,
    /// `=`, `!=`, `LIKE`, `NOT =`, ...: anything but `=` is refused per comparison.
    operator: String,
    literal: Literal,
    /// The comparison as written, for the source excerpt.
    text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Literal {
    Text(String),
    Number(String),
    /// A literal cirfed does not import (timestamp, binary, hex, boolean, set), by name.
    Other(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    OpenBracket,
    CloseBracket,
    OpenParen,
    CloseParen,
    Comma,
    /// An object path such as `file:hashes.'SHA-256'`.
    Path(String),
    /// A keyword or operator word (OR, AND, LIKE, WITHIN, ...), upper-cased.
    Word(String),
    /// `=`, `!=`, `<`, `<=`, `>`, `>=`.
    Operator(String),
    Text(String),
    Number(String),
    /// `t'...'`, `h'...'`, `b'...'`.
    Typed(&'static str),
}

/// A token and the byte range it came from.
type Spanned = (Token, std::ops::Range<usize>);

fn tokenize(pattern: &str) -> Result<Vec<Spanned>, DraftError> {
    let syntax = |reason: String| DraftError::Syntax { format: "stix pattern", reason };
    let bytes = pattern.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        let c = bytes[i];
        let token = match c {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b'[' => {
                i += 1;
                Token::OpenBracket
            }
            b']' => {
                i += 1;
                Token::CloseBracket
            }
            b'(' => {
                i += 1;
                Token::OpenParen
            }
            b')' => {
                i += 1;
                Token::CloseParen
            }
            b',' => {
                i += 1;
                Token::Comma
            }
            b'=' | b'!' | b'<' | b'>' => {
                i += 1;
                if bytes.get(i) == Some(&b'=') {
                    i += 1;
                }
                let op = &pattern[start..i];
                if op == "!" {
                    return Err(syntax("`!` without `=`".to_owned()));
                }
                Token::Operator(op.to_owned())
            }
            b'\'' => {
                let (text, end) = string_literal(pattern, i).ok_or_else(|| syntax("unterminated string".to_owned()))?;
                i = end;
                Token::Text(text)
            }
            b'-' | b'0'..=b'9' => {
                i += 1;
                while i < bytes.len() && (bytes[i].is_ascii_digit() || matches!(bytes[i], b'.' | b'e' | b'E' | b'+')) {
                    i += 1;
                }
                Token::Number(pattern[start..i].to_owned())
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'_' | b'-')) {
                    i += 1;
                }
                let word = &pattern[start..i];
                if bytes.get(i) == Some(&b'\'') && matches!(word, "t" | "h" | "b") {
                    let (_, end) =
                        string_literal(pattern, i).ok_or_else(|| syntax("unterminated string".to_owned()))?;
                    i = end;
                    Token::Typed(match word {
                        "t" => "timestamp",
                        "h" => "hex",
                        _ => "binary",
                    })
                } else if bytes.get(i) == Some(&b':') {
                    i = object_path_end(pattern, i).ok_or_else(|| syntax("unterminated object path".to_owned()))?;
                    Token::Path(pattern[start..i].to_owned())
                } else {
                    Token::Word(word.to_ascii_uppercase())
                }
            }
            _ => {
                let shown: String = pattern[start..].chars().next().into_iter().collect();
                return Err(syntax(format!("unexpected character '{shown}'")));
            }
        };
        tokens.push((token, start..i));
    }
    Ok(tokens)
}

/// The unescaped text of the string literal opening at `start`, and the index after it.
fn string_literal(pattern: &str, start: usize) -> Option<(String, usize)> {
    let mut text = String::new();
    let mut chars = pattern[start + 1..].char_indices();
    while let Some((offset, c)) = chars.next() {
        match c {
            '\\' => text.push(chars.next()?.1),
            '\'' => return Some((text, start + 1 + offset + 1)),
            c => text.push(c),
        }
    }
    None
}

/// The end of an object path whose type ends at `colon`: letters, digits, `_-.:*`,
/// quoted segments (`hashes.'SHA-256'`) and list indexes (`[*]`).
fn object_path_end(pattern: &str, colon: usize) -> Option<usize> {
    let bytes = pattern.as_bytes();
    let mut i = colon + 1;
    while i < bytes.len() {
        match bytes[i] {
            b if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b'*') => i += 1,
            b'\'' if bytes[i - 1] == b'.' => i = string_literal(pattern, i)?.1,
            b'[' if bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_' => {
                i += pattern[i..].find(']')? + 1;
            }
            _ => break,
        }
    }
    Some(i)
}

/// Recursive descent over the tokens; `Err` refuses the whole pattern.
struct PatternParser<'a> {
    pattern: &'a str,
    tokens: Vec<Spanned>,
    next: usize,
}

/// Parses a STIX pattern into its comparisons, refusing anything that is not a plain OR of them.
fn parse_pattern(pattern: &str) -> Result<Vec<Comparison>, DraftError> {
    let mut parser = PatternParser { pattern, tokens: tokenize(pattern)?, next: 0 };
    let mut comparisons = Vec::new();
    parser.observations(&mut comparisons)?;
    if let Some((token, _)) = parser.tokens.get(parser.next) {
        return Err(parser.unexpected(token));
    }
    if comparisons.is_empty() {
        return Err(DraftError::Syntax { format: "stix pattern", reason: "no comparison".to_owned() });
    }
    Ok(comparisons)
}

impl PatternParser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next).map(|(token, _)| token)
    }

    fn take(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.next).map(|(token, _)| token.clone());
        self.next += 1;
        token
    }

    fn syntax(&self, reason: impl Into<String>) -> DraftError {
        DraftError::Syntax { format: "stix pattern", reason: reason.into() }
    }

    fn unexpected(&self, token: &Token) -> DraftError {
        self.syntax(format!("unexpected {token:?}"))
    }

    fn expect(&mut self, wanted: &Token, what: &str) -> Result<(), DraftError> {
        match self.take() {
            Some(token) if &token == wanted => Ok(()),
            Some(token) => Err(self.syntax(format!("expected {what}, found {token:?}"))),
            None => Err(self.syntax(format!("expected {what} at the end"))),
        }
    }

    /// observations := observation (OR observation)*
    fn observations(&mut self, out: &mut Vec<Comparison>) -> Result<(), DraftError> {
        self.observation(out)?;
        loop {
            match self.peek() {
                Some(Token::Word(w)) if w == "OR" => {
                    self.next += 1;
                    self.observation(out)?;
                }
                Some(Token::Word(w)) if w == "AND" || w == "FOLLOWEDBY" => {
                    return Err(DraftError::Unsupported(format!(
                        "STIX pattern joins observations with {w}: only OR is imported, since publishing \
                         each part alone would match more than the pattern does"
                    )));
                }
                _ => return Ok(()),
            }
        }
    }

    /// observation := '[' comparisons ']' qualifiers | '(' observations ')' qualifiers
    fn observation(&mut self, out: &mut Vec<Comparison>) -> Result<(), DraftError> {
        match self.take() {
            Some(Token::OpenBracket) => {
                self.comparisons(out)?;
                self.expect(&Token::CloseBracket, "]")?;
            }
            Some(Token::OpenParen) => {
                self.observations(out)?;
                self.expect(&Token::CloseParen, ")")?;
            }
            Some(token) => return Err(self.syntax(format!("expected [ or (, found {token:?}"))),
            None => return Err(self.syntax("expected [ or ( at the end")),
        }
        if let Some(Token::Word(w)) = self.peek() {
            if matches!(w.as_str(), "WITHIN" | "START" | "STOP" | "REPEATS") {
                return Err(DraftError::Unsupported(format!(
                    "STIX pattern qualifier {w}: cirfed indicators have no time window or count"
                )));
            }
        }
        Ok(())
    }

    /// comparisons := term (OR term)*, where a term joined by AND is refused.
    fn comparisons(&mut self, out: &mut Vec<Comparison>) -> Result<(), DraftError> {
        self.term(out)?;
        loop {
            match self.peek() {
                Some(Token::Word(w)) if w == "OR" => {
                    self.next += 1;
                    self.term(out)?;
                }
                Some(Token::Word(w)) if w == "AND" => {
                    return Err(DraftError::Unsupported(
                        "STIX pattern joins comparisons with AND: only OR is imported, since publishing each \
                         part alone would match more than the pattern does"
                            .to_owned(),
                    ));
                }
                _ => return Ok(()),
            }
        }
    }

    /// term := '(' comparisons ')' | path [NOT] operator literal
    fn term(&mut self, out: &mut Vec<Comparison>) -> Result<(), DraftError> {
        let start = self.tokens.get(self.next).map_or(self.pattern.len(), |(_, span)| span.start);
        let path = match self.take() {
            Some(Token::OpenParen) => {
                self.comparisons(out)?;
                return self.expect(&Token::CloseParen, ")");
            }
            Some(Token::Path(path)) => path,
            Some(token) => return Err(self.syntax(format!("expected an object path, found {token:?}"))),
            None => return Err(self.syntax("expected an object path at the end")),
        };
        let mut operator = String::new();
        if matches!(self.peek(), Some(Token::Word(w)) if w == "NOT") {
            self.next += 1;
            operator.push_str("NOT ");
        }
        match self.take() {
            Some(Token::Operator(op)) => operator.push_str(&op),
            Some(Token::Word(w)) if matches!(w.as_str(), "LIKE" | "MATCHES" | "IN" | "ISSUBSET" | "ISSUPERSET") => {
                operator.push_str(&w)
            }
            Some(token) => return Err(self.syntax(format!("expected a comparison operator, found {token:?}"))),
            None => return Err(self.syntax("expected a comparison operator at the end")),
        }
        let literal = match self.take() {
            Some(Token::Text(text)) => Literal::Text(text),
            Some(Token::Number(n)) => Literal::Number(n),
            Some(Token::Typed(kind)) => Literal::Other(kind),
            Some(Token::Word(w)) if w == "TRUE" || w == "FALSE" => Literal::Other("boolean"),
            Some(Token::OpenParen) => {
                // A set for IN: skip to its end.
                while !matches!(self.take(), Some(Token::CloseParen) | None) {}
                Literal::Other("set")
            }
            Some(token) => return Err(self.syntax(format!("expected a literal, found {token:?}"))),
            None => return Err(self.syntax("expected a literal at the end")),
        };
        let end = self.tokens.get(self.next - 1).map_or(self.pattern.len(), |(_, span)| span.end);
        let text = self.pattern.get(start..end).unwrap_or_default().to_owned();
        out.push(Comparison { path, operator, literal, text });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// 2024-05-01T00:00:00Z, before every expiry in the sample files.
    const NOW: i64 = 1_714_521_600;

    fn shared_data(rel: &str) -> PathBuf {
        let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data").join(rel);
        if beside.exists() {
            return beside;
        }
        Path::new("/work/shared/data").join(rel)
    }

    fn read_shared(rel: &str) -> String {
        let path = shared_data(rel);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
    }

    fn indicator(draft: &Draft) -> &Indicator {
        match &draft.body {
            Some(Body::Indicator(indicator)) => indicator,
            other => panic!("not an indicator: {other:?}"),
        }
    }

    fn lesson(draft: &Draft) -> &Lesson {
        match &draft.body {
            Some(Body::Lesson(lesson)) => lesson,
            other => panic!("not a lesson: {other:?}"),
        }
    }

    fn fields(value: &str) -> IndicatorFields {
        IndicatorFields { value: value.to_owned(), ..IndicatorFields::default() }
    }

    /// (drafts, errors) counts of a bulk read.
    fn counts(lines: &[BulkLine]) -> (usize, usize) {
        let ok = lines.iter().filter(|l| l.draft.is_ok()).count();
        (ok, lines.len() - ok)
    }

    fn errors(lines: &[BulkLine]) -> Vec<(usize, DraftError)> {
        lines.iter().filter_map(|l| l.draft.clone().err().map(|e| (l.line, e))).collect()
    }

    // --- indicator flags ---

    #[test]
    fn indicator_without_options_uses_defaults_and_leaves_type_tlp_and_expiry_to_the_node() {
        let draft = indicator_draft(&fields(" 198.51.100.7 "), NOW).unwrap();
        assert_eq!(draft.tlp, 0);
        let i = indicator(&draft);
        assert_eq!(i.r#type, 0);
        assert_eq!(i.value, "198.51.100.7");
        assert_eq!(i.cir_level, u32::from(DEFAULT_LEVEL));
        assert_eq!(i.confidence, u32::from(DEFAULT_CONFIDENCE));
        assert_eq!(i.valid_until, 0);
        assert_eq!((i.first_seen, i.last_seen), (0, 0));
    }

    #[test]
    fn indicator_flags_fill_every_field() {
        let f = IndicatorFields {
            kind: Some("domain".into()),
            value: "evil.example".into(),
            level: Some(4),
            tlp: Some("TLP:AMBER+STRICT".into()),
            confidence: Some(90),
            categories: vec!["ddos".into(), "malware".into(), "DoS".into()],
            valid_days: Some(30),
            description: Some(" c2 domain ".into()),
            tags: vec!["c2".into(), " ".into(), "c2".into()],
            incident_ref: Some("inc-7f3a".into()),
            first_seen: Some("2024-04-01T00:00:00Z".into()),
            last_seen: Some("1714000000".into()),
        };
        let draft = indicator_draft(&f, NOW).unwrap();
        assert_eq!(draft.tlp, cir::Tlp::AmberStrict.code());
        let i = indicator(&draft);
        assert_eq!(i.r#type, i32::from(ObservableType::Domain.code()));
        assert_eq!(i.cir_level, 4);
        assert_eq!(i.confidence, 90);
        assert_eq!(i.categories, [cir::Category::DenialOfService.code(), cir::Category::Malware.code()]);
        assert_eq!(i.valid_until, NOW + 30 * 86_400);
        assert_eq!(i.description, "c2 domain");
        assert_eq!(i.tags, ["c2"]);
        assert_eq!(i.incident_ref, "inc-7f3a");
        assert_eq!(i.first_seen, 1_711_929_600);
        assert_eq!(i.last_seen, 1_714_000_000);
    }

    #[test]
    fn bad_indicator_flags_are_refused_with_the_field_named() {
        let cases: Vec<(IndicatorFields, &str)> = vec![
            (fields(""), "missing `value`"),
            (IndicatorFields { kind: Some("ip".into()), ..fields("1.2.3.4") }, "`type`: unknown observable type `ip`"),
            (IndicatorFields { level: Some(0), ..fields("1.2.3.4") }, "`level` 0 is out of range: expected 1 to 5"),
            (IndicatorFields { level: Some(6), ..fields("1.2.3.4") }, "`level` 6 is out of range"),
            (IndicatorFields { tlp: Some("orange".into()), ..fields("1.2.3.4") }, "`tlp`: unknown TLP 'orange'"),
            (IndicatorFields { confidence: Some(101), ..fields("1.2.3.4") }, "`confidence` 101 is out of range"),
            (
                IndicatorFields { categories: vec!["spam".into()], ..fields("1.2.3.4") },
                "`categories`: unknown category 'spam'",
            ),
            (IndicatorFields { valid_days: Some(0), ..fields("1.2.3.4") }, "`valid_days` 0 is out of range"),
            (
                IndicatorFields { first_seen: Some("yesterday".into()), ..fields("1.2.3.4") },
                "`first_seen` 'yesterday' is not a time",
            ),
            (
                IndicatorFields { last_seen: Some("2024-13-01T00:00:00Z".into()), ..fields("1.2.3.4") },
                "`last_seen` '2024-13-01T00:00:00Z'",
            ),
            (
                IndicatorFields { first_seen: Some("200".into()), last_seen: Some("100".into()), ..fields("1.2.3.4") },
                "`first_seen` is after `last_seen`",
            ),
            (IndicatorFields { kind: Some("md5".into()), ..fields("abc") }, "`value` 'abc': md5 hash has 3 characters"),
            (fields("not an indicator at all"), "`value` 'not an indicator at all': cannot detect"),
        ];
        for (f, message) in cases {
            let err = indicator_draft(&f, NOW).unwrap_err().to_string();
            assert!(err.starts_with(message), "{err:?} should start with {message:?}");
        }
    }

    // --- lessons ---

    #[test]
    fn lesson_template_parses_into_a_complete_lesson() {
        let draft = lesson_draft(LESSON_TEMPLATE).unwrap();
        assert_eq!(draft.tlp, cir::Tlp::Green.code());
        let l = lesson(&draft);
        assert!(l.title.contains("crypto-mining"), "{}", l.title);
        assert!(l.summary.starts_with("A long-lived access key"), "{}", l.summary);
        assert_eq!(l.cir_level, 3);
        assert_eq!(l.categories, [cir::Category::CredentialTheft.code(), cir::Category::Intrusion.code()]);
        assert_eq!(l.service_model, cir::ServiceModel::Iaas.code());
        assert_eq!(l.time_to_detect_secs, 5 * 3600 + 20 * 60);
        assert_eq!(l.time_to_contain_secs, 45 * 60);
        assert_eq!(l.time_to_recover_secs, 26 * 3600);
        assert_eq!(l.went_well.len(), 3);
        assert_eq!(l.to_improve.len(), 3);
        let phases: Vec<i32> = l.recommended_actions.iter().map(|a| a.phase).collect();
        assert_eq!(
            phases,
            [
                cir::Phase::Preparation.code(),
                cir::Phase::DetectionAndAnalysis.code(),
                cir::Phase::ContainmentEradicationRecovery.code(),
                cir::Phase::Coordination.code()
            ]
        );
        assert!(l.indicator_refs.is_empty());
        assert_eq!(l.tags, ["cryptomining", "leaked-credentials", "ci-cd"]);
    }

    #[test]
    fn every_template_field_has_a_comment_above_it() {
        let lines: Vec<&str> = LESSON_TEMPLATE.lines().collect();
        let mut seen = std::collections::HashSet::new();
        for (i, line) in lines.iter().enumerate() {
            let Some((key, _)) = line.split_once(" = ") else {
                continue;
            };
            if key.starts_with(' ') || key.starts_with('#') || !seen.insert(key) {
                continue;
            }
            assert!(lines[i - 1].starts_with('#'), "no comment above `{key}`");
        }
        assert!(seen.len() >= 16, "{seen:?}");
    }

    #[test]
    fn lesson_durations_accept_seconds_and_units() {
        for (text, secs) in [
            ("3600", 3600),
            ("90m", 5400),
            ("4h", 14_400),
            ("2d 3h", 183_600),
            ("1h30m", 5400),
            ("1w", 604_800),
            ("45s", 45),
        ] {
            assert_eq!(parse_duration(text), Some(secs), "{text}");
        }
        for text in ["", "4 hours", "h", "3x", "-5m"] {
            assert_eq!(parse_duration(text), None, "{text}");
        }
        let draft = lesson_draft("title = \"t\"\nsummary = \"s\"\ntime_to_detect = 7200\n").unwrap();
        assert_eq!(lesson(&draft).time_to_detect_secs, 7200);
    }

    #[test]
    fn bad_lesson_fields_are_refused_with_the_field_named() {
        let base = "title = \"t\"\nsummary = \"s\"\n";
        let cases = [
            ("summary = \"s\"\n".to_owned(), "missing `title`"),
            ("title = \"t\"\n".to_owned(), "missing `summary`"),
            (format!("{base}cir_level = 9\n"), "`cir_level` 9 is out of range"),
            (format!("{base}categories = [\"spam\"]\n"), "`categories`: unknown category 'spam'"),
            (format!("{base}service_model = \"faas\"\n"), "`service_model`: unknown service model 'faas'"),
            (format!("{base}time_to_detect = \"4 hours\"\n"), "`time_to_detect` '4 hours' is not a duration"),
            (format!("{base}time_to_recover = -5\n"), "`time_to_recover` '-5' is not a duration"),
            (format!("{base}indicator_refs = [\"abcd\"]\n"), "`indicator_refs` 'abcd' is not a record id"),
            (format!("{base}tlp = \"orange\"\n"), "`tlp`: unknown TLP 'orange'"),
            (
                format!("{base}[[actions]]\nphase = \"later\"\naction = \"a\"\n"),
                "`actions.phase`: unknown phase 'later'",
            ),
            (format!("{base}[[actions]]\nphase = \"preparation\"\n"), "missing `actions.action`"),
            (format!("{base}severity = 3\n"), "lesson line 3, `severity`: unknown field `severity`"),
            (format!("{base}went_well = \"everything\"\n"), "lesson line 3, `went_well`: invalid type"),
            ("title = 3\nsummary = \"s\"\n".to_owned(), "lesson line 1, `title`: invalid type"),
            (
                format!("{base}[[actions]]\nphase = \"preparation\"\naction = \"a\"\nowner = \"x\"\n"),
                "lesson line 6, `owner`: unknown field",
            ),
            (format!("{base}title = \"again\"\n"), "lesson line 3, `title`"),
            ("title = \n".to_owned(), "lesson line 1, `title`: string values must be quoted"),
            ("summary = \"s\"\n[[actions\n".to_owned(), "lesson line 2, `actions`: unclosed array table"),
            ("summary = \"s\"\n???\n".to_owned(), "invalid toml: line 2: "),
        ];
        for (text, message) in cases {
            let err = lesson_draft(&text).unwrap_err().to_string();
            assert!(err.starts_with(message), "{text:?}: {err:?} should start with {message:?}");
        }
    }

    #[test]
    fn lesson_indicator_refs_are_decoded_from_hex() {
        let id = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let draft = lesson_draft(&format!("title = \"t\"\nsummary = \"s\"\nindicator_refs = [\"{id}\"]\n")).unwrap();
        assert_eq!(lesson(&draft).indicator_refs, [hex::decode(id).unwrap()]);
    }

    // --- format detection ---

    #[test]
    fn format_is_detected_from_the_extension_then_the_content() {
        let p = Path::new;
        assert_eq!(detect_format(p("iocs.CSV"), "{\"Event\": {}}"), BulkFormat::Csv);
        assert_eq!(detect_format(p("e.json"), "{\"Event\": {\"Attribute\": []}}"), BulkFormat::MispEvent);
        assert_eq!(detect_format(p("e.json"), "{\"Attribute\": []}"), BulkFormat::MispEvent);
        assert_eq!(detect_format(p("b.json"), "{\"type\": \"bundle\", \"objects\": []}"), BulkFormat::StixBundle);
        assert_eq!(
            detect_format(p("l.json"), "{\"value\": \"1.2.3.4\"}\n{\"value\": \"5.6.7.8\"}\n"),
            BulkFormat::JsonLines
        );
        assert_eq!(detect_format(p("l.json"), "{\"type\": \"ipv4\", \"value\": \"1.2.3.4\"}"), BulkFormat::JsonLines);
        assert_eq!(detect_format(p("l.txt"), "# comment\n"), BulkFormat::JsonLines);
        for rel in ["misp/misp_event.json", "misp/sighting_1.json", "misp/57c4445b-c548-4654-af0b-4be3950d210f.json"] {
            assert_eq!(detect_format(&shared_data(rel), &read_shared(rel)), BulkFormat::MispEvent, "{rel}");
        }
        for rel in ["stix/indicator-for-c2-ip-address.json", "stix/sighting-of-an-indicator.json"] {
            assert_eq!(detect_format(&shared_data(rel), &read_shared(rel)), BulkFormat::StixBundle, "{rel}");
        }
    }

    // --- JSON lines ---

    #[test]
    fn json_lines_give_one_draft_per_object_with_errors_on_their_own_line() {
        let text = [
            "# indicators from the 2024-05 incident",
            r#"{"type": "ipv4", "value": "203.0.113.9", "level": 4, "tlp": "amber", "categories": ["intrusion"], "tags": "c2;vpn"}"#,
            "",
            r#"{"value": "evil.example", "category": "phishing", "comment": "lure domain", "valid_days": "10"}"#,
            r#"{"value": "203.0.113.10", "severity": 5}"#,
            r#"{"value": "203.0.113.11", "level": "high"}"#,
            r#"{"value": "203.0.113.12""#,
            r#"["203.0.113.13"]"#,
            r#"{"type": "ipv4", "value": "999.1.1.1"}"#,
            r#"{"value": "203.0.113.14", "description": "a", "comment": "b"}"#,
            r#"{"value": "203.0.113.15", "confidence": 300, "first_seen": 1714000000, "tlp": null}"#,
        ]
        .join("\n");
        let lines = read_bulk(&text, BulkFormat::JsonLines, NOW).unwrap();
        let numbers: Vec<usize> = lines.iter().map(|l| l.line).collect();
        assert_eq!(numbers, [2, 4, 5, 6, 7, 8, 9, 10, 11]);

        let first = lines[0].draft.as_ref().unwrap();
        assert_eq!(first.tlp, cir::Tlp::Amber.code());
        let i = indicator(first);
        assert_eq!((i.r#type, i.cir_level), (i32::from(ObservableType::Ipv4.code()), 4));
        assert_eq!(i.categories, [cir::Category::Intrusion.code()]);
        assert_eq!(i.tags, ["c2", "vpn"]);
        let second = indicator(lines[1].draft.as_ref().unwrap());
        assert_eq!(second.description, "lure domain");
        assert_eq!(second.categories, [cir::Category::Phishing.code()]);
        assert_eq!(second.valid_until, NOW + 10 * 86_400);

        let messages: Vec<(usize, String)> = errors(&lines).into_iter().map(|(n, e)| (n, e.to_string())).collect();
        let expected = [
            (5, "unknown field `severity`"),
            (6, "`level` must be a whole number"),
            (7, "invalid json: "),
            (8, "invalid json: expected an object per line"),
            (9, "`value` '999.1.1.1': invalid ipv4 address"),
            (10, "`description` and `comment` are the same field"),
            (11, "`confidence` 300 is out of range"),
        ];
        assert_eq!(messages.len(), expected.len(), "{messages:?}");
        for ((line, message), (want_line, want)) in messages.iter().zip(expected) {
            assert_eq!(*line, want_line);
            assert!(message.starts_with(want), "line {line}: {message:?} should start with {want:?}");
        }
        assert_eq!(lines[2].source, r#"{"value": "203.0.113.10", "severity": 5}"#);
    }

    #[test]
    fn a_whole_json_document_is_not_read_as_json_lines() {
        let text = "{\n  \"type\": \"bundle\",\n  \"objects\": []\n}\n";
        let err = read_bulk(text, BulkFormat::JsonLines, NOW).unwrap_err();
        assert!(matches!(err, DraftError::Unreadable { format: "json lines", .. }), "{err}");
    }

    #[test]
    fn long_sources_are_cut_to_80_characters() {
        let value = format!("https://example.com/{}", "a".repeat(200));
        let text = format!("{{\"value\": \"{value}\"}}\n");
        let lines = read_bulk(&text, BulkFormat::JsonLines, NOW).unwrap();
        assert_eq!(lines[0].source.chars().count(), MAX_SOURCE_CHARS);
        assert!(lines[0].source.ends_with('…'));
        assert!(lines[0].draft.is_ok());
    }

    // --- CSV ---

    #[test]
    fn csv_rows_become_drafts_with_empty_cells_as_defaults() {
        let text = "type,value,level,tlp,categories,tags,description\n\
                    ipv4,203.0.113.9,4,green,intrusion;credential-theft,c2;vpn,\"exit node, seen twice\"\n\
                    \n\
                    ,evil.example,,,,,\n\
                    # comment row\n\
                    domain,evil..example,,,,,\n\
                    ,203.0.113.10,7,,,,\n\
                    ,203.0.113.11,,,\n\
                    ,\"203.0.113.12\",,,malware,,\n";
        let lines = read_bulk(text, BulkFormat::Csv, NOW).unwrap();
        let numbers: Vec<usize> = lines.iter().map(|l| l.line).collect();
        assert_eq!(numbers, [2, 4, 6, 7, 8, 9]);
        let first = lines[0].draft.as_ref().unwrap();
        assert_eq!(first.tlp, cir::Tlp::Green.code());
        let i = indicator(first);
        assert_eq!(i.cir_level, 4);
        assert_eq!(i.categories, [cir::Category::Intrusion.code(), cir::Category::CredentialTheft.code()]);
        assert_eq!(i.tags, ["c2", "vpn"]);
        assert_eq!(i.description, "exit node, seen twice");
        assert_eq!(lines[1].draft.as_ref().unwrap().tlp, 0);
        let second = indicator(lines[1].draft.as_ref().unwrap());
        assert_eq!((second.r#type, second.cir_level), (0, 3));
        assert_eq!(lines[1].source, ",evil.example,,,,,");
        let messages: Vec<(usize, String)> = errors(&lines).into_iter().map(|(n, e)| (n, e.to_string())).collect();
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert_eq!(messages[0].0, 6);
        assert!(messages[0].1.starts_with("`value` 'evil..example': invalid domain"), "{}", messages[0].1);
        assert_eq!(messages[1], (7, "`level` 7 is out of range: expected 1 to 5".to_owned()));
        assert_eq!(messages[2], (8, "invalid csv: 5 fields, but the header has 7".to_owned()));
        assert!(lines[5].draft.is_ok());
    }

    #[test]
    fn csv_without_a_usable_header_is_unreadable() {
        for (text, reason) in [
            ("", "no header row"),
            ("kind,value\nipv4,1.2.3.4\n", "unknown field `kind`"),
            ("type,level\nipv4,3\n", "no `value` column"),
        ] {
            match read_bulk(text, BulkFormat::Csv, NOW) {
                Err(DraftError::Unreadable { format: "csv", reason: got }) => {
                    assert!(got.starts_with(reason), "{text:?}: {got:?}")
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    // --- MISP ---

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
            assert!(matches!(err, DraftError::Unreadable { format: "misp", .. }), "{text}: {err}");
        }
    }

    // --- STIX ---

    fn stix_lines(rel: &str) -> Vec<BulkLine> {
        read_bulk(&read_shared(rel), BulkFormat::StixBundle, NOW).unwrap()
    }

    #[test]
    fn stix_c2_ip_bundle_imports_its_one_indicator() {
        let lines = stix_lines("stix/indicator-for-c2-ip-address.json");
        assert_eq!(counts(&lines), (1, 0));
        let draft = lines[0].draft.as_ref().unwrap();
        assert_eq!(draft.tlp, 0);
        let i = indicator(draft);
        assert_eq!((i.r#type, i.value.as_str()), (i32::from(ObservableType::Ipv4.code()), "10.0.0.0"));
        assert_eq!(i.description, "Test description C2 channel.");
        assert_eq!(i.tags, ["malicious-activity"]);
        assert_eq!(i.confidence, u32::from(DEFAULT_CONFIDENCE));
        assert_eq!(lines[0].source, "ipv4-addr:value = '10.0.0.0'");
    }

    #[test]
    fn stix_c2_with_course_of_action_imports_two_indicators_and_names_the_other_types() {
        let lines = stix_lines("stix/indicators-for-C2-with-COA.json");
        assert_eq!(counts(&lines), (2, 6));
        let refused: Vec<(usize, String)> = errors(&lines).into_iter().map(|(n, e)| (n, e.to_string())).collect();
        assert_eq!(
            refused,
            [
                (1, "unsupported: STIX object type 'identity': only indicators are imported".to_owned()),
                (2, "unsupported: STIX object type 'malware': only indicators are imported".to_owned()),
                (5, "unsupported: STIX object type 'course-of-action': only indicators are imported".to_owned()),
                (6, "unsupported: STIX object type 'relationship': only indicators are imported".to_owned()),
                (7, "unsupported: STIX object type 'relationship': only indicators are imported".to_owned()),
                (8, "unsupported: STIX object type 'relationship': only indicators are imported".to_owned()),
            ]
        );
        let hash = lines.iter().find(|l| l.line == 4).unwrap();
        let i = indicator(hash.draft.as_ref().unwrap());
        assert_eq!(i.r#type, i32::from(ObservableType::Sha256.code()));
        assert_eq!(i.value, "ef537f25c895bfa782526529a9b63d97aa631564d5d789c2b765448c8635fb6c");
    }

    #[test]
    fn stix_file_hash_bundle_imports_the_hash() {
        let lines = stix_lines("stix/malware-indicator-for-file-hash.json");
        assert_eq!(counts(&lines), (1, 2));
        assert_eq!(
            indicator(lines[0].draft.as_ref().unwrap()).description,
            "This file hash indicates that a sample of Poison Ivy is present."
        );
    }

    #[test]
    fn stix_sighting_bundle_imports_the_url_and_refuses_the_sighting() {
        let lines = stix_lines("stix/sighting-of-an-indicator.json");
        assert_eq!(counts(&lines), (1, 3));
        let i = indicator(lines[0].draft.as_ref().unwrap());
        assert_eq!((i.r#type, i.value.as_str()), (i32::from(ObservableType::Url.code()), "http://paypa1.banking.com"));
        assert_eq!(
            lines[3].draft,
            Err(DraftError::Unsupported("STIX object type 'sighting': only indicators are imported".into()))
        );
    }

    fn stix_indicator_bundle(indicator: Value) -> String {
        serde_json::json!({"type": "bundle", "id": "bundle--1", "objects": [indicator]}).to_string()
    }

    #[test]
    fn stix_or_patterns_give_one_draft_per_comparison_with_the_indicator_fields() {
        let bundle = stix_indicator_bundle(serde_json::json!({
            "type": "indicator",
            "id": "indicator--1",
            "pattern_type": "stix",
            "pattern": "[ipv4-addr:value = '198.51.100.1' OR domain-name:value = 'evil.example'] OR \
                        ([file:hashes.MD5 = '0749bae92ca336a02c83d126e04ec628'] OR [autonomous-system:number = 64496]) \
                        OR [x509-certificate:hashes.'SHA-1' = '77b0c41b7d340b8a3d903f21347bbf06aa766b5b' OR email-addr:value = 'a@evil.example'] \
                        OR [ipv6-addr:value = '2001:db8::1' OR url:value = 'http://evil.example/a\\'b'] \
                        OR [process:name = 'miner' OR ipv4-addr:value != '10.0.0.1']",
            "confidence": 85,
            "valid_until": "2030-01-01T00:00:00Z",
            "description": "mining pool",
            "name": "ignored when there is a description",
            "labels": ["cryptomining"],
            "object_marking_refs": ["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da", "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"]
        }));
        let lines = read_bulk(&bundle, BulkFormat::StixBundle, NOW).unwrap();
        assert!(lines.iter().all(|l| l.line == 1));
        let t = |k: ObservableType| i32::from(k.code());
        let got: Vec<(i32, String)> = lines
            .iter()
            .filter_map(|l| l.draft.as_ref().ok())
            .map(|d| (indicator(d).r#type, indicator(d).value.clone()))
            .collect();
        assert_eq!(
            got,
            [
                (t(ObservableType::Ipv4), "198.51.100.1".to_owned()),
                (t(ObservableType::Domain), "evil.example".to_owned()),
                (t(ObservableType::Md5), "0749bae92ca336a02c83d126e04ec628".to_owned()),
                (t(ObservableType::Asn), "64496".to_owned()),
                (t(ObservableType::CertificateFingerprint), "77b0c41b7d340b8a3d903f21347bbf06aa766b5b".to_owned()),
                (t(ObservableType::Email), "a@evil.example".to_owned()),
                (t(ObservableType::Ipv6), "2001:db8::1".to_owned()),
                (t(ObservableType::Url), "http://evil.example/a'b".to_owned()),
            ]
        );
        let first = lines[0].draft.as_ref().unwrap();
        assert_eq!(first.tlp, cir::Tlp::Amber.code());
        let i = indicator(first);
        assert_eq!(i.confidence, 85);
        assert_eq!(i.valid_until, 1_893_456_000);
        assert_eq!(i.description, "mining pool");
        assert_eq!(i.tags, ["cryptomining"]);
        let refused: Vec<String> = errors(&lines).into_iter().map(|(_, e)| e.to_string()).collect();
        assert_eq!(
            refused,
            [
                "unsupported: STIX object path 'process:name' has no cirfed observable type",
                "unsupported: STIX pattern operator '!=' in `ipv4-addr:value != '10.0.0.1'`: only = comparisons are imported",
            ]
        );
    }

    #[test]
    fn stix_patterns_that_are_not_a_plain_or_are_refused_with_the_reason() {
        let cases = [
            (
                "[ipv4-addr:value = '198.51.100.1' AND domain-name:value = 'evil.example']",
                "unsupported: STIX pattern joins comparisons with AND",
            ),
            (
                "[ipv4-addr:value = '198.51.100.1'] AND [domain-name:value = 'evil.example']",
                "unsupported: STIX pattern joins observations with AND",
            ),
            (
                "[ipv4-addr:value = '198.51.100.1'] FOLLOWEDBY [domain-name:value = 'evil.example']",
                "unsupported: STIX pattern joins observations with FOLLOWEDBY",
            ),
            ("[ipv4-addr:value = '198.51.100.1'] WITHIN 300 SECONDS", "unsupported: STIX pattern qualifier WITHIN"),
            ("[ipv4-addr:value = '198.51.100.1'", "invalid stix pattern: expected ] at the end"),
            ("[ipv4-addr:value = '198.51.100.1]", "invalid stix pattern: unterminated string"),
            ("ipv4-addr:value = '198.51.100.1'", "invalid stix pattern: expected [ or ("),
        ];
        for (pattern, message) in cases {
            let bundle = stix_indicator_bundle(
                serde_json::json!({"type": "indicator", "id": "indicator--1", "pattern": pattern}),
            );
            let lines = read_bulk(&bundle, BulkFormat::StixBundle, NOW).unwrap();
            assert_eq!(lines.len(), 1, "{pattern}");
            let err = lines[0].draft.as_ref().unwrap_err().to_string();
            assert!(err.starts_with(message), "{pattern}: {err:?} should start with {message:?}");
        }
        for (pattern, message) in [
            ("[file:name LIKE 'miner%']", "unsupported: STIX pattern operator 'LIKE'"),
            ("[ipv4-addr:value IN ('1.2.3.4', '5.6.7.8')]", "unsupported: STIX pattern operator 'IN'"),
            ("[ipv4-addr:value NOT = '1.2.3.4']", "unsupported: STIX pattern operator 'NOT ='"),
            ("[file:created = t'2024-01-01T00:00:00Z']", "unsupported: STIX object path 'file:created'"),
            (
                "[email-message:to_refs[*].value = 'a@evil.example']",
                "unsupported: STIX object path 'email-message:to_refs[*].value'",
            ),
        ] {
            let bundle = stix_indicator_bundle(
                serde_json::json!({"type": "indicator", "id": "indicator--1", "pattern": pattern}),
            );
            let lines = read_bulk(&bundle, BulkFormat::StixBundle, NOW).unwrap();
            let err = lines[0].draft.as_ref().unwrap_err().to_string();
            assert!(err.starts_with(message), "{pattern}: {err:?} should start with {message:?}");
        }
    }

    #[test]
    fn stix_indicators_that_expired_were_revoked_or_use_other_languages_are_refused() {
        let base = serde_json::json!({"type": "indicator", "id": "indicator--1", "pattern": "[ipv4-addr:value = '198.51.100.1']"});
        let with = |key: &str, value: Value| {
            let mut object = base.clone();
            object[key] = value;
            stix_indicator_bundle(object)
        };
        let cases = [
            (with("valid_until", "2020-01-01T00:00:00Z".into()), "`valid_until` 2020-01-01T00:00:00Z is in the past"),
            (with("revoked", true.into()), "withdrawn: the STIX indicator is revoked"),
            (with("pattern_type", "sigma".into()), "unsupported: STIX pattern_type 'sigma'"),
            (with("confidence", 101.into()), "`confidence` 101 is out of range"),
        ];
        for (bundle, message) in cases {
            let lines = read_bulk(&bundle, BulkFormat::StixBundle, NOW).unwrap();
            let err = lines[0].draft.as_ref().unwrap_err().to_string();
            assert!(err.starts_with(message), "{err:?} should start with {message:?}");
        }
    }

    #[test]
    fn stix_tlp_2_markings_and_bundle_marking_definitions_set_the_tlp() {
        let bundle = serde_json::json!({"type": "bundle", "id": "bundle--1", "objects": [
            {"type": "marking-definition", "id": "marking-definition--custom", "definition_type": "tlp", "definition": {"tlp": "red"}},
            {"type": "indicator", "id": "indicator--1", "pattern": "[ipv4-addr:value = '198.51.100.1']",
             "object_marking_refs": ["marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"]},
            {"type": "indicator", "id": "indicator--2", "pattern": "[ipv4-addr:value = '198.51.100.2']",
             "object_marking_refs": ["marking-definition--custom"]},
            {"type": "indicator", "id": "indicator--3", "pattern": "[ipv4-addr:value = '198.51.100.3']",
             "object_marking_refs": ["marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487", "marking-definition--not-a-tlp"]},
            {"type": "marking-definition", "id": "marking-definition--tlp2-green", "name": "TLP:GREEN",
             "extensions": {"extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d": {"extension_type": "property-extension", "tlp_2_0": "green"}}},
            {"type": "indicator", "id": "indicator--4", "pattern": "[ipv4-addr:value = '198.51.100.4']",
             "object_marking_refs": ["marking-definition--tlp2-green"]}
        ]})
        .to_string();
        let lines = read_bulk(&bundle, BulkFormat::StixBundle, NOW).unwrap();
        let tlps: Vec<i32> = lines.iter().filter_map(|l| l.draft.as_ref().ok()).map(|d| d.tlp).collect();
        assert_eq!(
            tlps,
            [cir::Tlp::AmberStrict.code(), cir::Tlp::Red.code(), cir::Tlp::Clear.code(), cir::Tlp::Green.code()]
        );
        assert_eq!(
            lines[0].draft,
            Err(DraftError::Unsupported("STIX object type 'marking-definition': only indicators are imported".into()))
        );
    }

    #[test]
    fn json_that_is_not_a_stix_bundle_is_unreadable() {
        for text in ["{\"Event\": {}}", "{\"type\": \"bundle\"}", "[", "{\"type\": \"indicator\"}"] {
            let err = read_bulk(text, BulkFormat::StixBundle, NOW).unwrap_err();
            assert!(matches!(err, DraftError::Unreadable { format: "stix", .. }), "{text}: {err}");
        }
    }

    #[test]
    fn every_shared_sample_file_reads_in_its_detected_format() {
        let expected = [
            ("misp/57c4445b-c548-4654-af0b-4be3950d210f.json", (3, 6)),
            ("misp/misp_event.json", (0, 2)),
            ("misp/sighting_1.json", (5, 0)),
            ("stix/indicator-for-c2-ip-address.json", (1, 0)),
            ("stix/indicators-for-C2-with-COA.json", (2, 6)),
            ("stix/malware-indicator-for-file-hash.json", (1, 2)),
            ("stix/sighting-of-an-indicator.json", (1, 3)),
        ];
        for (rel, want) in expected {
            let path = shared_data(rel);
            let text = read_shared(rel);
            let lines = read_bulk(&text, detect_format(&path, &text), NOW).unwrap();
            assert_eq!(counts(&lines), want, "{rel}");
            assert!(lines.iter().all(|l| l.source.chars().count() <= MAX_SOURCE_CHARS), "{rel}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_text_in_any_format_reads_without_panicking_and_with_short_sources(text in "\\PC{0,300}") {
            for format in [BulkFormat::JsonLines, BulkFormat::Csv, BulkFormat::MispEvent, BulkFormat::StixBundle] {
                if let Ok(lines) = read_bulk(&text, format, NOW) {
                    for line in lines {
                        proptest::prop_assert!(line.source.chars().count() <= MAX_SOURCE_CHARS);
                    }
                }
            }
        }

        #[test]
        fn any_pattern_text_parses_or_is_refused_without_panicking(pattern in "[\\[\\]()' =!<>a-zA-Z:.0-9*_,-]{0,80}") {
            let _ = parse_pattern(&pattern);
        }

        #[test]
        fn durations_written_in_units_read_back_as_their_seconds(d in 0u64..1000, h in 0u64..24, m in 0u64..60, s in 0u64..60) {
            let seconds = d * 86_400 + h * 3_600 + m * 60 + s;
            proptest::prop_assert_eq!(parse_duration(&format!("{d}d {h}h {m}m {s}s")), Some(seconds));
            proptest::prop_assert_eq!(parse_duration(&format!("{d}d{h}h{m}m{s}s")), Some(seconds));
        }
    }
}
