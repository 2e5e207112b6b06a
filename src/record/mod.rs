//! Records: canonical bytes, ids, signing and validation.
//!
//! A record is serialized once by its author and signed as those exact bytes;
//! the bytes are then stored and forwarded unchanged (prost drops unknown
//! fields, so re-encoding would change them). Its id is SHA-256 of the bytes,
//! so a replay or a duplicate is the same record.

mod sign;
mod validate;

pub use sign::{signing_message, Signer};
pub use validate::{validate, validate_batch, validate_envelope, Membership, RecordError, Trust, Verified};
pub use validate::{MAX_LIST_ITEMS, MAX_SHORT_TEXT_BYTES, MAX_TEXT_BYTES};

use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// Format version written into every record.
pub const RECORD_VERSION: u32 = 1;
/// Domain separation for record signatures, so a record signature can never be
/// replayed as any other kind of cirfed signature.
pub const SIGNING_DOMAIN: &[u8] = b"cirfed/record/v1\0";
/// Largest record accepted, in bytes of the serialized `Record`.
pub const MAX_RECORD_BYTES: usize = 64 * 1024;
/// Largest envelope accepted: the record plus its signature and framing.
pub const MAX_ENVELOPE_BYTES: usize = MAX_RECORD_BYTES + 128;
/// How far in the future a record's `created_at` may lie (clock skew between members).
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;

/// SHA-256 of a record's bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordId(pub [u8; 32]);

impl RecordId {
    /// The id of the given record bytes.
    pub fn of(record_bytes: &[u8]) -> Self {
        RecordId(Sha256::digest(record_bytes).into())
    }

    /// Parses a 32-byte id from a byte slice.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(RecordId)
    }

    /// Lowercase hex form, as shown to users.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecordId({})", &self.to_hex()[..16])
    }
}

impl FromStr for RecordId {
    type Err = RecordError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = hex::decode(s.trim()).map_err(|_| RecordError::BadRecordId(s.to_string()))?;
        RecordId::from_slice(&bytes).ok_or_else(|| RecordError::BadRecordId(s.to_string()))
    }
}

/// The kinds of record, numbered as `cirfed.v1.RecordKind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordKind {
    Indicator = 1,
    Lesson = 2,
    Sighting = 3,
    Retraction = 4,
    MemberCard = 5,
    MemberRevocation = 6,
}

impl RecordKind {
    /// Every kind, in code order.
    pub const ALL: [RecordKind; 6] = [
        RecordKind::Indicator,
        RecordKind::Lesson,
        RecordKind::Sighting,
        RecordKind::Retraction,
        RecordKind::MemberCard,
        RecordKind::MemberRevocation,
    ];

    /// The proto enum number, also used in store keys.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The kind with the given proto number.
    pub fn from_code(code: i32) -> Option<Self> {
        RecordKind::ALL.into_iter().find(|k| k.code() as i32 == code)
    }

    /// The CLI name.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Indicator => "indicator",
            RecordKind::Lesson => "lesson",
            RecordKind::Sighting => "sighting",
            RecordKind::Retraction => "retraction",
            RecordKind::MemberCard => "member-card",
            RecordKind::MemberRevocation => "member-revocation",
        }
    }

    /// The kind of a record body.
    pub fn of(body: &crate::proto::record::Body) -> Self {
        use crate::proto::record::Body;
        match body {
            Body::Indicator(_) => RecordKind::Indicator,
            Body::Lesson(_) => RecordKind::Lesson,
            Body::Sighting(_) => RecordKind::Sighting,
            Body::Retraction(_) => RecordKind::Retraction,
            Body::MemberCard(_) => RecordKind::MemberCard,
            Body::MemberRevocation(_) => RecordKind::MemberRevocation,
        }
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RecordKind {
    type Err = RecordError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace('_', "-");
        let wanted = wanted.trim_end_matches('s');
        RecordKind::ALL
            .into_iter()
            .find(|k| k.as_str() == wanted)
            .ok_or_else(|| RecordError::UnknownKind(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cir::{Role, Tlp};
    use crate::proto::{record::Body, Envelope, Indicator, MemberCard, Record};
    use ed25519_dalek::SigningKey;
    use proptest::prelude::*;
    use prost::Message;
    use std::collections::HashMap;

    const NOW: i64 = 1_800_000_000;

    struct TestTrust {
        authority: [u8; 32],
        members: HashMap<[u8; 32], Membership>,
    }

    impl Trust for TestTrust {
        fn authority(&self) -> [u8; 32] {
            self.authority
        }
        fn membership(&self, key: &[u8; 32]) -> Option<Membership> {
            self.members.get(key).cloned()
        }
    }

    fn member(seed: u8) -> (Signer, TestTrust) {
        let signer = Signer::new(SigningKey::from_bytes(&[seed; 32]));
        let membership = Membership {
            member_id: "m-test".into(),
            roles: vec![Role::Publish, Role::Read],
            valid_from: NOW - 1000,
            valid_until: NOW + 1000,
            revoked_at: None,
            replaced_from: None,
        };
        let trust = TestTrust {
            authority: SigningKey::from_bytes(&[99; 32]).verifying_key().to_bytes(),
            members: HashMap::from([(signer.public_key().to_bytes(), membership)]),
        };
        (signer, trust)
    }

    fn indicator(value: &str) -> Record {
        let body = Body::Indicator(Indicator {
            r#type: 4,
            value: value.into(),
            cir_level: 3,
            confidence: 50,
            valid_until: NOW + 500,
            ..Default::default()
        });
        Record { version: RECORD_VERSION, author: vec![], created_at: NOW, tlp: Tlp::Green.code(), body: Some(body) }
    }

    fn check(envelope: &Envelope, trust: &TestTrust) -> Result<Verified, RecordError> {
        validate(&envelope.encode_to_vec(), trust, NOW)
    }

    #[test]
    fn sealed_records_validate_and_their_id_is_the_sha256_of_the_bytes() {
        let (signer, trust) = member(1);
        let (id, envelope) = signer.seal(indicator("evil.example"));
        let verified = check(&envelope, &trust).unwrap();
        assert_eq!(verified.id, id);
        assert_eq!(id, RecordId::of(&envelope.record));
        assert_eq!(verified.kind, RecordKind::Indicator);
    }

    #[test]
    fn sealing_is_deterministic() {
        let (signer, _) = member(1);
        assert_eq!(signer.seal(indicator("evil.example")), signer.seal(indicator("evil.example")));
    }

    #[test]
    fn the_signature_covers_the_domain_separator() {
        let (signer, trust) = member(1);
        let (_, mut envelope) = signer.seal(indicator("evil.example"));
        let key = SigningKey::from_bytes(&[1; 32]);
        envelope.signature = ed25519_dalek::Signer::sign(&key, &envelope.record).to_bytes().to_vec();
        assert_eq!(check(&envelope, &trust).unwrap_err(), RecordError::BadSignature);
    }

    #[test]
    fn tampered_bytes_fail_the_signature() {
        let (signer, trust) = member(1);
        let (_, mut envelope) = signer.seal(indicator("evil.example"));
        let last = envelope.record.len() - 1;
        envelope.record[last] ^= 0x01;
        assert!(check(&envelope, &trust).is_err());
    }

    #[test]
    fn a_batch_with_one_bad_signature_refuses_only_that_record() {
        let (signer, trust) = member(1);
        let mut envelopes: Vec<Envelope> =
            (0..10).map(|n| signer.seal(indicator(&format!("h{n}.example"))).1).collect();
        envelopes[4].signature[10] ^= 0x40;
        let results = validate_batch(envelopes, &trust, NOW);
        for (n, result) in results.iter().enumerate() {
            assert_eq!(result.is_ok(), n != 4, "record {n}: {result:?}");
        }
        assert_eq!(results[4].as_ref().unwrap_err(), &RecordError::BadSignature);
    }

    #[test]
    fn structural_failures_have_their_own_errors() {
        let (signer, trust) = member(1);
        let mut cases: Vec<(Record, &str)> = Vec::new();
        let mut wrong_version = indicator("a.example");
        wrong_version.version = 2;
        cases.push((wrong_version, "unsupported_version"));
        let mut no_body = indicator("a.example");
        no_body.body = None;
        cases.push((no_body, "missing_body"));
        let mut no_tlp = indicator("a.example");
        no_tlp.tlp = 0;
        cases.push((no_tlp, "unknown_enum"));
        cases.push((indicator("A.example"), "not_canonical"));
        cases.push((indicator("not a domain"), "invalid_observable"));
        let mut bad_level = indicator("a.example");
        if let Some(Body::Indicator(i)) = &mut bad_level.body {
            i.cir_level = 6;
        }
        cases.push((bad_level, "invalid_level"));
        let mut bad_confidence = indicator("a.example");
        if let Some(Body::Indicator(i)) = &mut bad_confidence.body {
            i.confidence = 101;
        }
        cases.push((bad_confidence, "invalid_confidence"));
        let mut expired = indicator("a.example");
        if let Some(Body::Indicator(i)) = &mut expired.body {
            i.valid_until = NOW - 1;
            expired.created_at = NOW - 10;
        }
        cases.push((expired, "expired"));
        let mut long = indicator("a.example");
        if let Some(Body::Indicator(i)) = &mut long.body {
            i.description = "x".repeat(MAX_TEXT_BYTES + 1);
        }
        cases.push((long, "field_too_long"));
        let mut many = indicator("a.example");
        if let Some(Body::Indicator(i)) = &mut many.body {
            i.tags = vec!["t".into(); MAX_LIST_ITEMS + 1];
        }
        cases.push((many, "too_many_items"));
        let card = Record {
            body: Some(Body::MemberCard(MemberCard {
                member_id: "m".into(),
                signing_key: vec![1; 32],
                roles: vec![1],
                valid_from: 0,
                valid_until: 1,
                ..MemberCard::default()
            })),
            ..indicator("a.example")
        };
        cases.push((card, "not_authority"));
        for (record, code) in cases {
            let (_, envelope) = signer.seal(record);
            assert_eq!(check(&envelope, &trust).unwrap_err().code(), code);
        }
    }

    #[test]
    fn a_member_without_the_publish_role_cannot_publish_indicators() {
        let (signer, mut trust) = member(1);
        trust.members.values_mut().for_each(|m| m.roles = vec![Role::Read]);
        let (_, envelope) = signer.seal(indicator("a.example"));
        assert_eq!(check(&envelope, &trust).unwrap_err().code(), "missing_role");
    }

    #[test]
    fn envelopes_over_the_limit_are_refused_before_decoding() {
        let (_, trust) = member(1);
        let bytes = vec![0u8; MAX_ENVELOPE_BYTES + 1];
        assert!(matches!(validate(&bytes, &trust, NOW), Err(RecordError::TooLarge { .. })));
    }

    #[test]
    fn record_ids_parse_from_hex_and_refuse_anything_else() {
        let id = RecordId([0xab; 32]);
        assert_eq!(id.to_hex().parse::<RecordId>().unwrap(), id);
        assert!("abc".parse::<RecordId>().is_err());
        assert!("zz".repeat(32).parse::<RecordId>().is_err());
    }

    #[test]
    fn record_kinds_parse_with_plurals_and_underscores() {
        assert_eq!("indicators".parse::<RecordKind>().unwrap(), RecordKind::Indicator);
        assert_eq!("member_card".parse::<RecordKind>().unwrap(), RecordKind::MemberCard);
        assert!("ticket".parse::<RecordKind>().is_err());
        for kind in RecordKind::ALL {
            assert_eq!(RecordKind::from_code(kind.code() as i32), Some(kind));
        }
    }

    proptest! {
        /// Whatever a peer sends, validation answers with an error and never panics.
        #[test]
        fn arbitrary_bytes_never_panic_the_validator(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let (_, trust) = member(1);
            prop_assert!(validate(&bytes, &trust, NOW).is_err());
        }

        /// A valid record with any single byte flipped is refused.
        #[test]
        fn any_single_bit_flip_is_refused(position in 0usize..1000, bit in 0u8..8) {
            let (signer, trust) = member(1);
            let (_, mut envelope) = signer.seal(indicator("evil.example"));
            let position = position % envelope.record.len();
            envelope.record[position] ^= 1 << bit;
            prop_assert!(check(&envelope, &trust).is_err());
        }
    }
}
