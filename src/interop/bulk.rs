//! The bulk files `cirfed publish --file` reads: JSON lines and CSV here, MISP
//! events and STIX bundles through their own modules. Every item becomes a
//! draft or the reason it cannot be one, numbered so a report names the line.

use super::draft::{excerpt, indicator_draft, DraftError, IndicatorFields};
use super::{misp, stix, InteropError};
use crate::proto::Draft;
use serde_json::Value;
use std::path::Path;

/// Formats `cirfed publish --file` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkFormat {
    /// One JSON object per line.
    JsonLines,
    /// CSV with a header row.
    Csv,
    /// A MISP event (`{"Event": {...}}` or the bare event).
    MispEvent,
    /// A STIX 2.1 (or 2.0) bundle.
    StixBundle,
}

impl BulkFormat {
    /// The format for a `--format` name.
    pub fn from_name(name: &str) -> Option<BulkFormat> {
        match name.trim().to_ascii_lowercase().as_str() {
            "jsonl" | "ndjson" | "json-lines" => Some(BulkFormat::JsonLines),
            "csv" => Some(BulkFormat::Csv),
            "misp" => Some(BulkFormat::MispEvent),
            "stix" => Some(BulkFormat::StixBundle),
            _ => None,
        }
    }
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

/// Reads every item of a bulk file; `Err` only when the file as a whole
/// cannot be read (then nothing of it is published).
pub fn read_bulk(text: &str, format: BulkFormat, now: i64) -> Result<Vec<BulkLine>, InteropError> {
    let text = text.trim_start_matches('\u{feff}');
    match format {
        BulkFormat::JsonLines => read_json_lines(text, now),
        BulkFormat::Csv => read_csv(text, now),
        BulkFormat::MispEvent => misp::event::read_event(text, now),
        BulkFormat::StixBundle => stix::import::read_bundle(text, now),
    }
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

fn read_json_lines(text: &str, now: i64) -> Result<Vec<BulkLine>, InteropError> {
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
        return Err(InteropError::invalid(
            "json lines file",
            "the file is one JSON document, not one object per line: give --format misp or stix for MISP events \
             and STIX bundles",
        ));
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

fn read_csv(text: &str, now: i64) -> Result<Vec<BulkLine>, InteropError> {
    let unreadable = |reason: String| InteropError::invalid("csv file", reason);
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


#[cfg(test)]
mod tests {
    use super::*;
    use crate::cir;
    use crate::interop::draft::testing::{counts, errors, indicator, read_shared, shared_data, NOW};
    use crate::interop::draft::MAX_SOURCE_CHARS;
    use crate::normalize::ObservableType;

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
        assert!(err.to_string().starts_with("json lines file: the file is one JSON document"), "{err}");
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
                Err(InteropError::Invalid { what, reason: got }) => {
                    assert_eq!(what, "csv file");
                    assert!(got.starts_with(reason), "{text:?}: {got:?}")
                }
                other => panic!("{text:?}: {other:?}"),
            }
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

    }
}
