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
    /// Unix seconds; the entry stops matching after this.
    pub valid_until: i64,
    /// Unix seconds, 0 when unknown.
    pub first_seen: i64,
    /// Unix seconds, 0 when unknown.
    pub last_seen: i64,
    /// False once retracted.
    pub active: bool,
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
const TYPE_SLOTS: usize = 15;

/// The in-memory match engine.
pub struct Engine {
    entries: Vec<Entry>,
    by_id: HashMap<RecordId, u32, RandomState>,
    exact: Vec<Map<Box<str>>>,
    /// IPv4 networks by prefix length 0-32.
    v4: Vec<Map<u32>>,
    /// IPv6 networks by prefix length 0-128.
    v6: Vec<Map<u128>>,
    /// Prefix lengths with at least one published network, longest first,
    /// so a lookup probes only those.
    v4_lengths: Vec<u8>,
    v6_lengths: Vec<u8>,
    active: usize,
}

impl Default for Engine {
    fn default() -> Self {
        Engine {
            entries: Vec::new(),
            by_id: HashMap::default(),
            exact: (0..TYPE_SLOTS).map(|_| Map::default()).collect(),
            v4: (0..=32).map(|_| Map::default()).collect(),
            v6: (0..=128).map(|_| Map::default()).collect(),
            v4_lengths: Vec::new(),
            v6_lengths: Vec::new(),
            active: 0,
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
        push(&mut self.exact[kind.code() as usize], value.into(), index);
        if kind == ObservableType::Cidr {
            self.add_network(value, index);
        }
    }

    fn add_network(&mut self, value: &str, index: u32) {
        match value.parse::<ipnet::IpNet>() {
            Ok(ipnet::IpNet::V4(net)) => {
                let len = net.prefix_len();
                push(&mut self.v4[len as usize], u32::from(net.network()), index);
                insert_length(&mut self.v4_lengths, len);
            }
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

    /// The entry a hit refers to.
    pub fn entry(&self, index: u32) -> &Entry {
        &self.entries[index as usize]
    }

    /// The entry of an indicator id.
    pub fn entry_of(&self, id: &RecordId) -> Option<&Entry> {
        self.by_id.get(id).map(|&index| &self.entries[index as usize])
    }

    /// Indicators indexed and not retracted (expired ones included).
    pub fn active_len(&self) -> usize {
        self.active
    }

    /// Appends to `hits` every live indicator matching `observable` at `now`.
    pub fn lookup_into(&self, observable: &Observable, now: i64, hits: &mut Vec<Hit>) {
        let value = observable.value.as_str();
        self.exact_into(observable.kind, value, now, MatchKind::Exact, hits);
        match observable.kind {
            ObservableType::Ipv4 | ObservableType::Ipv6 => self.address_into(value, now, MatchKind::CidrContains, hits),
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
        self.exact_into(host.kind, &host.value, now, MatchKind::UrlHost, hits);
        match host.kind {
            ObservableType::Domain => self.parents_into(&host.value, now, MatchKind::UrlHost, hits),
            _ => self.address_into(&host.value, now, MatchKind::UrlHost, hits),
        }
    }

    fn address_into(&self, value: &str, now: i64, how: MatchKind, hits: &mut Vec<Hit>) {
        match value.parse::<IpAddr>() {
            Ok(IpAddr::V4(address)) => self.v4_into(u32::from(address), 32, now, how, hits),
            Ok(IpAddr::V6(address)) => self.v6_into(u128::from(address), 128, now, how, hits),
            Err(_) => {}
        }
    }

    /// A looked-up CIDR matches published networks that contain it.
    fn network_into(&self, value: &str, now: i64, hits: &mut Vec<Hit>) {
        match value.parse::<ipnet::IpNet>() {
            Ok(ipnet::IpNet::V4(net)) => self.v4_into(
                u32::from(net.network()),
                net.prefix_len(),
                now,
                MatchKind::CidrContains,
                hits,
            ),
            Ok(ipnet::IpNet::V6(net)) => self.v6_into(
                u128::from(net.network()),
                net.prefix_len(),
                now,
                MatchKind::CidrContains,
                hits,
            ),
            Err(_) => {}
        }
    }

    fn v4_into(&self, address: u32, max_len: u8, now: i64, how: MatchKind, hits: &mut Vec<Hit>) {
        for &len in self.v4_lengths.iter().filter(|&&len| len <= max_len) {
            let network = if len == 0 {
                0
            } else {
                address & (u32::MAX << (32 - len))
            };
            if let Some(postings) = self.v4[len as usize].get(&network) {
                if how == MatchKind::CidrContains && len == max_len && max_len < 32 {
                    continue; // the same CIDR was already reported as an exact match
                }
                self.collect(
                    postings,
                    now,
                    how,
                    || format!("{}/{len}", Ipv4Addr::from(network)),
                    hits,
                );
            }
        }
    }

    fn v6_into(&self, address: u128, max_len: u8, now: i64, how: MatchKind, hits: &mut Vec<Hit>) {
        for &len in self.v6_lengths.iter().filter(|&&len| len <= max_len) {
            let network = if len == 0 {
                0
            } else {
                address & (u128::MAX << (128 - len))
            };
            if let Some(postings) = self.v6[len as usize].get(&network) {
                if how == MatchKind::CidrContains && len == max_len && max_len < 128 {
                    continue;
                }
                self.collect(
                    postings,
                    now,
                    how,
                    || format!("{}/{len}", Ipv6Addr::from(network)),
                    hits,
                );
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
                hits.push(Hit {
                    entry: index,
                    kind: how,
                    matched: matched(),
                });
            }
        }
    }
}

fn push<K: std::hash::Hash + Eq>(map: &mut Map<K>, key: K, index: u32) {
    map.entry(key)
        .and_modify(|p| p.push(index))
        .or_insert(Postings::One(index));
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
            valid_until: NOW + 3600,
            first_seen: 0,
            last_seen: 0,
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
    fn exact_value_matches() {
        let engine = engine(&[(1, ObservableType::Ipv4, "198.51.100.7")]);
        assert_eq!(
            query(&engine, "198.51.100.7"),
            vec![(1, MatchKind::Exact, "198.51.100.7".into())]
        );
        assert!(query(&engine, "198.51.100.8").is_empty());
    }

    #[test]
    fn address_inside_published_cidr_matches() {
        let engine = engine(&[
            (1, ObservableType::Cidr, "198.51.100.0/24"),
            (2, ObservableType::Cidr, "198.0.0.0/8"),
        ]);
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
        assert_eq!(
            query(&engine, "10.1.0.0/16"),
            vec![(1, MatchKind::CidrContains, "10.0.0.0/8".into())]
        );
        assert_eq!(
            query(&engine, "10.0.0.0/8"),
            vec![(1, MatchKind::Exact, "10.0.0.0/8".into())]
        );
    }

    #[test]
    fn domain_and_every_parent_domain_match() {
        let engine = engine(&[
            (1, ObservableType::Domain, "evil.example"),
            (2, ObservableType::Domain, "c2.evil.example"),
        ]);
        assert_eq!(query(&engine, "a.c2.evil.example").len(), 2);
        assert_eq!(
            query(&engine, "c2.evil.example"),
            vec![
                (2, MatchKind::Exact, "c2.evil.example".into()),
                (1, MatchKind::ParentDomain, "evil.example".into()),
            ]
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
        assert_eq!(
            query(&engine, "https://203.0.113.9/x"),
            vec![(3, MatchKind::UrlHost, "203.0.113.9".into())]
        );
        assert_eq!(
            query(&engine, "https://cdn.evil.example/"),
            vec![(2, MatchKind::UrlHost, "evil.example".into())]
        );
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
        let engine = engine(&[
            (1, ObservableType::Domain, "evil.example"),
            (2, ObservableType::Domain, "evil.example"),
        ]);
        assert_eq!(query(&engine, "evil.example").len(), 2);
    }
}
