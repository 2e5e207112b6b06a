//! Blocklist regeneration over 1,000,000 live values (the synthetic mixed
//! feed of the other benches) from an in-memory feed: collecting, filtering,
//! sorting, de-duplicating and writing each form, on one core. Target: under
//! one second for a million values (issue 9).

#[path = "support/mod.rs"]
mod support;

use cirfed::interop::blocklist::{self, Form};
use cirfed::interop::{Feed, FeedRecord, Filter, InteropError, LiveIndicator};
use cirfed::lookup::Entry;
use cirfed::normalize::ObservableType;
use cirfed::record::RecordId;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use support::feed_value;

/// Values in the feed (override with CIRFED_BENCH_FEED).
fn feed_size() -> u64 {
    std::env::var("CIRFED_BENCH_FEED").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000)
}

const NOW: i64 = 1_767_225_600;

/// The live values as the node's engine hands them out, without the node.
struct LiveValues(Vec<(String, Entry, u8)>);

impl LiveValues {
    fn new() -> Self {
        let values = (0..feed_size())
            .map(|n| {
                let (kind, value) = feed_value(n);
                let mut id = [0u8; 32];
                id[..8].copy_from_slice(&n.to_be_bytes());
                let entry = Entry {
                    id: RecordId(id),
                    kind,
                    level: 1 + (n % 5) as u8,
                    confidence: 50,
                    tlp: 2,
                    categories: 1 << (1 + n % 7),
                    valid_until: NOW + 86_400,
                    first_seen: 0,
                    last_seen: 0,
                    created_at: NOW - 3_600,
                    author: 0,
                    active: true,
                };
                (value, entry, (n % 101) as u8)
            })
            .collect();
        LiveValues(values)
    }
}

impl Feed for LiveValues {
    fn records_after(&self, _: u64, _: usize) -> Result<Vec<FeedRecord>, InteropError> {
        Ok(Vec::new())
    }
    fn record(&self, _: &RecordId) -> Result<Option<FeedRecord>, InteropError> {
        Ok(None)
    }
    fn last_seq_added_by(&self, _: i64) -> Result<u64, InteropError> {
        Ok(0)
    }
    fn last_seq(&self) -> u64 {
        0
    }
    fn records_with_prefix(&self, _: &[u8]) -> Result<Vec<FeedRecord>, InteropError> {
        Ok(Vec::new())
    }
    fn for_each_live_indicator(&self, _: i64, visit: &mut dyn FnMut(&LiveIndicator<'_>)) {
        for (value, entry, score) in &self.0 {
            visit(&LiveIndicator { value, kind: entry.kind, entry, score: *score });
        }
    }
}

fn bench(c: &mut Criterion) {
    let feed = LiveValues::new();
    let mut group = c.benchmark_group("blocklist");
    group.throughput(Throughput::Elements(feed_size()));
    group.sample_size(10);
    let everything = Filter::default();
    let addresses = Filter { types: vec![ObservableType::Ipv4, ObservableType::Cidr], ..Filter::default() };
    let cases = [
        ("plain/all_types", Form::Plain, &everything),
        ("csv/all_types", Form::Csv, &everything),
        ("nftables/ipv4_and_cidr", Form::Nftables, &addresses),
        ("suricata_domain", Form::SuricataDomain, &everything),
        ("rpz", Form::Rpz, &everything),
    ];
    for (name, form, filter) in cases {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut out = std::io::sink();
                let summary = blocklist::export(&feed, form, filter, NOW, &mut out).expect("export");
                black_box(summary);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
