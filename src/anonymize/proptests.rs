//! Properties of the detectors added for secret URLs, phones, tenants,
//! buckets, IBANs, MAC addresses and national identity numbers: generated
//! valid items are always found, and what is shared never holds the secret.

use super::detectors::{luhn_digits, Detector, Detectors};
use super::identifiers::{iban_check_digits, iban_checksum_valid};
use super::national_ids::verhoeff;
use super::{ScrubPolicy, Scrubber};
use proptest::prelude::*;
use std::sync::LazyLock;

/// Compiled once: building the detectors costs more than a case.
static DETECTORS: LazyLock<Detectors> = LazyLock::new(|| Detectors::new(&[], &[]));
static SCRUBBER: LazyLock<Scrubber> = LazyLock::new(|| Scrubber::new(&ScrubPolicy::default(), [9; 32]));

/// The scrubbed text under the default policy.
fn scrubbed(text: &str) -> String {
    let (mut text, mut report) = (text.to_string(), Vec::new());
    SCRUBBER.text("description", &mut text, &mut report).expect("the default policy refuses no text");
    text
}

/// The spans `detector` found in `text`.
fn found_by(text: &str, detector: Detector) -> Vec<String> {
    DETECTORS.find(text).into_iter().filter(|f| f.detector == detector).map(|f| text[f.start..f.end].into()).collect()
}

/// Prose around an item: words that trigger no detector.
fn prose() -> impl Strategy<Value = (String, String)> {
    let words = prop::sample::select(vec![
        "the", "payment", "went", "to", "and", "was", "flagged", "by", "ops", "on", "Monday",
    ]);
    (prop::collection::vec(words.clone(), 0..6), prop::collection::vec(words, 0..6))
        .prop_map(|(before, after)| (before.join(" "), after.join(" ")))
}

/// An IBAN of a real country length with valid check digits, grouped by four or not.
fn iban() -> impl Strategy<Value = String> {
    let countries = prop::sample::select(vec![
        ("DE", 22),
        ("GB", 22),
        ("FR", 27),
        ("NL", 18),
        ("ES", 24),
        ("IT", 27),
        ("CH", 21),
        ("BE", 16),
        ("NO", 15),
        ("SA", 24),
    ]);
    (countries, prop::collection::vec(0u8..10, 32), any::<bool>()).prop_map(|((country, length), digits, grouped)| {
        let bban: String = digits.iter().take(length - 4).map(|d| char::from(b'0' + d)).collect();
        let compact = format!("{country}{}{bban}", iban_check_digits(country, &bban));
        if !grouped {
            return compact;
        }
        compact.as_bytes().chunks(4).map(|c| std::str::from_utf8(c).expect("ascii")).collect::<Vec<_>>().join(" ")
    })
}

/// A token of the shape webhook and signed URLs carry.
fn token(len: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789".to_vec()),
        len,
    )
    .prop_map(|bytes| String::from_utf8(bytes).expect("ascii") + "7q")
}

/// The phone numbers of the largest markets as people write them: with a
/// country code or with the trunk zero (NANP: `(NXX) NXX-XXXX`), in groups
/// of three split by one separator.
fn phone() -> impl Strategy<Value = String> {
    let markets = prop::sample::select(vec![
        ("+1 ", "", 10),
        ("+44 ", "0", 10),
        ("+49 ", "0", 10),
        ("+33 ", "0", 9),
        ("+81 ", "0", 10),
        ("+82 ", "0", 9),
        ("+61 ", "0", 9),
        ("+31 ", "0", 9),
        ("+46 ", "0", 9),
        ("+41 ", "0", 9),
        ("+353 ", "0", 9),
        ("+972 ", "0", 9),
        ("+86 ", "0", 10),
        ("+91 ", "0", 10),
        ("+55 ", "0", 10),
        ("+52 ", "", 10),
        ("+34 ", "", 9),
        ("+39 ", "0", 9),
        ("+65 ", "", 8),
    ]);
    let separators = prop::sample::select(vec![" ", "-"]);
    (markets, prop::collection::vec(0u8..10, 12), any::<bool>(), separators).prop_map(
        |((code, trunk, length), digits, international, separator)| {
            // Numbers start with 2-9 in every plan (NANP's exchange too).
            let mut national: Vec<char> = digits.iter().take(length).map(|d| char::from(b'0' + d)).collect();
            national[0] = char::from(b'2' + digits[0] % 8);
            national[3] = char::from(b'2' + digits[3] % 8);
            let national: String = national.into_iter().collect();
            if code == "+1 " && !international {
                return format!("({}) {}-{}", &national[..3], &national[3..6], &national[6..]);
            }
            let grouped: Vec<&str> =
                national.as_bytes().chunks(3).map(|c| std::str::from_utf8(c).expect("ascii")).collect();
            let grouped = grouped.join(separator);
            if international || trunk.is_empty() {
                format!("{code}{grouped}")
            } else {
                format!("{trunk}{grouped}")
            }
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_iban_with_valid_check_digits_is_found_whole((before, after) in prose(), iban in iban()) {
        let text = format!("{before} {iban} {after}");
        prop_assert_eq!(found_by(&text, Detector::Iban), vec![iban.clone()]);
        prop_assert!(!scrubbed(&text).contains(&iban[iban.len() - 6..]));
    }

    #[test]
    fn an_iban_with_one_digit_changed_is_no_iban(iban in iban(), at in 4usize..15, bump in 1u8..10) {
        let mut bytes: Vec<u8> = iban.replace(' ', "").into_bytes();
        let at = at.min(bytes.len() - 1);
        prop_assume!(bytes[at].is_ascii_digit());
        bytes[at] = b'0' + (bytes[at] - b'0' + bump) % 10;
        let mistyped = String::from_utf8(bytes).unwrap();
        prop_assert!(!iban_checksum_valid(&mistyped));
        let text = format!("pay {mistyped} now");
        prop_assert!(found_by(&text, Detector::Iban).is_empty());
    }

    #[test]
    fn webhook_and_signed_urls_keep_their_host_and_lose_their_secret(
        workspace in token(9), channel in token(11), secret in token(24), signature in token(40),
    ) {
        let slack = format!("https://hooks.slack.com/services/T{workspace}/B{channel}/{secret}");
        let shared = scrubbed(&format!("posted to {slack}, then stopped"));
        prop_assert!(!shared.contains(&secret) && !shared.contains(&workspace), "{}", shared);
        prop_assert!(shared.contains("https://hooks.slack.com/[redacted:webhook_url]"), "{}", shared);
        let s3 = format!("https://exports-{workspace}.s3.eu-west-1.amazonaws.com/a.csv?X-Amz-Expires=60&X-Amz-Signature={signature}");
        let shared = scrubbed(&format!("link {s3} leaked"));
        prop_assert!(!shared.contains(&signature) && !shared.contains(&workspace), "{}", shared);
        prop_assert!(shared.contains("*.s3.eu-west-1.amazonaws.com"), "{}", shared);
    }

    #[test]
    fn a_query_token_is_redacted_and_the_rest_of_the_url_kept(secret in token(20), key in prop::sample::select(vec!["access_token", "api_key", "key", "sig", "code", "auth"])) {
        let url = format!("https://api.example.org/v1/export?format=csv&{key}={secret}&page=2");
        let shared = scrubbed(&format!("GET {url} 200"));
        prop_assert!(!shared.contains(&secret), "{}", shared);
        let expected = format!("https://api.example.org/v1/export?format=csv&{key}=[redacted:url_token]&page=2");
        prop_assert!(shared.contains(&expected), "{}", shared);
    }

    #[test]
    fn phone_numbers_of_the_largest_markets_are_found(phone in phone()) {
        let text = format!("seen {phone} today");
        prop_assert_eq!(found_by(&text, Detector::Phone), vec![phone.clone()], "{}", text);
    }

    #[test]
    fn timestamps_versions_and_addresses_are_never_phones(
        y in 1990u32..2100, mo in 1u32..13, d in 1u32..29, h in 0u32..24, mi in 0u32..60, s in 0u32..60,
        a in 0u8..=255, b in 0u8..=255, c in 0u8..=255, e in 0u8..=255, major in 0u32..40, minor in 0u32..100, patch in 0u32..1000,
    ) {
        let text = format!(
            "at {y}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} and {d:02}.{mo:02}.{y} {h:02}:{mi:02}, v{major}.{minor}.{patch} \
             ({major}.{minor}.{patch}) from {a}.{b}.{c}.{e}:{patch}"
        );
        prop_assert!(found_by(&text, Detector::Phone).is_empty(), "{}: {:?}", text, found_by(&text, Detector::Phone));
    }

    #[test]
    fn aadhaar_numbers_with_their_verhoeff_digit_are_found(first in 2u32..10, rest in prop::collection::vec(0u32..10, 10)) {
        prop_assume!(!(first == 2 && rest[0] == 0));
        let mut digits: Vec<u32> = std::iter::once(first).chain(rest).collect();
        let check = (0..10).find(|c| { digits.push(*c); let ok = verhoeff(&digits); digits.pop(); ok }).expect("one digit fits");
        digits.push(check);
        let number: String = digits.iter().map(|d| char::from_digit(*d, 10).unwrap()).collect();
        let spaced = format!("{} {} {}", &number[..4], &number[4..8], &number[8..]);
        let text = format!("KYC scan shows {spaced} twice");
        prop_assert_eq!(found_by(&text, Detector::NationalId), vec![spaced]);
    }

    #[test]
    fn swedish_personnummer_with_their_luhn_digit_are_found(yy in 0u32..100, mm in 1u32..13, dd in 1u32..29, serial in 0u32..1000) {
        let mut digits: Vec<u32> = format!("{yy:02}{mm:02}{dd:02}{serial:03}").chars().filter_map(|c| c.to_digit(10)).collect();
        let check = (0..10).find(|c| { digits.push(*c); let ok = luhn_digits(&digits); digits.pop(); ok }).expect("one digit fits");
        let number = format!("{yy:02}{mm:02}{dd:02}-{serial:03}{check}");
        let text = format!("record for {number} exported");
        prop_assert_eq!(found_by(&text, Detector::NationalId), vec![number.clone()]);
        prop_assert!(!scrubbed(&text).contains(&number));
    }

    #[test]
    fn tenant_hosts_are_shared_as_their_platform(tenant in "[a-z][a-z0-9]{2,12}", platform in prop::sample::select(vec!["okta.com", "sharepoint.com", "my.salesforce.com", "atlassian.net", "zendesk.com", "service-now.com"])) {
        prop_assume!(!super::tenants::is_platform_host(&tenant));
        let shared = scrubbed(&format!("sign-ins to {tenant}.{platform} failed"));
        let expected = format!("sign-ins to *.{platform} failed");
        prop_assert_eq!(shared, expected);
    }
}
