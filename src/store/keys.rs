//! Key and value encodings of every column family, in one place.
//!
//! Integers are fixed-width big-endian so that byte order equals numeric
//! order; signed times are offset by 2^63 for the same reason. Decoders check
//! lengths and return typed errors instead of panicking on a corrupt store.

use crate::record::RecordId;
use std::net::IpAddr;

/// Width of a record id in keys.
pub const ID_LEN: usize = 32;
/// Width of a sequence number or a time in keys.
pub const U64_LEN: usize = 8;
/// Separates a variable-length value from the id that follows it. Canonical
/// observables never contain NUL (control characters are refused), so
/// `value 0x00` sorts before every longer value sharing the prefix.
pub const VALUE_END: u8 = 0x00;

/// A key or value that does not have the layout its column family requires.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt {what}: {reason}")]
pub struct KeyError {
    /// Which encoding failed.
    pub what: &'static str,
    /// Why.
    pub reason: String,
}

fn corrupt(what: &'static str, reason: impl Into<String>) -> KeyError {
    KeyError { what, reason: reason.into() }
}

/// Encodes a signed time so that byte order equals numeric order.
pub fn time(t: i64) -> [u8; U64_LEN] {
    ((t as u64) ^ (1 << 63)).to_be_bytes()
}

/// Decodes [`time`].
pub fn decode_time(bytes: [u8; U64_LEN]) -> i64 {
    (u64::from_be_bytes(bytes) ^ (1 << 63)) as i64
}

/// `seq` CF: local sequence -> id.
pub fn seq(seq: u64) -> [u8; U64_LEN] {
    seq.to_be_bytes()
}

/// Decodes a `seq` key.
pub fn decode_seq(key: &[u8]) -> Result<u64, KeyError> {
    let bytes: [u8; U64_LEN] = key.try_into().map_err(|_| corrupt("seq key", format!("{} bytes", key.len())))?;
    Ok(u64::from_be_bytes(bytes))
}

/// `kind_seq` CF: kind, sequence -> id; pages records of one kind in arrival order.
pub fn kind_seq(kind: u8, seq: u64) -> [u8; 1 + U64_LEN] {
    let mut key = [0; 1 + U64_LEN];
    key[0] = kind;
    key[1..].copy_from_slice(&seq.to_be_bytes());
    key
}

/// Decodes a `kind_seq` key into (kind, seq).
pub fn decode_kind_seq(key: &[u8]) -> Result<(u8, u64), KeyError> {
    if key.len() != 1 + U64_LEN {
        return Err(corrupt("kind_seq key", format!("{} bytes", key.len())));
    }
    Ok((key[0], decode_seq(&key[1..])?))
}

/// `time` CF: created_at, id; the order negentropy reconciles in.
pub fn time_id(created_at: i64, id: &RecordId) -> [u8; U64_LEN + ID_LEN] {
    let mut key = [0; U64_LEN + ID_LEN];
    key[..U64_LEN].copy_from_slice(&time(created_at));
    key[U64_LEN..].copy_from_slice(&id.0);
    key
}

/// Decodes a `time` key into (created_at, id).
pub fn decode_time_id(key: &[u8]) -> Result<(i64, RecordId), KeyError> {
    if key.len() != U64_LEN + ID_LEN {
        return Err(corrupt("time key", format!("{} bytes", key.len())));
    }
    let created_at = decode_time(key[..U64_LEN].try_into().expect("length checked"));
    Ok((created_at, record_id(&key[U64_LEN..])?))
}

/// `exact` CF prefix: every indicator with this (type, canonical value).
pub fn exact_prefix(kind: u8, value: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(2 + value.len() + ID_LEN);
    key.push(kind);
    key.extend_from_slice(value.as_bytes());
    key.push(VALUE_END);
    key
}

/// `exact` CF: type, canonical value, NUL, id.
pub fn exact(kind: u8, value: &str, id: &RecordId) -> Vec<u8> {
    let mut key = exact_prefix(kind, value);
    key.extend_from_slice(&id.0);
    key
}

/// Decodes an `exact` key into (type, value, id).
pub fn decode_exact(key: &[u8]) -> Result<(u8, &str, RecordId), KeyError> {
    if key.len() < 2 + ID_LEN || key[key.len() - ID_LEN - 1] != VALUE_END {
        return Err(corrupt("exact key", "missing value terminator"));
    }
    let value =
        std::str::from_utf8(&key[1..key.len() - ID_LEN - 1]).map_err(|e| corrupt("exact key", e.to_string()))?;
    Ok((key[0], value, record_id(&key[key.len() - ID_LEN..])?))
}

/// `cidr` CF: family (4 or 6), prefix length, network address, id.
pub fn cidr(network: IpAddr, prefix_len: u8, id: &RecordId) -> Vec<u8> {
    let mut key = Vec::with_capacity(2 + 16 + ID_LEN);
    match network {
        IpAddr::V4(v4) => {
            key.extend_from_slice(&[4, prefix_len]);
            key.extend_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            key.extend_from_slice(&[6, prefix_len]);
            key.extend_from_slice(&v6.octets());
        }
    }
    key.extend_from_slice(&id.0);
    key
}

/// Decodes a `cidr` key into (network, prefix length, id).
pub fn decode_cidr(key: &[u8]) -> Result<(IpAddr, u8, RecordId), KeyError> {
    let (family, rest) = key.split_first().ok_or_else(|| corrupt("cidr key", "empty"))?;
    let (prefix_len, rest) = rest.split_first().ok_or_else(|| corrupt("cidr key", "no prefix length"))?;
    let address_len = match family {
        4 => 4,
        6 => 16,
        other => return Err(corrupt("cidr key", format!("family {other}"))),
    };
    if rest.len() != address_len + ID_LEN {
        return Err(corrupt("cidr key", format!("{} bytes after the prefix length", rest.len())));
    }
    let network = match address_len {
        4 => IpAddr::from(<[u8; 4]>::try_from(&rest[..4]).expect("length checked")),
        _ => IpAddr::from(<[u8; 16]>::try_from(&rest[..16]).expect("length checked")),
    };
    Ok((network, *prefix_len, record_id(&rest[address_len..])?))
}

/// `domain` CF: labels reversed ("com.example.www"), NUL, id; a prefix scan
/// on "com.example." lists every sub-domain of example.com.
pub fn domain(domain: &str, id: &RecordId) -> Vec<u8> {
    let mut key = reversed_domain(domain).into_bytes();
    key.push(VALUE_END);
    key.extend_from_slice(&id.0);
    key
}

/// "www.example.com" -> "com.example.www".
pub fn reversed_domain(domain: &str) -> String {
    domain.rsplit('.').collect::<Vec<_>>().join(".")
}

/// `pair` CFs (retractions, sightings, members, revocations): a 32-byte
/// subject (a record id or a key), then the id of the record about it.
pub fn pair(subject: &[u8; ID_LEN], id: &RecordId) -> [u8; 2 * ID_LEN] {
    let mut key = [0; 2 * ID_LEN];
    key[..ID_LEN].copy_from_slice(subject);
    key[ID_LEN..].copy_from_slice(&id.0);
    key
}

/// Decodes a pair key into (subject, id).
pub fn decode_pair(key: &[u8]) -> Result<([u8; ID_LEN], RecordId), KeyError> {
    if key.len() != 2 * ID_LEN {
        return Err(corrupt("pair key", format!("{} bytes", key.len())));
    }
    Ok((key[..ID_LEN].try_into().expect("length checked"), record_id(&key[ID_LEN..])?))
}

/// Decodes a record id.
pub fn record_id(bytes: &[u8]) -> Result<RecordId, KeyError> {
    RecordId::from_slice(bytes).ok_or_else(|| corrupt("record id", format!("{} bytes", bytes.len())))
}

/// Header in front of every envelope in the `records` CF.
pub const RECORD_HEADER_LEN: usize = 2 * U64_LEN;

/// Stores written before `added_micros` held seconds in the same field; any
/// value below this (1970-04-26 in microseconds) is one of those.
const LEGACY_SECONDS_BELOW: i64 = 10_000_000_000_000;

/// `records` CF value: local seq, added_micros (when this node stored it,
/// unix microseconds, strictly increasing with seq), then the envelope bytes.
pub fn record_value(seq: u64, added_micros: i64, envelope: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(RECORD_HEADER_LEN + envelope.len());
    value.extend_from_slice(&seq.to_be_bytes());
    value.extend_from_slice(&added_micros.to_be_bytes());
    value.extend_from_slice(envelope);
    value
}

/// Decodes a `records` value into (seq, added_micros, envelope bytes).
pub fn decode_record_value(value: &[u8]) -> Result<(u64, i64, &[u8]), KeyError> {
    if value.len() < RECORD_HEADER_LEN {
        return Err(corrupt("record value", format!("{} bytes", value.len())));
    }
    let seq = u64::from_be_bytes(value[..U64_LEN].try_into().expect("length checked"));
    let mut added = i64::from_be_bytes(value[U64_LEN..RECORD_HEADER_LEN].try_into().expect("length checked"));
    if (0..LEGACY_SECONDS_BELOW).contains(&added) {
        added = added.saturating_mul(1_000_000);
    }
    Ok((seq, added, &value[RECORD_HEADER_LEN..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn id(byte: u8) -> RecordId {
        RecordId([byte; 32])
    }

    #[test]
    fn seq_keys_are_big_endian() {
        assert_eq!(seq(1), [0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(kind_seq(2, 258), [2, 0, 0, 0, 0, 0, 0, 1, 2]);
    }

    #[test]
    fn negative_times_sort_before_positive_ones() {
        assert!(time(-1) < time(0));
        assert!(time(0) < time(1));
        assert!(time(i64::MIN) < time(i64::MAX));
        assert_eq!(time(0), [0x80, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn exact_key_layout_is_type_value_nul_id() {
        let key = exact(4, "example.com", &id(7));
        assert_eq!(key[0], 4);
        assert_eq!(&key[1..12], b"example.com");
        assert_eq!(key[12], 0);
        assert_eq!(&key[13..], &[7; 32]);
        assert_eq!(decode_exact(&key).unwrap(), (4, "example.com", id(7)));
    }

    #[test]
    fn exact_prefix_does_not_match_longer_values() {
        let short = exact_prefix(4, "example.co");
        let long = exact(4, "example.com", &id(1));
        assert!(!long.starts_with(&short));
        // and every key of the short value sorts before the longer value
        assert!(exact(4, "example.co", &id(255)) < long);
    }

    #[test]
    fn cidr_key_round_trips_both_families() {
        let v4 = cidr(IpAddr::V4(Ipv4Addr::new(10, 1, 0, 0)), 16, &id(3));
        assert_eq!(&v4[..6], &[4, 16, 10, 1, 0, 0]);
        assert_eq!(decode_cidr(&v4).unwrap(), (IpAddr::V4(Ipv4Addr::new(10, 1, 0, 0)), 16, id(3)));
        let v6 = cidr(IpAddr::V6(Ipv6Addr::LOCALHOST), 128, &id(4));
        assert_eq!(decode_cidr(&v6).unwrap(), (IpAddr::V6(Ipv6Addr::LOCALHOST), 128, id(4)));
    }

    #[test]
    fn domain_keys_group_subdomains_under_their_parent() {
        assert_eq!(reversed_domain("www.example.com"), "com.example.www");
        let parent = domain("example.com", &id(1));
        let child = domain("a.example.com", &id(1));
        let other = domain("example.org", &id(1));
        assert!(parent < child && child < other);
    }

    #[test]
    fn decoders_refuse_truncated_keys() {
        assert!(decode_seq(&[1, 2, 3]).is_err());
        assert!(decode_kind_seq(&[1]).is_err());
        assert!(decode_time_id(&[0; 39]).is_err());
        assert!(decode_exact(&[4, b'a']).is_err());
        assert!(decode_cidr(&[5, 8, 1, 2, 3, 4]).is_err());
        assert!(decode_pair(&[0; 63]).is_err());
        assert!(decode_record_value(&[0; 15]).is_err());
    }

    proptest! {
        #[test]
        fn time_order_equals_numeric_order(a: i64, b: i64) {
            prop_assert_eq!(a.cmp(&b), time(a).cmp(&time(b)));
            prop_assert_eq!(decode_time(time(a)), a);
        }

        #[test]
        fn time_id_order_is_time_then_id(a: i64, b: i64, x: [u8; 32], y: [u8; 32]) {
            let (ka, kb) = (time_id(a, &RecordId(x)), time_id(b, &RecordId(y)));
            prop_assert_eq!((a, x).cmp(&(b, y)), ka.cmp(&kb));
            prop_assert_eq!(decode_time_id(&ka).unwrap(), (a, RecordId(x)));
        }

        #[test]
        fn kind_seq_order_is_kind_then_seq(k1: u8, s1: u64, k2: u8, s2: u64) {
            prop_assert_eq!((k1, s1).cmp(&(k2, s2)), kind_seq(k1, s1).cmp(&kind_seq(k2, s2)));
            prop_assert_eq!(decode_kind_seq(&kind_seq(k1, s1)).unwrap(), (k1, s1));
        }

        #[test]
        fn exact_keys_round_trip(kind: u8, value in "[a-z0-9.:/-]{1,80}", raw: [u8; 32]) {
            let key = exact(kind, &value, &RecordId(raw));
            prop_assert!(key.starts_with(&exact_prefix(kind, &value)));
            prop_assert_eq!(decode_exact(&key).unwrap(), (kind, value.as_str(), RecordId(raw)));
        }

        #[test]
        fn record_values_round_trip(seq: u64, added in LEGACY_SECONDS_BELOW..i64::MAX, envelope: Vec<u8>) {
            let value = record_value(seq, added, &envelope);
            prop_assert_eq!(decode_record_value(&value).unwrap(), (seq, added, envelope.as_slice()));
        }

        /// Stores from before microseconds held seconds: they read as the start of that second.
        #[test]
        fn legacy_seconds_read_as_microseconds(seq: u64, seconds in 0i64..LEGACY_SECONDS_BELOW / 1_000_000) {
            let value = record_value(seq, seconds, &[]);
            prop_assert_eq!(decode_record_value(&value).unwrap().1, seconds * 1_000_000);
        }
    }
}
