//! Shared by the benches: a synthetic feed of mixed indicators and a node
//! set up in a temp dir exactly as `cirfed` sets one up.
#![allow(dead_code)]

use cirfed::cir::{Role, Tlp};
use cirfed::identity::{self, Federation};
use cirfed::node::unix_now;
use cirfed::normalize::ObservableType;
use cirfed::proto::{draft, Draft, Indicator};
use std::path::PathBuf;

/// A tiny deterministic generator (xorshift), so every run benches the same feed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The n-th value of the synthetic feed: 40% IPv4, 10% CIDR (/20 to /32), 25% domains,
/// 10% URLs, 15% SHA-256, all canonical.
pub fn feed_value(n: u64) -> (ObservableType, String) {
    let mut rng = Rng::new(n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xC1F);
    let r = rng.next();
    match n % 20 {
        0..=7 => (ObservableType::Ipv4, ipv4(r)),
        8..=9 => (ObservableType::Cidr, cidr(r)),
        10..=14 => (ObservableType::Domain, domain(r)),
        15..=16 => (ObservableType::Url, format!("http://{}/p/{}", domain(r), r % 1000)),
        _ => (ObservableType::Sha256, format!("{:016x}{:016x}{:016x}{:016x}", r, rng.next(), rng.next(), rng.next())),
    }
}

/// A public IPv4 address (first octet 11-222; private, loopback, link-local
/// and CGNAT ranges, which the scrub policy refuses, are moved to 45.x).
pub fn ipv4(r: u64) -> String {
    let first = 11 + (r >> 24) % 212;
    let address = std::net::Ipv4Addr::new(first as u8, (r >> 16) as u8, (r >> 8) as u8, r as u8);
    let [a, b, c, d] = address.octets();
    let a = if cirfed::anonymize::detectors::is_private_v4(address) { 45 } else { a };
    format!("{a}.{b}.{c}.{d}")
}

/// A canonical IPv4 network with a prefix length from /20 to /32, so CIDR
/// lookups probe many prefix lengths as a real feed makes them. (Shorter
/// prefixes by the ten thousand would cover most of the address space and
/// turn every lookup into a hit, which no real feed does.)
pub fn cidr(r: u64) -> String {
    let address: std::net::Ipv4Addr = ipv4(r).parse().expect("valid address");
    let len = 20 + (r >> 40) % 13;
    ipnet::Ipv4Net::new(address, len as u8).expect("valid prefix").trunc().to_string()
}

/// A two-label domain name.
pub fn domain(r: u64) -> String {
    format!("d{:x}.example", r % 0xffff_ffff_ffff)
}

/// Indicator drafts for feed values `range`.
pub fn drafts(range: std::ops::Range<u64>) -> Vec<Draft> {
    range
        .map(|n| {
            let (kind, value) = feed_value(n);
            Draft {
                tlp: Tlp::Green.code(),
                body: Some(draft::Body::Indicator(Indicator {
                    r#type: i32::from(kind.code()),
                    value,
                    cir_level: 1 + (n % 5) as u32,
                    confidence: (n % 101) as u32,
                    ..Default::default()
                })),
            }
        })
        .collect()
}

/// Drafts for feed values `range`, each with an analyst's description; one in
/// four names an internal address, host or email the scrub policy redacts.
pub fn described_drafts(range: std::ops::Range<u64>) -> Vec<Draft> {
    let notes = [
        "Beaconing observed from a compromised web tier; blocked at the edge after triage.",
        "Seen in credential stuffing against the customer portal, 2k attempts per minute.",
        "Payload host for the second stage; first reported by the threat intel team.",
    ];
    let sensitive = [
        "Lateral movement to 10.20.3.4 followed the initial access.",
        "Callback reached build-07.eu-west.internal before egress was cut.",
        "Reported by soc-lead@victim-csp.example during the night shift.",
    ];
    let mut drafts = drafts(range.clone());
    for (n, draft) in range.zip(&mut drafts) {
        if let Some(draft::Body::Indicator(i)) = &mut draft.body {
            let pick = (n / 4) as usize % 3;
            i.description = if n % 4 == 0 { sensitive[pick] } else { notes[pick] }.to_string();
        }
    }
    drafts
}

/// A joined node directory in a fresh temp dir (kept alive by the returned guard).
pub fn node_dir() -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().expect("temp dir");
    let federation = Federation::init(&root.path().join("operator"), "bench", false).expect("federation");
    let dir = root.path().join("node");
    let request = identity::init_node(&dir, "bench", &["localhost".into()], false).expect("node init");
    let admission = federation.admit(&request, &[Role::Publish, Role::Read], 30, unix_now()).expect("admit");
    identity::join_node(&dir, &admission, false).expect("join");
    (root, dir)
}

/// `count` node directories admitted by one federation in a fresh temp dir,
/// with certificates naming 127.0.0.1 so that they can dial each other on loopback.
pub fn federation_dirs(count: usize) -> (tempfile::TempDir, Vec<PathBuf>) {
    let root = tempfile::tempdir().expect("temp dir");
    let federation = Federation::init(&root.path().join("operator"), "bench", false).expect("federation");
    let names = ["localhost".to_string(), "127.0.0.1".to_string()];
    let dirs = (0..count)
        .map(|n| {
            let dir = root.path().join(format!("node{n}"));
            let request = identity::init_node(&dir, &format!("csp{n}"), &names, false).expect("node init");
            let admission = federation.admit(&request, &[Role::Publish, Role::Read], 30, unix_now()).expect("admit");
            identity::join_node(&dir, &admission, false).expect("join");
            dir
        })
        .collect();
    (root, dirs)
}

/// Drafts per in-process publish call while a load tool fills a node.
pub const LOAD_BATCH: u64 = 10_000;

/// Publishes feed values `0..feed` into a running node, `LOAD_BATCH` at a time.
pub async fn load_feed(node: &std::sync::Arc<cirfed::node::Node>, feed: u64) -> anyhow::Result<()> {
    let mut start = 0;
    while start < feed {
        let end = (start + LOAD_BATCH).min(feed);
        let node = node.clone();
        let outcomes = tokio::task::spawn_blocking(move || node.publish(drafts(start..end))).await?;
        anyhow::ensure!(outcomes.iter().all(|o| o.is_ok()), "a feed record was refused");
        start = end;
    }
    Ok(())
}
