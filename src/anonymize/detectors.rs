//! Detectors: each finds one kind of sensitive item in free text, as byte spans.
//!
//! A regular expression finds candidates; a check in code confirms the ones a
//! pattern cannot decide (address ranges, the Luhn digit, digit counts).

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, Ipv6Addr};

/// What a detector finds. The names are the policy's keys and the reports' words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Detector {
    PrivateKey,
    Jwt,
    BearerToken,
    AccessKey,
    Secret,
    Email,
    AwsAccount,
    AzureId,
    GcpProject,
    CardNumber,
    Phone,
    InternalHost,
    PrivateIp,
    OrgName,
}

impl Detector {
    /// Every detector, in priority order: where two findings overlap, the
    /// earlier detector's wins (a JWT inside a bearer header is a bearer token).
    pub const ALL: [Detector; 14] = [
        Detector::PrivateKey,
        Detector::BearerToken,
        Detector::Jwt,
        Detector::Secret,
        Detector::AccessKey,
        Detector::Email,
        Detector::AwsAccount,
        Detector::AzureId,
        Detector::GcpProject,
        Detector::CardNumber,
        Detector::Phone,
        Detector::InternalHost,
        Detector::PrivateIp,
        Detector::OrgName,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Detector::PrivateKey => "private_key",
            Detector::Jwt => "jwt",
            Detector::BearerToken => "bearer_token",
            Detector::AccessKey => "access_key",
            Detector::Secret => "secret",
            Detector::Email => "email",
            Detector::AwsAccount => "aws_account",
            Detector::AzureId => "azure_id",
            Detector::GcpProject => "gcp_project",
            Detector::CardNumber => "card_number",
            Detector::Phone => "phone",
            Detector::InternalHost => "internal_host",
            Detector::PrivateIp => "private_ip",
            Detector::OrgName => "org_name",
        }
    }

    fn priority(self) -> usize {
        Self::ALL.iter().position(|d| *d == self).expect("listed")
    }
}

impl std::fmt::Display for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One sensitive item: where it is in the text and what found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub detector: Detector,
    pub start: usize,
    pub end: usize,
}

/// Host suffixes that are internal everywhere, besides the configured ones.
pub const WELL_KNOWN_INTERNAL_SUFFIXES: [&str; 5] = ["local", "internal", "corp", "lan", "home.arpa"];

/// The compiled detectors of one policy.
pub struct Detectors {
    patterns: Vec<(Detector, Regex, Check)>,
    internal_suffixes: Vec<String>,
}

/// How a candidate is confirmed, and which capture group is the item.
#[derive(Clone, Copy)]
enum Check {
    /// The whole match (or group 1 when present) is the item.
    Pattern,
    PrivateIpv4,
    PrivateIpv6,
    Luhn,
    PhoneDigits,
    InternalHost,
    /// After a bare "project": only ids shaped like GCP's generated ones
    /// (`name-env-1234`, `billing-exports-prod`), not "project follow-up".
    ProjectId,
}

fn regex(pattern: &str) -> Regex {
    RegexBuilder::new(pattern).size_limit(1 << 24).build().expect("detector patterns are valid")
}

impl Detectors {
    /// Detectors for the configured internal suffixes and organisation names.
    pub fn new(internal_suffixes: &[String], names: &[String]) -> Detectors {
        let mut suffixes: Vec<String> = WELL_KNOWN_INTERNAL_SUFFIXES.iter().map(|s| s.to_string()).collect();
        suffixes.extend(internal_suffixes.iter().map(|s| s.trim_matches('.').to_ascii_lowercase()));
        let alternation = suffixes.iter().map(|s| regex::escape(s)).collect::<Vec<_>>().join("|");
        let mut patterns = vec![
            (
                Detector::PrivateKey,
                regex(r"(?s)-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\z)"),
                Check::Pattern,
            ),
            (Detector::Jwt, regex(r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), Check::Pattern),
            (Detector::BearerToken, regex(r"(?i)\bbearer\s+([A-Za-z0-9._~+/=-]{8,})"), Check::Pattern),
            // Credentials in a URL's userinfo: scheme://user:password@host
            (Detector::Secret, regex(r"(?i)\b[a-z][a-z0-9+.-]*://([^/\s:@]+:[^/\s@]+)@"), Check::Pattern),
            (
                Detector::AccessKey,
                regex(
                    r"\b(?:(?:AKIA|ASIA|AIDA|AROA|ANPA|AGPA)[A-Z0-9]{16}|AIza[0-9A-Za-z_-]{35}|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}|xox[abposr]-[A-Za-z0-9-]{10,}|sk_live_[A-Za-z0-9]{16,}|GOOG[A-Z0-9]{20,})\b",
                ),
                Check::Pattern,
            ),
            (
                Detector::Secret,
                regex(
                    r#"(?i)\b(?:password|passwd|pwd|passphrase|secret|client_secret|secret_key|aws_secret_access_key|api_key|apikey|access_token|auth_token|token)\b["']?\s*[:=]\s*["']?([^\s"',;]{4,})"#,
                ),
                Check::Pattern,
            ),
            (Detector::Email, regex(r"(?i)\b[a-z0-9._%+-]+@(?:[a-z0-9-]+\.)+[a-z]{2,}\b"), Check::Pattern),
            (Detector::AwsAccount, regex(r"\barn:aws[a-z-]*:[a-z0-9-]*:[a-z0-9-]*:\d{12}:[^\s,;]+"), Check::Pattern),
            (
                Detector::AwsAccount,
                regex(
                    r"(?i)\b(?:aws\s+)?(?:account|acct|owner)(?:[ _-]?id)?(?:\s+(?:id|number|no\.?))?\s*[:=#]?\s*(\d{12})\b",
                ),
                Check::Pattern,
            ),
            (
                Detector::AzureId,
                regex(
                    r"(?i)\b(?:subscriptions?|tenant|directory)(?:[ _-]?id)?\s*[:=/]?\s*(?:is\s+)?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b",
                ),
                Check::Pattern,
            ),
            (Detector::GcpProject, regex(r"\bprojects/([a-z][a-z0-9-]{4,28}[a-z0-9])\b"), Check::Pattern),
            (
                Detector::GcpProject,
                regex(
                    r#"(?i)\b(?:gcp project|project[ _-]?id|project)\s*[:=]\s*["']?([a-z][a-z0-9-]{4,28}[a-z0-9])\b"#,
                ),
                Check::Pattern,
            ),
            (
                Detector::GcpProject,
                regex(r#"(?i)\b(?:gcp project|project[ _-]id)\s+["']?([a-z][a-z0-9-]{4,28}[a-z0-9])\b"#),
                Check::Pattern,
            ),
            (Detector::GcpProject, regex(r"\bproject\s+([a-z][a-z0-9-]{4,28}[a-z0-9])\b"), Check::ProjectId),
            (Detector::CardNumber, regex(r"\b\d(?:[ -]?\d){12,18}\b"), Check::Luhn),
            (
                Detector::Phone,
                regex(r"(?:\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}|\(\d{3}\)\s?\d{3}[ .-]\d{4})"),
                Check::PhoneDigits,
            ),
            (
                Detector::InternalHost,
                regex(&format!(r"(?i)\b(?:[a-z0-9](?:[a-z0-9-]{{0,61}}[a-z0-9])?\.)+(?:{alternation})\b")),
                Check::InternalHost,
            ),
            (Detector::PrivateIp, regex(r"\b(?:\d{1,3}\.){3}\d{1,3}(?:/\d{1,2})?\b"), Check::PrivateIpv4),
            (Detector::PrivateIp, regex(r"(?i)(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}(?:/\d{1,3})?"), Check::PrivateIpv6),
        ];
        let names: Vec<String> =
            names.iter().filter(|n| !n.trim().is_empty()).map(|n| regex::escape(n.trim())).collect();
        if !names.is_empty() {
            patterns.push((Detector::OrgName, regex(&format!(r"(?i)\b(?:{})\b", names.join("|"))), Check::Pattern));
        }
        Detectors { patterns, internal_suffixes: suffixes }
    }

    /// Every sensitive item in `text`, without overlaps, in text order.
    pub fn find(&self, text: &str) -> Vec<Finding> {
        let mut found = Vec::new();
        for (detector, pattern, check) in &self.patterns {
            for captures in pattern.captures_iter(text) {
                let item = captures.get(1).or_else(|| captures.get(0)).expect("group 0 always matches");
                if confirm(*check, item.as_str(), text, item.end()) {
                    found.push(Finding { detector: *detector, start: item.start(), end: item.end() });
                }
            }
        }
        resolve_overlaps(found)
    }

    /// True when `host` (a canonical domain) ends in an internal suffix.
    pub fn is_internal_host(&self, host: &str) -> bool {
        self.internal_suffixes
            .iter()
            .any(|suffix| host == suffix || host.strip_suffix(suffix.as_str()).is_some_and(|rest| rest.ends_with('.')))
    }
}

/// Keeps the higher-priority finding where two overlap.
fn resolve_overlaps(mut found: Vec<Finding>) -> Vec<Finding> {
    found.sort_by_key(|f| (f.detector.priority(), f.start, std::cmp::Reverse(f.end)));
    let mut kept: Vec<Finding> = Vec::with_capacity(found.len());
    for finding in found {
        if !kept.iter().any(|k| finding.start < k.end && k.start < finding.end) {
            kept.push(finding);
        }
    }
    kept.sort_by_key(|f| f.start);
    kept
}

fn confirm(check: Check, item: &str, text: &str, end: usize) -> bool {
    match check {
        Check::Pattern => true,
        Check::PrivateIpv4 => item.split('/').next().and_then(|a| a.parse().ok()).is_some_and(is_private_v4),
        Check::PrivateIpv6 => item.split('/').next().and_then(|a| a.parse().ok()).is_some_and(is_private_v6),
        Check::Luhn => luhn(item),
        Check::ProjectId => {
            let hyphens = item.matches('-').count();
            hyphens >= 2 || (hyphens == 1 && item.bytes().any(|b| b.is_ascii_digit()))
        }
        Check::PhoneDigits => (8..=15).contains(&item.bytes().filter(u8::is_ascii_digit).count()),
        // `acme.corp.example.com` is a public name: an internal suffix must end the host.
        Check::InternalHost => {
            let rest = &text.as_bytes()[end..];
            let continues_name = match rest {
                [b'.', next, ..] => next.is_ascii_alphanumeric(),
                [b'-' | b'@', ..] => true,
                _ => false,
            };
            !continues_name
        }
    }
}

/// RFC 1918, loopback, link-local and CGNAT (RFC 6598): ranges that only
/// mean something inside one network. (0.0.0.0 and 0.0.0.0/0 name no network.)
pub fn is_private_v4(address: Ipv4Addr) -> bool {
    let [a, b, ..] = address.octets();
    address.is_private() || address.is_loopback() || address.is_link_local() || (a == 100 && (64..128).contains(&b))
}

/// Loopback, unspecified, link-local (fe80::/10), unique local (fc00::/7),
/// and IPv4-mapped private addresses.
pub fn is_private_v6(address: Ipv6Addr) -> bool {
    let first = address.segments()[0];
    address.is_loopback()
        || address.is_unspecified()
        || (first & 0xffc0) == 0xfe80
        || (first & 0xfe00) == 0xfc00
        || address.to_ipv4_mapped().is_some_and(is_private_v4)
}

/// The Luhn check digit test over the digits of `number` (13-19 digits).
pub fn luhn(number: &str) -> bool {
    let digits: Vec<u32> = number.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) || digits.iter().all(|d| *d == digits[0]) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 1 {
                if d * 2 > 9 {
                    d * 2 - 9
                } else {
                    d * 2
                }
            } else {
                *d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detectors() -> Detectors {
        Detectors::new(&["acme-cloud.net".into()], &["Contoso Retail".into()])
    }

    fn found(text: &str) -> Vec<(Detector, &str)> {
        detectors().find(text).into_iter().map(|f| (f.detector, &text[f.start..f.end])).collect()
    }

    #[test]
    fn luhn_accepts_test_card_numbers_and_refuses_near_misses() {
        assert!(luhn("4111 1111 1111 1111"));
        assert!(luhn("378282246310005"));
        assert!(!luhn("4111 1111 1111 1112"));
        assert!(!luhn("1234567812345678"));
    }

    #[test]
    fn private_ranges_are_recognised_and_public_ones_are_not() {
        for private in ["10.0.0.1", "172.16.5.4", "192.168.1.1", "127.0.0.1", "169.254.169.254", "100.64.0.1"] {
            assert!(is_private_v4(private.parse().unwrap()), "{private}");
        }
        for public in ["8.8.8.8", "100.128.0.1", "172.32.0.1", "45.33.32.156"] {
            assert!(!is_private_v4(public.parse().unwrap()), "{public}");
        }
        for private in ["::1", "fe80::1", "fd12:3456:789a::1", "::ffff:10.0.0.1"] {
            assert!(is_private_v6(private.parse().unwrap()), "{private}");
        }
        assert!(!is_private_v6("2001:4860:4860::8888".parse().unwrap()));
    }

    #[test]
    fn an_internal_suffix_inside_a_public_name_is_not_internal() {
        assert_eq!(
            found("see db01.corp and jenkins.acme-cloud.net"),
            [(Detector::InternalHost, "db01.corp"), (Detector::InternalHost, "jenkins.acme-cloud.net")]
        );
        assert!(found("see acme.corp.example.com and localhost").is_empty());
    }

    #[test]
    fn overlapping_findings_keep_the_more_specific_detector() {
        let text = "mail alice@db.corp, role arn:aws:iam::123456789012:role/Admin";
        assert_eq!(
            found(text),
            [(Detector::Email, "alice@db.corp"), (Detector::AwsAccount, "arn:aws:iam::123456789012:role/Admin")]
        );
    }

    #[test]
    fn credentials_in_a_url_are_a_secret() {
        assert_eq!(found("fetched http://admin:Hunter22@45.33.32.156/x"), [(Detector::Secret, "admin:Hunter22")]);
    }

    #[test]
    fn secrets_report_the_value_not_the_key() {
        assert_eq!(found("login with password=Sup3rS3cret! now"), [(Detector::Secret, "Sup3rS3cret!")]);
    }

    #[test]
    fn dates_versions_and_public_addresses_are_left_alone() {
        assert!(found("at 2024-03-14 10:22:33 UTC, nginx 1.24.0 on 45.33.32.156 CVE-2024-3094").is_empty());
    }
}
