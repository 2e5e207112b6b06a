//! The match engine: an in-memory index of every active indicator, rebuilt
//! from the store at start and kept current on every insert.
//!
//! Lookups sit in detection pipelines, so they never touch disk: exact values
//! are hash lookups, CIDR containment probes one hash map per prefix length
//! that is actually published, and a domain walks its parents.

use crate::normalize::{self, Observable, ObservableType};
use crate::record::RecordId;
use ahash::RandomState;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// How a published indicator matched a looked-up value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchKind {
    /// Same type and canonical value.
    Exact = 1,
    /// The address lies inside a published CIDR.
    CidrContains = 2,
    /// A published domain is a parent of the value (or of an email's domain).
    ParentDomain = 3,
    /// A published domain or address is the URL's host.
    UrlHost = 4,
}

/// What the engine keeps of one indicator: enough to rank and report a
/// match without reading the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The indicator record.
    pub id: RecordId,
    /// Its observable type.
    pub kind: ObservableType,
    /// CIR level 1-5.
    pub level: u8,
    /// 0-100.
    pub confidence: u8,
    /// TLP code.
    pub tlp: i32,
    /// Category codes as a bitmask (bit n: code n), so a match is reported
    /// without reading the record.
    pub categories: u32,
    /// Unix seconds; the entry stops matching after this.
    pub valid_until: i64,
    /// Unix seconds, 0 when unknown.
    pub first_seen: i64,
    /// Unix seconds, 0 when unknown.
    pub last_seen: i64,
    /// When the record was created (coarsened by its author).
    pub created_at: i64,
    /// The author, as an index into the engine's authors ([`Engine::author_index`]).
    pub author: u32,
    /// False once retracted (or made after its author's revocation).
    pub active: bool,
}

impl Entry {
    /// What the indicator's score is computed from (see `decay::score`).
    pub fn evidence(&self) -> crate::decay::Evidence {
        crate::decay::Evidence {
            confidence: self.confidence,
            created_at: self.created_at,
            valid_until: self.valid_until,
        }
    }
}

/// One indicator matching one looked-up value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// Index of the entry in the engine; see [`Engine::entry`].
    pub entry: u32,
    /// How it matched.
    pub kind: MatchKind,
    /// The published value that matched (a CIDR, a parent domain, ...).
    pub matched: String,
}

/// Entry indexes under one key. Most keys have one indicator, so that case
/// stays inline.
#[derive(Clone, Debug)]
enum Postings {
    One(u32),
    Many(Vec<u32>),
}

impl Postings {
    fn push(&mut self, entry: u32) {
        match self {
            Postings::One(first) => *self = Postings::Many(vec![*first, entry]),
            Postings::Many(entries) => entries.push(entry),
        }
    }

    fn as_slice(&self) -> &[u32] {
        match self {
            Postings::One(entry) => std::slice::from_ref(entry),
            Postings::Many(entries) => entries,
        }
    }
}

type Map<K> = HashMap<K, Postings, RandomState>;

/// Number of observable type codes (1-based, so index 0 is unused).
const TYPE_SLOTS: usize = 16;

/// The in-memory match engine.
pub struct Engine {
    entries: Vec<Entry>,
    by_id: HashMap<RecordId, u32, RandomState>,
    exact: Vec<Map<Box<str>>>,
    /// Published IPv4 addresses by numeric value: no string hashing on the
    /// hottest path.
    exact_v4: Map<u32>,
    /// Published IPv4 networks.
    v4: V4Networks,
    /// IPv6 networks by prefix length 0-128.
    v6: Vec<Map<u128>>,
    /// IPv6 prefix lengths with at least one published network, longest
    /// first, so a lookup probes only those.
    v6_lengths: Vec<u8>,
    active: usize,
    /// The federation's keyed-hash keys, one per sharing epoch still in use,
    /// to match values shared as keyed hashes under any of them.
    hash_keys: Vec<[u8; 32]>,
    /// Author keys, indexed by [`Entry::author`].
    authors: Vec<[u8; 32]>,
    author_indexes: HashMap<[u8; 32], u32, RandomState>,
}

/// Number of /16 blocks in the IPv4 space.
const V4_BLOCKS: usize = 1 << 16;

/// Published IPv4 networks. Probing every prefix length costs one cache miss
/// per length; instead each /16 block keeps a bitmask of the prefix lengths
/// that have a network covering it, and a lookup probes only those (for most
/// addresses: none).
struct V4Networks {
    /// Keyed by `prefix_len << 32 | network`.
    by_network: Map<u64>,
    /// Bit `len` of block `b` is set when a /len network covers block `b`.
    covering: Vec<u64>,
}

impl V4Networks {
    fn new() -> Self {
        V4Networks { by_network: Map::default(), covering: vec![0; V4_BLOCKS] }
    }

    fn key(network: u32, len: u8) -> u64 {
        u64::from(len) << 32 | u64::from(network)
    }

    fn add(&mut self, network: u32, len: u8, index: u32) {
        push(&mut self.by_network, Self::key(network, len), index);
        let first = (network >> 16) as usize;
        let blocks = if len >= 16 { 1 } else { 1usize << (16 - len) };
        for mask in &mut self.covering[first..first + blocks] {
            *mask |= 1 << len;
        }
    }

    /// Networks of at most `max_len` bits containing `address`, longest first.
    fn containing(&self, address: u32, max_len: u8) -> impl Iterator<Item = (u32, u8, &Postings)> + '_ {
        let mut lengths = self.covering[(address >> 16) as usize] & ((2u64 << max_len) - 1);
        std::iter::from_fn(move || loop {
            if lengths == 0 {
                return None;
            }
            let len = 63 - lengths.leading_zeros() as u8;
            lengths &= !(1 << len);
            let network = if len == 0 { 0 } else { address & (u32::MAX << (32 - len)) };
            if let Some(postings) = self.by_network.get(&Self::key(network, len)) {
                return Some((network, len, postings));
            }
        })
    }
}

impl Default for Engine {
    fn default() -> Self {
        Engine {
            entries: Vec::new(),
            by_id: HashMap::default(),
            exact: (0..TYPE_SLOTS).map(|_| Map::default()).collect(),
            exact_v4: Map::default(),
            v4: V4Networks::new(),
            v6: (0..=128).map(|_| Map::default()).collect(),
            v6_lengths: Vec::new(),
            active: 0,
            hash_keys: Vec::new(),
            authors: Vec::new(),
            author_indexes: HashMap::default(),
        }
    }
}

impl Engine {
    /// An empty engine.
    pub fn new() -> Self {
        Self::default()
    }

    /// Indexes an indicator with its canonical value. Adding an id twice is a no-op.
    pub fn add(&mut self, entry: Entry, value: &str) {
        if self.by_id.contains_key(&entry.id) {
            return;
        }
        let index = u32::try_from(self.entries.len()).expect("fewer than 2^32 indicators");
        let kind = entry.kind;
        self.by_id.insert(entry.id, index);
        if entry.active {
            self.active += 1;
        }
        self.entries.push(entry);
        match (kind, value.parse::<Ipv4Addr>()) {
            (ObservableType::Ipv4, Ok(address)) => push(&mut self.exact_v4, u32::from(address), index),
            _ => push(&mut self.exact[kind.code() as usize], value.into(), index),
        }
        if kind == ObservableType::Cidr {
            self.add_network(value, index);
        }
    }

    fn add_network(&mut self, value: &str, index: u32) {
        match value.parse::<ipnet::IpNet>() {
            Ok(ipnet::IpNet::V4(net)) => self.v4.add(u32::from(net.network()), net.prefix_len(), index),
            Ok(ipnet::IpNet::V6(net)) => {
                let len = net.prefix_len();
                push(&mut self.v6[len as usize], u128::from(net.network()), index);
                insert_length(&mut self.v6_lengths, len);
            }
            // Validation only admits canonical CIDRs; nothing else reaches here.
            Err(_) => debug_assert!(false, "non-canonical cidr {value}"),
        }
    }

    /// Stops an indicator from matching. Returns false when it was unknown.
    pub fn retract(&mut self, id: &RecordId) -> bool {
        let Some(&index) = self.by_id.get(id) else { return false };
        let entry = &mut self.entries[index as usize];
        if entry.active {
            entry.active = false;
            self.active -= 1;
        }
        true
    }

    /// The index of an author key for [`Entry::author`], added when new.
    pub fn author_index(&mut self, key: &[u8; 32]) -> u32 {
        if let Some(index) = self.author_indexes.get(key) {
            return *index;
        }
        let index = u32::try_from(self.authors.len()).expect("fewer than 2^32 authors");
        self.authors.push(*key);
        self.author_indexes.insert(*key, index);
        index
    }

    /// The key of an author index.
    pub fn author_key(&self, index: u32) -> &[u8; 32] {
        &self.authors[index as usize]
    }

    /// Stops matching what `key` created from `revoked_at` on (records that
    /// arrived before the revocation did); returns how many entries stopped.
    pub fn revoke_author(&mut self, key: &[u8; 32], revoked_at: i64) -> usize {
        let Some(&author) = self.author_indexes.get(key) else { return 0 };
        let mut stopped = 0;
        for entry in self.entries.iter_mut().filter(|e| e.author == author && e.created_at >= revoked_at) {
            if std::mem::replace(&mut entry.active, false) {
                stopped += 1;
            }
        }
        self.active -= stopped;
        stopped
    }

    /// The entry a hit refers to.
    pub fn entry(&self, index: u32) -> &Entry {
        &self.entries[index as usize]
    }

    /// The entry of an indicator id.
    pub fn entry_of(&self, id: &RecordId) -> Option<&Entry> {
        self.by_id.get(id).map(|&index| &self.entries[index as usize])
    }

    /// Calls `visit` with every indexed indicator's canonical value and entry,
    /// retracted and expired ones included (the caller filters), in no
    /// particular order: what blocklists are regenerated from.
    pub fn for_each_value(&self, mut visit: impl FnMut(&str, &Entry)) {
        use std::fmt::Write;
        let mut address = String::with_capacity(15);
        for (value, postings) in &self.exact_v4 {
            address.clear();
            write!(address, "{}", Ipv4Addr::from(*value)).expect("writing to a String");
            for &index in postings.as_slice() {
                visit(&address, &self.entries[index as usize]);
            }
        }
        for map in &self.exact {
            for (value, postings) in map {
                for &index in postings.as_slice() {
                    visit(value, &self.entries[index as usize]);
                }
            }
        }
    }

    /// Indicators indexed and not retracted (expired ones included).
    pub fn active_len(&self) -> usize {
        self.active
    }

    /// Lets lookups match indicators shared as keyed hashes under `key`.
    pub fn set_hash_key(&mut self, key: [u8; 32]) {
        self.hash_keys = vec![key];
    }

    /// Lets lookups match keyed hashes under every one of `keys` (every
    /// sharing epoch): a rotation loses no match.
    pub fn set_hash_keys(&mut self, keys: Vec<[u8; 32]>) {
        self.hash_keys = keys;
    }

    /// Appends to `hits` every live indicator matching `observable` at `now`.
    pub fn lookup_into(&self, observable: &Observable, now: i64, hits: &mut Vec<Hit>) {
        let value = observable.value.as_str();
        let hashed = &self.exact[ObservableType::KeyedHash.code() as usize];
        if !hashed.is_empty() {
            for key in &self.hash_keys {
                let hash = crate::anonymize::keyed_hash(key, observable.kind, value);
                self.exact_into(ObservableType::KeyedHash, &hash, now, MatchKind::Exact, hits);
            }
        }
        if observable.kind == ObservableType::Ipv4 {
            return self.ipv4_into(value, now, MatchKind::Exact, hits);
        }
        self.exact_into(observable.kind, value, now, MatchKind::Exact, hits);
        match observable.kind {
            ObservableType::Ipv6 => self.address_into(value, now, MatchKind::CidrContains, hits),
            ObservableType::Cidr => self.network_into(value, now, hits),
            ObservableType::Domain => self.parents_into(value, now, MatchKind::ParentDomain, hits),
            ObservableType::Email => {
                if let Some((_, domain)) = value.rsplit_once('@') {
                    self.exact_into(ObservableType::Domain, domain, now, MatchKind::ParentDomain, hits);
                    self.parents_into(domain, now, MatchKind::ParentDomain, hits);
                }
            }
            ObservableType::Url => self.url_host_into(value, now, hits),
            _ => {}
        }
    }

    /// Every live indicator matching `observable` at `now`.
    pub fn lookup(&self, observable: &Observable, now: i64) -> Vec<Hit> {
        let mut hits = Vec::new();
        self.lookup_into(observable, now, &mut hits);
        hits
    }

    fn exact_into(&self, kind: ObservableType, value: &str, now: i64, how: MatchKind, hits: &mut Vec<Hit>) {
        if let Some(postings) = self.exact[kind.code() as usize].get(value) {
            self.collect(postings, now, how, || value.to_string(), hits);
        }
    }

    fn parents_into(&self, domain: &str, now: i64, how: MatchKind, hits: &mut Vec<Hit>) {
        for parent in normalize::parent_domains(domain) {
            self.exact_into(ObservableType::Domain, parent, now, how, hits);
        }
    }

    fn url_host_into(&self, url: &str, now: i64, hits: &mut Vec<Hit>) {
        let Some(host) = normalize::url_host(url) else { return };
        match host.kind {
            ObservableType::Ipv4 => self.ipv4_into(&host.value, now, MatchKind::UrlHost, hits),
            ObservableType::Domain => {
                self.exact_into(host.kind, &host.value, now, MatchKind::UrlHost, hits);
                self.parents_into(&host.value, now, MatchKind::UrlHost, hits);
            }
            _ => {
                self.exact_into(host.kind, &host.value, now, MatchKind::UrlHost, hits);
                self.address_into(&host.value, now, MatchKind::UrlHost, hits);
            }
        }
    }

    /// An IPv4 address: the address itself, then every network containing it.
    /// `how` is the match kind of an exact hit; containment is CIDR_CONTAINS
    /// unless the address came from a URL host.
    fn ipv4_into(&self, value: &str, now: i64, how: MatchKind, hits: &mut Vec<Hit>) {
        let Ok(address) = value.parse::<Ipv4Addr>() else { return };
        let address = u32::from(address);
        if let Some(postings) = self.exact_v4.get(&address) {
            self.collect(postings, now, how, || value.to_string(), hits);
        }
        let contained = if how == MatchKind::Exact { MatchKind::CidrContains } else { how };
        self.v4_into(address, 32, now, contained, hits);
    }

    fn address_into(&self, value: &str, now: i64, how: MatchKind, hits: &mut Vec<Hit>) {
        if let Ok(IpAddr::V6(address)) = value.parse::<IpAddr>() {
            self.v6_into(u128::from(address), 128, now, how, hits);
        }
    }

    /// A looked-up CIDR matches published networks that contain it.
    fn network_into(&self, value: &str, now: i64, hits: &mut Vec<Hit>) {
        match value.parse::<ipnet::IpNet>() {
            Ok(ipnet::IpNet::V4(net)) => {
                self.v4_into(u32::from(net.network()), net.prefix_len(), now, MatchKind::CidrContains, hits)
            }
            Ok(ipnet::IpNet::V6(net)) => {
                self.v6_into(u128::from(net.network()), net.prefix_len(), now, MatchKind::CidrContains, hits)
            }
            Err(_) => {}
        }
    }

    fn v4_into(&self, address: u32, max_len: u8, now: i64, how: MatchKind, hits: &mut Vec<Hit>) {
        for (network, len, postings) in self.v4.containing(address, max_len) {
            if how == MatchKind::CidrContains && len == max_len && max_len < 32 {
                continue; // the same CIDR was already reported as an exact match
            }
            self.collect(postings, now, how, || format!("{}/{len}", Ipv4Addr::from(network)), hits);
        }
    }

    fn v6_into(&self, address: u128, max_len: u8, now: i64, how: MatchKind, hits: &mut Vec<Hit>) {
        for &len in self.v6_lengths.iter().filter(|&&len| len <= max_len) {
            let network = if len == 0 { 0 } else { address & (u128::MAX << (128 - len)) };
            if let Some(postings) = self.v6[len as usize].get(&network) {
                if how == MatchKind::CidrContains && len == max_len && max_len < 128 {
                    continue;
                }
                self.collect(postings, now, how, || format!("{}/{len}", Ipv6Addr::from(network)), hits);
            }
        }
    }

    fn collect(
        &self,
        postings: &Postings,
        now: i64,
        how: MatchKind,
        matched: impl Fn() -> String,
        hits: &mut Vec<Hit>,
    ) {
        for &index in postings.as_slice() {
            let entry = &self.entries[index as usize];
            // Expired and retracted indicators never match.
            if entry.active && entry.valid_until > now {
                hits.push(Hit { entry: index, kind: how, matched: matched() });
            }
        }
    }
}

fn push<K: std::hash::Hash + Eq>(map: &mut Map<K>, key: K, index: u32) {
    map.entry(key).and_modify(|p| p.push(index)).or_insert(Postings::One(index));
}

fn insert_length(lengths: &mut Vec<u8>, len: u8) {
    if let Err(at) = lengths.binary_search_by(|probe| len.cmp(probe)) {
        lengths.insert(at, len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn entry(byte: u8, kind: ObservableType) -> Entry {
        Entry {
            id: RecordId([byte; 32]),
            kind,
            level: 3,
            confidence: 80,
            tlp: 2,
            categories: 0,
            valid_until: NOW + 3600,
            first_seen: 0,
            last_seen: 0,
            created_at: NOW - 60,
            author: 0,
            active: true,
        }
    }

    fn engine(published: &[(u8, ObservableType, &str)]) -> Engine {
        let mut engine = Engine::new();
        for (byte, kind, value) in published {
            engine.add(entry(*byte, *kind), value);
        }
        engine
    }

    fn query(engine: &Engine, raw: &str) -> Vec<(u8, MatchKind, String)> {
        let observable = normalize::detect(raw).expect("valid observable");
        engine
            .lookup(&observable, NOW)
            .into_iter()
            .map(|h| (engine.entry(h.entry).id.0[0], h.kind, h.matched))
            .collect()
    }

    #[test]
    fn every_indexed_value_is_visited_once_with_its_entry() {
        let engine = engine(&[
            (1, ObservableType::Ipv4, "198.51.100.7"),
            (2, ObservableType::Domain, "bad.example"),
            (3, ObservableType::Cidr, "203.0.113.0/24"),
            (4, ObservableType::Domain, "bad.example"),
        ]);
        let mut seen = Vec::new();
        engine.for_each_value(|value, entry| seen.push((entry.id.0[0], value.to_string())));
        seen.sort();
        let expected = [(1, "198.51.100.7"), (2, "bad.example"), (3, "203.0.113.0/24"), (4, "bad.example")];
        assert_eq!(seen, expected.map(|(id, value)| (id, value.to_string())));
    }

    #[test]
    fn a_value_shared_as_a_keyed_hash_matches_the_observed_value() {
        let key = [9; 32];
        let hash = crate::anonymize::keyed_hash(&key, ObservableType::Email, "phish@evil.example");
        let mut engine = engine(&[(1, ObservableType::KeyedHash, hash.as_str())]);
        assert!(query(&engine, "phish@evil.example").is_empty(), "no key, no match");
        engine.set_hash_key(key);
        assert_eq!(query(&engine, "PHISH@evil.example"), [(1, MatchKind::Exact, hash)]);
        assert!(query(&engine, "other@evil.example").is_empty());
    }

    #[test]
    fn keyed_hashes_from_every_sharing_epoch_match() {
        let (old, new) = ([7; 32], [8; 32]);
        let before = crate::anonymize::keyed_hash(&old, ObservableType::Email, "a@evil.example");
        let after = crate::anonymize::keyed_hash(&new, ObservableType::Email, "b@evil.example");
        let mut engine =
            engine(&[(1, ObservableType::KeyedHash, before.as_str()), (2, ObservableType::KeyedHash, after.as_str())]);
        engine.set_hash_keys(vec![old, new]);
        assert_eq!(query(&engine, "a@evil.example"), [(1, MatchKind::Exact, before)]);
        assert_eq!(query(&engine, "b@evil.example"), [(2, MatchKind::Exact, after)]);
        engine.set_hash_keys(vec![new]);
        assert!(query(&engine, "a@evil.example").is_empty(), "a retired epoch no longer matches");
    }

    #[test]
    fn revoking_an_author_stops_only_what_it_made_after_the_revocation() {
        let mut engine = Engine::new();
        let (early, late) = (engine.author_index(&[1; 32]), engine.author_index(&[2; 32]));
        assert_eq!(engine.author_index(&[1; 32]), early, "one index per key");
        let mut before = entry(1, ObservableType::Domain);
        before.author = early;
        let mut after = entry(2, ObservableType::Domain);
        after.author = early;
        after.created_at = NOW;
        let mut other = entry(3, ObservableType::Domain);
        other.author = late;
        other.created_at = NOW;
        for e in [before, after, other] {
            engine.add(e, "evil.example");
        }
        assert_eq!(engine.revoke_author(&[1; 32], NOW - 30), 1);
        let ids: Vec<u8> = query(&engine, "evil.example").iter().map(|h| h.0).collect();
        assert_eq!(ids, [1, 3]);
        assert_eq!(engine.active_len(), 2);
    }

    #[test]
    fn exact_value_matches() {
        let engine = engine(&[(1, ObservableType::Ipv4, "198.51.100.7")]);
        assert_eq!(query(&engine, "198.51.100.7"), vec![(1, MatchKind::Exact, "198.51.100.7".into())]);
        assert!(query(&engine, "198.51.100.8").is_empty());
    }

    #[test]
    fn address_inside_published_cidr_matches() {
        let engine = engine(&[(1, ObservableType::Cidr, "198.51.100.0/24"), (2, ObservableType::Cidr, "198.0.0.0/8")]);
        let hits = query(&engine, "198.51.100.77");
        assert_eq!(
            hits,
            vec![
                (1, MatchKind::CidrContains, "198.51.100.0/24".into()),
                (2, MatchKind::CidrContains, "198.0.0.0/8".into())
            ]
        );
        assert!(query(&engine, "203.0.113.1").is_empty());
    }

    #[test]
    fn ipv6_address_inside_published_cidr_matches() {
        let engine = engine(&[(1, ObservableType::Cidr, "2001:db8::/32")]);
        assert_eq!(query(&engine, "2001:db8::1").len(), 1);
        assert!(query(&engine, "2001:db9::1").is_empty());
    }

    #[test]
    fn narrower_cidr_matches_a_wider_published_one() {
        let engine = engine(&[(1, ObservableType::Cidr, "10.0.0.0/8")]);
        assert_eq!(query(&engine, "10.1.0.0/16"), vec![(1, MatchKind::CidrContains, "10.0.0.0/8".into())]);
        assert_eq!(query(&engine, "10.0.0.0/8"), vec![(1, MatchKind::Exact, "10.0.0.0/8".into())]);
    }

    #[test]
    fn domain_and_every_parent_domain_match() {
        let engine =
            engine(&[(1, ObservableType::Domain, "evil.example"), (2, ObservableType::Domain, "c2.evil.example")]);
        assert_eq!(query(&engine, "a.c2.evil.example").len(), 2);
        assert_eq!(
            query(&engine, "c2.evil.example"),
            vec![(2, MatchKind::Exact, "c2.evil.example".into()), (1, MatchKind::ParentDomain, "evil.example".into()),]
        );
        assert!(query(&engine, "notevil.example").is_empty());
    }

    #[test]
    fn url_matches_by_value_and_by_host() {
        let engine = engine(&[
            (1, ObservableType::Url, "http://evil.example/payload"),
            (2, ObservableType::Domain, "evil.example"),
            (3, ObservableType::Ipv4, "203.0.113.9"),
        ]);
        let hits = query(&engine, "HTTP://Evil.Example:80/payload");
        assert_eq!(
            hits,
            vec![
                (1, MatchKind::Exact, "http://evil.example/payload".into()),
                (2, MatchKind::UrlHost, "evil.example".into())
            ]
        );
        assert_eq!(query(&engine, "https://203.0.113.9/x"), vec![(3, MatchKind::UrlHost, "203.0.113.9".into())]);
        assert_eq!(query(&engine, "https://cdn.evil.example/"), vec![(2, MatchKind::UrlHost, "evil.example".into())]);
    }

    #[test]
    fn expired_indicators_never_match() {
        let mut engine = Engine::new();
        let mut old = entry(1, ObservableType::Md5);
        old.valid_until = NOW;
        engine.add(old, "d41d8cd98f00b204e9800998ecf8427e");
        assert!(query(&engine, "d41d8cd98f00b204e9800998ecf8427e").is_empty());
    }

    #[test]
    fn retracted_indicators_never_match() {
        let mut engine = engine(&[(1, ObservableType::Domain, "evil.example")]);
        assert_eq!(engine.active_len(), 1);
        assert!(engine.retract(&RecordId([1; 32])));
        assert!(query(&engine, "evil.example").is_empty());
        assert_eq!(engine.active_len(), 0);
        assert!(!engine.retract(&RecordId([9; 32])));
    }

    #[test]
    fn adding_the_same_indicator_twice_is_a_no_op() {
        let mut engine = engine(&[(1, ObservableType::Domain, "evil.example")]);
        engine.add(entry(1, ObservableType::Domain), "evil.example");
        assert_eq!(query(&engine, "evil.example").len(), 1);
    }

    #[test]
    fn several_authors_of_one_value_all_match() {
        let engine =
            engine(&[(1, ObservableType::Domain, "evil.example"), (2, ObservableType::Domain, "evil.example")]);
        assert_eq!(query(&engine, "evil.example").len(), 2);
    }

    #[test]
    fn short_prefixes_spanning_many_blocks_match() {
        let engine = engine(&[(1, ObservableType::Cidr, "10.0.0.0/8"), (2, ObservableType::Cidr, "0.0.0.0/0")]);
        let hits = query(&engine, "10.200.3.4");
        assert_eq!(hits.len(), 2);
        assert_eq!(hits[0].2, "10.0.0.0/8", "longest prefix first");
        assert_eq!(query(&engine, "192.0.2.1"), vec![(2, MatchKind::CidrContains, "0.0.0.0/0".into())]);
    }

    proptest::proptest! {
        /// The block-mask index finds exactly the networks brute force finds.
        #[test]
        fn cidr_containment_agrees_with_brute_force(
            networks in proptest::collection::vec((proptest::prelude::any::<u32>(), 0u8..=32), 1..40),
            addresses in proptest::collection::vec(proptest::prelude::any::<u32>(), 1..40),
        ) {
            let mut engine = Engine::new();
            let nets: Vec<ipnet::Ipv4Net> = networks
                .iter()
                .map(|(a, len)| ipnet::Ipv4Net::new(Ipv4Addr::from(*a), *len).unwrap().trunc())
                .collect();
            for (n, net) in nets.iter().enumerate() {
                let mut e = entry(0, ObservableType::Cidr);
                e.id = RecordId([n as u8; 32]);
                e.id.0[31] = (n >> 8) as u8;
                engine.add(e, &net.to_string());
            }
            // Probe the addresses given, and some inside the published networks.
            let probes = addresses.iter().copied().chain(nets.iter().map(|n| u32::from(n.network()) | 1));
            for address in probes {
                let address = Ipv4Addr::from(address);
                let observable = Observable { kind: ObservableType::Ipv4, value: address.to_string() };
                let mut found: Vec<u32> = engine.lookup(&observable, NOW).into_iter().map(|h| h.entry).collect();
                found.sort_unstable();
                let expected: Vec<u32> = (0..nets.len() as u32).filter(|&i| nets[i as usize].contains(&address)).collect();
                proptest::prop_assert_eq!(found, expected, "address {}", address);
            }
        }
    }
}
