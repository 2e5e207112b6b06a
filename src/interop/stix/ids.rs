//! STIX ids for records: deterministic, so a re-export is byte-identical, and
//! shaped as UUIDv4, which stix2-validator's `uuid-check` asks of SDOs and SROs.
//!
//! A record's object id is the first 16 bytes of its record id (itself
//! SHA-256 of the record) with the version and variant bits set. That keeps
//! 122 of the 128 bits, so an object id leads back to its record with one
//! prefix seek of the store ([`record_prefix`]).

use crate::record::RecordId;
use sha2::{Digest, Sha256};
use uuid::{Builder, Uuid};

/// Bytes of a record id an object id keeps whole: those before the version nibble.
pub const PREFIX_LEN: usize = 6;

/// The UUID of the STIX object for `record`.
pub fn record_uuid(record: &RecordId) -> Uuid {
    let bytes: [u8; 16] = record.0[..16].try_into().expect("ids are 32 bytes");
    Builder::from_random_bytes(bytes).into_uuid()
}

/// `<kind>--<uuid>` for a record.
pub fn object_id(kind: &str, record: &RecordId) -> String {
    format!("{kind}--{}", record_uuid(record).hyphenated())
}

/// A UUID for a name (a member's pseudonym, a fixed object of cirfed's),
/// under a domain so different uses never collide.
pub fn named_uuid(domain: &str, name: &str) -> Uuid {
    let digest = Sha256::new().chain_update(domain).chain_update([0]).chain_update(name).finalize();
    Builder::from_random_bytes(digest[..16].try_into().expect("digest is 32 bytes")).into_uuid()
}

/// Whether `record` is the record behind the object UUID `uuid`.
pub fn is_record_of(uuid: &Uuid, record: &RecordId) -> bool {
    record_uuid(record) == *uuid
}

/// The leading record-id bytes an object UUID keeps whole: the prefix to
/// seek for its record (then confirm with [`is_record_of`]).
pub fn record_prefix(uuid: &Uuid) -> [u8; PREFIX_LEN] {
    uuid.as_bytes()[..PREFIX_LEN].try_into().expect("uuids are 16 bytes")
}

/// Splits `<type>--<uuid>`.
pub fn parse_object_id(id: &str) -> Option<(&str, Uuid)> {
    let (kind, uuid) = id.split_once("--")?;
    Some((kind, Uuid::parse_str(uuid).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn object_ids_are_v4_shaped_and_lead_back_to_their_record(bytes in any::<[u8; 32]>()) {
            let record = RecordId(bytes);
            let uuid = record_uuid(&record);
            prop_assert_eq!(uuid.get_version_num(), 4);
            prop_assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122);
            prop_assert!(is_record_of(&uuid, &record));
            prop_assert_eq!(&record_prefix(&uuid)[..], &bytes[..PREFIX_LEN]);
            let id = object_id("indicator", &record);
            prop_assert_eq!(parse_object_id(&id), Some(("indicator", uuid)));
        }
    }

    #[test]
    fn named_uuids_differ_by_domain() {
        assert_ne!(named_uuid("identity", "m-1"), named_uuid("other", "m-1"));
        assert_eq!(named_uuid("identity", "m-1"), named_uuid("identity", "m-1"));
    }
}
