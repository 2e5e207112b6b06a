//! In-process match engine over 1,000,000 mixed indicators: exact, CIDR and
//! parent-domain lookups per second on one core (no store, no RPC).

#[path = "support/mod.rs"]
mod support;

use cirfed::lookup::{Engine, Entry};
use cirfed::normalize::{self, ObservableType};
use cirfed::record::RecordId;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use support::{feed_value, Rng};

/// Indicators in the engine (override with CIRFED_BENCH_FEED).
fn feed_size() -> u64 {
    std::env::var("CIRFED_BENCH_FEED").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000)
}

/// Lookups per measured iteration.
const QUERIES: usize = 10_000;
const FAR_FUTURE: i64 = i64::MAX / 2;

fn engine() -> Engine {
    let mut engine = Engine::new();
    for n in 0..feed_size() {
        let (kind, value) = feed_value(n);
        let mut id = [0u8; 32];
        id[..8].copy_from_slice(&n.to_be_bytes());
        let entry = Entry {
            id: RecordId(id),
            kind,
            level: 3,
            confidence: 50,
            tlp: 2,
            categories: 0,
            valid_until: FAR_FUTURE,
            first_seen: 0,
            last_seen: 0,
            created_at: 0,
            author: 0,
            active: true,
        };
        engine.add(entry, &value);
    }
    engine
}

/// Raw query strings: half published values of `kind`, half random misses.
fn exact_queries(kind: ObservableType) -> Vec<String> {
    let mut rng = Rng::new(7);
    let mut queries = Vec::with_capacity(QUERIES);
    let mut n = 0;
    while queries.len() < QUERIES {
        let (k, value) = feed_value(n % feed_size());
        n += 1;
        if k != kind {
            continue;
        }
        queries.push(value);
        let miss = match kind {
            ObservableType::Ipv4 => support::ipv4(rng.next()),
            _ => support::domain(rng.next()),
        };
        queries.push(miss);
    }
    queries
}

fn bench(c: &mut Criterion) {
    let engine = engine();
    let now = 1_800_000_000;
    let mut group = c.benchmark_group("lookup_engine");
    group.throughput(Throughput::Elements(QUERIES as u64));

    for (name, kind) in [("exact_ipv4", ObservableType::Ipv4), ("exact_domain_with_parents", ObservableType::Domain)] {
        let raw = exact_queries(kind);
        let parsed: Vec<_> = raw.iter().map(|v| normalize::parse(Some(kind), v).unwrap()).collect();
        let mut hits = Vec::new();
        group.bench_function(format!("{name}/pre_normalised"), |b| {
            b.iter(|| {
                for observable in &parsed {
                    hits.clear();
                    engine.lookup_into(observable, now, &mut hits);
                    black_box(hits.len());
                }
            })
        });
        group.bench_function(format!("{name}/normalise_and_match"), |b| {
            b.iter(|| {
                for value in &raw {
                    hits.clear();
                    let observable = normalize::parse(Some(kind), value).unwrap();
                    engine.lookup_into(&observable, now, &mut hits);
                    black_box(hits.len());
                }
            })
        });
    }

    // Random addresses: each probes every published prefix length.
    let mut rng = Rng::new(11);
    let addresses: Vec<_> = (0..QUERIES)
        .map(|_| normalize::parse(Some(ObservableType::Ipv4), &support::ipv4(rng.next())).unwrap())
        .collect();
    let mut hits = Vec::new();
    group.bench_function("cidr_containment_ipv4", |b| {
        b.iter(|| {
            for observable in &addresses {
                hits.clear();
                engine.lookup_into(observable, now, &mut hits);
                black_box(hits.len());
            }
        })
    });

    // Sub-domains three labels below published domains: the engine walks every parent.
    let subdomains: Vec<_> = exact_queries(ObservableType::Domain)
        .into_iter()
        .map(|d| normalize::parse(Some(ObservableType::Domain), &format!("a.b.c.{d}")).unwrap())
        .collect();
    group.bench_function("parent_domain_depth_3", |b| {
        b.iter(|| {
            for observable in &subdomains {
                hits.clear();
                engine.lookup_into(observable, now, &mut hits);
                black_box(hits.len());
            }
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
