//! The scrubber against a labelled corpus of incident descriptions and
//! indicator values with planted sensitive items (tests/data/pii_corpus.jsonl):
//! every planted item must be caught by its detector; precision is reported.
//!
//! `cargo test --release --test scrub_corpus -- --nocapture` prints the figures.

use cirfed::anonymize::detectors::{Detector, Detectors};
use cirfed::anonymize::{ScrubPolicy, Scrubber};
use cirfed::normalize;
use serde::Deserialize;
use std::collections::BTreeMap;

const CORPUS: &str = include_str!("data/pii_corpus.jsonl");
/// The lowest precision accepted before the detectors are tightened.
const MIN_PRECISION: f64 = 0.9;

#[derive(Deserialize)]
struct Case {
    id: String,
    kind: String,
    text: String,
    planted: Vec<Planted>,
}

#[derive(Deserialize)]
struct Planted {
    detector: Detector,
    value: String,
}

fn policy() -> ScrubPolicy {
    ScrubPolicy {
        internal_suffixes: vec!["acme-cloud.net".into(), "int.example-csp.com".into()],
        names: ["Acme Cloud", "Contoso Retail", "Globex Bank", "Initech"].map(String::from).to_vec(),
        ..ScrubPolicy::default()
    }
}

fn cases() -> Vec<Case> {
    CORPUS.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).expect("corpus line")).collect()
}

/// Per detector: planted, caught, and findings that match nothing planted.
#[derive(Default, Debug)]
struct Tally {
    planted: usize,
    caught: usize,
    false_positives: usize,
}

/// Byte ranges of each planted item in the text (every occurrence).
fn planted_spans(case: &Case) -> Vec<(Detector, usize, usize, &str)> {
    case.planted
        .iter()
        .flat_map(|p| case.text.match_indices(p.value.as_str()).map(move |(at, v)| (p.detector, at, at + v.len(), v)))
        .collect()
}

#[test]
fn every_planted_item_in_free_text_is_caught_by_its_detector() {
    let policy = policy();
    let detectors = Detectors::new(&policy.internal_suffixes, &policy.names);
    let mut tally: BTreeMap<Detector, Tally> = BTreeMap::new();
    let mut missed = Vec::new();
    let mut false_positives = Vec::new();
    for case in cases().iter().filter(|c| c.kind == "description") {
        let findings = detectors.find(&case.text);
        let spans = planted_spans(case);
        for (detector, start, end, value) in &spans {
            tally.entry(*detector).or_default().planted += 1;
            if findings.iter().any(|f| f.detector == *detector && f.start <= *start && *end <= f.end) {
                tally.entry(*detector).or_default().caught += 1;
            } else {
                missed.push(format!("{} {detector} {value:?}", case.id));
            }
        }
        for f in &findings {
            if !spans.iter().any(|(_, start, end, _)| f.start < *end && *start < f.end) {
                tally.entry(f.detector).or_default().false_positives += 1;
                false_positives.push(format!("{} {} {:?}", case.id, f.detector, &case.text[f.start..f.end]));
            }
        }
    }
    let (planted, caught, wrong) =
        tally.values().fold((0, 0, 0), |(p, c, w), t| (p + t.planted, c + t.caught, w + t.false_positives));
    let precision = caught as f64 / (caught + wrong) as f64;
    println!("free text: {caught}/{planted} planted items caught, {wrong} false positives, precision {precision:.3}");
    for (detector, t) in &tally {
        println!(
            "  {detector:<14} planted {:>3} caught {:>3} false positives {}",
            t.planted, t.caught, t.false_positives
        );
    }
    for fp in &false_positives {
        println!("  false positive: {fp}");
    }
    assert!(missed.is_empty(), "missed planted items:\n{}", missed.join("\n"));
    assert!(precision >= MIN_PRECISION, "precision {precision:.3} under {MIN_PRECISION}: {false_positives:#?}");
}

#[test]
fn every_sensitive_indicator_value_is_refused_or_hashed_and_public_ones_pass_unchanged() {
    let policy = policy();
    let scrubber = Scrubber::new(&policy, [1; 32]);
    let detectors = Detectors::new(&policy.internal_suffixes, &policy.names);
    let mut failures = Vec::new();
    for case in cases().iter().filter(|c| c.kind == "indicator") {
        let expected = case.planted.first().map(|p| p.detector);
        let mut report = Vec::new();
        let caught = match normalize::parse(None, &case.text) {
            Ok(observable) => match scrubber.value(observable.clone(), &mut report) {
                Err(refused) => Some(refused.detector),
                Ok(shared) if shared != observable => report.first().map(|r| r.detector),
                Ok(_) => None,
            },
            // Not an observable at all, so never shared; still, the detectors must see it.
            Err(_) => detectors.find(&case.text).first().map(|f| f.detector),
        };
        if caught != expected {
            failures.push(format!("{} {:?}: expected {expected:?}, got {caught:?}", case.id, case.text));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
