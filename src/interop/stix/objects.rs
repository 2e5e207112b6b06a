//! Records as STIX objects: typed structs that borrow from the record and
//! serialise straight to JSON (no `serde_json::Value` in between, so an
//! export writes hundreds of thousands of objects a second).
//!
//! Property order is the field order, so the same record gives the same
//! bytes. Optional properties are left out rather than written empty or null
//! (STIX lists need at least one item; null is invalid).

use super::markings::{marking_id, CirfedExtension};
use super::time::Timestamp;
use crate::cir::{Category, Phase, ServiceModel, SightingType, Tlp};
use crate::normalize::ObservableType;
use crate::proto::{Indicator, Lesson, MemberCard, PhaseAction, Sighting};
use crate::record::RecordId;
use serde::ser::SerializeSeq;
use serde::{Serialize, Serializer};
use std::fmt;
use uuid::Uuid;

/// Highest `count` STIX allows on a sighting.
pub const MAX_SIGHTING_COUNT: u32 = 999_999_999;

/// `<type>--<uuid>`, written without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ObjectId {
    /// The STIX type.
    pub kind: &'static str,
    /// The UUID.
    pub uuid: Uuid,
}

impl ObjectId {
    /// The id of the `kind` object with `uuid`.
    pub const fn new(kind: &'static str, uuid: Uuid) -> Self {
        ObjectId { kind, uuid }
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = Uuid::encode_buffer();
        write!(f, "{}--{}", self.kind, self.uuid.hyphenated().encode_lower(&mut buf))
    }
}

impl Serialize for ObjectId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 80];
        let kind = self.kind.as_bytes();
        let len = kind.len() + 2 + 36;
        assert!(len <= buf.len(), "STIX type names are short");
        buf[..kind.len()].copy_from_slice(kind);
        buf[kind.len()..kind.len() + 2].copy_from_slice(b"--");
        self.uuid.hyphenated().encode_lower(&mut buf[kind.len() + 2..len]);
        serializer.serialize_str(std::str::from_utf8(&buf[..len]).expect("ascii"))
    }
}

/// A record id as 64 lower-case hex digits.
#[derive(Debug, Clone, Copy)]
pub struct RecordHex<'a>(pub &'a RecordId);

impl Serialize for RecordHex<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 64];
        hex::encode_to_slice(self.0 .0, &mut buf).expect("64 digits for 32 bytes");
        serializer.serialize_str(std::str::from_utf8(&buf).expect("hex is ascii"))
    }
}

/// `{"source_name": "cirfed", "external_id": "<record id hex>"}`: which record an object came from.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ExternalReference<'a> {
    source_name: &'static str,
    external_id: RecordHex<'a>,
}

impl<'a> ExternalReference<'a> {
    /// The reference to `record`.
    pub fn to(record: &'a RecordId) -> [Self; 1] {
        [ExternalReference { source_name: "cirfed", external_id: RecordHex(record) }]
    }
}

/// Category codes written as their names (unknown codes left out).
#[derive(Debug, Clone, Copy)]
pub struct Categories<'a>(pub &'a [i32]);

impl Categories<'_> {
    fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.iter().filter_map(|code| Category::from_code(*code)).map(Category::as_str)
    }

    /// No known category: the property is left out.
    pub fn is_empty(&self) -> bool {
        self.names().next().is_none()
    }
}

impl Serialize for Categories<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.names())
    }
}

/// The STIX `indicator-type-ov` value a category suggests.
fn indicator_type(category: Category) -> &'static str {
    match category {
        Category::CredentialTheft => "compromised",
        Category::Misconfiguration => "anomalous-activity",
        category if category.is_security() => "malicious-activity",
        // Outages and other operational incidents: the indicator is not malicious.
        _ => "benign",
    }
}

/// `indicator_types` from the categories, each once, in order; `["unknown"]`
/// without a category (stix2-validator's `--interop` mode requires the property).
#[derive(Debug, Clone, Copy)]
pub struct IndicatorTypes<'a>(pub Categories<'a>);

impl Serialize for IndicatorTypes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0.is_empty() {
            return serializer.collect_seq(["unknown"]);
        }
        let mut written: [&str; 4] = [""; 4];
        let mut count = 0;
        let mut seq = serializer.serialize_seq(None)?;
        for code in self.0 .0 {
            let Some(category) = Category::from_code(*code) else { continue };
            let kind = indicator_type(category);
            if written[..count].contains(&kind) {
                continue;
            }
            written[count] = kind;
            count += 1;
            seq.serialize_element(kind)?;
        }
        seq.end()
    }
}

/// An indicator's `name`: its type and value, as analysts read it in a list.
#[derive(Debug, Clone, Copy)]
pub struct IndicatorName<'a> {
    kind: ObservableType,
    value: &'a str,
}

impl Serialize for IndicatorName<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&format_args!("{} {}", self.kind, self.value))
    }
}

/// An indicator's `description`: the author's text, or a default sentence,
/// since stix2-validator asks for both `name` and `description` (check 303).
#[derive(Debug, Clone, Copy)]
pub enum Description<'a> {
    /// The author's description.
    Given(&'a str),
    /// None given: [`default_description`].
    Default { kind: ObservableType, level: u32 },
}

/// The description written for an indicator without one (and recognised on import).
pub fn default_description(kind: ObservableType, level: u32) -> String {
    format!("{kind} indicator of CIR level {level} shared through cirfed")
}

impl Serialize for Description<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Description::Given(text) => serializer.serialize_str(text),
            Description::Default { kind, level } => {
                serializer.collect_str(&format_args!("{kind} indicator of CIR level {level} shared through cirfed"))
            }
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What every object made from a record shares: identity, versions, author, marking.
#[derive(Debug, Clone, Copy)]
pub struct Common<'a> {
    /// The object id.
    pub id: ObjectId,
    /// The first version's time.
    pub created: Timestamp,
    /// This version's time (>= `created`).
    pub modified: Timestamp,
    /// The author's identity.
    pub created_by_ref: ObjectId,
    /// A retracted record's last version.
    pub revoked: bool,
    /// The record's TLP (never RED).
    pub tlp: Tlp,
    /// The record the object was made from.
    pub record: &'a RecordId,
    /// Why the author retracted it (revoked versions only).
    pub retraction_reason: &'a str,
}

/// An `indicator` SDO.
#[derive(Debug, Serialize)]
pub struct IndicatorObject<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    spec_version: &'static str,
    id: ObjectId,
    created: Timestamp,
    modified: Timestamp,
    created_by_ref: ObjectId,
    #[serde(skip_serializing_if = "is_false")]
    revoked: bool,
    name: IndicatorName<'a>,
    description: Description<'a>,
    indicator_types: IndicatorTypes<'a>,
    pattern: String,
    pattern_type: &'static str,
    pattern_version: &'static str,
    valid_from: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    valid_until: Option<Timestamp>,
    confidence: u32,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    labels: &'a [String],
    external_references: [ExternalReference<'a>; 1],
    object_marking_refs: [&'static str; 1],
    x_cirfed_cir_level: u32,
    #[serde(skip_serializing_if = "Categories::is_empty")]
    x_cirfed_categories: Categories<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x_cirfed_observable_type: Option<&'static str>,
    #[serde(skip_serializing_if = "str::is_empty")]
    x_cirfed_incident_ref: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    x_cirfed_first_seen: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x_cirfed_last_seen: Option<Timestamp>,
    #[serde(skip_serializing_if = "str::is_empty")]
    x_cirfed_retraction_reason: &'a str,
    extensions: CirfedExtension,
}

/// Observable types STIX has no object for: the indicator says which cirfed type its pattern means.
fn declared_type(kind: ObservableType) -> Option<&'static str> {
    matches!(kind, ObservableType::CloudAccessKeyId | ObservableType::CloudResourceName).then(|| kind.as_str())
}

/// The indicator object of `indicator` (pattern already written, see `pattern::emit`).
pub fn indicator<'a>(
    common: Common<'a>,
    indicator: &'a Indicator,
    kind: ObservableType,
    pattern: String,
    record_created: i64,
) -> IndicatorObject<'a> {
    let seen = |t: i64| (t != 0).then(|| Timestamp::from_secs(t));
    let valid_until = (indicator.valid_until != 0).then(|| Timestamp::from_secs(indicator.valid_until));
    let mut valid_from = Timestamp::from_secs(if indicator.first_seen != 0 { indicator.first_seen } else { record_created });
    // STIX: valid_until MUST be later than valid_from.
    if let Some(until) = valid_until {
        valid_from = valid_from.min(Timestamp(until.0 - 1000));
    }
    let description = match indicator.description.is_empty() {
        true => Description::Default { kind, level: indicator.cir_level },
        false => Description::Given(&indicator.description),
    };
    IndicatorObject {
        kind: "indicator",
        spec_version: "2.1",
        id: common.id,
        created: common.created,
        modified: common.modified,
        created_by_ref: common.created_by_ref,
        revoked: common.revoked,
        name: IndicatorName { kind, value: &indicator.value },
        description,
        indicator_types: IndicatorTypes(Categories(&indicator.categories)),
        pattern,
        pattern_type: "stix",
        pattern_version: "2.1",
        valid_from,
        valid_until,
        confidence: indicator.confidence.min(100),
        labels: &indicator.tags,
        external_references: ExternalReference::to(common.record),
        object_marking_refs: [marking_id(common.tlp)],
        x_cirfed_cir_level: indicator.cir_level,
        x_cirfed_categories: Categories(&indicator.categories),
        x_cirfed_observable_type: declared_type(kind),
        x_cirfed_incident_ref: &indicator.incident_ref,
        x_cirfed_first_seen: seen(indicator.first_seen),
        x_cirfed_last_seen: seen(indicator.last_seen),
        x_cirfed_retraction_reason: common.retraction_reason,
        extensions: CirfedExtension,
    }
}

/// One recommended action of a report.
#[derive(Debug, Serialize)]
pub struct Action<'a> {
    phase: &'static str,
    action: &'a str,
}

/// Recommended actions with a known phase.
#[derive(Debug, Clone, Copy)]
pub struct Actions<'a>(&'a [PhaseAction]);

impl Actions<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Actions<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|a| Action {
            phase: Phase::from_code(a.phase).map_or("unspecified", Phase::as_str),
            action: &a.action,
        }))
    }
}

/// A `report` SDO: a lesson (post-mortem).
#[derive(Debug, Serialize)]
pub struct ReportObject<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    spec_version: &'static str,
    id: ObjectId,
    created: Timestamp,
    modified: Timestamp,
    created_by_ref: ObjectId,
    #[serde(skip_serializing_if = "is_false")]
    revoked: bool,
    name: &'a str,
    description: &'a str,
    report_types: [&'static str; 1],
    published: Timestamp,
    object_refs: Vec<ObjectId>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    labels: &'a [String],
    external_references: [ExternalReference<'a>; 1],
    object_marking_refs: [&'static str; 1],
    x_cirfed_cir_level: u32,
    #[serde(skip_serializing_if = "Categories::is_empty")]
    x_cirfed_categories: Categories<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x_cirfed_service_model: Option<&'static str>,
    #[serde(skip_serializing_if = "str::is_empty")]
    x_cirfed_detection_method: &'a str,
    #[serde(skip_serializing_if = "is_zero")]
    x_cirfed_time_to_detect_secs: u64,
    #[serde(skip_serializing_if = "is_zero")]
    x_cirfed_time_to_contain_secs: u64,
    #[serde(skip_serializing_if = "is_zero")]
    x_cirfed_time_to_recover_secs: u64,
    #[serde(skip_serializing_if = "str::is_empty")]
    x_cirfed_root_cause: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    x_cirfed_went_well: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    x_cirfed_to_improve: &'a [String],
    #[serde(skip_serializing_if = "Actions::is_empty")]
    x_cirfed_recommended_actions: Actions<'a>,
    #[serde(skip_serializing_if = "str::is_empty")]
    x_cirfed_retraction_reason: &'a str,
    extensions: CirfedExtension,
}

/// The report of `lesson`; `object_refs` are its indicators' ids (or, when it has none, its author).
pub fn report<'a>(
    common: Common<'a>,
    lesson: &'a Lesson,
    published: Timestamp,
    mut object_refs: Vec<ObjectId>,
) -> ReportObject<'a> {
    if object_refs.is_empty() {
        object_refs.push(common.created_by_ref);
    }
    ReportObject {
        kind: "report",
        spec_version: "2.1",
        id: common.id,
        created: common.created,
        modified: common.modified,
        created_by_ref: common.created_by_ref,
        revoked: common.revoked,
        name: &lesson.title,
        description: &lesson.summary,
        report_types: ["threat-report"],
        published,
        object_refs,
        labels: &lesson.tags,
        external_references: ExternalReference::to(common.record),
        object_marking_refs: [marking_id(common.tlp)],
        x_cirfed_cir_level: lesson.cir_level,
        x_cirfed_categories: Categories(&lesson.categories),
        x_cirfed_service_model: ServiceModel::from_code(lesson.service_model).map(ServiceModel::as_str),
        x_cirfed_detection_method: &lesson.detection_method,
        x_cirfed_time_to_detect_secs: lesson.time_to_detect_secs,
        x_cirfed_time_to_contain_secs: lesson.time_to_contain_secs,
        x_cirfed_time_to_recover_secs: lesson.time_to_recover_secs,
        x_cirfed_root_cause: &lesson.root_cause,
        x_cirfed_went_well: &lesson.went_well,
        x_cirfed_to_improve: &lesson.to_improve,
        x_cirfed_recommended_actions: Actions(&lesson.recommended_actions),
        x_cirfed_retraction_reason: common.retraction_reason,
        extensions: CirfedExtension,
    }
}

/// A `sighting` SRO.
#[derive(Debug, Serialize)]
pub struct SightingObject<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    spec_version: &'static str,
    id: ObjectId,
    created: Timestamp,
    modified: Timestamp,
    created_by_ref: ObjectId,
    #[serde(skip_serializing_if = "is_false")]
    revoked: bool,
    first_seen: Timestamp,
    last_seen: Timestamp,
    sighting_of_ref: ObjectId,
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<u32>,
    where_sighted_refs: [ObjectId; 1],
    external_references: [ExternalReference<'a>; 1],
    object_marking_refs: [&'static str; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    x_cirfed_sighting_type: Option<&'static str>,
    #[serde(skip_serializing_if = "str::is_empty")]
    x_cirfed_retraction_reason: &'a str,
    extensions: CirfedExtension,
}

/// The sighting of `indicator` (its object id); sighted where its author is,
/// when it was reported (cirfed keeps no separate sighting time).
pub fn sighting<'a>(common: Common<'a>, sighting: &'a Sighting, indicator: ObjectId) -> SightingObject<'a> {
    let kind = match SightingType::from_code(sighting.r#type) {
        Some(SightingType::FalsePositive) => Some("false-positive"),
        Some(SightingType::Expired) => Some("expired"),
        Some(SightingType::Seen) | None => None,
    };
    SightingObject {
        kind: "sighting",
        spec_version: "2.1",
        id: common.id,
        created: common.created,
        modified: common.modified,
        created_by_ref: common.created_by_ref,
        revoked: common.revoked,
        first_seen: common.created,
        last_seen: common.created,
        sighting_of_ref: indicator,
        count: (sighting.count != 0).then(|| sighting.count.min(MAX_SIGHTING_COUNT)),
        where_sighted_refs: [common.created_by_ref],
        external_references: ExternalReference::to(common.record),
        object_marking_refs: [marking_id(common.tlp)],
        x_cirfed_sighting_type: kind,
        x_cirfed_retraction_reason: common.retraction_reason,
        extensions: CirfedExtension,
    }
}

/// An `identity` SDO: a member under its pseudonym, or one of cirfed's fixed identities.
#[derive(Debug, Serialize)]
pub struct IdentityObject<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    spec_version: &'static str,
    id: ObjectId,
    created: Timestamp,
    modified: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_by_ref: Option<ObjectId>,
    name: &'a str,
    description: &'static str,
    identity_class: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    external_references: Option<[ExternalReference<'a>; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    object_marking_refs: Option<[&'static str; 1]>,
}

/// A member's identity from its card: named by the pseudonymous member id only, never the organisation.
pub fn member<'a>(common: Common<'a>, card: &'a MemberCard) -> IdentityObject<'a> {
    IdentityObject {
        kind: "identity",
        spec_version: "2.1",
        id: common.id,
        created: common.created,
        modified: common.modified,
        created_by_ref: Some(common.created_by_ref),
        name: &card.member_id,
        description: "A member of a cirfed federation, under its pseudonymous member id.",
        identity_class: "organization",
        external_references: Some(ExternalReference::to(common.record)),
        object_marking_refs: Some([marking_id(common.tlp)]),
    }
}

/// One of cirfed's fixed identities (the extension's author, the federation authority).
pub fn fixed_identity(
    id: ObjectId,
    created: Timestamp,
    name: &'static str,
    description: &'static str,
    class: &'static str,
) -> IdentityObject<'static> {
    IdentityObject {
        kind: "identity",
        spec_version: "2.1",
        id,
        created,
        modified: created,
        created_by_ref: None,
        name,
        description,
        identity_class: class,
        external_references: None,
        object_marking_refs: None,
    }
}

/// Any object a record gives.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Object<'a> {
    /// An indicator (or its revoked version).
    Indicator(IndicatorObject<'a>),
    /// A lesson.
    Report(ReportObject<'a>),
    /// A sighting.
    Sighting(SightingObject<'a>),
    /// A member.
    Identity(IdentityObject<'a>),
}

impl Object<'_> {
    /// Its id.
    pub fn id(&self) -> ObjectId {
        match self {
            Object::Indicator(o) => o.id,
            Object::Report(o) => o.id,
            Object::Sighting(o) => o.id,
            Object::Identity(o) => o.id,
        }
    }

    /// Its `modified`: the version TAXII lists.
    pub fn modified(&self) -> Timestamp {
        match self {
            Object::Indicator(o) => o.modified,
            Object::Report(o) => o.modified,
            Object::Sighting(o) => o.modified,
            Object::Identity(o) => o.modified,
        }
    }
}
