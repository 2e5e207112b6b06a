//! IBANs (ISO 13616: country length and the mod-97 check) and MAC
//! addresses (colon, dash and Cisco dotted forms).

use super::detectors::{regex, Candidate, Check, Detector, Pattern, Span};

/// IBAN lengths by country (the SWIFT IBAN registry).
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BI", 27),
    ("BR", 29),
    ("BY", 28),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DJ", 27),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FK", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LC", 32),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("LY", 25),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MN", 20),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NI", 28),
    ("NL", 18),
    ("NO", 15),
    ("OM", 23),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("RU", 33),
    ("SA", 24),
    ("SC", 31),
    ("SD", 18),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("SO", 23),
    ("ST", 25),
    ("SV", 28),
    ("TL", 23),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
    ("YE", 30),
];

pub(super) fn patterns() -> Vec<Pattern> {
    vec![
        // Printed in groups of four or unbroken; the country's length decides where it ends.
        (Detector::Iban, regex(r"(?i)\b[a-z]{2}\d{2}(?:[ \u{a0}-]?[a-z0-9]){11,30}"), Check::Custom(iban)),
        (
            Detector::MacAddress,
            regex(
                r"(?i)\b(?:[0-9a-f]{2}:){5}[0-9a-f]{2}\b|\b(?:[0-9a-f]{2}-){5}[0-9a-f]{2}\b|\b(?:[0-9a-f]{4}\.){2}[0-9a-f]{4}\b",
            ),
            Check::Custom(mac_address),
        ),
    ]
}

fn iban(candidate: &Candidate) -> Option<Span> {
    let text = candidate.item_str();
    let country = text[..2].to_ascii_uppercase();
    let (_, length) = IBAN_LENGTHS.iter().find(|(c, _)| *c == country)?;
    // Walk to the country's length, separators aside.
    let (mut taken, mut end) = (0, 0);
    for (at, c) in text.char_indices() {
        if c.is_ascii_alphanumeric() {
            taken += 1;
            end = at + 1;
            if taken == *length {
                break;
            }
        }
    }
    let rest = &candidate.text[candidate.item.0 + end..];
    let ends_here = !rest.starts_with(|c: char| c.is_ascii_alphanumeric());
    let compact: String = text[..end].chars().filter(char::is_ascii_alphanumeric).collect();
    (taken == *length && ends_here && iban_checksum_valid(&compact))
        .then(|| Span { end: candidate.item.0 + end, ..candidate.span() })
}

/// ISO 7064 mod 97-10 over the IBAN with its first four characters moved
/// to the end and letters as 10..35: a valid IBAN leaves 1.
pub fn iban_checksum_valid(iban: &str) -> bool {
    let rearranged = iban[4..].chars().chain(iban[..4].chars());
    let mut remainder: u32 = 0;
    for c in rearranged {
        let Some(value) = c.to_digit(36) else { return false };
        remainder = if value < 10 { (remainder * 10 + value) % 97 } else { (remainder * 100 + value) % 97 };
    }
    remainder == 1
}

/// The check digits that make `country` + `bban` a valid IBAN.
pub fn iban_check_digits(country: &str, bban: &str) -> String {
    let mut remainder: u32 = 0;
    for c in bban.chars().chain(country.chars()).chain("00".chars()) {
        let value = c.to_digit(36).expect("alphanumeric");
        remainder = if value < 10 { (remainder * 10 + value) % 97 } else { (remainder * 100 + value) % 97 };
    }
    format!("{:02}", 98 - remainder)
}

/// A MAC address that names one interface: not a longer run of hex pairs
/// (an SSH key's MD5 fingerprint, an IPv6 address), not all zeros or the
/// broadcast address, and a dotted form with at least one hex letter (so
/// that `2024.0314.1022` is no address).
fn mac_address(candidate: &Candidate) -> Option<Span> {
    let mac = candidate.item_str();
    let before = candidate.before();
    let after = candidate.after();
    let hex = |c: Option<char>| c.is_some_and(|c| c.is_ascii_hexdigit());
    let continues = |sep: char| {
        (before.ends_with(sep) && hex(before.chars().rev().nth(1)))
            || (after.starts_with(sep) && hex(after.chars().nth(1)))
    };
    let octets: String = mac.chars().filter(char::is_ascii_hexdigit).collect::<String>().to_ascii_lowercase();
    let special = octets.bytes().all(|b| b == b'0') || octets.bytes().all(|b| b == b'f');
    let dotted_without_letters = mac.contains('.') && !mac.bytes().any(|b| b.is_ascii_alphabetic());
    (!continues(':') && !continues('-') && !continues('.') && !special && !dotted_without_letters)
        .then(|| candidate.span())
}

/// A MAC address with its vendor prefix kept: `00:1a:2b:*:*:*`.
pub(super) fn generalise_mac(found: &str) -> String {
    let octets: String = found.chars().filter(char::is_ascii_hexdigit).collect::<String>().to_ascii_lowercase();
    format!("{}:{}:{}:*:*:*", &octets[0..2], &octets[2..4], &octets[4..6])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anonymize::detectors::Detectors;

    fn found(text: &str) -> Vec<(Detector, &str)> {
        Detectors::new(&[], &[]).find(text).into_iter().map(|f| (f.detector, &text[f.start..f.end])).collect()
    }

    #[test]
    fn ibans_are_found_grouped_or_not_and_end_at_their_length() {
        assert_eq!(found("to DE89 3704 0044 0532 0130 00 today"), [(Detector::Iban, "DE89 3704 0044 0532 0130 00")]);
        assert_eq!(found("IBAN GB29NWBK60161331926819."), [(Detector::Iban, "GB29NWBK60161331926819")]);
        let mistyped = found("DE89 3704 0044 0532 0130 02 is mistyped");
        assert!(mistyped.iter().all(|(d, _)| *d != Detector::Iban), "the check digits fail: {mistyped:?}");
    }

    #[test]
    fn check_digits_make_a_valid_iban() {
        let digits = iban_check_digits("FR", "20041010050500013M02606");
        assert_eq!(digits, "14");
        assert!(iban_checksum_valid(&format!("FR{digits}20041010050500013M02606")));
    }

    #[test]
    fn mac_addresses_are_found_and_fingerprints_are_not() {
        assert_eq!(found("station 00:1A:2B:3C:4D:5E roamed"), [(Detector::MacAddress, "00:1A:2B:3C:4D:5E")]);
        assert_eq!(found("mac 3c-22-fb-12-34-56"), [(Detector::MacAddress, "3c-22-fb-12-34-56")]);
        assert_eq!(found("sw port 0050.56a1.b2c3 up"), [(Detector::MacAddress, "0050.56a1.b2c3")]);
        assert!(found("MD5:16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48 and ff:ff:ff:ff:ff:ff").is_empty());
        assert_eq!(generalise_mac("00:1A:2B:3C:4D:5E"), "00:1a:2b:*:*:*");
    }
}
