//! Scrubbing cost: a 10 KiB lesson (free text drawn from the labelled PII
//! corpus, so detectors fire as they would on a real post-mortem), and a
//! clean 10 KiB lesson where every detector scans and finds nothing.

use cirfed::anonymize::{ScrubPolicy, Scrubber};
use cirfed::proto::{record::Body, Lesson};
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};

/// Size of the benched lesson's free text.
const LESSON_BYTES: usize = 10 * 1024;

fn corpus_texts() -> Vec<String> {
    include_str!("../tests/data/pii_corpus.jsonl")
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["kind"] == "description")
        .filter_map(|v| v["text"].as_str().map(String::from))
        .collect()
}

/// A lesson whose summary, root cause and lists add up to 10 KiB of `texts`.
fn lesson(texts: &[String]) -> Body {
    let mut paragraphs = texts.iter().cycle();
    let mut take = |bytes: usize| {
        let mut out = String::new();
        while out.len() < bytes {
            out.push_str(paragraphs.next().expect("cycle"));
            out.push(' ');
        }
        out
    };
    Body::Lesson(Lesson {
        title: "Post-mortem: credential theft and lateral movement".into(),
        summary: take(LESSON_BYTES / 2),
        root_cause: take(LESSON_BYTES / 4),
        went_well: (0..4).map(|_| take(LESSON_BYTES / 16)).collect(),
        to_improve: (0..4).map(|_| take(LESSON_BYTES / 16)).collect(),
        cir_level: 3,
        ..Default::default()
    })
}

fn scrub(c: &mut Criterion) {
    let policy = ScrubPolicy {
        internal_suffixes: vec!["acme-cloud.net".into()],
        names: ["Acme Cloud", "Contoso Retail", "Globex Bank", "Initech"].map(String::from).to_vec(),
        ..ScrubPolicy::default()
    };
    let scrubber = Scrubber::new(&policy, [3; 32]);
    let texts = corpus_texts();
    let clean: Vec<String> = (0..40)
        .map(|n| format!("Step {n}: the on-call engineer rotated the affected credentials, reviewed the audit trail and confirmed that no further access occurred after containment."))
        .collect();
    let mut group = c.benchmark_group("scrub");
    group.throughput(Throughput::Bytes(LESSON_BYTES as u64));
    for (name, body) in [("lesson_10k_with_pii", lesson(&texts)), ("lesson_10k_clean", lesson(&clean))] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || body.clone(),
                |mut body| {
                    let mut report = Vec::new();
                    scrubber.body_text(&mut body, &mut report).expect("default policy refuses no text");
                    black_box(report.len())
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, scrub);
criterion_main!(benches);
