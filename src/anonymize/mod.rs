//! Scrubbing: what a node publishes is anonymised before it is signed.
//!
//! A [`ScrubPolicy`] (the `[scrub]` section of `node.toml`) says, per
//! detector, what to do with a finding in free text and in an indicator
//! value: redact it, generalise it, replace it by a keyed hash, or refuse the
//! record. A [`Scrubber`] compiles the policy once and reports every change
//! it makes as a [`Redaction`], which `--dry-run` shows.
//!
//! Keyed hashes only keep values from outsiders: every member holds the key,
//! and low-entropy values (an IPv4 address) can be recovered by hashing them
//! all. Anonymity comes from pseudonymous keys, coarse times and the stem relay.

pub mod detectors;
mod identifiers;
mod national_ids;
mod phones;
#[cfg(test)]
mod proptests;
mod tenants;
mod urls;

pub use identifiers::{iban_check_digits, iban_checksum_valid};
pub use national_ids::verhoeff;

use crate::normalize::{self, Observable, ObservableType};
use crate::proto::record::Body;
use detectors::{is_private_v4, is_private_v6, Detector, Detectors};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// What happens to a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Replaced by `[redacted:<detector>]`.
    Redact,
    /// Replaced by a coarser form: an address by its /24 (IPv4) or /48 (IPv6),
    /// an internal host by its zone, an email by its domain, an ARN without
    /// its account, a card or phone number by its last digits, a webhook or
    /// signed URL by its scheme and host, a tenant host or bucket by its
    /// platform, a MAC address by its vendor prefix, an IBAN by its country.
    Generalise,
    /// An indicator value is shared as HMAC-SHA256 under the federation's key,
    /// which peers match by hashing what they observe. In free text: redacted.
    KeyedHash,
    /// The record is not published; the error names the detector and field.
    Refuse,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Redact => "redact",
            Action::Generalise => "generalise",
            Action::KeyedHash => "keyed_hash",
            Action::Refuse => "refuse",
        }
    }
}

/// The `[scrub]` section of `node.toml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrubPolicy {
    /// Host suffixes that are internal to this CSP, besides the well-known
    /// `.local`, `.internal`, `.corp`, `.lan` and `.home.arpa`.
    #[serde(default)]
    pub internal_suffixes: Vec<String>,
    /// Organisation and customer names that must never leave the node.
    #[serde(default)]
    pub names: Vec<String>,
    /// Action per detector in free text, overriding [`default_text_action`].
    #[serde(default)]
    pub text: BTreeMap<Detector, Action>,
    /// Action per detector when an indicator's value is the finding,
    /// overriding [`default_value_action`].
    #[serde(default)]
    pub value: BTreeMap<Detector, Action>,
}

/// The default action in free text: redact, but for the detectors whose
/// generalised form keeps only what peers need: a webhook's or signed URL's
/// scheme and host, a tenant's or bucket's platform (`*.okta.com`, `s3://*`).
pub fn default_text_action(detector: Detector) -> Action {
    match detector {
        Detector::WebhookUrl | Detector::PresignedUrl | Detector::TenantHost | Detector::StorageBucket => {
            Action::Generalise
        }
        _ => Action::Redact,
    }
}

/// The default action for an indicator value: values peers can usefully match
/// by hash (a phishing sender, a leaked key id, a role ARN, an exfiltration
/// webhook, an abused tenant or bucket) are keyed-hashed; values that
/// identify the publisher's own network or secrets are refused.
pub fn default_value_action(detector: Detector) -> Action {
    match detector {
        Detector::Email
        | Detector::AccessKey
        | Detector::AwsAccount
        | Detector::WebhookUrl
        | Detector::PresignedUrl
        | Detector::TenantHost
        | Detector::StorageBucket => Action::KeyedHash,
        _ => Action::Refuse,
    }
}

/// Detectors that make a whole domain indicator sensitive.
const DOMAIN_DETECTORS: [Detector; 3] = [Detector::OrgName, Detector::TenantHost, Detector::StorageBucket];

/// Detectors that make a whole URL indicator sensitive: the URL is a
/// credential, or names a customer's tenant or bucket (in its host or, for
/// path-style storage URLs, its path).
const URL_DETECTORS: [Detector; 4] =
    [Detector::WebhookUrl, Detector::PresignedUrl, Detector::StorageBucket, Detector::TenantHost];

/// One change the scrubber made, or the finding that refused the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Redaction {
    /// The field, e.g. `indicator.value`, `lesson.summary`, `lesson.went_well[2]`.
    pub field: String,
    pub detector: Detector,
    pub action: Action,
    /// What was there (shown locally only, never shared).
    pub found: String,
    /// What is shared instead.
    pub replacement: String,
}

/// A record refused by the policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} holds {detector} data ({found:?}) and the scrub policy refuses it")]
pub struct Refused {
    pub field: String,
    pub detector: Detector,
    pub found: String,
}

/// The compiled policy and the federation's keyed-hash key.
pub struct Scrubber {
    detectors: Detectors,
    text: BTreeMap<Detector, Action>,
    value: BTreeMap<Detector, Action>,
    hash_key: [u8; 32],
}

/// A keyed-hash key derived from the authority's public key: the fallback for
/// admissions issued before the operator handed out a secret sharing key
/// (`identity::SHARING_KEY_FILE`). Members hold the public key too, but so may
/// anyone who has seen a member card, so new federations use the secret one.
pub fn federation_hash_key(authority: &[u8; 32]) -> [u8; 32] {
    let mut digest = Sha256::new();
    digest.update(b"cirfed/keyed-hash/v1\0");
    digest.update(authority);
    digest.finalize().into()
}

/// The keyed hash of a canonical observable, as shared and as matched.
pub fn keyed_hash(key: &[u8; 32], kind: ObservableType, canonical: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(&[kind.code(), 0]);
    mac.update(canonical.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

impl Scrubber {
    pub fn new(policy: &ScrubPolicy, hash_key: [u8; 32]) -> Scrubber {
        let text = Detector::ALL.iter().map(|d| (*d, policy.text.get(d).copied().unwrap_or(default_text_action(*d))));
        let value =
            Detector::ALL.iter().map(|d| (*d, policy.value.get(d).copied().unwrap_or(default_value_action(*d))));
        Scrubber {
            detectors: Detectors::new(&policy.internal_suffixes, &policy.names),
            text: text.collect(),
            value: value.collect(),
            hash_key,
        }
    }

    pub fn hash_key(&self) -> &[u8; 32] {
        &self.hash_key
    }

    /// Scrubs every free-text field of a record body in place. An indicator's
    /// value is scrubbed separately ([`Scrubber::value`]), once it is canonical.
    pub fn body_text(&self, body: &mut Body, report: &mut Vec<Redaction>) -> Result<(), Refused> {
        match body {
            Body::Indicator(i) => {
                self.text("indicator.description", &mut i.description, report)?;
                self.text("indicator.incident_ref", &mut i.incident_ref, report)?;
                self.list("indicator.tags", &mut i.tags, report)
            }
            Body::Lesson(l) => {
                self.text("lesson.title", &mut l.title, report)?;
                self.text("lesson.summary", &mut l.summary, report)?;
                self.text("lesson.detection_method", &mut l.detection_method, report)?;
                self.text("lesson.root_cause", &mut l.root_cause, report)?;
                self.list("lesson.went_well", &mut l.went_well, report)?;
                self.list("lesson.to_improve", &mut l.to_improve, report)?;
                for (n, action) in l.recommended_actions.iter_mut().enumerate() {
                    self.text(&format!("lesson.recommended_actions[{n}]"), &mut action.action, report)?;
                }
                self.list("lesson.tags", &mut l.tags, report)
            }
            Body::Retraction(r) => self.text("retraction.reason", &mut r.reason, report),
            Body::Sighting(_) | Body::MemberCard(_) | Body::MemberRevocation(_) => Ok(()),
        }
    }

    fn list(&self, field: &str, items: &mut [String], report: &mut Vec<Redaction>) -> Result<(), Refused> {
        for (n, item) in items.iter_mut().enumerate() {
            self.text(&format!("{field}[{n}]"), item, report)?;
        }
        Ok(())
    }

    /// Scrubs one free-text field in place, recording what changed.
    pub fn text(&self, field: &str, text: &mut String, report: &mut Vec<Redaction>) -> Result<(), Refused> {
        let findings = self.detectors.find(text);
        if findings.is_empty() {
            return Ok(());
        }
        let mut scrubbed = String::with_capacity(text.len());
        let mut at = 0;
        for finding in findings {
            let found = &text[finding.start..finding.end];
            // A refused item inside another finding refuses the record too.
            if let Some(inner) = finding.within.iter().find(|d| self.text[*d] == Action::Refuse) {
                return Err(refused(field, *inner, found));
            }
            let action = self.text[&finding.detector];
            let replacement = match action {
                Action::Refuse => return Err(refused(field, finding.detector, found)),
                Action::Generalise => self.generalise_in_text(finding.detector, found),
                Action::Redact | Action::KeyedHash => redacted(finding.detector),
            };
            scrubbed.push_str(&text[at..finding.start]);
            scrubbed.push_str(&replacement);
            report.push(Redaction {
                field: field.to_string(),
                detector: finding.detector,
                action: if action == Action::KeyedHash { Action::Redact } else { action },
                found: found.to_string(),
                replacement,
            });
            at = finding.end;
        }
        scrubbed.push_str(&text[at..]);
        *text = scrubbed;
        Ok(())
    }

    /// The generalised form of a finding in free text, with anything another
    /// detector finds in it redacted: a generalised ARN keeps its path, and
    /// the path may carry an email address.
    fn generalise_in_text(&self, detector: Detector, found: &str) -> String {
        let general = generalise(detector, found, &self.detectors);
        let mut clean = String::with_capacity(general.len());
        let mut at = 0;
        for inner in self.detectors.find(&general).into_iter().filter(|f| f.detector != detector) {
            clean.push_str(&general[at..inner.start]);
            clean.push_str(&redacted(inner.detector));
            at = inner.end;
        }
        clean.push_str(&general[at..]);
        clean
    }

    /// Scrubs an indicator's canonical value. Returns the observable to share:
    /// the same, a generalised one, or a keyed hash of it.
    pub fn value(&self, observable: Observable, report: &mut Vec<Redaction>) -> Result<Observable, Refused> {
        const FIELD: &str = "indicator.value";
        let Some(detector) = self.sensitive_value(&observable) else {
            return self.value_text(observable, report);
        };
        let action = self.value[&detector];
        let shared = match action {
            Action::Refuse | Action::Redact => return Err(refused(FIELD, detector, &observable.value)),
            Action::KeyedHash => Observable {
                kind: ObservableType::KeyedHash,
                value: keyed_hash(&self.hash_key, observable.kind, &observable.value),
            },
            Action::Generalise => {
                let general = generalise(detector, &observable.value, &self.detectors);
                match normalize::parse(None, &general) {
                    Ok(general) if self.sensitive_value(&general).is_none() => general,
                    // A private address generalised is still private: nothing shareable is left.
                    _ => return Err(refused(FIELD, detector, &observable.value)),
                }
            }
        };
        report.push(Redaction {
            field: FIELD.into(),
            detector,
            action,
            found: observable.value,
            replacement: shared.value.clone(),
        });
        Ok(shared)
    }

    /// The detector a whole indicator value falls under, judged by its type.
    fn sensitive_value(&self, observable: &Observable) -> Option<Detector> {
        let value = observable.value.as_str();
        let private_network = |v: &str| match v.split('/').next().and_then(|a| a.parse::<std::net::IpAddr>().ok()) {
            Some(std::net::IpAddr::V4(a)) => is_private_v4(a),
            Some(std::net::IpAddr::V6(a)) => is_private_v6(a),
            None => false,
        };
        match observable.kind {
            ObservableType::Ipv4 | ObservableType::Ipv6 | ObservableType::Cidr if private_network(value) => {
                Some(Detector::PrivateIp)
            }
            ObservableType::Domain if self.detectors.is_internal_host(value) => Some(Detector::InternalHost),
            ObservableType::Domain => self.whole_value_finding(value, &DOMAIN_DETECTORS),
            ObservableType::Email => Some(Detector::Email),
            ObservableType::CloudAccessKeyId => Some(Detector::AccessKey),
            ObservableType::CloudResourceName => {
                self.detectors.find(value).iter().map(|f| f.detector).find(|d| *d != Detector::InternalHost)
            }
            ObservableType::Url => self.whole_value_finding(value, &URL_DETECTORS).or_else(|| {
                url_host(value)
                    .and_then(|host| normalize::parse(None, &host).ok())
                    .and_then(|host| self.sensitive_value(&host))
            }),
            _ => None,
        }
    }

    /// The first of `detectors` that finds something in `value`.
    fn whole_value_finding(&self, value: &str, detectors: &[Detector]) -> Option<Detector> {
        self.detectors.find(value).into_iter().map(|f| f.detector).find(|d| detectors.contains(d))
    }

    /// Values that carry free text (URLs, user agents): scrub inside them,
    /// and share the scrubbed form if it is still a valid observable.
    fn value_text(&self, observable: Observable, report: &mut Vec<Redaction>) -> Result<Observable, Refused> {
        if !matches!(observable.kind, ObservableType::Url | ObservableType::UserAgent) {
            return Ok(observable);
        }
        let mut text = observable.value.clone();
        let before = report.len();
        self.text("indicator.value", &mut text, report)?;
        if report.len() == before {
            return Ok(observable);
        }
        normalize::parse(Some(observable.kind), &text).map_err(|_| {
            let finding = &report[before];
            refused("indicator.value", finding.detector, &finding.found)
        })
    }
}

fn refused(field: &str, detector: Detector, found: &str) -> Refused {
    Refused { field: field.to_string(), detector, found: found.to_string() }
}

fn redacted(detector: Detector) -> String {
    format!("[redacted:{detector}]")
}

fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host.starts_with('[') { host.split(']').next()?.trim_start_matches('[') } else { host };
    let host = if host.matches(':').count() == 1 { host.split(':').next()? } else { host };
    Some(host.to_string())
}

/// The coarser form of a finding (see [`Action::Generalise`]).
fn generalise(detector: Detector, found: &str, detectors: &Detectors) -> String {
    match detector {
        Detector::PrivateIp => {
            let address = found.split('/').next().unwrap_or(found);
            match address.parse::<std::net::IpAddr>() {
                Ok(std::net::IpAddr::V4(a)) => ipnet::Ipv4Net::new(a, 24).map(|n| n.trunc().to_string()),
                Ok(std::net::IpAddr::V6(a)) => ipnet::Ipv6Net::new(a, 48).map(|n| n.trunc().to_string()),
                Err(_) => return redacted(detector),
            }
            .unwrap_or_else(|_| redacted(detector))
        }
        // Only the internal zone is left: the labels below it name hosts,
        // teams and customers.
        Detector::InternalHost => match detectors.internal_suffix(&found.to_ascii_lowercase()) {
            Some(suffix) => format!("*.{suffix}"),
            None => redacted(detector),
        },
        Detector::Email => found.rsplit_once('@').map_or_else(|| redacted(detector), |(_, d)| format!("*@{d}")),
        Detector::AwsAccount if found.starts_with("arn:") => {
            let mut parts: Vec<&str> = found.splitn(6, ':').collect();
            if parts.len() == 6 {
                parts[4] = "*";
            }
            parts.join(":")
        }
        Detector::CardNumber | Detector::Phone => {
            let digits: String = found.chars().filter(char::is_ascii_digit).collect();
            format!("*{}", &digits[digits.len().saturating_sub(4)..])
        }
        Detector::WebhookUrl | Detector::PresignedUrl => {
            urls::generalise(detector, found).unwrap_or_else(|| redacted(detector))
        }
        Detector::TenantHost => tenants::generalise_host(found).unwrap_or_else(|| redacted(detector)),
        Detector::StorageBucket => tenants::generalise_storage(found),
        Detector::MacAddress => identifiers::generalise_mac(found),
        Detector::Iban => format!("{}**", found.get(..2).unwrap_or("").to_ascii_uppercase()),
        _ => redacted(detector),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrubber(policy: ScrubPolicy) -> Scrubber {
        Scrubber::new(&policy, [7; 32])
    }

    fn scrub_text(s: &Scrubber, text: &str) -> (String, Vec<Redaction>) {
        let (mut text, mut report) = (text.to_string(), Vec::new());
        s.text("description", &mut text, &mut report).expect("not refused");
        (text, report)
    }

    #[test]
    fn free_text_is_redacted_with_each_detector_reported() {
        let s = scrubber(ScrubPolicy { names: vec!["Globex Bank".into()], ..Default::default() });
        let (text, report) = scrub_text(&s, "Globex Bank saw 10.2.3.4 mail bob@globex.example");
        assert_eq!(text, "[redacted:org_name] saw [redacted:private_ip] mail [redacted:email]");
        let detectors: Vec<_> = report.iter().map(|r| r.detector).collect();
        assert_eq!(detectors, [Detector::OrgName, Detector::PrivateIp, Detector::Email]);
        assert_eq!(report[1].found, "10.2.3.4");
    }

    #[test]
    fn generalise_keeps_the_coarse_form() {
        let mut policy = ScrubPolicy::default();
        for d in [Detector::PrivateIp, Detector::InternalHost, Detector::Email, Detector::AwsAccount] {
            policy.text.insert(d, Action::Generalise);
        }
        let s = scrubber(policy);
        let (text, _) =
            scrub_text(&s, "10.2.3.4 db1.eu.internal ann@x.example arn:aws:iam::123456789012:role/Admin done");
        assert_eq!(text, "10.2.3.0/24 *.internal *@x.example arn:aws:iam::*:role/Admin done");
        let (text, _) = scrub_text(&s, "arn:aws:sts::123456789012:assumed-role/SSO/ann@x.example");
        assert_eq!(text, "arn:aws:sts::*:assumed-role/SSO/[redacted:email]", "nothing found inside is left");
    }

    #[test]
    fn a_refused_item_inside_another_finding_still_refuses() {
        let mut policy = ScrubPolicy::default();
        policy.text.insert(Detector::Email, Action::Refuse);
        let s = scrubber(policy);
        let mut text = "role arn:aws:sts::123456789012:assumed-role/SSO/ann@x.example".to_string();
        let refused = s.text("summary", &mut text, &mut Vec::new()).unwrap_err();
        assert_eq!(refused.detector, Detector::Email);
    }

    #[test]
    fn a_refusing_policy_names_the_field_and_detector() {
        let mut policy = ScrubPolicy::default();
        policy.text.insert(Detector::Secret, Action::Refuse);
        let (mut text, mut report) = ("token: abcd1234efgh".to_string(), Vec::new());
        let error = scrubber(policy).text("lesson.summary", &mut text, &mut report).unwrap_err();
        assert_eq!(error.detector, Detector::Secret);
        assert!(error.to_string().contains("lesson.summary"), "{error}");
        assert_eq!(text, "token: abcd1234efgh", "nothing changed on refusal");
    }

    #[test]
    fn sensitive_indicator_values_are_hashed_or_refused_by_default() {
        let s = scrubber(ScrubPolicy::default());
        let mut report = Vec::new();
        let email = normalize::parse(None, "Phish@Evil.example").unwrap();
        let shared = s.value(email.clone(), &mut report).unwrap();
        assert_eq!(shared.kind, ObservableType::KeyedHash);
        assert_eq!(shared.value, keyed_hash(&[7; 32], ObservableType::Email, &email.value));
        for private in ["10.1.2.3", "fd00::1", "192.168.10.0/24", "db01.corp", "http://intranet.lan/login"] {
            let observable = normalize::parse(None, private).unwrap();
            assert!(s.value(observable, &mut report).is_err(), "{private} must be refused");
        }
        let public = normalize::parse(None, "45.33.32.156").unwrap();
        assert_eq!(s.value(public.clone(), &mut report).unwrap(), public);
    }

    #[test]
    fn a_keyed_hash_under_another_federations_key_does_not_match() {
        let value = "phish@evil.example";
        assert_ne!(
            keyed_hash(&[1; 32], ObservableType::Email, value),
            keyed_hash(&[2; 32], ObservableType::Email, value)
        );
        assert_ne!(
            keyed_hash(&[1; 32], ObservableType::Email, value),
            keyed_hash(&[1; 32], ObservableType::Domain, value),
            "the type is part of what is hashed"
        );
    }

    #[test]
    fn secrets_inside_a_url_are_redacted_and_the_url_kept() {
        let s = scrubber(ScrubPolicy::default());
        let mut report = Vec::new();
        let url = normalize::parse(None, "http://evil.example/login?user=alice@victim.example").unwrap();
        let shared = s.value(url, &mut report).unwrap();
        assert_eq!(shared.kind, ObservableType::Url);
        assert!(!shared.value.contains("alice"), "{}", shared.value);
        assert_eq!(report[0].detector, Detector::Email);
    }
}
