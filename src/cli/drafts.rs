//! What a user types becomes a `Draft` for the local Publish API: one
//! indicator from flags (checked by the library's shared draft rules) and a
//! post-mortem lesson from TOML. Bulk files (JSON lines, CSV, MISP events,
//! STIX bundles) are read by `cirfed::interop::bulk`.

use std::str::FromStr;

use cirfed::interop::draft::{categories, clean_list, excerpt, tlp_code, trimmed, DEFAULT_LEVEL, RECORD_ID_LEN};
pub use cirfed::interop::draft::{indicator_draft, parse_time, DraftError, IndicatorFields};
use cirfed::{cir, proto};
use proto::draft::Body;
use proto::{Draft, Lesson, PhaseAction};
use serde::Deserialize;

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

#[cfg(test)]
mod tests {
    use super::*;

    fn lesson(draft: &Draft) -> &Lesson {
        match &draft.body {
            Some(Body::Lesson(lesson)) => lesson,
            other => panic!("not a lesson: {other:?}"),
        }
    }


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

    proptest::proptest! {
        #[test]
        fn durations_written_in_units_read_back_as_their_seconds(d in 0u64..1000, h in 0u64..24, m in 0u64..60, s in 0u64..60) {
            let seconds = d * 86_400 + h * 3_600 + m * 60 + s;
            proptest::prop_assert_eq!(parse_duration(&format!("{d}d {h}h {m}m {s}s")), Some(seconds));
            proptest::prop_assert_eq!(parse_duration(&format!("{d}d{h}h{m}m{s}s")), Some(seconds));
        }
    }
}
