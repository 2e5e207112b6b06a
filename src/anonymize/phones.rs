//! Phone numbers: E.164 (`+44 20 7946 0958`, `0044 ...`) and the national
//! formats of the largest cloud markets.
//!
//! Incident notes are full of digit runs that are not phone numbers:
//! timestamps, versions, addresses, ports, counts, ticket ids. A pattern finds
//! every run of digits and phone separators; code then accepts only runs
//! shaped like a number somewhere:
//! - international: `+` or `00`, a country code in use, and as many digits
//!   as that country's numbers have;
//! - North American: `(415) 555-0132`, `415-555-0132`, `415.555.0132`;
//! - a trunk zero (DE, GB, FR, JP, KR, AU, NL, IT, SE, CH, IE, IL, IN, CN,
//!   BR...) with separators: `030 901820`, `03-1234-5678`, `(02) 9876 5432`;
//! - a bracketed area code without one (BR, MX): `(11) 91234-5678`;
//! - anything else number-shaped (`612 34 56 78`, `6123 4567`) only after a
//!   word that says a phone number follows (`call`, `tel`, `mobile`, ...).
//!
//! Dates and IPv4 addresses are refused whatever their context.

use super::detectors::{regex, Candidate, Check, Detector, Pattern, Span};

/// The fewest and most digits of a number in any format (E.164 allows 15).
const MIN_DIGITS: usize = 8;
const MAX_DIGITS: usize = 15;
/// National numbers with a trunk zero: 9 (IE, IL, KR) to 12 digits (CN, DE).
const TRUNK_DIGITS: std::ops::RangeInclusive<usize> = 9..=12;
/// How far before a number a word saying "phone" counts, in bytes.
const CONTEXT_BYTES: usize = 40;

/// Words that announce a phone number, lowercased.
const PHONE_WORDS: &[&str] = &[
    "tel",
    "tél",
    "phone",
    "ph",
    "call",
    "called",
    "calling",
    "caller",
    "dial",
    "dialled",
    "dialed",
    "mobile",
    "mob",
    "cell",
    "fax",
    "hotline",
    "helpline",
    "whatsapp",
    "signal",
    "sms",
    "text",
    "ring",
    "bridge",
    "contact",
    "telefon",
    "telefono",
    "teléfono",
    "téléphone",
    "handy",
    "portable",
    "móvil",
    "movil",
    "celular",
    "número",
    "电话",
    "手机",
    "電話",
    "携帯",
    "전화",
    "휴대폰",
    "vishing",
    "voicemail",
    "phoned",
];

/// Words after "call" that make it no phone call (`call stack 1024 2048`).
const NOT_A_PHONE_CALL: &[&str] =
    &["stack", "graph", "chain", "tree", "site", "sites", "count", "rate", "volume", "depth", "id"];

/// National number lengths (after the country code) of the markets notes
/// name most; others get E.164's general bounds.
const NATIONAL_LENGTHS: &[(&str, usize, usize)] = &[
    ("1", 10, 10),  // US, CA
    ("7", 10, 10),  // RU, KZ
    ("86", 10, 11), // CN
    ("81", 9, 10),  // JP
    ("49", 6, 13),  // DE
    ("44", 9, 10),  // GB
    ("33", 9, 9),   // FR
    ("91", 10, 10), // IN
    ("82", 8, 10),  // KR
    ("61", 9, 9),   // AU
    ("55", 10, 11), // BR
    ("31", 9, 9),   // NL
    ("39", 6, 11),  // IT
    ("34", 9, 9),   // ES
    ("46", 7, 10),  // SE
    ("41", 9, 9),   // CH
    ("65", 8, 8),   // SG
    ("353", 7, 9),  // IE
    ("972", 8, 9),  // IL
    ("52", 10, 10), // MX
    ("48", 9, 9),   // PL
    ("43", 4, 13),  // AT
    ("32", 8, 9),   // BE
    ("45", 8, 8),   // DK
    ("47", 8, 8),   // NO
    ("358", 5, 12), // FI
    ("351", 9, 9),  // PT
    ("971", 8, 9),  // AE
    ("966", 8, 9),  // SA
    ("27", 9, 9),   // ZA
    ("62", 8, 12),  // ID
    ("60", 8, 10),  // MY
    ("64", 8, 10),  // NZ
    ("852", 8, 8),  // HK
    ("886", 8, 9),  // TW
];

pub(super) fn patterns() -> Vec<Pattern> {
    vec![(Detector::Phone, regex(r"(?:\+|\(\+?)?\d[\d ().\-\u{a0}]{4,24}\d"), Check::Custom(phone))]
}

/// A candidate run, as digit groups and what separates them.
struct Shape {
    /// The digit groups, in order, and whether each was in brackets.
    groups: Vec<(String, bool)>,
    /// The separators between groups (`" "`, `"-"`, `") "`, ...).
    separators: Vec<String>,
    international: bool,
}

impl Shape {
    fn parse(run: &str) -> Option<Shape> {
        let international = run.starts_with('+') || run.starts_with("(+");
        // `(415) ...` opens a bracket before the first digit.
        let opened = run.trim_start_matches('+').starts_with('(');
        let (mut groups, mut separators) = (Vec::new(), Vec::new());
        let (mut digits, mut between) = (String::new(), String::new());
        let (mut in_brackets, mut depth) = (opened, i32::from(opened));
        for c in run.trim_start_matches(['+', '(']).chars() {
            if c.is_ascii_digit() {
                if digits.is_empty() && !groups.is_empty() {
                    separators.push(std::mem::take(&mut between));
                }
                digits.push(c);
                continue;
            }
            if !digits.is_empty() {
                groups.push((std::mem::take(&mut digits), in_brackets));
            }
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            if !(0..=1).contains(&depth) {
                return None;
            }
            in_brackets = depth == 1;
            between.push(c);
        }
        if !digits.is_empty() {
            groups.push((digits, in_brackets));
        }
        Some(Shape { groups, separators, international })
    }

    fn digits(&self) -> String {
        self.groups.iter().map(|(g, _)| g.as_str()).collect()
    }

    fn lengths(&self) -> Vec<usize> {
        self.groups.iter().map(|(g, _)| g.len()).collect()
    }

    /// The one plain separator used throughout, if there is one.
    fn uniform_separator(&self) -> Option<&str> {
        let first = self.separators.first()?;
        self.separators.iter().all(|s| s == first).then_some(first.as_str())
    }
}

fn phone(candidate: &Candidate) -> Option<Span> {
    let (mut start, mut run) = (candidate.item.0, candidate.item_str());
    // A bracket that never closes is prose around the number: "(call 030 901820".
    if run.starts_with('(') && !run.contains(')') {
        (start, run) = (start + 1, &run[1..]);
    }
    if !starts_cleanly(&candidate.text[..start]) {
        return None;
    }
    let context = announced(&candidate.text[..start]);
    // A run may carry on past the number ("+1 415 555 0132 2 times"): try
    // shorter runs, cut at a space, longest first.
    let mut end = run.len();
    loop {
        let piece = run[..end].trim_end_matches([' ', '\u{a0}', '(']);
        if ends_cleanly(&candidate.text[start + piece.len()..]) && is_phone(piece, context) {
            return Some(Span { detector: candidate.detector, start, end: start + piece.len() });
        }
        end = piece.rfind([' ', '\u{a0}'])?;
    }
}

/// The run does not continue a word, a number, a version or an address.
fn starts_cleanly(before: &str) -> bool {
    match before.chars().last() {
        None => true,
        Some(c) if c.is_alphanumeric() => false,
        Some('_' | '.' | '-' | '/' | '\\' | '@' | '#' | '$' | '%' | '&' | '+' | '*' | '^') => false,
        Some(_) => true,
    }
}

fn ends_cleanly(after: &str) -> bool {
    let mut chars = after.chars();
    match (chars.next(), chars.next()) {
        (None, _) => true,
        (Some(c), _) if c.is_alphanumeric() || matches!(c, '_' | '%' | '@') => false,
        (Some('.' | '-' | '/' | ':' | ',' | '^'), Some(next)) => !next.is_ascii_digit(),
        _ => true,
    }
}

/// A word just before the number says it is one.
fn announced(before: &str) -> bool {
    let mut from = before.len().saturating_sub(CONTEXT_BYTES);
    while !before.is_char_boundary(from) {
        from += 1;
    }
    let window = before[from..].to_lowercase();
    let words: Vec<&str> = window.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
    let announces = |(n, word): (usize, &&str)| {
        let not_a_call =
            word.starts_with("call") && words.get(n + 1).is_some_and(|next| NOT_A_PHONE_CALL.contains(next));
        PHONE_WORDS.contains(word) && !not_a_call
    };
    words.iter().enumerate().any(announces) || window.contains('☎') || window.contains('📞')
}

fn is_phone(run: &str, context: bool) -> bool {
    let Some(shape) = Shape::parse(run) else { return false };
    let digits = shape.digits();
    if !(MIN_DIGITS..=MAX_DIGITS).contains(&digits.len()) || is_date(&shape) || is_dotted_address(&shape, run) {
        return false;
    }
    if shape.international || run.starts_with("00") {
        return international(&shape);
    }
    north_american(&shape)
        || trunk_zero(&shape, &digits, context)
        || bracketed_area(&shape, &digits)
        || (context && announced_number(&shape, &digits))
}

/// `+CC ...` or `00CC ...`: a country code in use and its number lengths.
/// A trunk zero (`+44 (0)20 ...`, or the common slip `+44 020 ...`) is not
/// dialled and not counted; Italy keeps its leading zero and dials it.
fn international(shape: &Shape) -> bool {
    let dialled: String = shape
        .groups
        .iter()
        .enumerate()
        .filter(|(n, (g, bracketed))| !(*n > 0 && *bracketed && g == "0"))
        .map(|(_, (g, _))| g.as_str())
        .collect();
    let dialled = match dialled.strip_prefix("00") {
        _ if shape.international => dialled.as_str(),
        Some(dialled) => dialled,
        None => return false,
    };
    let Some(code) = country_code(dialled) else { return false };
    let mut national = &dialled[code.len()..];
    if code != "39" {
        national = national.strip_prefix('0').unwrap_or(national);
    }
    let (min, max) = NATIONAL_LENGTHS.iter().find(|(c, ..)| *c == code).map_or((6, 12), |(_, min, max)| (*min, *max));
    (min..=max).contains(&national.len()) && code.len() + national.len() <= MAX_DIGITS
}

/// NANP: `(NXX) NXX-XXXX` and the dashed, dotted and spaced forms, an
/// optional leading 1.
fn north_american(shape: &Shape) -> bool {
    let mut lengths = shape.lengths();
    let mut groups: Vec<&str> = shape.groups.iter().map(|(g, _)| g.as_str()).collect();
    if groups.first() == Some(&"1") && groups.len() == 4 {
        groups.remove(0);
        lengths.remove(0);
    }
    if lengths != [3, 3, 4] {
        return false;
    }
    let n_xx = |g: &str| g.as_bytes()[0] >= b'2';
    let separators = &shape.separators[shape.separators.len() - 2..];
    let bracketed = shape.groups[shape.groups.len() - 3].1;
    let plain = separators[0] == separators[1] && matches!(separators[0].as_str(), "-" | "." | " ");
    let bracket_form =
        bracketed && matches!(separators[0].as_str(), ")" | ") ") && matches!(separators[1].as_str(), "-" | " ");
    n_xx(groups[0]) && n_xx(groups[1]) && (plain || bracket_form)
}

/// `030 901820`, `0151 23456789`, `01 70 36 42 11`, `(02) 9876 5432`,
/// `03-1234-5678`, `020-123 4567`: a trunk zero and an area code of 2-6
/// digits, then groups; unseparated only when announced.
fn trunk_zero(shape: &Shape, digits: &str, context: bool) -> bool {
    let area = shape.groups[0].0.len();
    digits.starts_with('0')
        && !digits.starts_with("00")
        && TRUNK_DIGITS.contains(&digits.len())
        && (shape.groups.len() >= 2 && (2..=6).contains(&area) || context)
        && shape.groups.len() <= 6
}

/// Brazil and Mexico: `(11) 91234-5678`, `(55) 1234 5678`.
fn bracketed_area(shape: &Shape, digits: &str) -> bool {
    let lengths = shape.lengths();
    shape.groups[0].1
        && (2..=3).contains(&lengths[0])
        && !digits.starts_with('0')
        && (10..=11).contains(&digits.len())
        && lengths.len() == 3
        && lengths[1..].iter().all(|l| (3..=5).contains(l))
}

/// An announced number in any grouping a person would write: groups of 2-5
/// digits, or one unbroken run.
fn announced_number(shape: &Shape, digits: &str) -> bool {
    let lengths = shape.lengths();
    let grouped = lengths.iter().all(|l| (1..=5).contains(l)) && shape.uniform_separator().is_some_and(|s| s != ".");
    (MIN_DIGITS..=12).contains(&digits.len()) && (grouped || lengths.len() == 1)
}

/// `2024-03-14`, `14.03.2024`, `03/14/2024 10`: a date is no number.
fn is_date(shape: &Shape) -> bool {
    let lengths = shape.lengths();
    let g = |n: usize| shape.groups.get(n).and_then(|(g, _)| g.parse::<u32>().ok()).unwrap_or(0);
    let year = |n: usize| (1900..=2199).contains(&g(n));
    let dated = shape.separators.first().is_some_and(|s| matches!(s.as_str(), "-" | "." | "/"));
    let ymd = lengths.len() >= 3 && lengths[..3] == [4, 2, 2] && year(0) && (1..=12).contains(&g(1));
    let dmy = lengths.len() >= 3 && lengths[0] <= 2 && lengths[1] <= 2 && lengths[2] == 4 && year(2);
    dated && (ymd || dmy)
}

/// `45.33.32.156` and `1.24.0.1`: dotted groups of at most three digits
/// (French numbers are dotted too, but start with their trunk zero).
fn is_dotted_address(shape: &Shape, run: &str) -> bool {
    let lengths = shape.lengths();
    let short = lengths.iter().all(|l| *l <= 3);
    let dotted = run.contains('.') && shape.separators.iter().any(|s| s == ".");
    dotted && short && (lengths.len() == 4 || !run.starts_with('0'))
}

/// The country code `digits` start with, if one is in use (ITU-T E.164
/// assignments: 1 and 7 alone, then two- or three-digit codes).
fn country_code(digits: &str) -> Option<&str> {
    const TWO_DIGIT: &[u8] = &[
        20, 27, 30, 31, 32, 33, 34, 36, 39, 40, 41, 43, 44, 45, 46, 47, 48, 49, 51, 52, 53, 54, 55, 56, 57, 58, 60, 61,
        62, 63, 64, 65, 66, 81, 82, 84, 86, 90, 91, 92, 93, 94, 95, 98,
    ];
    const THREE_DIGIT_PREFIXES: &[u8] =
        &[21, 22, 23, 24, 25, 26, 29, 35, 37, 38, 42, 50, 59, 67, 68, 69, 85, 87, 88, 96, 97, 99];
    match digits.as_bytes().first()? {
        b'1' | b'7' => return Some(&digits[..1]),
        b'0' => return None,
        _ => {}
    }
    let two: u8 = digits.get(..2)?.parse().ok()?;
    if TWO_DIGIT.contains(&two) {
        return Some(&digits[..2]);
    }
    THREE_DIGIT_PREFIXES.contains(&two).then(|| digits.get(..3)).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anonymize::detectors::Detectors;

    fn phones(text: &str) -> Vec<&str> {
        let found = Detectors::new(&[], &[]).find(text);
        found.into_iter().filter(|f| f.detector == Detector::Phone).map(|f| &text[f.start..f.end]).collect()
    }

    #[test]
    fn international_and_national_formats_are_found() {
        for number in [
            "+44 20 7946 0958",
            "+44 (0)20 7946 0958",
            "+1 (415) 555-0132",
            "+81 3-1234-5678",
            "+86 138 0013 8000",
            "+49 30 901820",
            "0049 30 901820",
            "(415) 555-0132",
            "415.555.0132",
            "030 901820",
            "020 7946 0958",
            "01 70 36 42 11",
            "03-1234-5678",
            "010-1234-5678",
            "(02) 9876 5432",
            "(11) 91234-5678",
            "044 668 18 00",
        ] {
            assert_eq!(phones(&format!("reach them at {number}, today")), [number], "{number}");
        }
    }

    #[test]
    fn bare_groupings_need_a_word_that_announces_a_phone() {
        assert_eq!(phones("call 612 34 56 78 now"), ["612 34 56 78"]);
        assert_eq!(phones("mobile: 9123 4567"), ["9123 4567"]);
        assert!(phones("moved 612 34 56 78 rows").is_empty());
    }

    #[test]
    fn a_number_running_into_a_count_is_cut_at_the_space() {
        assert_eq!(phones("rang +1 415 555 0132 3 times"), ["+1 415 555 0132"]);
    }

    #[test]
    fn timestamps_versions_addresses_and_counts_are_no_phone() {
        for text in [
            "at 2024-03-14 10:22:33 UTC",
            "on 14.03.2024 11:04",
            "nginx 1.24.0 and envoy 1.29.1",
            "from 45.33.32.156 and 192.168.100.200",
            "ports 22, 80, 443 and 6443",
            "14,200 attempts, 2147483647 streams",
            "INC-20240314-0042 and AS64511",
            "call graph 10.0.4.18:51234",
            "UTC+0100 and +30%",
            "ticket 0042 1337",
        ] {
            assert!(phones(text).is_empty(), "{text}: {:?}", phones(text));
        }
    }

    #[test]
    fn country_codes_are_the_ones_in_use() {
        assert_eq!(country_code("4930901820"), Some("49"));
        assert_eq!(country_code("35312345678"), Some("353"));
        assert_eq!(country_code("2812345678"), None);
        assert_eq!(country_code("0123"), None);
    }
}
