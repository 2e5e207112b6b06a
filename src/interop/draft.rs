//! What every import shares: the checks that turn an indicator's fields as a
//! file or a flag gives them into a `Draft`, and the error that names the bad
//! field.
//!
//! Drafts are checked here as far as a client can (vocabulary, ranges,
//! observable syntax) so that a bulk import names the bad line or object; the
//! node still normalises and validates everything it signs, so observable
//! values are sent as given.

use super::InteropError;
use crate::normalize::{self, ObservableType};
use crate::proto::draft::Body;
use crate::proto::{Draft, Indicator};
use crate::cir;
use std::str::FromStr;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// CIR level of an indicator when the input gives none: "impact on assets, minor impact on customers".
pub const DEFAULT_LEVEL: u8 = 3;
/// Confidence of an indicator when the input gives none: the middle of the STIX 0-100 scale.
pub const DEFAULT_CONFIDENCE: u8 = 50;
/// Longest `BulkLine::source` excerpt, in characters, so a refusal report stays one line.
pub const MAX_SOURCE_CHARS: usize = 80;
/// Highest confidence (STIX 2.1 convention).
pub const MAX_CONFIDENCE: i64 = 100;
/// A record id is SHA-256 of the record bytes.
pub const RECORD_ID_LEN: usize = 32;

const SECONDS_PER_DAY: i64 = 86_400;

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
    /// An item that only gives context to others (a TLP marking definition, an identity): read, not published.
    #[error("context: {0}")]
    Context(&'static str),
    /// An item cirfed has no record for (an object type, an attribute type).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A STIX pattern that says more than cirfed can match (an operator, a
    /// path, AND between observations, a qualifier): the object is skipped whole.
    #[error("unsupported STIX pattern: {0}")]
    UnsupportedPattern(String),
}

impl DraftError {
    /// Content cirfed does not carry (a STIX identity, a MISP comment, an
    /// attribute marked not for detection, a deleted one): skipped with a
    /// reason, not a mistake in the file.
    pub fn is_skip(&self) -> bool {
        matches!(
            self,
            DraftError::Unsupported(_)
                | DraftError::UnsupportedPattern(_)
                | DraftError::NotForDetection
                | DraftError::Withdrawn(_)
                | DraftError::Context(_)
        )
    }

    /// A short machine-readable code for counting skips and refusals by kind.
    pub fn code(&self) -> &'static str {
        match self {
            DraftError::Unsupported(_) => "unsupported",
            DraftError::UnsupportedPattern(_) => "unsupported_pattern",
            DraftError::NotForDetection => "not_for_detection",
            DraftError::Withdrawn(_) => "withdrawn",
            DraftError::Context(_) => "context",
            DraftError::Syntax { .. } => "syntax",
            DraftError::Observable { .. } => "invalid_value",
            DraftError::Expired(_) => "expired",
            _ => "invalid_field",
        }
    }
}

impl From<DraftError> for InteropError {
    fn from(e: DraftError) -> Self {
        match e.is_skip() {
            true => InteropError::Unsupported(e.to_string()),
            false => InteropError::invalid("input", e.to_string()),
        }
    }
}

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
pub fn build_indicator(fields: &IndicatorFields, kind: Option<ObservableType>, now: i64) -> Result<Draft, DraftError> {
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
pub fn tlp_code(name: Option<&str>) -> Result<i32, DraftError> {
    match name.map(str::trim).filter(|n| !n.is_empty()) {
        None => Ok(0),
        Some(name) => cir::Tlp::from_str(name)
            .map(cir::Tlp::code)
            .map_err(|e| DraftError::Vocabulary { field: "tlp", reason: e.to_string() }),
    }
}

/// Category names to proto numbers, in the order given, without repeats.
pub fn categories(names: &[String], field: &'static str) -> Result<Vec<i32>, DraftError> {
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
pub fn clean_list(items: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in items.iter().map(|i| i.trim()).filter(|i| !i.is_empty()) {
        if !out.iter().any(|o| o == item) {
            out.push(item.to_owned());
        }
    }
    out
}

/// The trimmed text, empty when absent.
pub fn trimmed(text: Option<&str>) -> String {
    text.map(str::trim).unwrap_or_default().to_owned()
}

/// Unix seconds from RFC 3339 or a plain number of seconds; 0 (unset) when absent.
pub fn optional_time(text: Option<&str>, field: &'static str) -> Result<i64, DraftError> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(0),
        Some(text) => parse_time(text, field),
    }
}

/// Unix seconds from RFC 3339 (`2024-05-01T12:00:00Z`) or a plain number of seconds.
pub fn parse_time(text: &str, field: &'static str) -> Result<i64, DraftError> {
    let text = text.trim();
    let parsed = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse::<i64>().ok()
    } else {
        OffsetDateTime::parse(text, &Rfc3339).ok().map(OffsetDateTime::unix_timestamp)
    };
    parsed.ok_or_else(|| DraftError::Time { field, input: excerpt(text) })
}

/// At most `MAX_SOURCE_CHARS` characters of `text`, whitespace runs shown as one space.
pub fn excerpt(text: &str) -> String {
    let flat: Vec<&str> = text.split_whitespace().collect();
    let flat = flat.join(" ");
    if flat.chars().count() <= MAX_SOURCE_CHARS {
        return flat;
    }
    let mut cut: String = flat.chars().take(MAX_SOURCE_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// How an imported type name (MISP attribute type, STIX object path) becomes a cirfed observable type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mapped {
    /// Always this type.
    Fixed(ObservableType),
    /// An address or network: the value decides between ipv4, ipv6 and cidr.
    Ip,
}

/// The type for `value` under `mapped`, checking that an address really is one.
pub fn resolve_kind(mapped: Mapped, value: &str) -> Result<ObservableType, DraftError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-05-01T00:00:00Z.
    const NOW: i64 = 1_714_521_600;

    fn indicator(draft: &Draft) -> &Indicator {
        match &draft.body {
            Some(Body::Indicator(indicator)) => indicator,
            other => panic!("not an indicator: {other:?}"),
        }
    }

    fn fields(value: &str) -> IndicatorFields {
        IndicatorFields { value: value.to_owned(), ..IndicatorFields::default() }
    }

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

    #[test]
    fn long_excerpts_are_cut_to_the_limit_with_an_ellipsis() {
        let long = "a".repeat(200);
        let cut = excerpt(&long);
        assert_eq!(cut.chars().count(), MAX_SOURCE_CHARS);
        assert!(cut.ends_with('…'));
        assert_eq!(excerpt("  a \n b  "), "a b");
    }

    #[test]
    fn skips_convert_to_unsupported_and_mistakes_to_invalid_input() {
        let skip: InteropError = DraftError::Context("a marking definition").into();
        assert_eq!(skip.code(), "unsupported");
        let bad: InteropError = DraftError::Missing { field: "value" }.into();
        assert_eq!(bad.code(), "invalid_input");
        assert!(bad.to_string().contains("missing `value`"), "{bad}");
    }
}

/// Helpers for the import tests of every format.
#[cfg(test)]
pub(crate) mod testing {
    use super::DraftError;
    use crate::interop::bulk::BulkLine;
    use crate::proto::draft::Body;
    use crate::proto::{Draft, Indicator};
    use std::path::{Path, PathBuf};

    /// 2024-05-01T00:00:00Z, before every expiry in the sample files.
    pub const NOW: i64 = 1_714_521_600;

    /// A sample file of `../shared/data` (beside the project, or at /work/shared).
    pub fn shared_data(rel: &str) -> PathBuf {
        let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data").join(rel);
        if beside.exists() {
            return beside;
        }
        Path::new("/work/shared/data").join(rel)
    }

    pub fn read_shared(rel: &str) -> String {
        let path = shared_data(rel);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
    }

    pub fn indicator(draft: &Draft) -> &Indicator {
        match &draft.body {
            Some(Body::Indicator(indicator)) => indicator,
            other => panic!("not an indicator: {other:?}"),
        }
    }

    /// (drafts, errors) counts of a bulk read.
    pub fn counts(lines: &[BulkLine]) -> (usize, usize) {
        let ok = lines.iter().filter(|l| l.draft.is_ok()).count();
        (ok, lines.len() - ok)
    }

    pub fn errors(lines: &[BulkLine]) -> Vec<(usize, DraftError)> {
        lines.iter().filter_map(|l| l.draft.clone().err().map(|e| (l.line, e))).collect()
    }
}
