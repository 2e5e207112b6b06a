//! STIX export speed: `export_bundle` over 100,000 and 1,000,000 synthetic
//! indicators from a feed in memory, so the figure is the format's own
//! (serialising, patterns, ids, hashing), not the store's. Target (issue 9):
//! >= 200,000 objects/s. Run: `cargo bench --bench stix_export`.

#[path = "support/mod.rs"]
mod support;

use cirfed::cir::{Category, Tlp};
use cirfed::interop::stix::export_bundle;
use cirfed::interop::{Feed, FeedRecord, Filter, InteropError, LiveIndicator};
use cirfed::proto::record::Body;
use cirfed::proto::{Indicator, Record};
use cirfed::record::RecordId;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use sha2::{Digest, Sha256};
use std::io;
use std::time::Duration;

/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600;
/// Members the synthetic records are spread over.
const MEMBERS: u64 = 40;

/// Records in arrival order, read a chunk at a time like the node's store.
struct MemoryFeed(Vec<FeedRecord>);

impl Feed for MemoryFeed {
    fn records_after(&self, after: u64, limit: usize) -> Result<Vec<FeedRecord>, InteropError> {
        let start = (after as usize).min(self.0.len());
        Ok(self.0[start..(start + limit).min(self.0.len())].to_vec())
    }

    fn record(&self, id: &RecordId) -> Result<Option<FeedRecord>, InteropError> {
        Ok(self.0.iter().find(|r| r.id == *id).cloned())
    }

    fn last_seq_added_by(&self, micros: i64) -> Result<u64, InteropError> {
        Ok(self.0.iter().filter(|r| r.added_micros <= micros).map(|r| r.seq).max().unwrap_or(0))
    }

    fn last_seq(&self) -> u64 {
        self.0.len() as u64
    }

    fn records_with_prefix(&self, prefix: &[u8]) -> Result<Vec<FeedRecord>, InteropError> {
        Ok(self.0.iter().filter(|r| r.id.0.starts_with(prefix)).cloned().collect())
    }

    fn for_each_live_indicator(&self, _now: i64, _visit: &mut dyn FnMut(&LiveIndicator<'_>)) {}
}

/// `count` indicator records of the benches' synthetic feed, with the fields a real one carries.
fn feed(count: u64) -> MemoryFeed {
    let records = (0..count)
        .map(|n| {
            let (kind, value) = support::feed_value(n);
            let indicator = Indicator {
                r#type: i32::from(kind.code()),
                value,
                cir_level: 1 + (n % 5) as u32,
                categories: vec![[Category::Malware, Category::Intrusion, Category::Phishing][(n % 3) as usize].code()],
                confidence: (n % 101) as u32,
                valid_until: T0 + 90 * 86_400,
                tags: if n % 4 == 0 { vec!["c2".into()] } else { Vec::new() },
                description: if n % 2 == 0 { "seen in a credential-stuffing wave".into() } else { String::new() },
                ..Indicator::default()
            };
            let seq = n + 1;
            FeedRecord {
                id: RecordId(Sha256::digest(seq.to_be_bytes()).into()),
                seq,
                added_micros: seq as i64,
                record: Record {
                    version: 1,
                    author: vec![(n % MEMBERS) as u8; 32],
                    created_at: T0 + (n as i64) / 1000 * 3600,
                    tlp: [Tlp::Clear, Tlp::Green, Tlp::Amber][(n % 3) as usize].code(),
                    body: Some(Body::Indicator(indicator)),
                },
                author_member: Some(format!("m-{:06x}", n % MEMBERS)),
                retraction: None,
                expired: false,
            }
        })
        .collect();
    MemoryFeed(records)
}

fn export(c: &mut Criterion) {
    let mut group = c.benchmark_group("stix_export");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    for count in [100_000u64, 1_000_000] {
        let feed = feed(count);
        group.throughput(Throughput::Elements(count));
        group.bench_function(format!("export_bundle_{count}"), |b| {
            b.iter_batched(
                || (),
                |()| {
                    let summary = export_bundle(&feed, &Filter::default(), &mut io::sink()).expect("export");
                    assert_eq!(summary.exported.get("indicator"), Some(&count));
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, export);
criterion_main!(benches);
