//! The Cloud Incident Response (CIR) vocabulary: TLP, categories, phases, levels and
//! the classification that derives a CIR level from other frameworks' scales.
//!
//! Pure domain types: proto, CLI and storage code convert to and from these at their
//! edges. Every enum names itself one way on the command line, in config files and in
//! JSON (`as_str`), and by its proto enum number on the wire (`code`).

use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Errors from parsing or checking CIR vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CirError {
    /// A CIR level outside 1 to 5.
    #[error("invalid CIR level {0}: expected 1 to 5")]
    InvalidLevel(u32),
    /// A name that none of an enum's values (or their aliases) answers to.
    #[error("unknown {kind} '{input}': expected one of {expected}")]
    UnknownName {
        /// What was being parsed, e.g. "TLP".
        kind: &'static str,
        /// The text as given, so the user can spot the typo.
        input: String,
        /// The canonical names, comma separated.
        expected: String,
    },
    /// A proto enum number that is unspecified (0) or unknown to this version.
    #[error("unknown {kind} code {code}")]
    UnknownCode {
        /// What was being decoded, e.g. "TLP".
        kind: &'static str,
        /// The number as received.
        code: i32,
    },
    /// `classify` was given no input at all, so there is nothing to derive a level from.
    #[error(
        "no classification input: give at least one of ENISA impact, NIST functional impact, \
         NIST information impact or TR 62 category"
    )]
    NoInput,
}

/// Lowercases and turns `_` and spaces into `-`, so "POST_MORTEM", "post mortem" and
/// "post-mortem" are one name; the proto's own names then parse too.
fn normalise(s: &str) -> String {
    s.trim()
        .chars()
        .map(|c| match c {
            '_' | ' ' => '-',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// Removes the first of `prefixes` that `key` starts with, unless nothing would remain.
fn strip_any_prefix<'a>(key: &'a str, prefixes: &[&str]) -> &'a str {
    prefixes.iter().find_map(|p| key.strip_prefix(p).filter(|rest| !rest.is_empty())).unwrap_or(key)
}

/// Defines a vocabulary enum with `ALL`, `as_str`, `FromStr`, `Display` and serde,
/// all driven by one list of names so the CLI, config files and JSON cannot drift.
/// The `proto enum` form also generates `code`/`from_code`/`TryFrom<i32>`.
///
/// Serde goes through `as_str`/`FromStr` rather than per-variant renames so that a
/// config file accepts exactly what the CLI accepts (case, aliases, prefixes).
macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        pub proto enum $name:ident ($kind:literal) $([strip $($prefix:literal),+])? {
            $(
                $(#[$vmeta:meta])*
                $variant:ident = $code:literal => $cli:literal $(| $alias:literal)*,
            )+
        }
    ) => {
        vocabulary! {
            @common
            $(#[$meta])*
            $name ($kind) [$($($prefix),+)?] {
                $( $(#[$vmeta])* $variant => $cli $(| $alias)*, )+
            }
        }

        impl $name {
            /// The proto enum number.
            pub const fn code(self) -> i32 {
                match self {
                    $( Self::$variant => $code, )+
                }
            }

            /// The value for a proto enum number; `None` for 0 (unspecified) or unknown.
            pub const fn from_code(code: i32) -> Option<Self> {
                match code {
                    $( $code => Some(Self::$variant), )+
                    _ => None,
                }
            }
        }

        impl TryFrom<i32> for $name {
            type Error = CirError;

            fn try_from(code: i32) -> Result<Self, CirError> {
                Self::from_code(code).ok_or(CirError::UnknownCode { kind: $kind, code })
            }
        }

        impl From<$name> for i32 {
            fn from(value: $name) -> i32 {
                value.code()
            }
        }
    };

    (
        $(#[$meta:meta])*
        pub enum $name:ident ($kind:literal) $([strip $($prefix:literal),+])? {
            $(
                $(#[$vmeta:meta])*
                $variant:ident => $cli:literal $(| $alias:literal)*,
            )+
        }
    ) => {
        vocabulary! {
            @common
            $(#[$meta])*
            $name ($kind) [$($($prefix),+)?] {
                $( $(#[$vmeta])* $variant => $cli $(| $alias)*, )+
            }
        }
    };

    (
        @common
        $(#[$meta:meta])*
        $name:ident ($kind:literal) [$($prefix:literal),*] {
            $(
                $(#[$vmeta:meta])*
                $variant:ident => $cli:literal $(| $alias:literal)*,
            )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "&'static str")]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in proto order.
            pub const ALL: &'static [Self] = &[ $( Self::$variant, )+ ];

            /// Every accepted name (canonical first, then aliases), already normalised.
            const NAMES: &'static [(&'static str, Self)] = &[
                $( ($cli, Self::$variant), $( ($alias, Self::$variant), )* )+
            ];

            /// Prefixes dropped before matching a name (e.g. MISP's "tlp:").
            const PREFIXES: &'static [&'static str] = &[ $( $prefix, )* ];

            /// The name used on the command line, in config files and in JSON.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $cli, )+
                }
            }
        }

        impl FromStr for $name {
            type Err = CirError;

            fn from_str(s: &str) -> Result<Self, CirError> {
                let normalised = normalise(s);
                let key = strip_any_prefix(&normalised, Self::PREFIXES);
                Self::NAMES
                    .iter()
                    .find(|(name, _)| *name == key)
                    .map(|(_, value)| *value)
                    .ok_or_else(|| CirError::UnknownName {
                        kind: $kind,
                        input: s.to_owned(),
                        expected: Self::ALL
                            .iter()
                            .map(|v| v.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    })
            }
        }

        impl TryFrom<String> for $name {
            type Error = CirError;

            fn try_from(s: String) -> Result<Self, CirError> {
                s.parse()
            }
        }

        impl From<$name> for &'static str {
            fn from(value: $name) -> &'static str {
                value.as_str()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

vocabulary! {
    /// Traffic Light Protocol 2.0 marking: how far a record may travel.
    ///
    /// Ordered from least to most restrictive, so `tlp <= Tlp::Green` reads as
    /// "at most GREEN".
    pub proto enum Tlp ("TLP") [strip "tlp:", "tlp-"] {
        /// No limit on disclosure.
        Clear = 1 => "clear" | "white",
        /// The community: any member of the federation, relayed hop by hop.
        Green = 2 => "green",
        /// Recipients and their clients on a need-to-know basis: the author's direct peers only.
        Amber = 3 => "amber",
        /// The recipient organisation only, not its clients: the author's direct peers only.
        AmberStrict = 4 => "amber+strict" | "amber-strict" | "amber-plus-strict" | "amberstrict",
        /// Named recipients only: in cirfed a RED record never leaves the node that stored it.
        Red = 5 => "red",
    }
}

impl Tlp {
    /// Whether a record with this marking may be sent to any other node (false only for RED).
    pub const fn leaves_node(self) -> bool {
        !matches!(self, Tlp::Red)
    }

    /// Whether a peer that received a record may pass it on to its own peers.
    ///
    /// Only CLEAR and GREEN spread through the community. AMBER and AMBER+STRICT are
    /// meant for the recipients the author chose, so they go to the author's direct
    /// peers and stop there; RED never leaves the node at all.
    pub const fn may_relay(self) -> bool {
        matches!(self, Tlp::Clear | Tlp::Green)
    }
}

vocabulary! {
    /// What kind of incident a record concerns: CIR counts security and non-security
    /// incidents alike, because an outage needs the same response discipline as an attack.
    pub proto enum Category ("category") {
        /// Malicious software.
        Malware = 1 => "malware",
        /// Unauthorised access to systems or the management plane.
        Intrusion = 2 => "intrusion",
        /// Phishing or other social engineering.
        Phishing = 3 => "phishing",
        /// (Distributed) denial of service.
        DenialOfService = 4 => "denial-of-service" | "ddos" | "dos",
        /// Data taken out of the customer's or provider's control.
        DataExfiltration = 5 => "data-exfiltration" | "exfiltration" | "data-breach",
        /// Stolen credentials or keys.
        CredentialTheft = 6 => "credential-theft" | "credentials",
        /// A misconfiguration that was exploited.
        Misconfiguration = 7 => "misconfiguration" | "misconfig",
        /// An operational mistake (non-security).
        OperationalError = 20 => "operational-error" | "human-error",
        /// An infrastructure or system failure (non-security).
        InfrastructureFailure = 21 => "infrastructure-failure" | "system-failure",
        /// Loss of power (non-security).
        PowerLoss = 22 => "power-loss" | "power-outage",
        /// A cut network link, such as a severed fibre (non-security).
        NetworkCut = 23 => "network-cut" | "fibre-cut" | "fiber-cut",
        /// A natural disaster (non-security).
        NaturalDisaster = 24 => "natural-disaster",
        /// Capacity exhausted (non-security).
        CapacityExhaustion = 25 => "capacity-exhaustion",
        /// An outage of an upstream cloud provider (non-security).
        ProviderOutage = 26 => "provider-outage" | "csp-outage",
    }
}

impl Category {
    /// Whether this is a security incident rather than an operational one.
    pub const fn is_security(self) -> bool {
        // Proto numbers 1..=19 are reserved for security categories, 20.. for the rest.
        self.code() < 20
    }
}

vocabulary! {
    /// Incident lifecycle phase (NIST SP 800-61, plus CIR's continuous coordination phase).
    pub proto enum Phase ("phase") {
        /// Roles, contacts, plans, backups, exercises.
        Preparation = 1 => "preparation" | "prepare",
        /// Monitoring, alerts, classification.
        DetectionAndAnalysis = 2 => "detection" | "detection-and-analysis" | "analysis",
        /// Isolate, preserve evidence, remove the threat, restore.
        ContainmentEradicationRecovery = 3 => "containment"
            | "containment-eradication-recovery"
            | "containment-eradication-and-recovery"
            | "eradication"
            | "recovery",
        /// Lessons learned and plan revisions.
        PostMortem = 4 => "post-mortem" | "postmortem" | "post-incident" | "post-incident-activity"
            | "lessons-learned",
        /// Coordination and information sharing, continuous across all phases.
        Coordination = 5 => "coordination"
            | "coordination-and-information-sharing"
            | "information-sharing",
    }
}

vocabulary! {
    /// Cloud service model, which decides who owns which logs and controls.
    pub proto enum ServiceModel ("service model") {
        /// Infrastructure as a service.
        Iaas = 1 => "iaas" | "infrastructure-as-a-service",
        /// Platform as a service.
        Paas = 2 => "paas" | "platform-as-a-service",
        /// Software as a service.
        Saas = 3 => "saas" | "software-as-a-service",
    }
}

vocabulary! {
    /// What a federation member may do.
    pub proto enum Role ("role") {
        /// Author records.
        Publish = 1 => "publish" | "publisher" | "write",
        /// Receive records.
        Read = 2 => "read" | "reader",
    }
}

vocabulary! {
    /// What a sighting reports about an indicator (MISP semantics).
    pub proto enum SightingType ("sighting type") {
        /// The indicator was observed.
        Seen = 1 => "seen" | "sighting" | "sighted",
        /// The indicator matched something benign.
        FalsePositive = 2 => "false-positive" | "fp" | "falsepositive",
        /// The indicator is no longer valid.
        Expired = 3 => "expired" | "expiration",
    }
}

/// A CIR incident classification level, 1 (least severe) to 5 (most severe).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct CirLevel(u8);

impl CirLevel {
    /// The least severe level.
    pub const MIN: CirLevel = CirLevel(1);
    /// The most severe level.
    pub const MAX: CirLevel = CirLevel(5);
    /// Every level, least severe first.
    pub const ALL: &'static [CirLevel] = &[CirLevel(1), CirLevel(2), CirLevel(3), CirLevel(4), CirLevel(5)];

    /// The level `n`, if it is 1 to 5.
    pub const fn new(n: u8) -> Result<Self, CirError> {
        match n {
            1..=5 => Ok(CirLevel(n)),
            _ => Err(CirError::InvalidLevel(n as u32)),
        }
    }

    /// The level as carried in the proto's `uint32 cir_level`.
    pub fn from_u32(n: u32) -> Result<Self, CirError> {
        u8::try_from(n).ok().and_then(|n| Self::new(n).ok()).ok_or(CirError::InvalidLevel(n))
    }

    /// Builds a level in a const table; a bad literal fails the build, not a run.
    const fn of(n: u8) -> Self {
        assert!(n >= 1 && n <= 5, "CIR level out of range");
        CirLevel(n)
    }

    /// The level as a number, 1 to 5.
    pub const fn get(self) -> u8 {
        self.0
    }

    /// What the level means, in the words of CIR's classification table.
    pub const fn description(self) -> &'static str {
        match self.0 {
            1 => "no impact on users: something went wrong in an exercise or test",
            2 => "impact on assets, no direct impact on customers; efficiency lost",
            3 => "minor impact on customers: a critical service lost for a subset of users",
            4 => "impact on customers: a business-critical service to restore within hours",
            _ => {
                "major impact on customers: critical services lost for all users; \
                 human safety or market stability at stake"
            }
        }
    }
}

impl TryFrom<u8> for CirLevel {
    type Error = CirError;

    fn try_from(n: u8) -> Result<Self, CirError> {
        Self::new(n)
    }
}

impl From<CirLevel> for u8 {
    fn from(level: CirLevel) -> u8 {
        level.0
    }
}

impl FromStr for CirLevel {
    type Err = CirError;

    /// Accepts "3", "level 3", "level-3" and "Level 3" (as `Display` writes it).
    fn from_str(s: &str) -> Result<Self, CirError> {
        let normalised = normalise(s);
        let digits = strip_any_prefix(&normalised, &["level-", "level"]);
        match digits.parse::<u32>() {
            Ok(n) => Self::from_u32(n),
            Err(_) => Err(CirError::UnknownName {
                kind: "CIR level",
                input: s.to_owned(),
                expected: "1, 2, 3, 4, 5".to_owned(),
            }),
        }
    }
}

impl fmt::Display for CirLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Level {}", self.0)
    }
}

vocabulary! {
    /// ENISA incident impact, 0 (exercise or test) to 4 (major impact on customers).
    pub enum EnisaImpact ("ENISA impact") [strip "impact-", "impact", "enisa-"] {
        /// Something went wrong in an exercise or test; no impact on users.
        Impact0 => "0",
        /// Impact on assets, no direct impact on customers.
        Impact1 => "1",
        /// Impact on assets, minor impact on customers.
        Impact2 => "2",
        /// Impact on customers.
        Impact3 => "3",
        /// Major impact on customers.
        Impact4 => "4",
    }
}

impl EnisaImpact {
    /// What this impact means, per CIR's table.
    pub const fn description(self) -> &'static str {
        match self {
            EnisaImpact::Impact0 => "something went wrong in an exercise or test; no impact on users",
            EnisaImpact::Impact1 => "impact on assets, no direct impact on customers",
            EnisaImpact::Impact2 => "impact on assets, minor impact on customers",
            EnisaImpact::Impact3 => "impact on customers",
            EnisaImpact::Impact4 => "major impact on customers",
        }
    }
}

vocabulary! {
    /// NIST SP 800-61 functional impact: how much service the incident took away.
    pub enum NistFunctionalImpact ("NIST functional impact") {
        /// All services still provided to all users.
        None => "none",
        /// All critical services still provided, with lost efficiency.
        Low => "low",
        /// A critical service lost for a subset of users.
        Medium => "medium" | "med",
        /// Some critical services lost for all users.
        High => "high",
    }
}

impl NistFunctionalImpact {
    /// What this impact means, per CIR's table.
    pub const fn description(self) -> &'static str {
        match self {
            NistFunctionalImpact::None => "all services still provided to all users",
            NistFunctionalImpact::Low => "all critical services still provided, efficiency lost",
            NistFunctionalImpact::Medium => "a critical service lost for a subset of users",
            NistFunctionalImpact::High => "some critical services lost for all users",
        }
    }

    /// The name as NIST writes it, for explanations.
    const fn title(self) -> &'static str {
        match self {
            NistFunctionalImpact::None => "None",
            NistFunctionalImpact::Low => "Low",
            NistFunctionalImpact::Medium => "Medium",
            NistFunctionalImpact::High => "High",
        }
    }
}

vocabulary! {
    /// NIST SP 800-61 information impact: what happened to the information involved.
    pub enum NistInformationImpact ("NIST information impact") {
        /// No information was exfiltrated, changed, deleted or otherwise compromised.
        None => "none",
        /// Personally identifiable information was accessed or exfiltrated.
        PrivacyBreach => "privacy" | "privacy-breach",
        /// Proprietary information was accessed or exfiltrated.
        ProprietaryBreach => "proprietary" | "proprietary-breach",
        /// Sensitive or proprietary information was changed or deleted.
        IntegrityLoss => "integrity" | "integrity-loss",
    }
}

impl NistInformationImpact {
    /// What this impact means, per NIST SP 800-61.
    pub const fn description(self) -> &'static str {
        match self {
            NistInformationImpact::None => "no information compromised",
            NistInformationImpact::PrivacyBreach => "personally identifiable information accessed or exfiltrated",
            NistInformationImpact::ProprietaryBreach => "proprietary information accessed or exfiltrated",
            NistInformationImpact::IntegrityLoss => "sensitive information changed or deleted",
        }
    }

    /// The name as NIST writes it, for explanations.
    const fn title(self) -> &'static str {
        match self {
            NistInformationImpact::None => "None",
            NistInformationImpact::PrivacyBreach => "Privacy breach",
            NistInformationImpact::ProprietaryBreach => "Proprietary breach",
            NistInformationImpact::IntegrityLoss => "Integrity loss",
        }
    }
}

vocabulary! {
    /// TR 62 (Cloud Outage Incident Response) service category, A (systemic) to D (minimal).
    pub enum Tr62Category ("TR 62 category") [strip "category-", "tr62-", "tr-62-"] {
        /// Systemic or mission-critical: human safety, market or industry stability at stake.
        A => "a",
        /// Business-critical: restore within hours; survival at stake if prolonged.
        B => "b",
        /// Operational: an essential service, restored within 24 hours.
        C => "c",
        /// Minimal: fallbacks readily available, days of outage tolerable.
        D => "d",
    }
}

impl Tr62Category {
    /// What this category means, per CIR's table.
    pub const fn description(self) -> &'static str {
        match self {
            Tr62Category::A => "systemic or mission-critical: human safety, market or industry stability at stake",
            Tr62Category::B => "business-critical impact: restored within hours, survival at stake if prolonged",
            Tr62Category::C => "operational impact: essential service, restored within 24 h",
            Tr62Category::D => "minimal impact: fallbacks readily available, days of outage tolerable",
        }
    }

    /// The letter as TR 62 writes it, for explanations.
    const fn title(self) -> &'static str {
        match self {
            Tr62Category::A => "A",
            Tr62Category::B => "B",
            Tr62Category::C => "C",
            Tr62Category::D => "D",
        }
    }
}

/// One value of one framework's scale: the row key of [`LEVEL_TABLE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScaleValue {
    Enisa(EnisaImpact),
    NistFunctional(NistFunctionalImpact),
    NistInformation(NistInformationImpact),
    Tr62(Tr62Category),
}

impl ScaleValue {
    /// The framework's name as explanations print it.
    const fn framework(self) -> &'static str {
        match self {
            ScaleValue::Enisa(_) => "ENISA incident impact",
            ScaleValue::NistFunctional(_) => "NIST functional impact",
            ScaleValue::NistInformation(_) => "NIST information impact",
            ScaleValue::Tr62(_) => "TR 62 service category",
        }
    }

    /// The value as a reader of that framework would name it, e.g. "Medium".
    fn title(self) -> String {
        match self {
            ScaleValue::Enisa(v) => v.as_str().to_owned(),
            ScaleValue::NistFunctional(v) => v.title().to_owned(),
            ScaleValue::NistInformation(v) => v.title().to_owned(),
            ScaleValue::Tr62(v) => v.title().to_owned(),
        }
    }

    /// The value as the CLI and JSON name it, e.g. "medium".
    fn as_str(self) -> &'static str {
        match self {
            ScaleValue::Enisa(v) => v.as_str(),
            ScaleValue::NistFunctional(v) => v.as_str(),
            ScaleValue::NistInformation(v) => v.as_str(),
            ScaleValue::Tr62(v) => v.as_str(),
        }
    }

    const fn description(self) -> &'static str {
        match self {
            ScaleValue::Enisa(v) => v.description(),
            ScaleValue::NistFunctional(v) => v.description(),
            ScaleValue::NistInformation(v) => v.description(),
            ScaleValue::Tr62(v) => v.description(),
        }
    }

    /// The CIR levels this value maps onto, from [`LEVEL_TABLE`].
    fn levels(self) -> (CirLevel, CirLevel) {
        LEVEL_TABLE
            .iter()
            .find(|(value, _, _)| *value == self)
            .map(|&(_, lo, hi)| (lo, hi))
            .expect("LEVEL_TABLE has a row for every scale value (checked by a test)")
    }
}

/// CIR.md's classification table read column by column: each framework value and the
/// lowest and highest CIR level it maps onto. The source table merges cells, so some
/// values span several levels (TR 62 D = 1-2, NIST functional Medium = 3-4, NIST
/// information None = 1-2 and any breach or loss = 3-5).
#[rustfmt::skip]
const LEVEL_TABLE: [(ScaleValue, CirLevel, CirLevel); 17] = {
    use ScaleValue::*;
    const fn l(n: u8) -> CirLevel { CirLevel::of(n) }
    [
        (Enisa(EnisaImpact::Impact0),                          l(1), l(1)),
        (Enisa(EnisaImpact::Impact1),                          l(2), l(2)),
        (Enisa(EnisaImpact::Impact2),                          l(3), l(3)),
        (Enisa(EnisaImpact::Impact3),                          l(4), l(4)),
        (Enisa(EnisaImpact::Impact4),                          l(5), l(5)),
        (NistFunctional(NistFunctionalImpact::None),           l(1), l(1)),
        (NistFunctional(NistFunctionalImpact::Low),            l(2), l(2)),
        (NistFunctional(NistFunctionalImpact::Medium),         l(3), l(4)),
        (NistFunctional(NistFunctionalImpact::High),           l(5), l(5)),
        (NistInformation(NistInformationImpact::None),         l(1), l(2)),
        (NistInformation(NistInformationImpact::PrivacyBreach),     l(3), l(5)),
        (NistInformation(NistInformationImpact::ProprietaryBreach), l(3), l(5)),
        (NistInformation(NistInformationImpact::IntegrityLoss),     l(3), l(5)),
        (Tr62(Tr62Category::D),                                l(1), l(2)),
        (Tr62(Tr62Category::C),                                l(3), l(3)),
        (Tr62(Tr62Category::B),                                l(4), l(4)),
        (Tr62(Tr62Category::A),                                l(5), l(5)),
    ]
};

/// What is known of an incident's impact in other frameworks' terms; any may be missing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClassificationInput {
    /// ENISA incident impact, if assessed.
    pub enisa: Option<EnisaImpact>,
    /// NIST functional impact, if assessed.
    pub nist_functional: Option<NistFunctionalImpact>,
    /// NIST information impact, if assessed.
    pub nist_information: Option<NistInformationImpact>,
    /// TR 62 service category of the affected service, if known.
    pub tr62: Option<Tr62Category>,
}

impl ClassificationInput {
    /// The inputs that are present, in the table's column order.
    fn present(&self) -> Vec<ScaleValue> {
        [
            self.enisa.map(ScaleValue::Enisa),
            self.nist_functional.map(ScaleValue::NistFunctional),
            self.nist_information.map(ScaleValue::NistInformation),
            self.tr62.map(ScaleValue::Tr62),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// A derived CIR level and why: the answer `cirfed classify` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Classification {
    /// The highest level any input implies.
    pub level: CirLevel,
    /// One entry per input given, in the table's column order.
    pub reasons: Vec<Reason>,
    /// Set when the level lies above some input's range, so the user sees that the
    /// frameworks disagreed rather than trusting a single number blindly.
    pub disagreement: Option<String>,
}

/// How one input maps onto CIR levels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    /// The framework, e.g. "NIST functional impact".
    pub framework: &'static str,
    /// The input's CLI name, e.g. "medium".
    pub input: String,
    /// The CIR levels the input maps onto; it implies at least the lowest.
    pub levels: RangeInclusive<u8>,
    /// A readable sentence, e.g. "NIST functional impact Medium (...) maps to levels 3-4".
    pub explanation: String,
}

/// "level 3" or "levels 3-4".
fn describe_levels(lo: CirLevel, hi: CirLevel) -> String {
    if lo == hi {
        format!("level {}", lo.get())
    } else {
        format!("levels {}-{}", lo.get(), hi.get())
    }
}

/// Derives a CIR level from whatever inputs are given, taking the highest level any
/// input implies (CIR.md), with one reason per input.
pub fn classify(input: &ClassificationInput) -> Result<Classification, CirError> {
    let present = input.present();
    let mut level: Option<CirLevel> = None;
    let mut reasons = Vec::with_capacity(present.len());
    for value in &present {
        let (lo, hi) = value.levels();
        level = level.max(Some(lo));
        reasons.push(Reason {
            framework: value.framework(),
            input: value.as_str().to_owned(),
            levels: lo.get()..=hi.get(),
            explanation: format!(
                "{} {} ({}) maps to {}",
                value.framework(),
                value.title(),
                value.description(),
                describe_levels(lo, hi),
            ),
        });
    }
    let level = level.ok_or(CirError::NoInput)?;

    // Inputs whose whole range lies below the chosen level: the frameworks disagree.
    let below: Vec<String> = present
        .iter()
        .filter(|value| value.levels().1 < level)
        .map(|value| format!("{} {} allows at most level {}", value.framework(), value.title(), value.levels().1.get()))
        .collect();
    let disagreement = (!below.is_empty()).then(|| {
        format!(
            "inputs disagree: {}; level {} was taken because CIR takes the highest level any input implies",
            below.join(", "),
            level.get()
        )
    });

    Ok(Classification { level, reasons, disagreement })
}

impl Classification {
    /// Readable lines: the level, one line per input, and any disagreement.
    pub fn explain(&self) -> String {
        let mut out = format!("CIR {}: {}\n", self.level.to_string().to_lowercase(), self.level.description());
        for reason in &self.reasons {
            out.push_str("  ");
            out.push_str(&reason.explanation);
            out.push('\n');
        }
        match &self.disagreement {
            Some(note) => {
                out.push_str("  ");
                out.push_str(note);
                out.push('\n');
            }
            None if self.reasons.len() > 1 => {
                out.push_str(&format!("  level {} is the highest level any input implies\n", self.level.get()));
            }
            None => {}
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn input() -> ClassificationInput {
        ClassificationInput::default()
    }

    /// The single reason for a one-input classification, as (level, range).
    fn single(input: ClassificationInput) -> (u8, RangeInclusive<u8>) {
        let c = classify(&input).expect("input given");
        assert_eq!(c.reasons.len(), 1);
        assert_eq!(c.disagreement, None);
        (c.level.get(), c.reasons[0].levels.clone())
    }

    // --- the mapping table, row by row (CIR.md) ---

    #[test]
    fn enisa_impact_k_maps_to_level_k_plus_1() {
        let expected = [
            (EnisaImpact::Impact0, 1),
            (EnisaImpact::Impact1, 2),
            (EnisaImpact::Impact2, 3),
            (EnisaImpact::Impact3, 4),
            (EnisaImpact::Impact4, 5),
        ];
        for (enisa, level) in expected {
            let got = single(ClassificationInput { enisa: Some(enisa), ..input() });
            assert_eq!(got, (level, level..=level), "ENISA {enisa}");
        }
    }

    #[test]
    fn nist_functional_none_low_medium_high_map_to_1_2_3to4_5() {
        let expected = [
            (NistFunctionalImpact::None, 1..=1),
            (NistFunctionalImpact::Low, 2..=2),
            (NistFunctionalImpact::Medium, 3..=4),
            (NistFunctionalImpact::High, 5..=5),
        ];
        for (nist, range) in expected {
            let got = single(ClassificationInput { nist_functional: Some(nist), ..input() });
            assert_eq!(got, (*range.start(), range), "NIST functional {nist}");
        }
    }

    #[test]
    fn nist_information_none_is_1to2_and_any_breach_or_loss_is_3to5() {
        let expected = [
            (NistInformationImpact::None, 1..=2),
            (NistInformationImpact::PrivacyBreach, 3..=5),
            (NistInformationImpact::ProprietaryBreach, 3..=5),
            (NistInformationImpact::IntegrityLoss, 3..=5),
        ];
        for (nist, range) in expected {
            let got = single(ClassificationInput { nist_information: Some(nist), ..input() });
            assert_eq!(got, (*range.start(), range), "NIST information {nist}");
        }
    }

    #[test]
    fn tr62_d_c_b_a_map_to_1to2_3_4_5() {
        let expected =
            [(Tr62Category::D, 1..=2), (Tr62Category::C, 3..=3), (Tr62Category::B, 4..=4), (Tr62Category::A, 5..=5)];
        for (tr62, range) in expected {
            let got = single(ClassificationInput { tr62: Some(tr62), ..input() });
            assert_eq!(got, (*range.start(), range), "TR 62 {tr62}");
        }
    }

    #[test]
    fn level_table_has_exactly_one_row_per_input_value() {
        let all: Vec<ScaleValue> = EnisaImpact::ALL
            .iter()
            .map(|&v| ScaleValue::Enisa(v))
            .chain(NistFunctionalImpact::ALL.iter().map(|&v| ScaleValue::NistFunctional(v)))
            .chain(NistInformationImpact::ALL.iter().map(|&v| ScaleValue::NistInformation(v)))
            .chain(Tr62Category::ALL.iter().map(|&v| ScaleValue::Tr62(v)))
            .collect();
        assert_eq!(all.len(), LEVEL_TABLE.len());
        for value in all {
            let rows = LEVEL_TABLE.iter().filter(|(v, _, _)| *v == value).count();
            assert_eq!(rows, 1, "{value:?}");
        }
        for (value, lo, hi) in LEVEL_TABLE {
            assert!(lo <= hi, "{value:?}");
        }
    }

    // --- combinations ---

    #[test]
    fn enisa_impact_3_with_nist_medium_is_level_4() {
        let c = classify(&ClassificationInput {
            enisa: Some(EnisaImpact::Impact3),
            nist_functional: Some(NistFunctionalImpact::Medium),
            ..input()
        })
        .unwrap();
        assert_eq!(c.level, CirLevel::new(4).unwrap());
        assert_eq!(c.reasons.len(), 2);
        // Level 4 lies inside Medium's 3-4, so nothing disagrees.
        assert_eq!(c.disagreement, None);
        assert_eq!(
            c.reasons[1].explanation,
            "NIST functional impact Medium (a critical service lost for a subset of users) \
             maps to levels 3-4"
        );
    }

    #[test]
    fn tr62_d_with_enisa_4_is_level_5_and_notes_the_disagreement() {
        let c = classify(&ClassificationInput {
            enisa: Some(EnisaImpact::Impact4),
            tr62: Some(Tr62Category::D),
            ..input()
        })
        .unwrap();
        assert_eq!(c.level.get(), 5);
        let note = c.disagreement.as_deref().expect("inputs disagree");
        assert!(note.starts_with("inputs disagree"), "{note}");
        assert!(note.contains("TR 62 service category D allows at most level 2"), "{note}");
        assert!(note.contains("highest level"), "{note}");
        let explained = c.explain();
        assert!(explained.starts_with("CIR level 5: major impact on customers"), "{explained}");
        assert!(explained.contains(note), "{explained}");
    }

    #[test]
    fn nist_information_breach_with_tr62_b_is_level_4_without_disagreement() {
        let c = classify(&ClassificationInput {
            nist_information: Some(NistInformationImpact::PrivacyBreach),
            tr62: Some(Tr62Category::B),
            ..input()
        })
        .unwrap();
        assert_eq!(c.level.get(), 4);
        assert_eq!(c.disagreement, None);
    }

    #[test]
    fn no_input_is_an_error() {
        assert_eq!(classify(&input()), Err(CirError::NoInput));
    }

    #[test]
    fn explain_prints_the_level_then_one_line_per_input() {
        let c = classify(&ClassificationInput {
            enisa: Some(EnisaImpact::Impact3),
            nist_functional: Some(NistFunctionalImpact::Medium),
            ..input()
        })
        .unwrap();
        let text = c.explain();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "CIR level 4: impact on customers: a business-critical service to restore within hours",
                "  ENISA incident impact 3 (impact on customers) maps to level 4",
                "  NIST functional impact Medium (a critical service lost for a subset of users) maps to levels 3-4",
                "  level 4 is the highest level any input implies",
            ]
        );
    }

    // --- names and codes ---

    /// as_str -> parse -> same value, Display == as_str, code -> from_code -> same value.
    macro_rules! assert_round_trips {
        ($($ty:ty),+) => {$(
            for &v in <$ty>::ALL {
                assert_eq!(v.as_str().parse::<$ty>(), Ok(v), "{}", v.as_str());
                assert_eq!(v.as_str().to_uppercase().parse::<$ty>(), Ok(v), "{}", v.as_str());
                assert_eq!(v.to_string(), v.as_str());
                let json = serde_json::to_string(&v).unwrap();
                assert_eq!(json, format!("\"{}\"", v.as_str()));
                assert_eq!(serde_json::from_str::<$ty>(&json).unwrap(), v);
            }
            for &(name, v) in <$ty>::NAMES {
                assert_eq!(name.parse::<$ty>(), Ok(v), "alias {name}");
            }
        )+};
    }

    macro_rules! assert_codes_round_trip {
        ($($ty:ty),+) => {$(
            for &v in <$ty>::ALL {
                assert_eq!(<$ty>::from_code(v.code()), Some(v));
                assert_eq!(<$ty>::try_from(v.code()), Ok(v));
                assert_eq!(i32::from(v), v.code());
            }
            assert_eq!(<$ty>::from_code(0), None, "0 is UNSPECIFIED");
            assert_eq!(<$ty>::from_code(99), None);
            assert!(matches!(<$ty>::try_from(0), Err(CirError::UnknownCode { code: 0, .. })));
        )+};
    }

    #[test]
    fn every_name_and_alias_parses_back_to_its_value() {
        assert_round_trips!(
            Tlp,
            Category,
            Phase,
            ServiceModel,
            Role,
            SightingType,
            EnisaImpact,
            NistFunctionalImpact,
            NistInformationImpact,
            Tr62Category
        );
    }

    #[test]
    fn every_code_round_trips_and_zero_is_unspecified() {
        assert_codes_round_trip!(Tlp, Category, Phase, ServiceModel, Role, SightingType);
    }

    #[test]
    fn proto_numbers_match_records_proto() {
        let tlp: Vec<i32> = Tlp::ALL.iter().map(|t| t.code()).collect();
        assert_eq!(tlp, [1, 2, 3, 4, 5]);
        assert_eq!(Tlp::AmberStrict.code(), 4);
        let categories: Vec<i32> = Category::ALL.iter().map(|c| c.code()).collect();
        assert_eq!(categories, [1, 2, 3, 4, 5, 6, 7, 20, 21, 22, 23, 24, 25, 26]);
        assert_eq!(Category::ProviderOutage.code(), 26);
        assert_eq!(Phase::PostMortem.code(), 4);
        assert_eq!(Phase::Coordination.code(), 5);
        assert_eq!(ServiceModel::Saas.code(), 3);
        assert_eq!(Role::Read.code(), 2);
        assert_eq!(SightingType::FalsePositive.code(), 2);
    }

    #[test]
    fn tlp_accepts_misp_tags_tlp_1_white_and_proto_names() {
        assert_eq!("TLP:AMBER+STRICT".parse(), Ok(Tlp::AmberStrict));
        assert_eq!("tlp:red".parse(), Ok(Tlp::Red));
        assert_eq!("white".parse(), Ok(Tlp::Clear));
        assert_eq!("TLP:WHITE".parse(), Ok(Tlp::Clear));
        assert_eq!("amber-strict".parse(), Ok(Tlp::AmberStrict));
        assert_eq!("TLP_AMBER_STRICT".parse(), Ok(Tlp::AmberStrict));
        assert_eq!(" Green ".parse(), Ok(Tlp::Green));
    }

    #[test]
    fn other_enums_accept_their_obvious_aliases() {
        assert_eq!("ddos".parse(), Ok(Category::DenialOfService));
        assert_eq!("DoS".parse(), Ok(Category::DenialOfService));
        assert_eq!("DATA_EXFILTRATION".parse(), Ok(Category::DataExfiltration));
        assert_eq!("detection-and-analysis".parse(), Ok(Phase::DetectionAndAnalysis));
        assert_eq!("Containment Eradication and Recovery".parse(), Ok(Phase::ContainmentEradicationRecovery));
        assert_eq!("post mortem".parse(), Ok(Phase::PostMortem));
        assert_eq!("impact-3".parse(), Ok(EnisaImpact::Impact3));
        assert_eq!("Impact 3".parse(), Ok(EnisaImpact::Impact3));
        assert_eq!("privacy-breach".parse(), Ok(NistInformationImpact::PrivacyBreach));
        assert_eq!("Integrity Loss".parse(), Ok(NistInformationImpact::IntegrityLoss));
        assert_eq!("D".parse(), Ok(Tr62Category::D));
        assert_eq!("false positive".parse(), Ok(SightingType::FalsePositive));
    }

    #[test]
    fn unknown_tlp_lists_the_accepted_names() {
        let err = "orange".parse::<Tlp>().unwrap_err();
        assert_eq!(err.to_string(), "unknown TLP 'orange': expected one of clear, green, amber, amber+strict, red");
    }

    #[test]
    fn unknown_names_list_the_accepted_names_for_every_enum() {
        let cases = [
            ("nope".parse::<Category>().unwrap_err(), "unknown category 'nope': expected one of malware, intrusion, phishing, denial-of-service, data-exfiltration, credential-theft, misconfiguration, operational-error, infrastructure-failure, power-loss, network-cut, natural-disaster, capacity-exhaustion, provider-outage"),
            ("nope".parse::<Phase>().unwrap_err(), "unknown phase 'nope': expected one of preparation, detection, containment, post-mortem, coordination"),
            ("faas".parse::<ServiceModel>().unwrap_err(), "unknown service model 'faas': expected one of iaas, paas, saas"),
            ("admin".parse::<Role>().unwrap_err(), "unknown role 'admin': expected one of publish, read"),
            ("nope".parse::<SightingType>().unwrap_err(), "unknown sighting type 'nope': expected one of seen, false-positive, expired"),
            ("5".parse::<EnisaImpact>().unwrap_err(), "unknown ENISA impact '5': expected one of 0, 1, 2, 3, 4"),
            ("severe".parse::<NistFunctionalImpact>().unwrap_err(), "unknown NIST functional impact 'severe': expected one of none, low, medium, high"),
            ("leak".parse::<NistInformationImpact>().unwrap_err(), "unknown NIST information impact 'leak': expected one of none, privacy, proprietary, integrity"),
            ("E".parse::<Tr62Category>().unwrap_err(), "unknown TR 62 category 'E': expected one of a, b, c, d"),
            ("".parse::<Tlp>().unwrap_err(), "unknown TLP '': expected one of clear, green, amber, amber+strict, red"),
        ];
        for (err, message) in cases {
            assert_eq!(err.to_string(), message);
        }
    }

    #[test]
    fn serde_rejects_unknown_names_with_the_accepted_list() {
        let err = serde_json::from_str::<Tlp>("\"orange\"").unwrap_err();
        assert!(err.to_string().contains("expected one of clear, green"), "{err}");
        assert_eq!(serde_json::from_str::<Tlp>("\"TLP:AMBER\"").unwrap(), Tlp::Amber);
    }

    // --- TLP semantics ---

    #[test]
    fn red_never_leaves_the_node_and_only_clear_and_green_are_relayed() {
        let leaves: Vec<bool> = Tlp::ALL.iter().map(|t| t.leaves_node()).collect();
        assert_eq!(leaves, [true, true, true, true, false]);
        let relayed: Vec<bool> = Tlp::ALL.iter().map(|t| t.may_relay()).collect();
        assert_eq!(relayed, [true, true, false, false, false]);
    }

    #[test]
    fn tlp_orders_from_least_to_most_restrictive() {
        assert!(Tlp::Clear < Tlp::Green);
        assert!(Tlp::Amber < Tlp::AmberStrict);
        assert!(Tlp::AmberStrict < Tlp::Red);
    }

    #[test]
    fn security_categories_are_those_below_20() {
        let security: Vec<Category> = Category::ALL.iter().copied().filter(|c| c.is_security()).collect();
        assert_eq!(
            security,
            [
                Category::Malware,
                Category::Intrusion,
                Category::Phishing,
                Category::DenialOfService,
                Category::DataExfiltration,
                Category::CredentialTheft,
                Category::Misconfiguration,
            ]
        );
        assert!(!Category::NetworkCut.is_security());
        assert!(!Category::ProviderOutage.is_security());
    }

    // --- CIR level ---

    #[test]
    fn cir_level_holds_only_1_to_5() {
        for n in 1..=5 {
            assert_eq!(CirLevel::new(n).unwrap().get(), n);
        }
        assert_eq!(CirLevel::new(0), Err(CirError::InvalidLevel(0)));
        assert_eq!(CirLevel::new(7).unwrap_err().to_string(), "invalid CIR level 7: expected 1 to 5");
        assert_eq!(CirLevel::from_u32(300), Err(CirError::InvalidLevel(300)));
        assert_eq!(CirLevel::from_u32(3), CirLevel::new(3));
        let all: Vec<u8> = CirLevel::ALL.iter().map(|l| l.get()).collect();
        assert_eq!(all, [1, 2, 3, 4, 5]);
    }

    #[test]
    fn cir_level_displays_as_level_n_and_parses_back() {
        for &level in CirLevel::ALL {
            let shown = level.to_string();
            assert_eq!(shown, format!("Level {}", level.get()));
            assert_eq!(shown.parse(), Ok(level));
            assert_eq!(level.get().to_string().parse(), Ok(level));
            assert!(!level.description().is_empty());
        }
        assert_eq!("level-2".parse(), CirLevel::new(2));
        assert_eq!("6".parse::<CirLevel>(), Err(CirError::InvalidLevel(6)));
        assert!(matches!("high".parse::<CirLevel>(), Err(CirError::UnknownName { .. })));
    }

    #[test]
    fn cir_level_serialises_as_a_plain_number_and_rejects_out_of_range() {
        let level = CirLevel::new(3).unwrap();
        assert_eq!(serde_json::to_string(&level).unwrap(), "3");
        assert_eq!(serde_json::from_str::<CirLevel>("3").unwrap(), level);
        let err = serde_json::from_str::<CirLevel>("9").unwrap_err();
        assert!(err.to_string().contains("invalid CIR level 9"), "{err}");
    }

    #[test]
    fn classification_input_reads_cli_names_from_json() {
        let input: ClassificationInput = serde_json::from_str(r#"{"enisa": "impact 3", "tr62": "B"}"#).unwrap();
        assert_eq!(input.enisa, Some(EnisaImpact::Impact3));
        assert_eq!(input.tr62, Some(Tr62Category::B));
        assert_eq!(input.nist_functional, None);
        assert!(serde_json::from_str::<ClassificationInput>(r#"{"cvss": 9}"#).is_err());
    }

    // --- the rule, for every combination ---

    /// CIR.md's lows, restated independently of LEVEL_TABLE.
    fn expected_low(input: &ClassificationInput) -> Option<u8> {
        let enisa = input.enisa.map(|e| match e {
            EnisaImpact::Impact0 => 1,
            EnisaImpact::Impact1 => 2,
            EnisaImpact::Impact2 => 3,
            EnisaImpact::Impact3 => 4,
            EnisaImpact::Impact4 => 5,
        });
        let functional = input.nist_functional.map(|f| match f {
            NistFunctionalImpact::None => 1,
            NistFunctionalImpact::Low => 2,
            NistFunctionalImpact::Medium => 3,
            NistFunctionalImpact::High => 5,
        });
        let information = input.nist_information.map(|i| match i {
            NistInformationImpact::None => 1,
            _ => 3,
        });
        let tr62 = input.tr62.map(|t| match t {
            Tr62Category::D => 1,
            Tr62Category::C => 3,
            Tr62Category::B => 4,
            Tr62Category::A => 5,
        });
        [enisa, functional, information, tr62].into_iter().flatten().max()
    }

    fn any_input() -> impl Strategy<Value = ClassificationInput> {
        (
            proptest::option::of(proptest::sample::select(EnisaImpact::ALL)),
            proptest::option::of(proptest::sample::select(NistFunctionalImpact::ALL)),
            proptest::option::of(proptest::sample::select(NistInformationImpact::ALL)),
            proptest::option::of(proptest::sample::select(Tr62Category::ALL)),
        )
            .prop_map(|(enisa, nist_functional, nist_information, tr62)| ClassificationInput {
                enisa,
                nist_functional,
                nist_information,
                tr62,
            })
    }

    proptest! {
        #[test]
        fn level_is_the_highest_low_of_any_input_and_within_1_to_5(input in any_input()) {
            match (classify(&input), expected_low(&input)) {
                (Err(err), None) => prop_assert_eq!(err, CirError::NoInput),
                (Ok(c), Some(low)) => {
                    prop_assert_eq!(c.level.get(), low);
                    prop_assert!((1..=5).contains(&c.level.get()));
                    prop_assert_eq!(c.reasons.len(), input.present().len());
                    let max_low = c.reasons.iter().map(|r| *r.levels.start()).max();
                    prop_assert_eq!(max_low, Some(low));
                    let some_below = c.reasons.iter().any(|r| *r.levels.end() < low);
                    prop_assert_eq!(c.disagreement.is_some(), some_below);
                    prop_assert!(c.explain().lines().count() > c.reasons.len());
                }
                (got, want) => prop_assert!(false, "got {:?}, want low {:?}", got, want),
            }
        }
    }
}
