//! Bulk publish into the store (seal, validate, verify, durable write) and the
//! ed25519 verification ceiling on the same machine.

#[path = "support/mod.rs"]
mod support;

use cirfed::config::Config;
use cirfed::record::signing_message;
use cirfed::server::{self, Overrides};
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use std::sync::atomic::{AtomicU64, Ordering};

/// Drafts per publish call, as the CLI's bulk publish sends them.
const BATCH: u64 = 1_000;

fn publish(c: &mut Criterion) {
    let (_root, dir) = support::node_dir();
    let config: Config = server::load_config(&dir, &Overrides::default()).unwrap();
    let node = server::open_node(&dir, &config).unwrap();
    let next = AtomicU64::new(0);
    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(BATCH));
    group.sample_size(20);
    group.bench_function("bulk_publish_1000", |b| {
        b.iter_batched(
            || {
                let start = next.fetch_add(BATCH, Ordering::Relaxed);
                support::drafts(start..start + BATCH)
            },
            |drafts| {
                for outcome in node.publish(drafts) {
                    match outcome {
                        Ok(inserted) => assert!(inserted.created, "duplicate in the synthetic feed: {}", inserted.id),
                        Err(e) => panic!("feed record refused: {e}"),
                    }
                }
            },
            BatchSize::LargeInput,
        )
    });
    // The same with a description on every draft, a quarter of them carrying
    // an address, a host or an email for the scrub policy to redact.
    group.bench_function("bulk_publish_1000_described", |b| {
        b.iter_batched(
            || {
                let start = next.fetch_add(BATCH, Ordering::Relaxed);
                support::described_drafts(start..start + BATCH)
            },
            |drafts| {
                for outcome in node.publish(drafts) {
                    assert!(outcome.is_ok_and(|i| i.created), "feed record refused or duplicated");
                }
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn verification_ceiling(c: &mut Criterion) {
    let key = SigningKey::from_bytes(&[7; 32]);
    let public: VerifyingKey = key.verifying_key();
    let messages: Vec<Vec<u8>> =
        (0..BATCH).map(|n| signing_message(format!("record {n} with some body bytes").as_bytes())).collect();
    let signatures: Vec<Signature> = messages.iter().map(|m| key.sign(m)).collect();
    let mut group = c.benchmark_group("ed25519");
    group.throughput(Throughput::Elements(BATCH));
    group.bench_function("verify_strict_one_core", |b| {
        b.iter(|| {
            for (m, s) in messages.iter().zip(&signatures) {
                black_box(public.verify_strict(m, s).is_ok());
            }
        })
    });
    let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    let keys = vec![public; BATCH as usize];
    group.bench_function("verify_batch_one_core", |b| {
        b.iter(|| black_box(ed25519_dalek::verify_batch(&refs, &signatures, &keys).is_ok()))
    });
    group.bench_function("sign_one_core", |b| {
        b.iter(|| {
            for m in &messages {
                black_box(key.sign(m));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, publish, verification_ceiling);
criterion_main!(benches);
