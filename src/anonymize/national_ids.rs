//! National identity numbers, each confirmed by its own rules: a check
//! digit or letter where the number has one, the issuing rules otherwise.
//!
//! Formats with no distinctive shape (a Dutch BSN is any nine digits, an
//! Aadhaar any twelve, a US SSN without dashes any nine) are taken only
//! after a word that names them, so that order numbers and counts stay.

use super::detectors::{luhn_digits, regex, Candidate, Check, Detector, Pattern, Span};

/// Letters of the Spanish DNI and NIE, indexed by the number mod 23.
const DNI_LETTERS: &[u8; 23] = b"TRWAGMYFPDXBNJZSQVHLCKE";
/// Weights and check characters of the Chinese resident identity number (GB 11643).
const CHINA_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHINA_CHECKS: &[u8; 11] = b"10X98765432";
/// Weights of the Korean resident registration number's check digit.
const KOREA_WEIGHTS: [u32; 12] = [2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5];
/// Values of the characters in odd positions of an Italian codice fiscale, 0-9 then A-Z.
const ITALY_ODD: [u32; 36] = [
    1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10,
    22, 25, 24, 23,
];
/// UK NINO prefixes never issued.
const NINO_UNUSED_PREFIXES: [&str; 7] = ["BG", "GB", "KN", "NK", "NT", "TN", "ZZ"];

pub(super) fn patterns() -> Vec<Pattern> {
    vec![
        national(r"\b\d{3}-\d{2}-\d{4}\b", us_ssn),
        national(r"(?i)\b(?:ssn|social security(?: number| no\.?)?)\W{0,4}(\d{3} ?\d{2} ?\d{4})\b", us_ssn),
        national(r"\b[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b", uk_nino),
        national(r"\b[12] ?\d{2} ?\d{2} ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}\b", french_nir),
        national(r"\b(?:\d{8}|[XYZ]-?\d{7})-?[A-Z]\b", spanish_dni),
        national(r"\b(?:19|20)?\d{6}[-+]\d{4}\b", swedish_personnummer),
        national(r"(?i)\b(?:personnummer|personnr|pnr)\W{0,4}((?:19|20)?\d{10})\b", swedish_personnummer),
        national(r"(?i)\b(?:bsn|burgerservicenummer|sofinummer)\W{0,4}(\d{4}\.?\d{2}\.?\d{3})\b", dutch_bsn),
        national(r"\b[2-9]\d{3}[ -]\d{4}[ -]\d{4}\b", aadhaar),
        national(r"(?i)\b(?:aadhaar|aadhar|uidai|uid)\W{0,12}([2-9]\d{11})\b", aadhaar),
        national(r"\b\d{3}\.\d{3}\.\d{3}-\d{2}\b", brazil_cpf),
        national(r"(?i)\bcpf\W{0,4}(\d{11})\b", brazil_cpf),
        national(r"\b[1-9]\d{16}[\dXx]\b", china_resident_id),
        national(r"\b\d{6}-[1-8]\d{6}\b", korea_rrn),
        national(r"\b[A-Z]{6}\d{2}[A-EHLMPR-T]\d{2}[A-Z]\d{3}[A-Z]\b", italy_codice_fiscale),
        national(r"(?i)\b(?:sin|social insurance(?: number| no\.?)?)\W{0,4}(\d{3}[ -]?\d{3}[ -]?\d{3})\b", canada_sin),
    ]
}

fn national(pattern: &str, check: fn(&Candidate) -> Option<Span>) -> Pattern {
    (Detector::NationalId, regex(pattern), Check::Custom(check))
}

/// The item stands alone: it does not continue an id (`INC-850101-1234`),
/// a word, a version or a longer number.
fn standalone(candidate: &Candidate) -> bool {
    let before = candidate.text[..candidate.item.0].chars().last();
    let mut after = candidate.text[candidate.item.1..].chars();
    let (next, then) = (after.next(), after.next());
    let joined_before = before.is_some_and(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | '+'));
    let joined_after = next.is_some_and(|c| c.is_alphanumeric() || c == '_')
        || (matches!(next, Some('-' | '.' | '/')) && then.is_some_and(|c| c.is_ascii_digit()));
    !joined_before && !joined_after
}

/// The item's characters without separators, uppercased.
fn compact(candidate: &Candidate) -> String {
    candidate.item_str().chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_uppercase()).collect()
}

fn confirmed(candidate: &Candidate, valid: impl Fn(&str) -> bool) -> Option<Span> {
    (standalone(candidate) && valid(&compact(candidate))).then(|| candidate.span())
}

fn digits(s: &str) -> Vec<u32> {
    s.chars().filter_map(|c| c.to_digit(10)).collect()
}

fn number(s: &str) -> u64 {
    s.parse().unwrap_or(u64::MAX)
}

/// US SSN: never area 000, 666 or 900-999, group 00 or serial 0000.
fn us_ssn(candidate: &Candidate) -> Option<Span> {
    confirmed(candidate, |n| {
        let (area, group, serial) = (number(&n[..3]), number(&n[3..5]), number(&n[5..]));
        area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
    })
}

/// UK National Insurance number: letters the DWP never issues refused.
fn uk_nino(candidate: &Candidate) -> Option<Span> {
    confirmed(candidate, |n| {
        let (first, second) = (n.as_bytes()[0], n.as_bytes()[1]);
        !b"DFIQUV".contains(&first) && !b"DFIOQUV".contains(&second) && !NINO_UNUSED_PREFIXES.contains(&&n[..2])
    })
}

/// French NIR (sécurité sociale): the key is 97 minus the first 13 digits
/// mod 97, Corsica's 2A and 2B counting as 19 and 18.
fn french_nir(candidate: &Candidate) -> Option<Span> {
    confirmed(candidate, |n| {
        let month = number(&n[3..5]);
        let valid_month = (1..=12).contains(&month) || (20..=42).contains(&month) || month >= 50;
        let body = n[..13].replace("2A", "19").replace("2B", "18");
        valid_month && n.len() == 15 && 97 - number(&body) % 97 == number(&n[13..])
    })
}

/// Spanish DNI (8 digits) and NIE (X, Y or Z then 7): the letter is the number mod 23.
fn spanish_dni(candidate: &Candidate) -> Option<Span> {
    confirmed(candidate, |n| {
        let digits = n[..n.len() - 1].replacen('X', "0", 1).replacen('Y', "1", 1).replacen('Z', "2", 1);
        let letter = n.as_bytes()[n.len() - 1];
        digits.len() == 8 && DNI_LETTERS[(number(&digits) % 23) as usize] == letter
    })
}

/// Swedish personnummer: a real date (day + 60 for a coordination number)
/// and the Luhn digit over YYMMDDNNNC.
fn swedish_personnummer(candidate: &Candidate) -> Option<Span> {
    confirmed(candidate, |n| {
        let n = if n.len() == 12 { &n[2..] } else { n };
        let (month, day) = (number(&n[2..4]), number(&n[4..6]));
        let valid_day = (1..=31).contains(&day) || (61..=91).contains(&day);
        n.len() == 10 && (1..=12).contains(&month) && valid_day && luhn_digits(&digits(n))
    })
}

/// Dutch BSN: the eleven-test, 9a + 8b + ... + 2h - i divisible by 11.
fn dutch_bsn(candidate: &Candidate) -> Option<Span> {
    confirmed(candidate, |n| {
        let d = digits(n);
        let sum: i64 =
            d.iter().enumerate().map(|(i, d)| if i == 8 { -(*d as i64) } else { (9 - i as i64) * *d as i64 }).sum();
        d.len() == 9 && d.iter().any(|d| *d != 0) && sum % 11 == 0
    })
}

/// Indian Aadhaar: the Verhoeff check digit. A spaced number that starts
/// like a year (`2024 0314 1022`) needs the word "Aadhaar" before it.
fn aadhaar(candidate: &Candidate) -> Option<Span> {
    let named = candidate.whole.0 < candidate.item.0 || {
        let from = candidate.item.0.saturating_sub(40);
        let before = candidate.text.get(from..candidate.item.0).unwrap_or("").to_ascii_lowercase();
        before.contains("aadhaar") || before.contains("aadhar") || before.contains("uid")
    };
    confirmed(candidate, |n| {
        let year_like = n.starts_with("19") || n.starts_with("20");
        n.len() == 12 && (named || !year_like) && verhoeff(&digits(n))
    })
}

/// The Verhoeff check over `digits` (check digit last): dihedral group D5.
pub fn verhoeff(digits: &[u32]) -> bool {
    const D: [[u8; 10]; 10] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
        [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
        [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
        [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
        [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
        [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
        [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
        [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
        [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    ];
    const P: [[u8; 10]; 8] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
        [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
        [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
        [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
        [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
        [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
        [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
    ];
    let check = digits.iter().rev().enumerate().fold(0u8, |c, (i, d)| D[c as usize][P[i % 8][*d as usize] as usize]);
    !digits.is_empty() && check == 0
}

/// Brazilian CPF: two mod-11 check digits; one digit repeated is no CPF.
fn brazil_cpf(candidate: &Candidate) -> Option<Span> {
    confirmed(candidate, |n| {
        let d = digits(n);
        let check = |len: usize| {
            let sum: u32 = d[..len].iter().enumerate().map(|(i, d)| d * (len as u32 + 1 - i as u32)).sum();
            (sum * 10 % 11) % 10
        };
        d.len() == 11 && d.iter().any(|x| *x != d[0]) && check(9) == d[9] && check(10) == d[10]
    })
}

/// Chinese resident identity number: a birth date and the ISO 7064 MOD 11-2 check.
fn china_resident_id(candidate: &Candidate) -> Option<Span> {
    confirmed(candidate, |n| {
        let (year, month, day) = (number(&n[6..10]), number(&n[10..12]), number(&n[12..14]));
        let sum: u32 = digits(&n[..17]).iter().zip(CHINA_WEIGHTS).map(|(d, w)| d * w).sum();
        (1900..=2099).contains(&year)
            && (1..=12).contains(&month)
            && (1..=31).contains(&day)
            && CHINA_CHECKS[(sum % 11) as usize] == n.as_bytes()[17]
    })
}

/// Korean resident registration number: a birth date and the weighted
/// mod-11 digit (numbers issued since October 2020 carry none and are missed).
fn korea_rrn(candidate: &Candidate) -> Option<Span> {
    confirmed(candidate, |n| {
        let d = digits(n);
        let (month, day) = (number(&n[2..4]), number(&n[4..6]));
        let sum: u32 = d[..12].iter().zip(KOREA_WEIGHTS).map(|(d, w)| d * w).sum();
        (1..=12).contains(&month) && (1..=31).contains(&day) && (11 - sum % 11) % 10 == d[12]
    })
}

/// Italian codice fiscale: the check letter over odd and even positions.
fn italy_codice_fiscale(candidate: &Candidate) -> Option<Span> {
    confirmed(candidate, |n| {
        let value = |c: u8| (c as char).to_digit(36).expect("alphanumeric") as usize;
        // Even positions count digits as themselves and letters from A = 0.
        let even = |c: u8| if c.is_ascii_digit() { value(c) } else { value(c) - 10 };
        let sum: usize = n
            .bytes()
            .take(15)
            .enumerate()
            .map(|(i, c)| if i % 2 == 0 { ITALY_ODD[value(c)] as usize } else { even(c) })
            .sum();
        n.len() == 16 && (b'A' + (sum % 26) as u8) == n.as_bytes()[15]
    })
}

/// Canadian social insurance number: the Luhn digit; none start with 0 or 8.
fn canada_sin(candidate: &Candidate) -> Option<Span> {
    confirmed(candidate, |n| n.len() == 9 && !n.starts_with(['0', '8']) && luhn_digits(&digits(n)))
}
