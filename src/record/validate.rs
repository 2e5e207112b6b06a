//! Validation of every record on ingest, local or remote.
//!
//! Cheap structural checks run first so that a flood of garbage costs little;
//! the signature is checked last, in batches where the caller has many records.

use super::{RecordId, RecordKind, MAX_CLOCK_SKEW_SECS, MAX_ENVELOPE_BYTES, MAX_RECORD_BYTES, RECORD_VERSION};
use crate::cir::{Category, CirLevel, Phase, Role, ServiceModel, SightingType, Tlp};
use crate::normalize::{self, NormalizeError, ObservableType};
use crate::proto::{
    record::Body, Envelope, Indicator, Lesson, MemberCard, MemberRevocation, Record, Retraction, Sighting,
};
use ed25519_dalek::{Signature, VerifyingKey};
use prost::Message;

/// Longest free-text field (description, summary, root cause, ...), in bytes.
pub const MAX_TEXT_BYTES: usize = 16 * 1024;
/// Longest short field (title, tag, reason, incident reference), in bytes.
pub const MAX_SHORT_TEXT_BYTES: usize = 256;
/// Most entries in any repeated field.
pub const MAX_LIST_ITEMS: usize = 64;

/// Why a record was refused. Each failure has its own variant so that peers
/// can be scored and users told exactly what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("record is {size} bytes, over the limit of {max}")]
    TooLarge { size: usize, max: usize },
    #[error("malformed record: {0}")]
    Malformed(String),
    #[error("unsupported record version {0}: this node reads version {RECORD_VERSION}")]
    UnsupportedVersion(u32),
    #[error("record has no body")]
    MissingBody,
    #[error("author is not a valid ed25519 public key")]
    BadAuthorKey,
    #[error("signature does not verify against the author key")]
    BadSignature,
    #[error("created_at {created_at} is more than {MAX_CLOCK_SKEW_SECS} s ahead of this node's clock ({now})")]
    FromTheFuture { created_at: i64, now: i64 },
    #[error("author {author} holds no member card known to this node")]
    UnknownMember { author: String },
    #[error("member {member_id}'s card is not valid at {created_at} (valid {valid_from} to {valid_until})")]
    MemberNotValid { member_id: String, created_at: i64, valid_from: i64, valid_until: i64 },
    #[error("member {member_id} was revoked at {revoked_at}; record created at {created_at}")]
    MemberRevoked { member_id: String, revoked_at: i64, created_at: i64 },
    #[error("member {member_id} replaced this signing key at {replaced_from}; record created at {created_at}")]
    KeyReplaced { member_id: String, replaced_from: i64, created_at: i64 },
    #[error("member {member_id} lacks the {role} role")]
    MissingRole { member_id: String, role: Role },
    #[error("a {kind} must be signed by the federation authority")]
    NotAuthority { kind: RecordKind },
    #[error("invalid observable: {0}")]
    InvalidObservable(#[from] NormalizeError),
    #[error("{kind} value '{value}' is not canonical (expected '{canonical}')")]
    NotCanonical { kind: ObservableType, value: String, canonical: String },
    #[error("{field} has unknown value {value}")]
    UnknownEnum { field: &'static str, value: i32 },
    #[error("{field} is required")]
    Missing { field: &'static str },
    #[error("invalid CIR level {0}: expected 1 to 5")]
    InvalidLevel(u32),
    #[error("invalid confidence {0}: expected 0 to 100")]
    InvalidConfidence(u32),
    #[error("{field} is {len} bytes, over the limit of {max}")]
    FieldTooLong { field: &'static str, len: usize, max: usize },
    #[error("{field} has {count} entries, over the limit of {max}")]
    TooManyItems { field: &'static str, count: usize, max: usize },
    #[error("{field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error("indicator expired at {valid_until}")]
    Expired { valid_until: i64 },
    #[error("'{0}' is not a record id (64 hex characters)")]
    BadRecordId(String),
    #[error(
        "unknown record kind '{0}': expected indicator, lesson, sighting, retraction, member-card or member-revocation"
    )]
    UnknownKind(String),
}

impl RecordError {
    /// A stable machine-readable name, for bulk reports and peer scoring.
    pub fn code(&self) -> &'static str {
        match self {
            RecordError::TooLarge { .. } => "too_large",
            RecordError::Malformed(_) => "malformed",
            RecordError::UnsupportedVersion(_) => "unsupported_version",
            RecordError::MissingBody => "missing_body",
            RecordError::BadAuthorKey => "bad_author_key",
            RecordError::BadSignature => "bad_signature",
            RecordError::FromTheFuture { .. } => "from_the_future",
            RecordError::UnknownMember { .. } => "unknown_member",
            RecordError::MemberNotValid { .. } => "member_not_valid",
            RecordError::MemberRevoked { .. } => "member_revoked",
            RecordError::KeyReplaced { .. } => "key_replaced",
            RecordError::MissingRole { .. } => "missing_role",
            RecordError::NotAuthority { .. } => "not_authority",
            RecordError::InvalidObservable(_) => "invalid_observable",
            RecordError::NotCanonical { .. } => "not_canonical",
            RecordError::UnknownEnum { .. } => "unknown_enum",
            RecordError::Missing { .. } => "missing_field",
            RecordError::InvalidLevel(_) => "invalid_level",
            RecordError::InvalidConfidence(_) => "invalid_confidence",
            RecordError::FieldTooLong { .. } => "field_too_long",
            RecordError::TooManyItems { .. } => "too_many_items",
            RecordError::InvalidField { .. } => "invalid_field",
            RecordError::Expired { .. } => "expired",
            RecordError::BadRecordId(_) => "bad_record_id",
            RecordError::UnknownKind(_) => "unknown_kind",
        }
    }
}

/// What the authority has said about one member key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// Pseudonymous member id from the card.
    pub member_id: String,
    /// Roles the card grants.
    pub roles: Vec<Role>,
    /// Card validity, unix seconds.
    pub valid_from: i64,
    /// Card validity, unix seconds.
    pub valid_until: i64,
    /// Records created at or after this time are refused.
    pub revoked_at: Option<i64>,
    /// The member rotated to a new signing key: records by this one created
    /// at or after this time are refused, earlier ones stay valid.
    pub replaced_from: Option<i64>,
}

/// The trust anchors a record is judged against.
pub trait Trust {
    /// The federation authority's public key.
    fn authority(&self) -> [u8; 32];
    /// The membership of a signing key, if the authority vouched for it.
    fn membership(&self, key: &[u8; 32]) -> Option<Membership>;
}

/// A record that passed every check.
#[derive(Debug, Clone)]
pub struct Verified {
    /// SHA-256 of the record bytes.
    pub id: RecordId,
    /// The envelope as received; its record bytes are never re-encoded.
    pub envelope: Envelope,
    /// Decoded view of `envelope.record`.
    pub record: Record,
    /// The kind of the body.
    pub kind: RecordKind,
    /// The author's public key.
    pub author: [u8; 32],
    /// Sharing restriction.
    pub tlp: Tlp,
}

impl Verified {
    /// The body, present in every verified record.
    pub fn body(&self) -> &Body {
        self.record.body.as_ref().expect("verified records have a body")
    }
}

/// Validates one encoded envelope, as received from a peer or a file.
pub fn validate(envelope_bytes: &[u8], trust: &impl Trust, now: i64) -> Result<Verified, RecordError> {
    if envelope_bytes.len() > MAX_ENVELOPE_BYTES {
        return Err(RecordError::TooLarge { size: envelope_bytes.len(), max: MAX_ENVELOPE_BYTES });
    }
    let envelope = Envelope::decode(envelope_bytes).map_err(|e| RecordError::Malformed(e.to_string()))?;
    validate_envelope(envelope, trust, now)
}

/// Validates a decoded envelope.
pub fn validate_envelope(envelope: Envelope, trust: &impl Trust, now: i64) -> Result<Verified, RecordError> {
    let (verified, key, signature) = check_unsigned(envelope, trust, now, &mut AuthorKeys::default())?;
    let message = super::signing_message(&verified.envelope.record);
    key.verify_strict(&message, &signature).map_err(|_| RecordError::BadSignature)?;
    Ok(verified)
}

/// Validates many envelopes, verifying their signatures in one batch.
///
/// Batch verification is about twice as fast per signature; when a batch
/// fails, each signature is checked alone so only the bad ones are refused.
pub fn validate_batch(envelopes: Vec<Envelope>, trust: &impl Trust, now: i64) -> Vec<Result<Verified, RecordError>> {
    let mut results: Vec<Result<Verified, RecordError>> = Vec::with_capacity(envelopes.len());
    let mut pending = Vec::new();
    let mut keys = AuthorKeys::default();
    for envelope in envelopes {
        match check_unsigned(envelope, trust, now, &mut keys) {
            Ok((verified, key, signature)) => {
                pending.push((results.len(), key, signature));
                results.push(Ok(verified));
            }
            Err(e) => results.push(Err(e)),
        }
    }
    let messages: Vec<Vec<u8>> = pending
        .iter()
        .map(|(i, _, _)| match &results[*i] {
            Ok(v) => super::signing_message(&v.envelope.record),
            Err(_) => unreachable!("pending holds only checked records"),
        })
        .collect();
    let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    let keys: Vec<VerifyingKey> = pending.iter().map(|p| p.1).collect();
    let signatures: Vec<Signature> = pending.iter().map(|p| p.2).collect();
    if ed25519_dalek::verify_batch(&refs, &signatures, &keys).is_ok() {
        return results;
    }
    for ((index, key, signature), message) in pending.iter().zip(&messages) {
        if key.verify_strict(message, signature).is_err() {
            results[*index] = Err(RecordError::BadSignature);
        }
    }
    results
}

/// Decompressed author keys of one batch. A batch usually has few authors,
/// and decompressing a key costs about half a signature verification.
#[derive(Default)]
struct AuthorKeys(std::collections::HashMap<[u8; 32], Option<VerifyingKey>>);

impl AuthorKeys {
    fn get(&mut self, author: &[u8; 32]) -> Result<VerifyingKey, RecordError> {
        self.0.entry(*author).or_insert_with(|| decompress(author)).ok_or(RecordError::BadAuthorKey)
    }
}

/// The author's key, unless it is not a curve point or is weak: small-order
/// keys would let a batch accept a signature that verify_strict refuses, so
/// they are refused outright and every node agrees.
fn decompress(author: &[u8; 32]) -> Option<VerifyingKey> {
    let key = VerifyingKey::from_bytes(author).ok()?;
    (!key.is_weak()).then_some(key)
}

/// Every check but the signature; returns the key and signature to verify.
fn check_unsigned(
    envelope: Envelope,
    trust: &impl Trust,
    now: i64,
    keys: &mut AuthorKeys,
) -> Result<(Verified, VerifyingKey, Signature), RecordError> {
    if envelope.record.len() > MAX_RECORD_BYTES {
        return Err(RecordError::TooLarge { size: envelope.record.len(), max: MAX_RECORD_BYTES });
    }
    let record = Record::decode(envelope.record.as_slice()).map_err(|e| RecordError::Malformed(e.to_string()))?;
    if record.version != RECORD_VERSION {
        return Err(RecordError::UnsupportedVersion(record.version));
    }
    let author: [u8; 32] = record.author.as_slice().try_into().map_err(|_| RecordError::BadAuthorKey)?;
    let key = keys.get(&author)?;
    let signature = Signature::from_slice(&envelope.signature).map_err(|_| RecordError::BadSignature)?;
    if record.created_at > now + MAX_CLOCK_SKEW_SECS {
        return Err(RecordError::FromTheFuture { created_at: record.created_at, now });
    }
    let tlp = Tlp::from_code(record.tlp).ok_or(RecordError::UnknownEnum { field: "tlp", value: record.tlp })?;
    let body = record.body.as_ref().ok_or(RecordError::MissingBody)?;
    let kind = RecordKind::of(body);
    authorize(kind, &author, record.created_at, trust)?;
    check_body(body, record.created_at, now)?;
    let id = RecordId::of(&envelope.record);
    Ok((Verified { id, envelope, record, kind, author, tlp }, key, signature))
}

/// The author may sign this kind of record at `created_at`.
fn authorize(kind: RecordKind, author: &[u8; 32], created_at: i64, trust: &impl Trust) -> Result<(), RecordError> {
    let is_authority = *author == trust.authority();
    match kind {
        RecordKind::MemberCard | RecordKind::MemberRevocation if is_authority => Ok(()),
        RecordKind::MemberCard | RecordKind::MemberRevocation => Err(RecordError::NotAuthority { kind }),
        RecordKind::Retraction if is_authority => Ok(()),
        // Sightings are feedback any member may give; everything else is publishing.
        RecordKind::Sighting => check_member(author, created_at, None, trust),
        _ => check_member(author, created_at, Some(Role::Publish), trust),
    }
}

fn check_member(author: &[u8; 32], created_at: i64, role: Option<Role>, trust: &impl Trust) -> Result<(), RecordError> {
    let member = trust.membership(author).ok_or_else(|| RecordError::UnknownMember { author: hex::encode(author) })?;
    if let Some(revoked_at) = member.revoked_at {
        if created_at >= revoked_at {
            return Err(RecordError::MemberRevoked { member_id: member.member_id, revoked_at, created_at });
        }
    }
    if let Some(replaced_from) = member.replaced_from.filter(|from| created_at >= *from) {
        return Err(RecordError::KeyReplaced { member_id: member.member_id, replaced_from, created_at });
    }
    if created_at < member.valid_from || created_at > member.valid_until {
        return Err(RecordError::MemberNotValid {
            member_id: member.member_id,
            created_at,
            valid_from: member.valid_from,
            valid_until: member.valid_until,
        });
    }
    match role {
        Some(role) if !member.roles.contains(&role) => {
            Err(RecordError::MissingRole { member_id: member.member_id, role })
        }
        _ => Ok(()),
    }
}

fn check_body(body: &Body, created_at: i64, now: i64) -> Result<(), RecordError> {
    match body {
        Body::Indicator(indicator) => check_indicator(indicator, created_at, now),
        Body::Lesson(lesson) => check_lesson(lesson),
        Body::Sighting(sighting) => check_sighting(sighting),
        Body::Retraction(retraction) => check_retraction(retraction),
        Body::MemberCard(card) => check_card(card),
        Body::MemberRevocation(revocation) => check_revocation(revocation),
    }
}

fn check_indicator(indicator: &Indicator, created_at: i64, now: i64) -> Result<(), RecordError> {
    let kind = u8::try_from(indicator.r#type)
        .ok()
        .and_then(ObservableType::from_code)
        .ok_or(RecordError::UnknownEnum { field: "type", value: indicator.r#type })?;
    let canonical = normalize::normalize(kind, &indicator.value)?;
    if canonical != indicator.value {
        return Err(RecordError::NotCanonical { kind, value: indicator.value.clone(), canonical });
    }
    if indicator.hash_epoch != 0 && kind != ObservableType::KeyedHash {
        return Err(RecordError::InvalidField { field: "hash_epoch", reason: "is only for keyed hashes".into() });
    }
    check_level(indicator.cir_level)?;
    if indicator.confidence > 100 {
        return Err(RecordError::InvalidConfidence(indicator.confidence));
    }
    check_categories(&indicator.categories)?;
    if indicator.valid_until <= created_at {
        return Err(RecordError::InvalidField { field: "valid_until", reason: "must be after created_at".into() });
    }
    if indicator.valid_until <= now {
        return Err(RecordError::Expired { valid_until: indicator.valid_until });
    }
    if indicator.first_seen > indicator.last_seen && indicator.last_seen != 0 {
        return Err(RecordError::InvalidField { field: "first_seen", reason: "must not be after last_seen".into() });
    }
    check_tags(&indicator.tags)?;
    check_text("description", &indicator.description, MAX_TEXT_BYTES)?;
    check_text("incident_ref", &indicator.incident_ref, MAX_SHORT_TEXT_BYTES)?;
    check_optional_id("supersedes", &indicator.supersedes)
}

fn check_lesson(lesson: &Lesson) -> Result<(), RecordError> {
    if lesson.title.trim().is_empty() {
        return Err(RecordError::Missing { field: "title" });
    }
    check_text("title", &lesson.title, MAX_SHORT_TEXT_BYTES)?;
    check_level(lesson.cir_level)?;
    check_categories(&lesson.categories)?;
    if lesson.service_model != 0 && ServiceModel::from_code(lesson.service_model).is_none() {
        return Err(RecordError::UnknownEnum { field: "service_model", value: lesson.service_model });
    }
    for (field, text) in [
        ("summary", &lesson.summary),
        ("detection_method", &lesson.detection_method),
        ("root_cause", &lesson.root_cause),
    ] {
        check_text(field, text, MAX_TEXT_BYTES)?;
    }
    check_text_list("went_well", &lesson.went_well)?;
    check_text_list("to_improve", &lesson.to_improve)?;
    check_count("recommended_actions", lesson.recommended_actions.len())?;
    for action in &lesson.recommended_actions {
        if Phase::from_code(action.phase).is_none() {
            return Err(RecordError::UnknownEnum { field: "recommended_actions.phase", value: action.phase });
        }
        check_text("recommended_actions.action", &action.action, MAX_TEXT_BYTES)?;
    }
    check_count("indicator_refs", lesson.indicator_refs.len())?;
    for reference in &lesson.indicator_refs {
        check_id("indicator_refs", reference)?;
    }
    check_tags(&lesson.tags)
}

fn check_sighting(sighting: &Sighting) -> Result<(), RecordError> {
    check_id("indicator_id", &sighting.indicator_id)?;
    SightingType::from_code(sighting.r#type)
        .ok_or(RecordError::UnknownEnum { field: "sighting type", value: sighting.r#type })?;
    Ok(())
}

fn check_retraction(retraction: &Retraction) -> Result<(), RecordError> {
    check_id("target_id", &retraction.target_id)?;
    check_text("reason", &retraction.reason, MAX_SHORT_TEXT_BYTES)
}

fn check_card(card: &MemberCard) -> Result<(), RecordError> {
    if card.member_id.is_empty() {
        return Err(RecordError::Missing { field: "member_id" });
    }
    if !card.replaces_key.is_empty() {
        check_key("replaces_key", &card.replaces_key)?;
        if card.replaces_key == card.signing_key {
            return Err(RecordError::InvalidField {
                field: "replaces_key",
                reason: "a key cannot replace itself".into(),
            });
        }
    }
    check_text("member_id", &card.member_id, MAX_SHORT_TEXT_BYTES)?;
    check_key("signing_key", &card.signing_key)?;
    for role in &card.roles {
        Role::from_code(*role).ok_or(RecordError::UnknownEnum { field: "roles", value: *role })?;
    }
    if card.valid_until <= card.valid_from {
        return Err(RecordError::InvalidField { field: "valid_until", reason: "must be after valid_from".into() });
    }
    Ok(())
}

fn check_revocation(revocation: &MemberRevocation) -> Result<(), RecordError> {
    check_key("signing_key", &revocation.signing_key)?;
    check_text("member_id", &revocation.member_id, MAX_SHORT_TEXT_BYTES)?;
    // The CRL inside is checked by the node that installs it (identity::crl):
    // one that fails there leaves the revocation itself standing.
    check_text("reason", &revocation.reason, MAX_SHORT_TEXT_BYTES)
}

fn check_level(level: u32) -> Result<(), RecordError> {
    u8::try_from(level).ok().and_then(|l| CirLevel::new(l).ok()).map(|_| ()).ok_or(RecordError::InvalidLevel(level))
}

fn check_categories(categories: &[i32]) -> Result<(), RecordError> {
    check_count("categories", categories.len())?;
    for category in categories {
        Category::from_code(*category).ok_or(RecordError::UnknownEnum { field: "categories", value: *category })?;
    }
    Ok(())
}

fn check_tags(tags: &[String]) -> Result<(), RecordError> {
    check_count("tags", tags.len())?;
    tags.iter().try_for_each(|tag| check_text("tags", tag, MAX_SHORT_TEXT_BYTES))
}

fn check_text_list(field: &'static str, items: &[String]) -> Result<(), RecordError> {
    check_count(field, items.len())?;
    items.iter().try_for_each(|item| check_text(field, item, MAX_TEXT_BYTES))
}

fn check_count(field: &'static str, count: usize) -> Result<(), RecordError> {
    if count > MAX_LIST_ITEMS {
        return Err(RecordError::TooManyItems { field, count, max: MAX_LIST_ITEMS });
    }
    Ok(())
}

fn check_text(field: &'static str, text: &str, max: usize) -> Result<(), RecordError> {
    if text.len() > max {
        return Err(RecordError::FieldTooLong { field, len: text.len(), max });
    }
    if text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(RecordError::InvalidField { field, reason: "contains control characters".into() });
    }
    Ok(())
}

fn check_id(field: &'static str, id: &[u8]) -> Result<(), RecordError> {
    if id.len() != 32 {
        return Err(RecordError::InvalidField {
            field,
            reason: format!("expected a 32-byte record id, got {} bytes", id.len()),
        });
    }
    Ok(())
}

fn check_optional_id(field: &'static str, id: &[u8]) -> Result<(), RecordError> {
    if id.is_empty() {
        return Ok(());
    }
    check_id(field, id)
}

fn check_key(field: &'static str, key: &[u8]) -> Result<(), RecordError> {
    let bytes: [u8; 32] = key
        .try_into()
        .map_err(|_| RecordError::InvalidField { field, reason: "expected a 32-byte ed25519 public key".into() })?;
    VerifyingKey::from_bytes(&bytes)
        .map(|_| ())
        .map_err(|_| RecordError::InvalidField { field, reason: "not a valid ed25519 public key".into() })
}
