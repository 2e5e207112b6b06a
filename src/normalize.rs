//! Observable parsing and canonical forms for indicators of compromise.
//!
//! Every value that is published, stored or looked up passes through here, so
//! that two spellings of one indicator (case, defanging, trailing dot, IDNA,
//! default port, separators) meet at one canonical string. Pure domain code:
//! no I/O, no async, no transport types.

use std::borrow::Cow;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};
use ipnet::{Ipv4Net, Ipv6Net};
use url::{Host, Url};

/// Maximum length in bytes of any raw value, after trimming, so one bad record cannot make us work hard.
pub const MAX_OBSERVABLE_LEN: usize = 2048;
/// Maximum length of a domain name in bytes without the trailing dot (RFC 1035).
pub const MAX_DOMAIN_LEN: usize = 253;
/// Maximum length of one domain label in bytes (RFC 1035).
pub const MAX_DOMAIN_LABEL_LEN: usize = 63;
/// Maximum length of an email local part in bytes (RFC 5321).
pub const MAX_EMAIL_LOCAL_LEN: usize = 64;
/// Maximum length of a canonical user agent in bytes; longer ones are junk or attacks on log parsers.
pub const MAX_USER_AGENT_LEN: usize = 1024;

/// Kinds of observable; the discriminants are the proto `ObservableType` numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObservableType {
    /// An IPv4 address.
    Ipv4 = 1,
    /// An IPv6 address.
    Ipv6 = 2,
    /// An IPv4 or IPv6 network in CIDR notation.
    Cidr = 3,
    /// A DNS domain name.
    Domain = 4,
    /// A URL with a host.
    Url = 5,
    /// An email address.
    Email = 6,
    /// An MD5 file hash.
    Md5 = 7,
    /// A SHA-1 file hash.
    Sha1 = 8,
    /// A SHA-256 file hash.
    Sha256 = 9,
    /// An autonomous system number.
    Asn = 10,
    /// An HTTP user agent string.
    UserAgent = 11,
    /// A cloud access key id (AWS or Google HMAC).
    CloudAccessKeyId = 12,
    /// A cloud resource name (AWS ARN, Azure resource id, GCP full resource name).
    CloudResourceName = 13,
    /// An X.509 certificate fingerprint (SHA-1 or SHA-256).
    CertificateFingerprint = 14,
    /// A sensitive value shared as HMAC-SHA256 under the federation's key
    /// (64 hex digits); peers match it by hashing what they observe.
    KeyedHash = 15,
}

impl ObservableType {
    /// Every kind, in proto number order.
    pub const ALL: [ObservableType; 15] = [
        Self::Ipv4,
        Self::Ipv6,
        Self::Cidr,
        Self::Domain,
        Self::Url,
        Self::Email,
        Self::Md5,
        Self::Sha1,
        Self::Sha256,
        Self::Asn,
        Self::UserAgent,
        Self::CloudAccessKeyId,
        Self::CloudResourceName,
        Self::CertificateFingerprint,
        Self::KeyedHash,
    ];

    /// The proto enum number of this kind.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The kind with this proto enum number; `None` for 0 (unspecified) and unknown numbers.
    pub fn from_code(code: u8) -> Option<Self> {
        let kind = *Self::ALL.get(usize::from(code).checked_sub(1)?)?;
        debug_assert_eq!(kind.code(), code);
        Some(kind)
    }

    /// The stable lowercase name used in configs, CLI flags and exports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ipv4 => "ipv4",
            Self::Ipv6 => "ipv6",
            Self::Cidr => "cidr",
            Self::Domain => "domain",
            Self::Url => "url",
            Self::Email => "email",
            Self::Md5 => "md5",
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Asn => "asn",
            Self::UserAgent => "user-agent",
            Self::CloudAccessKeyId => "cloud-access-key-id",
            Self::CloudResourceName => "cloud-resource-name",
            Self::CertificateFingerprint => "certificate-fingerprint",
            Self::KeyedHash => "keyed-hash",
        }
    }

    /// Length in hex digits when this kind is a plain file hash.
    fn hash_len(self) -> Option<usize> {
        match self {
            Self::Md5 => Some(32),
            Self::Sha1 => Some(40),
            Self::Sha256 | Self::KeyedHash => Some(64),
            _ => None,
        }
    }
}

impl FromStr for ObservableType {
    type Err = NormalizeError;

    /// Accepts the `as_str` names in any case, `_` for `-`, and a few names analysts type.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim().to_ascii_lowercase().replace('_', "-");
        if let Some(kind) = Self::ALL.into_iter().find(|k| k.as_str() == name) {
            return Ok(kind);
        }
        match name.as_str() {
            "hostname" => Ok(Self::Domain),
            "access-key" => Ok(Self::CloudAccessKeyId),
            "arn" => Ok(Self::CloudResourceName),
            "fingerprint" => Ok(Self::CertificateFingerprint),
            "ua" => Ok(Self::UserAgent),
            "as" => Ok(Self::Asn),
            _ => Err(NormalizeError::UnknownType { name: s.trim().to_owned() }),
        }
    }
}

impl fmt::Display for ObservableType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed observable in canonical form.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Observable {
    /// What the value is; decides how it was normalised and how it is matched.
    pub kind: ObservableType,
    /// The canonical value, so equal indicators compare equal byte for byte.
    pub value: String,
}

/// Why a value could not be parsed as an observable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormalizeError {
    /// Nothing left after trimming.
    #[error("observable is empty; expected a value")]
    Empty,
    /// Longer than the limit for all values or for this kind.
    #[error("observable is {len} bytes long; expected at most {max}")]
    TooLong {
        /// Length found, in bytes.
        len: usize,
        /// Limit that applies.
        max: usize,
    },
    /// A control character, which no observable legitimately holds.
    #[error("observable contains control character U+{code:04X}; expected printable text")]
    ControlCharacter {
        /// The code point found.
        code: u32,
    },
    /// A type name that `ObservableType::from_str` does not know.
    #[error(
        "unknown observable type `{name}`; expected one of ipv4, ipv6, cidr, domain, url, email, \
         md5, sha1, sha256, asn, user-agent, cloud-access-key-id, cloud-resource-name, \
         certificate-fingerprint"
    )]
    UnknownType {
        /// The name given.
        name: String,
    },
    /// Not a dotted-quad IPv4 address.
    #[error("invalid ipv4 address: {reason}; expected four decimal octets 0-255 like 192.0.2.1")]
    InvalidIpv4 {
        /// What is wrong.
        reason: &'static str,
    },
    /// Not an IPv6 address.
    #[error("invalid ipv6 address: {reason}; expected an address like 2001:db8::1")]
    InvalidIpv6 {
        /// What is wrong.
        reason: &'static str,
    },
    /// Not an address/prefix-length network.
    #[error("invalid cidr: {reason}; expected address/prefix-length like 192.0.2.0/24 or 2001:db8::/32")]
    InvalidCidr {
        /// What is wrong.
        reason: &'static str,
    },
    /// Not a DNS name.
    #[error("invalid domain: {reason}; expected a name like example.com")]
    InvalidDomain {
        /// What is wrong.
        reason: &'static str,
    },
    /// Refused by the WHATWG URL parser.
    #[error("invalid url: {0}; expected scheme://host/path")]
    MalformedUrl(url::ParseError),
    /// Parsed as a URL but not usable as an indicator.
    #[error("invalid url: {reason}; expected scheme://host/path")]
    InvalidUrl {
        /// What is wrong.
        reason: &'static str,
    },
    /// Not a plain `local@domain` address.
    #[error("invalid email address: {reason}; expected local-part@example.com")]
    InvalidEmail {
        /// What is wrong.
        reason: &'static str,
    },
    /// A file hash of the wrong length.
    #[error("{kind} hash has {found} characters; expected {expected} hex digits")]
    InvalidHash {
        /// The hash kind asked for.
        kind: ObservableType,
        /// Hex digits that kind has.
        expected: usize,
        /// Characters found.
        found: usize,
    },
    /// A file hash with a character that is not a hex digit.
    #[error("{kind} hash contains a character that is not a hex digit; expected only 0-9 and a-f")]
    NotHex {
        /// The hash kind asked for.
        kind: ObservableType,
    },
    /// Not an autonomous system number.
    #[error("invalid asn: {reason}; expected AS and a number up to 4294967295, like AS64496")]
    InvalidAsn {
        /// What is wrong.
        reason: &'static str,
    },
    /// Not an access key id of a known cloud.
    #[error(
        "invalid cloud access key id; expected AKIA, ASIA, AGPA, AIDA, AROA, AIPA, ANPA, ANVA, \
         APKA, ABIA or ACCA and 16 letters or digits (aws), or GOOG and 20 to 60 letters or \
         digits (google hmac)"
    )]
    InvalidAccessKeyId,
    /// Not a resource name of a known cloud.
    #[error(
        "invalid cloud resource name: {reason}; expected arn:aws:service:region:account:resource, \
         /subscriptions/<guid>/<path> or //<service>.googleapis.com/<path>"
    )]
    InvalidResourceName {
        /// What is wrong.
        reason: &'static str,
    },
    /// Not a SHA-1 or SHA-256 certificate fingerprint.
    #[error(
        "invalid certificate fingerprint: {reason}; expected 40 (sha-1) or 64 (sha-256) hex \
         digits, optionally in pairs separated by colons"
    )]
    InvalidFingerprint {
        /// What is wrong.
        reason: &'static str,
    },
    /// A user agent with characters that would hide what it says.
    #[error("invalid user agent: {reason}; expected printable text")]
    InvalidUserAgent {
        /// What is wrong.
        reason: &'static str,
    },
    /// No kind fits the value.
    #[error("cannot detect the observable type; give it explicitly")]
    Undetectable,
}

use NormalizeError as E;
use ObservableType as T;

/// Parses `raw` as the given type, or detects the type when `kind` is None.
pub fn parse(kind: Option<ObservableType>, raw: &str) -> Result<Observable, NormalizeError> {
    match kind {
        Some(kind) => normalize(kind, raw).map(|value| Observable { kind, value }),
        None => detect(raw),
    }
}

/// Canonical form of `raw` as `kind`.
pub fn normalize(kind: ObservableType, raw: &str) -> Result<String, NormalizeError> {
    normalize_prepared(kind, &prepare(raw)?)
}

/// Detects the type of `raw` and normalises it.
pub fn detect(raw: &str) -> Result<Observable, NormalizeError> {
    let s = prepare(raw)?;
    DETECTION_ORDER
        .iter()
        .filter(|(_, fits)| fits(&s))
        .find_map(|&(kind, _)| {
            let value = normalize_prepared(kind, &s).ok()?;
            Some(Observable { kind, value })
        })
        .ok_or(E::Undetectable)
}

/// True when `value` is already the canonical form of `kind` (normalize(kind, value) == Ok(value)).
pub fn is_canonical(kind: ObservableType, value: &str) -> bool {
    normalize(kind, value).is_ok_and(|canonical| canonical == value)
}

/// The parent domains of a canonical domain, nearest first, excluding itself and the bare TLD.
pub fn parent_domains(domain: &str) -> impl Iterator<Item = &str> {
    domain.match_indices('.').map(move |(dot, _)| &domain[dot + 1..]).take_while(|parent| parent.contains('.'))
}

/// The host of a canonical URL as an observable (Domain, Ipv4 or Ipv6), if it is a valid one.
pub fn url_host(url: &str) -> Option<Observable> {
    let parsed = Url::parse(url).ok()?;
    let (kind, value) = match parsed.host()? {
        Host::Ipv4(addr) => (T::Ipv4, addr.to_string()),
        Host::Ipv6(addr) => (T::Ipv6, addr.to_string()),
        // Hosts of non-special schemes stay opaque in the url crate, so an address can hide here.
        Host::Domain(name) => match parse_ipv4(name) {
            Ok(addr) => (T::Ipv4, addr.to_string()),
            Err(_) => (T::Domain, normalize_domain(name).ok()?),
        },
    };
    Some(Observable { kind, value })
}

/// A cheap test of whether a value could be of some kind, run before the real parse.
type ShapeCheck = fn(&str) -> bool;

/// Shape checks in detection order: the first kind whose shape fits and whose parse succeeds wins.
const DETECTION_ORDER: [(ObservableType, ShapeCheck); 14] = [
    (T::Url, looks_like_url),
    (T::Cidr, |s| s.contains('/')),
    (T::Ipv4, |s| s.bytes().all(|b| b.is_ascii_digit() || b == b'.')),
    (T::Ipv6, |s| s.contains(':')),
    (T::Email, |s| s.bytes().filter(|&b| b == b'@').count() == 1),
    (T::Asn, looks_like_asn),
    (T::CertificateFingerprint, looks_like_colon_hex),
    (T::Md5, |s| s.len() == 32 && is_hex(s)),
    (T::Sha1, |s| s.len() == 40 && is_hex(s)),
    (T::Sha256, |s| s.len() == 64 && is_hex(s)),
    (T::CloudAccessKeyId, looks_like_access_key_id),
    (T::CloudResourceName, looks_like_resource_name),
    (T::UserAgent, looks_like_user_agent),
    (T::Domain, |_| true),
];

/// Trims, applies the limits every kind shares, and refangs.
fn prepare(raw: &str) -> Result<Cow<'_, str>, NormalizeError> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(E::Empty);
    }
    if s.len() > MAX_OBSERVABLE_LEN {
        return Err(E::TooLong { len: s.len(), max: MAX_OBSERVABLE_LEN });
    }
    if let Some(c) = find_control(s) {
        return Err(E::ControlCharacter { code: u32::from(c) });
    }
    Ok(refang(s))
}

/// The first control character; byte-wise for ASCII because this runs on every lookup.
fn find_control(s: &str) -> Option<char> {
    if s.is_ascii() {
        s.bytes().find(u8::is_ascii_control).map(char::from)
    } else {
        s.chars().find(|c| c.is_control())
    }
}

/// Normalises a prepared (trimmed, checked, refanged) value as `kind`.
fn normalize_prepared(kind: ObservableType, s: &str) -> Result<String, NormalizeError> {
    match kind {
        T::Ipv4 => normalize_ipv4(s),
        T::Ipv6 => parse_ipv6(s).map(|addr| addr.to_string()),
        T::Cidr => normalize_cidr(s),
        T::Domain => normalize_domain(s),
        T::Url => normalize_url(s),
        T::Email => normalize_email(s),
        T::Md5 | T::Sha1 | T::Sha256 | T::KeyedHash => normalize_hash(kind, s),
        T::Asn => normalize_asn(s),
        T::UserAgent => normalize_user_agent(s),
        T::CloudAccessKeyId => normalize_access_key_id(s),
        T::CloudResourceName => normalize_resource_name(s),
        T::CertificateFingerprint => normalize_fingerprint(s),
    }
}

// ---------------------------------------------------------------------------
// Refanging

/// Defanged spellings analysts use to keep indicators unclickable, matched case-insensitively.
const DEFANGS: [(&str, &str); 10] = [
    ("[://]", "://"),
    ("[dot]", "."),
    ("(dot)", "."),
    ("{dot}", "."),
    ("[.]", "."),
    ("(.)", "."),
    ("{.}", "."),
    ("[:]", ":"),
    ("[@]", "@"),
    ("[at]", "@"),
];

/// Undoes defanging, borrowing when there is none (the common, hot case).
fn refang(s: &str) -> Cow<'_, str> {
    let mut current = Cow::Borrowed(s);
    // A pass can expose a new defang ("[[.]]" -> "[.]"); repeating keeps normalisation idempotent.
    while let Some(next) = refang_pass(&current) {
        current = Cow::Owned(next);
    }
    current
}

/// One left-to-right refang pass, or `None` when nothing was defanged.
fn refang_pass(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out: Option<String> = None;
    let (mut copied, mut i) = (0, 0);
    while i < bytes.len() {
        let Some((len, replacement)) = defang_at(&bytes[i..]) else {
            i += 1;
            continue;
        };
        // Patterns are ASCII, so `copied` and `i` always sit on char boundaries.
        let out = out.get_or_insert_with(|| String::with_capacity(s.len()));
        out.push_str(&s[copied..i]);
        out.push_str(replacement);
        i += len;
        copied = i;
    }
    let mut out = out?;
    out.push_str(&s[copied..]);
    Some(out)
}

/// The defang starting at the beginning of `rest`: its length and what it stands for.
fn defang_at(rest: &[u8]) -> Option<(usize, &'static str)> {
    match rest.first()? {
        b'[' | b'(' | b'{' => DEFANGS
            .iter()
            .find(|(pattern, _)| starts_with_ignore_case(rest, pattern))
            .map(|&(pattern, replacement)| (pattern.len(), replacement)),
        b'h' | b'H' if is_hxxp_scheme(rest) => Some((4, "http")),
        _ => None,
    }
}

/// `hxxp:`/`hxxps:` (or before `[:`), but not `hxxp` inside ordinary words or names.
fn is_hxxp_scheme(rest: &[u8]) -> bool {
    if !starts_with_ignore_case(rest, "hxxp") {
        return false;
    }
    let after = &rest[4..];
    let after = after.strip_prefix(b"s").or_else(|| after.strip_prefix(b"S")).unwrap_or(after);
    matches!(after.first(), Some(b':' | b'['))
}

fn starts_with_ignore_case(haystack: &[u8], pattern: &str) -> bool {
    haystack.len() >= pattern.len() && haystack[..pattern.len()].eq_ignore_ascii_case(pattern.as_bytes())
}

// ---------------------------------------------------------------------------
// Addresses and networks

fn normalize_ipv4(s: &str) -> Result<String, NormalizeError> {
    let addr = parse_ipv4(s)?;
    // With leading zeros refused, an accepted spelling is exactly Ipv4Addr's display form.
    debug_assert_eq!(addr.to_string(), s);
    Ok(s.to_owned())
}

fn parse_ipv4(s: &str) -> Result<Ipv4Addr, NormalizeError> {
    let mut octets = [0u8; 4];
    let mut parts = s.split('.');
    for octet in &mut octets {
        let part = parts.next().ok_or(E::InvalidIpv4 { reason: "it has fewer than four octets" })?;
        *octet = parse_octet(part)?;
    }
    if parts.next().is_some() {
        return Err(E::InvalidIpv4 { reason: "it has more than four octets" });
    }
    Ok(Ipv4Addr::from(octets))
}

fn parse_octet(part: &str) -> Result<u8, NormalizeError> {
    let reason = if part.is_empty() {
        "an octet is empty"
    } else if !part.bytes().all(|b| b.is_ascii_digit()) {
        "an octet is not a decimal number"
    } else if part.len() > 1 && part.starts_with('0') {
        // Some parsers (inet_aton, browsers) read 010 as octal 8: the value is ambiguous.
        "an octet has a leading zero, which some parsers read as octal"
    } else {
        return part.parse().map_err(|_| E::InvalidIpv4 { reason: "an octet is greater than 255" });
    };
    Err(E::InvalidIpv4 { reason })
}

fn parse_ipv6(s: &str) -> Result<Ipv6Addr, NormalizeError> {
    let inner = match s.strip_prefix('[') {
        Some(rest) => {
            rest.strip_suffix(']').ok_or(E::InvalidIpv6 { reason: "an opening bracket has no closing bracket" })?
        }
        None => s,
    };
    if inner.contains('%') {
        return Err(E::InvalidIpv6 { reason: "zone ids (%eth0) only mean something on one host" });
    }
    inner.parse().map_err(|_| E::InvalidIpv6 { reason: "it is not eight groups of hex digits with at most one ::" })
}

fn normalize_cidr(s: &str) -> Result<String, NormalizeError> {
    let (addr, prefix) = s.split_once('/').ok_or(E::InvalidCidr { reason: "the /prefix-length is missing" })?;
    let prefix = parse_prefix_len(prefix)?;
    let too_long =
        |_| E::InvalidCidr { reason: "the prefix length is longer than the address (32 for ipv4, 128 for ipv6)" };
    if addr.contains(':') {
        let addr =
            parse_ipv6(addr).map_err(|_| E::InvalidCidr { reason: "the address is not a valid ipv6 address" })?;
        let net = Ipv6Net::new(addr, prefix).map_err(too_long)?;
        return Ok(net.trunc().to_string());
    }
    let addr = parse_ipv4(addr).map_err(|err| match err {
        E::InvalidIpv4 { reason } => E::InvalidCidr { reason },
        other => other,
    })?;
    let net = Ipv4Net::new(addr, prefix).map_err(too_long)?;
    Ok(net.trunc().to_string())
}

fn parse_prefix_len(s: &str) -> Result<u8, NormalizeError> {
    if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(E::InvalidCidr { reason: "the prefix length is not a number from 0 to 128" });
    }
    s.parse().map_err(|_| E::InvalidCidr { reason: "the prefix length is not a number from 0 to 128" })
}

// ---------------------------------------------------------------------------
// Names

fn normalize_domain(s: &str) -> Result<String, NormalizeError> {
    // Byte tests rather than str patterns: this is the lookup hot path.
    let name = match s.as_bytes().last() {
        Some(b'.') => &s[..s.len() - 1],
        _ => s,
    };
    let ascii = if is_plain_ascii_name(name) {
        // Fast path: lowercasing is all IDNA would do to this name.
        name.to_ascii_lowercase()
    } else {
        to_punycode(name)?
    };
    check_domain(&ascii)?;
    Ok(ascii)
}

/// ASCII letters, digits, `-`, `_` and dots, with no `xn--` label that IDNA must validate.
fn is_plain_ascii_name(name: &str) -> bool {
    name.bytes().all(|b| is_name_byte(b) || b == b'.')
        && !labels(name).any(|label| starts_with_ignore_case(label, "xn--"))
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

fn to_punycode(name: &str) -> Result<String, NormalizeError> {
    if name.bytes().any(|b| b.is_ascii() && !is_name_byte(b) && b != b'.') {
        return Err(E::InvalidDomain {
            reason: "it contains a character other than letters, digits, hyphens and underscores",
        });
    }
    // The URL deny list, unlike STD3, lets `_dmarc`-style service labels through.
    Uts46::new()
        .to_ascii(name.as_bytes(), AsciiDenyList::URL, Hyphens::Allow, DnsLength::Ignore)
        .map(Cow::into_owned)
        .map_err(|_| E::InvalidDomain { reason: "it is not a valid internationalised domain name" })
}

/// Checks DNS rules on a lowercase ASCII name.
fn check_domain(name: &str) -> Result<(), NormalizeError> {
    let err = |reason| Err(E::InvalidDomain { reason });
    if name.len() > MAX_DOMAIN_LEN {
        return err("it is longer than 253 bytes");
    }
    let (mut count, mut tld) = (0, &b""[..]);
    for label in labels(name) {
        check_label(label)?;
        (count, tld) = (count + 1, label);
    }
    if count < 2 {
        return err("it needs at least two labels");
    }
    if tld.iter().all(u8::is_ascii_digit) {
        return err("the top-level label is all digits");
    }
    if tld.contains(&b'_') {
        return err("the top-level label contains an underscore");
    }
    Ok(())
}

/// The dot-separated labels of a name, as bytes.
fn labels(name: &str) -> impl Iterator<Item = &[u8]> {
    name.as_bytes().split(|&b| b == b'.')
}

fn check_label(label: &[u8]) -> Result<(), NormalizeError> {
    let reason = if label.is_empty() {
        "it has an empty label (a leading dot or two dots in a row)"
    } else if label.len() > MAX_DOMAIN_LABEL_LEN {
        "a label is longer than 63 bytes"
    } else if !label.iter().all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_') {
        "it contains a character other than letters, digits, hyphens and underscores"
    } else if label.first() == Some(&b'-') || label.last() == Some(&b'-') {
        "a label starts or ends with a hyphen"
    } else {
        return Ok(());
    };
    Err(E::InvalidDomain { reason })
}

fn normalize_url(s: &str) -> Result<String, NormalizeError> {
    let mut canonical = parse_url(s)?;
    // Host mapping can produce a defanged spelling (`(。)` -> `(.)`, `ｈｘｘｐ:8080` -> `hxxp:8080`);
    // settling it here keeps normalising a canonical URL a no-op.
    for _ in 0..MAX_URL_REFANG_ROUNDS {
        match refang(&canonical) {
            Cow::Borrowed(_) => return Ok(canonical),
            Cow::Owned(refanged) => canonical = parse_url(&refanged)?,
        }
    }
    Err(E::InvalidUrl { reason: "it still looks defanged after repeated refanging" })
}

/// Rounds of refang-and-parse before giving up on a URL built to never settle.
const MAX_URL_REFANG_ROUNDS: usize = 3;

/// The url crate's canonical form of `s`, with http assumed, a host required and the fragment dropped.
fn parse_url(s: &str) -> Result<String, NormalizeError> {
    let with_scheme: Cow<'_, str> = if has_scheme(s) {
        s.into()
    } else {
        // Analysts often drop the scheme; browsers would assume http too.
        format!("http://{s}").into()
    };
    let mut url = Url::parse(&with_scheme).map_err(E::MalformedUrl)?;
    canonicalize_host(&mut url)?;
    // The fragment never reaches the server, so it cannot distinguish two indicators.
    url.set_fragment(None);
    let canonical = String::from(url);
    if canonical.len() > MAX_OBSERVABLE_LEN {
        return Err(E::TooLong { len: canonical.len(), max: MAX_OBSERVABLE_LEN });
    }
    Ok(canonical)
}

/// Requires a non-empty host and gives hosts of non-http-like schemes the same form http gets.
fn canonicalize_host(url: &mut Url) -> Result<(), NormalizeError> {
    match url.host() {
        None => Err(E::InvalidUrl { reason: "it has no host" }),
        Some(Host::Domain("")) => Err(E::InvalidUrl { reason: "its host is empty" }),
        // The url crate keeps hosts of schemes it does not know opaque: not lowercased, not IDNA.
        Some(Host::Domain(opaque)) if !url.is_special() => {
            let host = special_host(opaque).unwrap_or_else(|| opaque.to_ascii_lowercase());
            url.set_host(Some(&host)).map_err(E::MalformedUrl)
        }
        Some(_) => Ok(()),
    }
}

/// The form an opaque host takes in an http URL (percent-decoded, IDNA, lowercase), if it is valid there.
fn special_host(opaque: &str) -> Option<String> {
    // Opaque hosts exclude `/`, `@`, `:` and the like, so the host alone is all that gets parsed.
    Url::parse(&format!("http://{opaque}/")).ok()?.host_str().map(str::to_owned)
}

/// True when `s` starts with `scheme:` that is not a `host:port`.
fn has_scheme(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    is_scheme(scheme) && !rest.starts_with(|c: char| c.is_ascii_digit())
}

/// RFC 3986 scheme: a letter, then letters, digits, `+`, `-` or `.`.
fn is_scheme(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

fn normalize_email(s: &str) -> Result<String, NormalizeError> {
    let err = |reason| E::InvalidEmail { reason };
    let (local, domain) = s.split_once('@').ok_or(err("it has no @"))?;
    if domain.contains('@') {
        return Err(err("it has more than one @"));
    }
    check_email_local(local)?;
    if domain.is_empty() {
        return Err(err("the domain part is empty"));
    }
    let domain = normalize_domain(domain).map_err(|e| match e {
        E::InvalidDomain { reason } => err(reason),
        other => other,
    })?;
    Ok(format!("{}@{domain}", local.to_ascii_lowercase()))
}

fn check_email_local(local: &str) -> Result<(), NormalizeError> {
    let reason = if local.is_empty() {
        "the local part is empty"
    } else if local.len() > MAX_EMAIL_LOCAL_LEN {
        "the local part is longer than 64 bytes"
    } else if !local.bytes().all(is_email_local_byte) {
        "the local part contains a space, quote, non-ascii or one of (),:;<>[\\]"
    } else {
        return Ok(());
    };
    Err(E::InvalidEmail { reason })
}

/// RFC 5322 `atext` plus the dot: what a local part may hold without quoting.
fn is_email_local_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b)
}

// ---------------------------------------------------------------------------
// Hashes, numbers and keys

fn normalize_hash(kind: ObservableType, s: &str) -> Result<String, NormalizeError> {
    let expected = kind.hash_len().expect("normalize_hash is called for hash kinds");
    if s.len() != expected {
        return Err(E::InvalidHash { kind, expected, found: s.chars().count() });
    }
    if !is_hex(s) {
        return Err(E::NotHex { kind });
    }
    Ok(s.to_ascii_lowercase())
}

fn is_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn normalize_asn(s: &str) -> Result<String, NormalizeError> {
    let number = match s.get(..2) {
        Some(prefix) if prefix.eq_ignore_ascii_case("as") => s[2..].trim_start(),
        _ => s,
    };
    let asn = match number.split_once('.') {
        // asdot notation (RFC 5396): high.low for 32-bit numbers.
        Some((high, low)) => (u32::from(parse_asn_half(high)?) << 16) | u32::from(parse_asn_half(low)?),
        None => parse_asn_digits(number)?,
    };
    Ok(format!("AS{asn}"))
}

fn parse_asn_digits(s: &str) -> Result<u32, NormalizeError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(E::InvalidAsn { reason: "the number is missing or not decimal" });
    }
    s.parse().map_err(|_| E::InvalidAsn { reason: "the number is greater than 4294967295" })
}

fn parse_asn_half(s: &str) -> Result<u16, NormalizeError> {
    let n = parse_asn_digits(s)?;
    u16::try_from(n).map_err(|_| E::InvalidAsn { reason: "a part of an asdot number is greater than 65535" })
}

/// AWS access key id prefixes by principal type (user keys, STS keys, groups, roles, ...).
const AWS_KEY_PREFIXES: [&str; 11] =
    ["AKIA", "ASIA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA", "APKA", "ABIA", "ACCA"];

fn normalize_access_key_id(s: &str) -> Result<String, NormalizeError> {
    let key = s.to_ascii_uppercase();
    if is_aws_key_id(&key) || is_google_hmac_id(&key) {
        Ok(key)
    } else {
        Err(E::InvalidAccessKeyId)
    }
}

fn is_aws_key_id(key: &str) -> bool {
    key.len() == 20 && AWS_KEY_PREFIXES.iter().any(|p| key.starts_with(p)) && is_upper_alnum(&key[4..])
}

fn is_google_hmac_id(key: &str) -> bool {
    key.strip_prefix("GOOG").is_some_and(|rest| (20..=60).contains(&rest.len()) && is_upper_alnum(rest))
}

fn is_upper_alnum(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

// ---------------------------------------------------------------------------
// Cloud resource names

fn normalize_resource_name(s: &str) -> Result<String, NormalizeError> {
    if starts_with_ignore_case(s.as_bytes(), "arn:") {
        normalize_arn(s)
    } else if starts_with_ignore_case(s.as_bytes(), "/subscriptions/") {
        normalize_azure_id(s)
    } else if let Some(rest) = s.strip_prefix("//") {
        normalize_gcp_name(rest)
    } else {
        Err(E::InvalidResourceName { reason: "it is not an arn, an azure resource id or a gcp resource name" })
    }
}

/// AWS partitions; `aws-iso*` covers the isolated regions and `aws-eusc` the European Sovereign Cloud.
fn is_aws_partition(p: &str) -> bool {
    matches!(p, "aws" | "aws-cn" | "aws-us-gov" | "aws-eusc") || p.starts_with("aws-iso")
}

fn normalize_arn(s: &str) -> Result<String, NormalizeError> {
    let err = |reason| Err(E::InvalidResourceName { reason });
    let mut parts = s.splitn(6, ':');
    let (Some(_), Some(partition), Some(service), Some(region), Some(account), Some(resource)) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return err("the arn has fewer than six colon-separated parts");
    };
    let [partition, service, region, account] = [partition, service, region, account].map(str::to_ascii_lowercase);
    if !is_aws_partition(&partition) {
        return err("the arn partition is not aws, aws-cn, aws-us-gov, aws-eusc or aws-iso*");
    }
    if service.is_empty() || !is_lower_ldh(&service) || !is_lower_ldh(&region) {
        return err("the arn service or region has characters other than letters, digits and hyphens");
    }
    if !(account.is_empty() || account == "aws" || is_account_id(&account)) {
        return err("the arn account is not empty, aws or a 12-digit account id");
    }
    if resource.is_empty() {
        return err("the arn resource is empty");
    }
    Ok(format!("arn:{partition}:{service}:{region}:{account}:{resource}"))
}

fn is_lower_ldh(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

fn normalize_azure_id(s: &str) -> Result<String, NormalizeError> {
    let err = |reason| Err(E::InvalidResourceName { reason });
    // Azure resource ids are case-insensitive, so one case is the only way they compare equal.
    let lower = s.to_ascii_lowercase();
    let id = lower.trim_end_matches('/');
    let rest = id.get("/subscriptions/".len()..).unwrap_or("");
    let subscription = rest.split('/').next().unwrap_or("");
    if !is_guid(subscription) {
        return err("the azure subscription id is not a guid");
    }
    if id.contains("//") || id.contains(char::is_whitespace) {
        return err("the azure resource id has an empty segment or whitespace");
    }
    Ok(id.to_owned())
}

/// A GUID in its usual 8-4-4-4-12 hex form.
fn is_guid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

fn normalize_gcp_name(rest: &str) -> Result<String, NormalizeError> {
    let err = |reason| Err(E::InvalidResourceName { reason });
    let Some((host, path)) = rest.split_once('/') else {
        return err("the gcp resource name has no path after the service");
    };
    let host = host.to_ascii_lowercase();
    let service = host.strip_suffix(".googleapis.com").unwrap_or("");
    if service.is_empty() || !is_lower_ldh(service) {
        return err("the gcp service is not <service>.googleapis.com");
    }
    if path.is_empty() || path.contains(char::is_whitespace) {
        return err("the gcp resource path is empty or has whitespace");
    }
    Ok(format!("//{host}/{path}"))
}

// ---------------------------------------------------------------------------
// Fingerprints and user agents

fn normalize_fingerprint(s: &str) -> Result<String, NormalizeError> {
    let err = |reason| Err(E::InvalidFingerprint { reason });
    let is_separator = |c: char| c == ':' || c == ' ';
    let hex: String = if s.contains(is_separator) {
        if !s.split(is_separator).all(|pair| pair.len() == 2) {
            return err("separated digits do not come in pairs");
        }
        s.split(is_separator).collect()
    } else {
        s.to_owned()
    };
    if !is_hex(&hex) {
        return err("it contains a character that is not a hex digit");
    }
    if hex.len() != 40 && hex.len() != 64 {
        return err("it has neither 40 nor 64 hex digits");
    }
    Ok(hex.to_ascii_lowercase())
}

fn normalize_user_agent(s: &str) -> Result<String, NormalizeError> {
    if s.chars().any(is_invisible_format) {
        return Err(E::InvalidUserAgent {
            reason: "it contains an invisible zero-width or bidirectional formatting character",
        });
    }
    // Log pipelines re-space headers differently; one space keeps the same agent one value.
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    if out.len() > MAX_USER_AGENT_LEN {
        return Err(E::TooLong { len: out.len(), max: MAX_USER_AGENT_LEN });
    }
    Ok(out)
}

/// Characters that change how text displays without being seen, a classic way to disguise a value.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}' | '\u{FEFF}'
    )
}

// ---------------------------------------------------------------------------
// Detection shapes

/// `scheme://...`, or `www.` with a path.
fn looks_like_url(s: &str) -> bool {
    match s.find("://") {
        Some(i) if is_scheme(&s[..i]) => true,
        _ => starts_with_ignore_case(s.as_bytes(), "www.") && s.contains('/'),
    }
}

/// `AS` then digits (or asdot); bare numbers are too ambiguous to call an ASN.
fn looks_like_asn(s: &str) -> bool {
    starts_with_ignore_case(s.as_bytes(), "as")
        && s[2..].starts_with(|c: char| c.is_ascii_digit())
        && s[2..].bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

fn looks_like_colon_hex(s: &str) -> bool {
    s.contains(':') && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b':')
}

/// Real key ids are upper case; requiring it keeps ordinary words from being taken for keys.
fn looks_like_access_key_id(s: &str) -> bool {
    is_upper_alnum(s) && (is_aws_key_id(s) || is_google_hmac_id(s))
}

fn looks_like_resource_name(s: &str) -> bool {
    starts_with_ignore_case(s.as_bytes(), "arn:")
        || starts_with_ignore_case(s.as_bytes(), "/subscriptions/")
        || (s.starts_with("//") && s.contains(".googleapis.com/"))
}

/// A `product/version` token among words (`Mozilla/5.0 (...)`), or a lone `curl/8.4.0`.
fn looks_like_user_agent(s: &str) -> bool {
    if s.contains(char::is_whitespace) {
        s.split_whitespace().any(|t| is_product_token(t, |b| is_name_byte(b) || b == b'.'))
    } else {
        // Without spaces a dotted name would be a host with a path, not a product.
        is_product_token(s, is_name_byte)
    }
}

/// `name/version` where the version starts with a digit.
fn is_product_token(token: &str, name_byte: fn(u8) -> bool) -> bool {
    token.split_once('/').is_some_and(|(name, version)| {
        !name.is_empty() && name.bytes().all(name_byte) && version.starts_with(|c: char| c.is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Asserts that each raw value normalises to its expected canonical form.
    fn assert_canonical(kind: ObservableType, cases: &[(&str, &str)]) {
        for &(raw, expected) in cases {
            assert_eq!(normalize(kind, raw).as_deref(), Ok(expected), "{kind} {raw:?}");
        }
    }

    /// Asserts that a raw value is refused with an error matching the pattern.
    macro_rules! assert_refused {
        ($kind:expr, $raw:expr, $pattern:pat) => {{
            let result = normalize($kind, $raw);
            assert!(matches!(result, Err($pattern)), "{} {:?} gave {:?}", $kind, $raw, result);
        }};
    }

    fn error_text(kind: ObservableType, raw: &str) -> String {
        normalize(kind, raw).expect_err("value should be refused").to_string()
    }

    #[test]
    fn observable_type_codes_match_proto_numbers() {
        let expected = [
            (T::Ipv4, 1),
            (T::Ipv6, 2),
            (T::Cidr, 3),
            (T::Domain, 4),
            (T::Url, 5),
            (T::Email, 6),
            (T::Md5, 7),
            (T::Sha1, 8),
            (T::Sha256, 9),
            (T::Asn, 10),
            (T::UserAgent, 11),
            (T::CloudAccessKeyId, 12),
            (T::CloudResourceName, 13),
            (T::CertificateFingerprint, 14),
            (T::KeyedHash, 15),
        ];
        for (kind, code) in expected {
            assert_eq!(kind.code(), code, "{kind}");
            assert_eq!(ObservableType::from_code(code), Some(kind));
        }
        assert_eq!(ObservableType::ALL.map(ObservableType::code).to_vec(), (1..=15).collect::<Vec<u8>>());
    }

    #[test]
    fn unspecified_and_unknown_codes_have_no_type() {
        assert_eq!(ObservableType::from_code(0), None);
        assert_eq!(ObservableType::from_code(16), None);
        assert_eq!(ObservableType::from_code(255), None);
    }

    #[test]
    fn type_names_round_trip_through_display_and_from_str() {
        for kind in ObservableType::ALL {
            assert_eq!(kind.to_string().parse::<ObservableType>(), Ok(kind));
            assert_eq!(kind.as_str().to_uppercase().parse::<ObservableType>(), Ok(kind));
        }
        assert_eq!("user_agent".parse(), Ok(T::UserAgent));
    }

    #[test]
    fn type_aliases_analysts_type_are_accepted() {
        let aliases = [
            ("hostname", T::Domain),
            ("access-key", T::CloudAccessKeyId),
            ("ARN", T::CloudResourceName),
            ("fingerprint", T::CertificateFingerprint),
            ("ua", T::UserAgent),
            ("as", T::Asn),
        ];
        for (name, kind) in aliases {
            assert_eq!(name.parse(), Ok(kind), "{name}");
        }
    }

    #[test]
    fn ambiguous_or_unknown_type_names_are_refused() {
        for name in ["ip", "hash", "", "ipv5"] {
            let err = name.parse::<ObservableType>().expect_err(name);
            assert!(matches!(err, E::UnknownType { .. }), "{name}");
            assert!(err.to_string().contains("expected one of ipv4"), "{err}");
        }
    }

    #[test]
    fn surrounding_whitespace_is_trimmed() {
        assert_canonical(T::Ipv4, &[(" \t192.0.2.1\n", "192.0.2.1")]);
        assert_canonical(T::Domain, &[("\u{a0}example.com ", "example.com")]);
    }

    #[test]
    fn empty_values_are_refused() {
        for kind in ObservableType::ALL {
            assert_refused!(kind, "", E::Empty);
            assert_refused!(kind, " \n\t ", E::Empty);
        }
    }

    #[test]
    fn values_over_the_length_limit_are_refused() {
        let long = format!("http://example.com/{}", "a".repeat(MAX_OBSERVABLE_LEN));
        let err = normalize(T::Url, &long).expect_err("too long");
        assert_eq!(err, E::TooLong { len: long.len(), max: MAX_OBSERVABLE_LEN });
        assert!(detect(&long).is_err());
    }

    #[test]
    fn control_characters_are_refused() {
        assert_refused!(T::Domain, "exa\u{0}mple.com", E::ControlCharacter { code: 0 });
        assert_refused!(T::UserAgent, "curl/8.4.0\tx", E::ControlCharacter { code: 9 });
        assert_refused!(T::Url, "http://example.com/a\u{85}b", E::ControlCharacter { code: 0x85 });
        assert!(error_text(T::Domain, "a\u{1b}.com").contains("U+001B"));
    }

    #[test]
    fn defanged_values_are_refanged() {
        assert_canonical(T::Ipv4, &[("192.0.2[.]1", "192.0.2.1"), ("192(.)0{.}2[dot]1", "192.0.2.1")]);
        assert_canonical(T::Ipv6, &[("2001:db8[:]:1", "2001:db8::1")]);
        assert_canonical(T::Cidr, &[("10.0.0[.]0/8", "10.0.0.0/8")]);
        assert_canonical(
            T::Domain,
            &[
                ("evil[.]example", "evil.example"),
                ("evil[DOT]example", "evil.example"),
                ("evil(dot)example{dot}com", "evil.example.com"),
            ],
        );
        assert_canonical(
            T::Url,
            &[
                ("hxxps://evil[.]example/x", "https://evil.example/x"),
                ("hXXp[://]evil{.}example/x", "http://evil.example/x"),
                ("HXXPS[:]//evil.example", "https://evil.example/"),
            ],
        );
        assert_canonical(
            T::Email,
            &[("bob[@]evil[.]example", "bob@evil.example"), ("bob[at]evil.example", "bob@evil.example")],
        );
    }

    #[test]
    fn refanging_repeats_until_nothing_is_defanged() {
        assert_canonical(T::Domain, &[("evil[[.]]example", "evil.example")]);
    }

    #[test]
    fn hxxp_inside_a_name_is_not_taken_for_a_scheme() {
        assert_canonical(T::Domain, &[("hxxpool.example", "hxxpool.example")]);
    }

    #[test]
    fn ipv4_keeps_its_dotted_quad_form() {
        assert_canonical(
            T::Ipv4,
            &[("192.0.2.1", "192.0.2.1"), ("0.0.0.0", "0.0.0.0"), ("255.255.255.255", "255.255.255.255")],
        );
    }

    #[test]
    fn ipv4_leading_zero_octet_is_refused_as_ambiguous_octal() {
        for raw in ["010.0.0.1", "10.0.0.01", "00.1.2.3"] {
            assert_refused!(T::Ipv4, raw, E::InvalidIpv4 { .. });
            assert!(error_text(T::Ipv4, raw).contains("leading zero"), "{raw}");
        }
    }

    #[test]
    fn malformed_ipv4_is_refused() {
        for raw in ["1.2.3", "1.2.3.4.5", "1.2.3.256", "1..2.3", "1.2.3.a", "+1.2.3.4", "0x7f.0.0.1", "1.2.3.4/32"] {
            assert_refused!(T::Ipv4, raw, E::InvalidIpv4 { .. });
        }
    }

    #[test]
    fn ipv6_is_written_in_rfc5952_form() {
        assert_canonical(
            T::Ipv6,
            &[
                ("2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
                ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
                ("[::1]", "::1"),
                ("::FFFF:192.0.2.1", "::ffff:192.0.2.1"),
            ],
        );
    }

    #[test]
    fn ipv6_zone_ids_and_malformed_addresses_are_refused() {
        for raw in ["fe80::1%eth0", "[::1", "2001:db8:::1", "192.0.2.1", "2001:db8::g"] {
            assert_refused!(T::Ipv6, raw, E::InvalidIpv6 { .. });
        }
        assert!(error_text(T::Ipv6, "fe80::1%eth0").contains("zone"));
    }

    #[test]
    fn cidr_host_bits_are_cleared() {
        assert_canonical(
            T::Cidr,
            &[
                ("192.0.2.77/24", "192.0.2.0/24"),
                ("10.1.2.3/8", "10.0.0.0/8"),
                ("192.0.2.1/32", "192.0.2.1/32"),
                ("0.0.0.0/0", "0.0.0.0/0"),
                ("2001:DB8::1/32", "2001:db8::/32"),
                ("::/0", "::/0"),
            ],
        );
    }

    #[test]
    fn cidr_with_bad_prefix_or_address_is_refused() {
        for raw in [
            "10.0.0.0/33",
            "2001:db8::/129",
            "10.0.0.0",
            "10.0.0.0/",
            "10.0.0.0/abc",
            "10.0.0.0/+8",
            "010.0.0.0/8",
            "gg::/8",
        ] {
            assert_refused!(T::Cidr, raw, E::InvalidCidr { .. });
        }
    }

    #[test]
    fn domains_are_lowercased_without_the_trailing_dot() {
        assert_canonical(
            T::Domain,
            &[
                ("WWW.Example.COM.", "www.example.com"),
                ("example.com", "example.com"),
                ("_dmarc.example.com", "_dmarc.example.com"),
                ("a-b--c.example", "a-b--c.example"),
            ],
        );
    }

    #[test]
    fn unicode_domains_become_punycode() {
        assert_canonical(
            T::Domain,
            &[
                ("Bücher.example", "xn--bcher-kva.example"),
                ("XN--BCHER-KVA.example", "xn--bcher-kva.example"),
                ("münchen.de.", "xn--mnchen-3ya.de"),
                ("пример.рф", "xn--e1afmkfd.xn--p1ai"),
            ],
        );
    }

    #[test]
    fn domains_breaking_dns_rules_are_refused() {
        let long_label = format!("{}.example", "a".repeat(64));
        let long_name = format!("{}example", "abcdefghi.".repeat(25));
        for raw in [
            "localhost",
            "exa mple.com",
            "-evil.example",
            "evil-.example",
            "evil..example",
            ".example.com",
            "example.com..",
            "example.123",
            "example.c_m",
            "*.example.com",
            "evil.example/path",
            "xn--.example",
            long_label.as_str(),
            long_name.as_str(),
        ] {
            assert_refused!(T::Domain, raw, E::InvalidDomain { .. });
        }
    }

    #[test]
    fn urls_are_normalised_as_browsers_would() {
        assert_canonical(
            T::Url,
            &[
                ("HTTP://Example.COM:80/a/../b#x", "http://example.com/b"),
                ("https://example.com:443", "https://example.com/"),
                ("https://example.com:8443/x?q=1#frag", "https://example.com:8443/x?q=1"),
                ("http://Bücher.example/ä", "http://xn--bcher-kva.example/%C3%A4"),
                ("http://example.com/a b", "http://example.com/a%20b"),
                ("FTP://FTP.example.com/file", "ftp://ftp.example.com/file"),
                ("wss://example.com:443/socket", "wss://example.com/socket"),
                ("ssh://Host.Example.COM/x", "ssh://host.example.com/x"),
                ("ssh://git@Bücher.example:2222/r", "ssh://git@xn--bcher-kva.example:2222/r"),
                ("http://192.0.2.1:8080/", "http://192.0.2.1:8080/"),
                ("http://[2001:DB8::1]/", "http://[2001:db8::1]/"),
            ],
        );
    }

    #[test]
    fn urls_whose_host_maps_to_a_defanged_spelling_settle_in_one_normalisation() {
        for raw in ["http://(\u{3002})\u{3002}/", "http://\u{ff48}\u{ff58}\u{ff58}\u{ff50}:8080/"] {
            let canonical = normalize(T::Url, raw).expect("valid url");
            assert!(is_canonical(T::Url, &canonical), "{raw:?} gave {canonical:?}");
        }
    }

    #[test]
    fn urls_without_a_scheme_get_http() {
        assert_canonical(
            T::Url,
            &[
                ("example.com/path", "http://example.com/path"),
                ("Example.com:8080/x", "http://example.com:8080/x"),
                ("www.example.com", "http://www.example.com/"),
            ],
        );
    }

    #[test]
    fn urls_without_a_usable_host_are_refused() {
        assert_refused!(T::Url, "file:///etc/passwd", E::InvalidUrl { .. });
        assert_refused!(T::Url, "mailto:bob@example.com", E::InvalidUrl { .. });
        assert_refused!(T::Url, "http://", E::MalformedUrl(_));
        assert_refused!(T::Url, "http://exa mple.com/", E::MalformedUrl(_));
        assert_refused!(T::Url, "http://example.com:99999/", E::MalformedUrl(_));
    }

    #[test]
    fn emails_are_lowercased_with_a_canonical_domain() {
        assert_canonical(
            T::Email,
            &[
                ("Bob.Smith@Example.COM", "bob.smith@example.com"),
                ("bob+tag@Bücher.example.", "bob+tag@xn--bcher-kva.example"),
                ("o'neil@example.com", "o'neil@example.com"),
            ],
        );
    }

    #[test]
    fn malformed_emails_are_refused() {
        let long_local = format!("{}@example.com", "a".repeat(65));
        for raw in [
            "bob",
            "bob@alice@example.com",
            "@example.com",
            "bob@",
            "bob smith@example.com",
            "\"bob\"@example.com",
            "<bob@example.com>",
            "bob@localhost",
            "bob@-x.example",
            "bøb@example.com",
            long_local.as_str(),
        ] {
            assert_refused!(T::Email, raw, E::InvalidEmail { .. });
        }
    }

    #[test]
    fn hashes_are_lowercase_hex() {
        assert_canonical(T::Md5, &[("D41D8CD98F00B204E9800998ECF8427E", "d41d8cd98f00b204e9800998ecf8427e")]);
        assert_canonical(
            T::Sha1,
            &[("DA39A3EE5E6B4B0D3255BFEF95601890AFD80709", "da39a3ee5e6b4b0d3255bfef95601890afd80709")],
        );
        let sha256 = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
        assert_canonical(T::Sha256, &[(sha256, &sha256.to_lowercase())]);
    }

    #[test]
    fn hash_of_wrong_length_says_expected_and_found() {
        let err = normalize(T::Md5, "d41d8cd98f00b204e9800998ecf8427").expect_err("31 digits");
        assert_eq!(err, E::InvalidHash { kind: T::Md5, expected: 32, found: 31 });
        assert_eq!(err.to_string(), "md5 hash has 31 characters; expected 32 hex digits");
        let md5 = "d41d8cd98f00b204e9800998ecf8427e";
        assert_refused!(T::Sha256, md5, E::InvalidHash { expected: 64, found: 32, .. });
    }

    #[test]
    fn hash_with_non_hex_digit_is_refused() {
        assert_refused!(T::Md5, "g41d8cd98f00b204e9800998ecf8427e", E::NotHex { kind: T::Md5 });
        assert_refused!(T::Sha1, "da39a3ee5e6b4b0d3255bfef95601890afd8070z", E::NotHex { kind: T::Sha1 });
    }

    #[test]
    fn asns_are_written_with_an_as_prefix() {
        assert_canonical(
            T::Asn,
            &[
                ("AS64496", "AS64496"),
                ("as64496", "AS64496"),
                ("64496", "AS64496"),
                ("AS 64496", "AS64496"),
                ("AS0", "AS0"),
                ("AS4294967295", "AS4294967295"),
                ("AS1.10", "AS65546"),
            ],
        );
    }

    #[test]
    fn asns_outside_u32_or_not_numbers_are_refused() {
        for raw in ["AS", "AS-1", "AS+5", "ASX", "AS4294967296", "AS1.65536", "AS1.", "64496a"] {
            assert_refused!(T::Asn, raw, E::InvalidAsn { .. });
        }
    }

    #[test]
    fn user_agent_whitespace_runs_collapse_to_one_space() {
        assert_canonical(
            T::UserAgent,
            &[
                ("Mozilla/5.0   (X11;  Linux x86_64)", "Mozilla/5.0 (X11; Linux x86_64)"),
                ("  curl/8.4.0 ", "curl/8.4.0"),
                ("python-requests/2.31.0\u{a0}\u{2003}extra", "python-requests/2.31.0 extra"),
            ],
        );
    }

    #[test]
    fn user_agents_too_long_or_with_hidden_characters_are_refused() {
        let long = format!("Mozilla/5.0 {}", "x".repeat(MAX_USER_AGENT_LEN));
        assert_refused!(T::UserAgent, &long, E::TooLong { max: MAX_USER_AGENT_LEN, .. });
        assert_refused!(T::UserAgent, "curl/8.4.0 \u{202e}evil", E::InvalidUserAgent { .. });
        assert_refused!(T::UserAgent, "curl/8.4.0\u{200b}", E::InvalidUserAgent { .. });
    }

    #[test]
    fn access_key_ids_are_uppercase() {
        assert_canonical(
            T::CloudAccessKeyId,
            &[
                ("AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
                ("asiaiosfodnn7example", "ASIAIOSFODNN7EXAMPLE"),
                ("AROA1234567890ABCDEF", "AROA1234567890ABCDEF"),
                ("GOOGTS7C7FUP3AIRVJTE2BCD", "GOOGTS7C7FUP3AIRVJTE2BCD"),
            ],
        );
    }

    #[test]
    fn unknown_access_key_shapes_are_refused_with_the_pattern() {
        for raw in [
            "AKIAIOSFODNN7EXAMPL",
            "AKIAIOSFODNN7EXAMPLEX",
            "AKIAIOSFODNN7EXAMP-E",
            "XXXXIOSFODNN7EXAMPLE",
            "GOOG1234",
            "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        ] {
            assert_refused!(T::CloudAccessKeyId, raw, E::InvalidAccessKeyId);
        }
        assert!(error_text(T::CloudAccessKeyId, "x").contains("AKIA"));
    }

    #[test]
    fn resource_names_are_canonical_per_cloud() {
        assert_canonical(
            T::CloudResourceName,
            &[
                ("ARN:AWS:IAM::123456789012:role/Admin", "arn:aws:iam::123456789012:role/Admin"),
                ("arn:aws:s3:::My-Bucket/Key:With:Colons", "arn:aws:s3:::My-Bucket/Key:With:Colons"),
                ("arn:aws:iam::aws:policy/ReadOnlyAccess", "arn:aws:iam::aws:policy/ReadOnlyAccess"),
                (
                    "arn:aws-us-gov:EC2:US-GOV-WEST-1:123456789012:instance/i-0ABC",
                    "arn:aws-us-gov:ec2:us-gov-west-1:123456789012:instance/i-0ABC",
                ),
                ("arn:aws-iso-b:s3:::bucket", "arn:aws-iso-b:s3:::bucket"),
                (
                    "/subscriptions/0B1F6471-1BF0-4DDA-AEC3-CB9272F09590/resourceGroups/RG/providers/Microsoft.Compute/virtualMachines/VM1/",
                    "/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourcegroups/rg/providers/microsoft.compute/virtualmachines/vm1",
                ),
                (
                    "//compute.googleapis.com/projects/My-Proj/zones/us-central1-a/instances/VM",
                    "//compute.googleapis.com/projects/My-Proj/zones/us-central1-a/instances/VM",
                ),
                ("//Storage.GoogleAPIs.com/projects/_/buckets/B", "//storage.googleapis.com/projects/_/buckets/B"),
            ],
        );
    }

    #[test]
    fn malformed_resource_names_are_refused() {
        for raw in [
            "arn:aws:iam",
            "arn:aws:iam::123456789012",
            "arn:gcp:iam::123456789012:role/x",
            "arn:aws:iam::12345:role/x",
            "arn:aws:i_am::123456789012:role/x",
            "arn:aws:s3:::",
            "/subscriptions/not-a-guid/resourceGroups/x",
            "/subscriptions/",
            "//compute.example.com/projects/x",
            "//compute.googleapis.com",
            "projects/x/instances/y",
        ] {
            assert_refused!(T::CloudResourceName, raw, E::InvalidResourceName { .. });
        }
    }

    #[test]
    fn fingerprints_lose_separators_and_case() {
        let sha1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709";
        let colons = "DA:39:A3:EE:5E:6B:4B:0D:32:55:BF:EF:95:60:18:90:AF:D8:07:09";
        let sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_canonical(
            T::CertificateFingerprint,
            &[(sha1, sha1), (colons, sha1), (&colons.replace(':', " "), sha1), (&sha256.to_uppercase(), sha256)],
        );
    }

    #[test]
    fn fingerprints_of_wrong_size_or_shape_are_refused() {
        for raw in [
            "d41d8cd98f00b204e9800998ecf8427e",
            "DA:39:A3:EE:5E:6B:4B:0D:32:55:BF:EF:95:60:18:90:AF:D8:07",
            "DA:39A:3EE:5E:6B:4B:0D:32:55:BF:EF:95:60:18:90:AF:D8:07:09",
            "DA::39:A3:EE:5E:6B:4B:0D:32:55:BF:EF:95:60:18:90:AF:D8:07:09",
            "zz39a3ee5e6b4b0d3255bfef95601890afd80709",
        ] {
            assert_refused!(T::CertificateFingerprint, raw, E::InvalidFingerprint { .. });
        }
    }

    #[test]
    fn detection_finds_each_kind() {
        let cases = [
            ("hxxps://Evil[.]example/a", T::Url, "https://evil.example/a"),
            ("www.evil.example/login", T::Url, "http://www.evil.example/login"),
            ("192.0.2.77/24", T::Cidr, "192.0.2.0/24"),
            ("2001:db8::1/48", T::Cidr, "2001:db8::/48"),
            ("192.0.2.1", T::Ipv4, "192.0.2.1"),
            ("2001:DB8::1", T::Ipv6, "2001:db8::1"),
            ("[::1]", T::Ipv6, "::1"),
            ("Bob@Example.com", T::Email, "bob@example.com"),
            ("AS64496", T::Asn, "AS64496"),
            (
                "DA:39:A3:EE:5E:6B:4B:0D:32:55:BF:EF:95:60:18:90:AF:D8:07:09",
                T::CertificateFingerprint,
                "da39a3ee5e6b4b0d3255bfef95601890afd80709",
            ),
            ("D41D8CD98F00B204E9800998ECF8427E", T::Md5, "d41d8cd98f00b204e9800998ecf8427e"),
            ("da39a3ee5e6b4b0d3255bfef95601890afd80709", T::Sha1, "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
            (
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                T::Sha256,
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
            ("AKIAIOSFODNN7EXAMPLE", T::CloudAccessKeyId, "AKIAIOSFODNN7EXAMPLE"),
            ("arn:aws:iam::123456789012:role/Admin", T::CloudResourceName, "arn:aws:iam::123456789012:role/Admin"),
            (
                "/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourceGroups/rg",
                T::CloudResourceName,
                "/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourcegroups/rg",
            ),
            (
                "//storage.googleapis.com/projects/_/buckets/b",
                T::CloudResourceName,
                "//storage.googleapis.com/projects/_/buckets/b",
            ),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64)", T::UserAgent, "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"),
            ("curl/8.4.0", T::UserAgent, "curl/8.4.0"),
            ("Bücher.Example.", T::Domain, "xn--bcher-kva.example"),
            ("evil[.]example", T::Domain, "evil.example"),
        ];
        for (raw, kind, value) in cases {
            let expected = Observable { kind, value: value.to_owned() };
            assert_eq!(detect(raw), Ok(expected), "{raw:?}");
        }
    }

    #[test]
    fn a_user_agent_holding_a_url_is_detected_as_a_user_agent() {
        let ua = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
        assert_eq!(detect(ua).map(|o| o.kind), Ok(T::UserAgent));
    }

    #[test]
    fn values_that_fit_no_kind_are_undetectable() {
        for raw in ["hello world", "!!!", "localhost", "010.0.0.1", "64496", "example.com/path", "akiaiosfodnn7example"]
        {
            assert_eq!(detect(raw), Err(E::Undetectable), "{raw:?}");
        }
        assert_eq!(E::Undetectable.to_string(), "cannot detect the observable type; give it explicitly");
    }

    #[test]
    fn parse_uses_the_given_kind_or_detects_one() {
        assert_eq!(
            parse(Some(T::Url), "example.com/x"),
            Ok(Observable { kind: T::Url, value: "http://example.com/x".to_owned() })
        );
        assert_eq!(parse(None, "64496"), Err(E::Undetectable));
        assert_eq!(parse(Some(T::Asn), "64496").map(|o| o.value), Ok("AS64496".to_owned()));
    }

    #[test]
    fn is_canonical_accepts_only_canonical_forms() {
        assert!(is_canonical(T::Domain, "xn--bcher-kva.example"));
        assert!(!is_canonical(T::Domain, "Bücher.example"));
        assert!(!is_canonical(T::Domain, "example.com."));
        assert!(is_canonical(T::Url, "http://example.com/b"));
        assert!(!is_canonical(T::Url, "http://example.com:80/b"));
        assert!(!is_canonical(T::Ipv4, " 192.0.2.1"));
        assert!(!is_canonical(T::Ipv4, "not an ip"));
    }

    #[test]
    fn parent_domains_are_listed_nearest_first() {
        let parents = |d| parent_domains(d).collect::<Vec<_>>();
        assert_eq!(parents("a.b.example.com"), ["b.example.com", "example.com"]);
        assert_eq!(parents("www.example.com"), ["example.com"]);
        assert!(parents("example.com").is_empty());
        assert!(parents("com").is_empty());
    }

    #[test]
    fn url_host_gives_the_host_as_an_observable() {
        let host = |url| url_host(url).map(|o| (o.kind, o.value));
        assert_eq!(host("http://www.example.com/a"), Some((T::Domain, "www.example.com".to_owned())));
        assert_eq!(host("https://xn--bcher-kva.example/"), Some((T::Domain, "xn--bcher-kva.example".to_owned())));
        assert_eq!(host("http://192.0.2.1:8080/"), Some((T::Ipv4, "192.0.2.1".to_owned())));
        assert_eq!(host("http://[2001:db8::1]/"), Some((T::Ipv6, "2001:db8::1".to_owned())));
        assert_eq!(host("ssh://192.0.2.1/"), Some((T::Ipv4, "192.0.2.1".to_owned())));
        assert_eq!(host("http://localhost/"), None);
        assert_eq!(host("file:///etc/passwd"), None);
        assert_eq!(host("not a url"), None);
    }

    #[test]
    fn error_messages_are_lowercase_and_say_what_is_expected() {
        let samples = [
            (T::Ipv4, "1.2.3"),
            (T::Ipv6, "x"),
            (T::Cidr, "x"),
            (T::Domain, "x"),
            (T::Url, "file:///x"),
            (T::Email, "x"),
            (T::Md5, "x"),
            (T::Asn, "x"),
            (T::CloudAccessKeyId, "x"),
            (T::CloudResourceName, "x"),
            (T::CertificateFingerprint, "x"),
        ];
        for (kind, raw) in samples {
            let text = error_text(kind, raw);
            assert!(text.starts_with(|c: char| c.is_ascii_lowercase()), "{text}");
            assert!(text.contains("expected"), "{text}");
            assert!(!text.ends_with('.'), "{text}");
        }
    }

    // ---------------------------------------------------------------------
    // Properties

    /// A label of letters, digits and inner hyphens, never an `xn--` label.
    fn label() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9]([a-zA-Z0-9-]{0,12}[a-zA-Z0-9])?"
            .prop_filter("not an ACE label", |l| !l.to_ascii_lowercase().starts_with("xn--"))
    }

    /// Domains with random case and an optional trailing dot.
    fn domain() -> impl Strategy<Value = String> {
        (prop::collection::vec(label(), 1..5), "[a-zA-Z]{2,8}", any::<bool>())
            .prop_map(|(labels, tld, dot)| format!("{}.{tld}{}", labels.join("."), if dot { "." } else { "" }))
    }

    /// Hash kinds with hex of the right length in random case.
    fn hash() -> impl Strategy<Value = (ObservableType, String)> {
        prop_oneof![Just(T::Md5), Just(T::Sha1), Just(T::Sha256)].prop_flat_map(|kind| {
            let len = kind.hash_len().unwrap_or(0);
            (Just(kind), prop::string::string_regex(&format!("[0-9a-fA-F]{{{len}}}")).expect("valid regex"))
        })
    }

    /// A valid raw value of one of the generated kinds, in a non-canonical spelling where possible.
    fn raw_observable() -> impl Strategy<Value = (ObservableType, String)> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(|o| (T::Ipv4, Ipv4Addr::from(o).to_string())),
            any::<[u16; 8]>().prop_map(|g| (T::Ipv6, g.map(|x| format!("{x:04X}")).join(":"))),
            (any::<[u8; 4]>(), 0u8..=32).prop_map(|(o, len)| (T::Cidr, format!("{}/{len}", Ipv4Addr::from(o)))),
            (any::<[u16; 8]>(), 0u8..=128).prop_map(|(g, len)| (T::Cidr, format!("{}/{len}", Ipv6Addr::from(g)))),
            domain().prop_map(|d| (T::Domain, d)),
            hash(),
            (any::<u32>(), prop_oneof![Just(""), Just("AS"), Just("as"), Just("As ")])
                .prop_map(|(n, prefix)| (T::Asn, format!("{prefix}{n}"))),
        ]
    }

    proptest! {
        #[test]
        fn normalisation_is_idempotent((kind, raw) in raw_observable()) {
            let canonical = normalize(kind, &raw).expect("generated values are valid");
            prop_assert_eq!(normalize(kind, &canonical), Ok(canonical.clone()));
            prop_assert!(is_canonical(kind, &canonical));
        }

        #[test]
        fn detection_finds_the_generated_kind((kind, raw) in raw_observable()) {
            prop_assume!(kind != T::Asn);
            let canonical = normalize(kind, &raw).expect("generated values are valid");
            prop_assert_eq!(detect(&canonical), Ok(Observable { kind, value: canonical.clone() }));
        }

        #[test]
        fn ascii_fast_path_agrees_with_idna(name in domain()) {
            let name = name.trim_end_matches('.');
            prop_assert_eq!(normalize(T::Domain, name).ok(), to_punycode(name).ok());
        }

        #[test]
        fn cidr_canonical_form_is_the_network_address(octets in any::<[u8; 4]>(), len in 0u8..=32) {
            let net = Ipv4Net::new(Ipv4Addr::from(octets), len).expect("valid prefix");
            let raw = net.to_string();
            prop_assert_eq!(normalize(T::Cidr, &raw), Ok(net.trunc().to_string()));
        }

        #[test]
        fn any_text_normalises_idempotently_or_is_refused(
            raw in "([a-zA-Z0-9 .:/@%\\[\\]()_#?=+\\\\-]|://|hxxp|xn--|ssh:|\\[\\.\\]|ü|ß|。|\u{200b}){0,40}",
            index in 0usize..14,
        ) {
            let kind = ObservableType::ALL[index];
            if let Ok(canonical) = normalize(kind, &raw) {
                prop_assert_eq!(normalize(kind, &canonical), Ok(canonical.clone()), "{} {:?}", kind, raw);
            }
            prop_assert_eq!(is_canonical(kind, &raw), normalize(kind, &raw).as_deref() == Ok(raw.as_str()));
        }

        #[test]
        fn detected_values_are_canonical_for_their_kind(
            raw in "([a-zA-Z0-9 .:/@_-]|hxxp|\\[\\.\\]){0,40}",
        ) {
            if let Ok(observable) = detect(&raw) {
                prop_assert!(is_canonical(observable.kind, &observable.value), "{:?}", observable);
            }
        }
    }
}
