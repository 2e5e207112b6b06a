//! Detectors: each finds one kind of sensitive item in free text, as byte spans.
//!
//! A regular expression finds candidates; a check in code confirms the ones a
//! pattern cannot decide (address ranges, the Luhn digit, digit counts).
//! The detectors beyond the first ones live in their own modules: secret
//! URLs (`urls`), tenant hosts and buckets (`tenants`), phone numbers
//! (`phones`), IBANs and MAC addresses (`identifiers`), national identity
//! numbers (`national_ids`); each hands its patterns to [`Detectors::new`].

use super::{identifiers, national_ids, phones, tenants, urls};
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
    WebhookUrl,
    PresignedUrl,
    UrlToken,
    Email,
    AwsAccount,
    AzureId,
    GcpProject,
    Iban,
    NationalId,
    CardNumber,
    Phone,
    MacAddress,
    StorageBucket,
    TenantHost,
    InternalHost,
    PrivateIp,
    OrgName,
}

impl Detector {
    /// Every detector, in priority order: where two findings overlap, the
    /// earlier detector's wins (a JWT inside a bearer header is a bearer token,
    /// a webhook URL carrying a `sig=` is a webhook, not a pre-signed URL).
    pub const ALL: [Detector; 22] = [
        Detector::PrivateKey,
        Detector::BearerToken,
        Detector::Jwt,
        Detector::WebhookUrl,
        Detector::PresignedUrl,
        Detector::UrlToken,
        Detector::Secret,
        Detector::AccessKey,
        Detector::Email,
        Detector::AwsAccount,
        Detector::AzureId,
        Detector::GcpProject,
        Detector::Iban,
        Detector::NationalId,
        Detector::CardNumber,
        Detector::Phone,
        Detector::MacAddress,
        Detector::StorageBucket,
        Detector::TenantHost,
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
            Detector::WebhookUrl => "webhook_url",
            Detector::PresignedUrl => "presigned_url",
            Detector::UrlToken => "url_token",
            Detector::Email => "email",
            Detector::AwsAccount => "aws_account",
            Detector::AzureId => "azure_id",
            Detector::GcpProject => "gcp_project",
            Detector::Iban => "iban",
            Detector::NationalId => "national_id",
            Detector::CardNumber => "card_number",
            Detector::Phone => "phone",
            Detector::MacAddress => "mac_address",
            Detector::StorageBucket => "storage_bucket",
            Detector::TenantHost => "tenant_host",
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
    /// Other detectors whose findings overlapped this one and went into it,
    /// so that a policy refusing any of them still refuses.
    pub within: Vec<Detector>,
}

/// Host suffixes that are internal everywhere, besides the configured ones.
pub const WELL_KNOWN_INTERNAL_SUFFIXES: [&str; 5] = ["local", "internal", "corp", "lan", "home.arpa"];

/// The compiled detectors of one policy.
pub struct Detectors {
    patterns: Vec<Pattern>,
    internal_suffixes: Vec<String>,
}

/// A detector's pattern and the check that confirms its candidates.
pub(super) type Pattern = (Detector, Regex, Check);

/// How a candidate is confirmed, and which capture group is the item.
#[derive(Clone, Copy)]
pub(super) enum Check {
    /// The whole match (or group 1 when present) is the item.
    Pattern,
    /// A `key=value` secret: in a URL's query (after `?`, `&`, `#` or `;`)
    /// the value ends at the next parameter, which is no part of it.
    SecretValue,
    PrivateIpv4,
    PrivateIpv6,
    Luhn,
    InternalHost,
    /// After a bare "project": only ids shaped like GCP's generated ones
    /// (`name-env-1234`, `billing-exports-prod`), not "project follow-up".
    ProjectId,
    /// A check written in one of the detector modules (urls, phones, ...).
    Custom(Confirm),
}

/// A check in code: the finding a candidate is, if it is one.
pub(super) type Confirm = fn(&Candidate) -> Option<Span>;

/// A pattern's match, as the check that confirms it sees it.
pub(super) struct Candidate<'t> {
    /// The whole text being scrubbed, for the context around the match.
    pub text: &'t str,
    /// The pattern's detector: the finding's unless the check says otherwise.
    pub detector: Detector,
    /// Byte range of the whole match.
    pub whole: (usize, usize),
    /// Byte range of the item: group 1 when the pattern has one, else the whole match.
    pub item: (usize, usize),
}

impl Candidate<'_> {
    pub fn item_str(&self) -> &str {
        &self.text[self.item.0..self.item.1]
    }

    /// The item as found, under the pattern's detector.
    pub fn span(&self) -> Span {
        Span { detector: self.detector, start: self.item.0, end: self.item.1 }
    }

    /// The text just before the whole match.
    pub fn before(&self) -> &str {
        &self.text[..self.whole.0]
    }

    /// The text just after the item.
    pub fn after(&self) -> &str {
        &self.text[self.item.1..]
    }
}

/// What a check confirmed: a detector and a byte range of the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Span {
    pub detector: Detector,
    pub start: usize,
    pub end: usize,
}

pub(super) fn regex(pattern: &str) -> Regex {
    // ASCII word boundaries: a Unicode `\b` keeps the regex crate off its fast
    // DFA engines. Next to a non-ASCII letter it sees a boundary where Unicode
    // sees none, which can only find more, never less.
    let pattern = pattern.replace(r"\b", r"(?-u:\b)");
    RegexBuilder::new(&pattern).size_limit(1 << 24).build().expect("detector patterns are valid")
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
                regex(
                    r"(?s)-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\z)",
                ),
                Check::Pattern,
            ),
            (Detector::Jwt, regex(r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), Check::Pattern),
            (Detector::BearerToken, regex(r"(?i)\bbearer\s+([A-Za-z0-9._~+/=-]{8,})"), Check::Pattern),
            // HTTP basic credentials: base64 of user:password.
            (Detector::Secret, regex(r"(?i)\bauthorization\s*:\s*basic\s+([A-Za-z0-9+/]{8,}={0,2})"), Check::Pattern),
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
                    r#"(?i)\b(?:password|passwd|pwd|passphrase|secret|client_secret|secret_key|aws_secret_access_key|api_key|apikey|api-key|x-api-key|access_token|auth_token|token|accountkey|sharedaccesskey|sas_token)\b["']?\s*[:=]\s*["']?([^\s"',;]{4,})"#,
                ),
                Check::SecretValue,
            ),
            (Detector::Email, regex(r"(?i)\b[a-z0-9._%+-]+@(?:[a-z0-9-]+\.)+[a-z]{2,}\b"), Check::Pattern),
            (Detector::AwsAccount, regex(r"\barn:aws[a-z-]*:[a-z0-9-]*:[a-z0-9-]*:\d{12}:[^\s,;]+"), Check::Pattern),
            (
                Detector::AwsAccount,
                regex(
                    r#"(?i)\b(?:aws\s+)?(?:account|acct|owner)(?:[ _-]?id)?(?:\s+(?:id|number|no\.?))?["']?\s*[:=#]?\s*["']?(\d{12})\b"#,
                ),
                Check::Pattern,
            ),
            // Account ids in AWS host names: ECR registries, console sign-in.
            (Detector::AwsAccount, regex(r"(?i)\b(\d{12})\.(?:dkr\.ecr|signin\.aws)\b"), Check::Pattern),
            (
                Detector::AzureId,
                regex(
                    r#"(?i)\b(?:subscriptions?|tenant|directory)(?:[ _-]?id)?["']?\s*[:=/]?\s*["']?(?:is\s+)?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b"#,
                ),
                Check::Pattern,
            ),
            (Detector::GcpProject, regex(r"\bprojects/([a-z][a-z0-9-]{4,28}[a-z0-9])\b"), Check::Pattern),
            (
                Detector::GcpProject,
                regex(
                    r#"(?i)\b(?:gcp project|project[ _-]?id|project)["']?\s*[:=]\s*["']?([a-z][a-z0-9-]{4,28}[a-z0-9])\b"#,
                ),
                Check::Pattern,
            ),
            (
                Detector::GcpProject,
                regex(r#"(?i)\b(?:gcp project|project[ _-]id)\s+["']?([a-z][a-z0-9-]{4,28}[a-z0-9])\b"#),
                Check::Pattern,
            ),
            (Detector::GcpProject, regex(r"\bproject\s+([a-z][a-z0-9-]{4,28}[a-z0-9])\b"), Check::ProjectId),
            // No card number starts with 0 (ISO/IEC 7812 major industry identifiers 1-9).
            (Detector::CardNumber, regex(r"\b[1-9](?:[ -]?\d){12,18}\b"), Check::Luhn),
            (
                Detector::InternalHost,
                regex(&format!(r"(?i)\b(?:[a-z0-9](?:[a-z0-9-]{{0,61}}[a-z0-9])?\.)+(?:{alternation})\b")),
                Check::InternalHost,
            ),
            (Detector::PrivateIp, regex(r"\b(?:\d{1,3}\.){3}\d{1,3}(?:/\d{1,2})?\b"), Check::PrivateIpv4),
            (Detector::PrivateIp, regex(r"(?i)(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}(?:/\d{1,3})?"), Check::PrivateIpv6),
        ];
        patterns.extend(urls::patterns());
        patterns.extend(tenants::patterns());
        patterns.extend(phones::patterns());
        patterns.extend(identifiers::patterns());
        patterns.extend(national_ids::patterns());
        let names: Vec<String> = names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()).map(name_pattern).collect();
        if !names.is_empty() {
            patterns.push((Detector::OrgName, regex(&format!(r"(?i)(?:{})", names.join("|"))), Check::Pattern));
        }
        Detectors { patterns, internal_suffixes: suffixes }
    }

    /// Every sensitive item in `text`, without overlaps, in text order.
    pub fn find(&self, text: &str) -> Vec<Finding> {
        let mut found = Vec::new();
        for (detector, pattern, check) in &self.patterns {
            for captures in pattern.captures_iter(text) {
                let whole = captures.get(0).expect("group 0 always matches");
                let item = captures.get(1).unwrap_or(whole);
                let candidate = Candidate {
                    text,
                    detector: *detector,
                    whole: (whole.start(), whole.end()),
                    item: (item.start(), item.end()),
                };
                if let Some(Span { detector, start, end }) = confirm(*check, &candidate) {
                    found.push(Finding { detector, start, end, within: Vec::new() });
                }
            }
        }
        resolve_overlaps(found)
    }

    /// True when `host` (a canonical domain) ends in an internal suffix.
    pub fn is_internal_host(&self, host: &str) -> bool {
        self.internal_suffix(host).is_some()
    }

    /// The internal suffix `host` (a canonical domain) ends in, if any.
    pub fn internal_suffix(&self, host: &str) -> Option<&str> {
        self.internal_suffixes
            .iter()
            .find(|suffix| {
                host == *suffix || host.strip_suffix(suffix.as_str()).is_some_and(|rest| rest.ends_with('.'))
            })
            .map(String::as_str)
    }
}

/// One finding per run of overlapping ones, covering the whole run, so that
/// nothing a detector found is left in the text: a finding that encloses the
/// others stands for them (an ARN with an email in its path is an ARN), else
/// the run goes to its highest-priority detector.
fn resolve_overlaps(mut found: Vec<Finding>) -> Vec<Finding> {
    found.sort_by_key(|f| (f.start, std::cmp::Reverse(f.end), f.detector.priority()));
    let mut kept: Vec<Finding> = Vec::with_capacity(found.len());
    let (mut run, mut run_end): (Vec<Finding>, usize) = (Vec::new(), 0);
    for finding in found {
        if !run.is_empty() && finding.start >= run_end {
            kept.push(merge(std::mem::take(&mut run)));
        }
        run_end = if run.is_empty() { finding.end } else { run_end.max(finding.end) };
        run.push(finding);
    }
    if !run.is_empty() {
        kept.push(merge(run));
    }
    kept
}

/// The one finding standing for a run of overlapping ones (sorted by start).
fn merge(run: Vec<Finding>) -> Finding {
    let (start, end) = (run[0].start, run.iter().map(|f| f.end).max().expect("a run is never empty"));
    let enclosing = run.iter().filter(|f| f.start == start && f.end == end);
    let detector = match enclosing.map(|f| f.detector).min_by_key(|d| d.priority()) {
        Some(detector) => detector,
        None => run.iter().map(|f| f.detector).min_by_key(|d| d.priority()).expect("a run is never empty"),
    };
    let mut within: Vec<Detector> = run.iter().map(|f| f.detector).filter(|d| *d != detector).collect();
    within.sort();
    within.dedup();
    Finding { detector, start, end, within }
}

/// A name as a pattern: whole words only, where the name begins or ends in
/// a word character (`Acme Corp.` ends in a dot, which no `\b` can follow).
fn name_pattern(name: &str) -> String {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let before = if word(name.chars().next()) { r"\b" } else { "" };
    let after = if word(name.chars().last()) { r"\b" } else { "" };
    format!("{before}{}{after}", regex::escape(name))
}

/// Where a private IPv6 address starts in `candidate`: at its start or
/// just after one of its colons. A bare `::` names no network (and is the
/// empty account field of every `arn:aws:s3:::bucket`), so it is no finding.
fn private_v6_start(candidate: &str) -> Option<usize> {
    let mut starts = std::iter::once(0).chain(candidate.match_indices(':').map(|(at, _)| at + 1));
    starts.find(|&at| {
        let address = candidate[at..].split('/').next().unwrap_or("");
        address.parse().is_ok_and(|a: Ipv6Addr| !a.is_unspecified() && is_private_v6(a))
    })
}

/// Confirms a candidate: the finding it is, if any.
fn confirm(check: Check, candidate: &Candidate) -> Option<Span> {
    let item = candidate.item_str();
    let confirmed = match check {
        Check::Pattern => true,
        Check::Custom(confirm) => return confirm(candidate),
        Check::SecretValue => return Some(secret_value(candidate)),
        Check::PrivateIpv4 => item.split('/').next().and_then(|a| a.parse().ok()).is_some_and(is_private_v4),
        // An IPv6 address may start after `key:` text the pattern took in.
        Check::PrivateIpv6 => {
            let offset = private_v6_start(item)?;
            return Some(Span { start: candidate.item.0 + offset, ..candidate.span() });
        }
        Check::Luhn => luhn(item),
        Check::ProjectId => {
            let hyphens = item.matches('-').count();
            hyphens >= 2 || (hyphens == 1 && item.bytes().any(|b| b.is_ascii_digit()))
        }
        // `acme.corp.example.com` is a public name: an internal suffix must end the host.
        Check::InternalHost => !continues_host_name(candidate.after()),
    };
    confirmed.then(|| candidate.span())
}

/// True when `rest` (the text after a host name) carries the name on, so
/// that what was matched is only the start of a longer name.
pub(super) fn continues_host_name(rest: &str) -> bool {
    match rest.as_bytes() {
        [b'.', next, ..] => next.is_ascii_alphanumeric(),
        [b'-' | b'@', ..] => true,
        _ => false,
    }
}

/// A secret's value; in a URL query it ends before the next parameter.
fn secret_value(candidate: &Candidate) -> Span {
    let in_query = candidate.before().ends_with(['?', '&', '#', ';']);
    let item = candidate.item_str();
    let end = match item.find(['&', '#']) {
        Some(cut) if in_query && cut > 0 => candidate.item.0 + cut,
        _ => candidate.item.1,
    };
    Span { end, ..candidate.span() }
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
    (13..=19).contains(&digits.len()) && !digits.iter().all(|d| *d == digits[0]) && luhn_digits(&digits)
}

/// The Luhn test over `digits`, check digit last.
pub fn luhn_digits(digits: &[u32]) -> bool {
    let doubled = |d: u32| if d * 2 > 9 { d * 2 - 9 } else { d * 2 };
    let sum: u32 = digits.iter().rev().enumerate().map(|(i, d)| if i % 2 == 1 { doubled(*d) } else { *d }).sum();
    !digits.is_empty() && sum.is_multiple_of(10)
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
    fn an_email_inside_an_arn_leaves_the_arn_whole() {
        let text = "role arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_x/alice@corp.example ok";
        assert_eq!(
            found(text),
            [(Detector::AwsAccount, "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_x/alice@corp.example")]
        );
    }

    #[test]
    fn the_empty_fields_of_an_arn_are_no_address() {
        assert!(found("bucket arn:aws:s3:::public-assets and arn:aws:iam::*:role/Admin").is_empty());
    }

    #[test]
    fn a_private_ipv6_address_after_a_key_and_colon_is_found() {
        assert_eq!(
            found("src ipv6:fe80::1 and src:fd00::1"),
            [(Detector::PrivateIp, "fe80::1"), (Detector::PrivateIp, "fd00::1")]
        );
    }

    #[test]
    fn ids_and_keys_in_json_and_headers_are_found() {
        let text = r#"{"accountId": "123456789012", "tenantId": "0b4f6e3a-1c2d-4e5f-8a9b-0c1d2e3f4a5b", "project_id": "billing-prod-4411"}"#;
        let detectors: Vec<Detector> = found(text).into_iter().map(|(d, _)| d).collect();
        assert_eq!(detectors, [Detector::AwsAccount, Detector::AzureId, Detector::GcpProject]);
        assert_eq!(
            found("pull 123456789012.dkr.ecr.eu-west-1.amazonaws.com/app"),
            [(Detector::AwsAccount, "123456789012")]
        );
        assert_eq!(found("Authorization: Basic YWRtaW46aHVudGVyMg=="), [(Detector::Secret, "YWRtaW46aHVudGVyMg==")]);
        assert_eq!(found("curl -H 'x-api-key: 9f8e7d6c5b4a'"), [(Detector::Secret, "9f8e7d6c5b4a")]);
        assert_eq!(found("AccountName=logs;AccountKey=bXlrZXk=;"), [(Detector::Secret, "bXlrZXk=")]);
        let pgp = "-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBF\n-----END PGP PRIVATE KEY BLOCK-----";
        assert_eq!(found(pgp), [(Detector::PrivateKey, pgp)]);
    }

    #[test]
    fn a_name_ending_in_punctuation_is_found() {
        let detectors = Detectors::new(&[], &["Acme Corp.".into()]);
        let text = "customer Acme Corp. was hit";
        let found: Vec<&str> = detectors.find(text).iter().map(|f| &text[f.start..f.end]).collect();
        assert_eq!(found, ["Acme Corp."]);
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
