//! The scrubber against a labelled corpus of incident descriptions and
//! indicator values with planted sensitive items (tests/data/pii_corpus.jsonl,
//! the sources of its formats in tests/data/pii_corpus.SOURCES.md): recall
//! and precision per detector are printed as a table and must stay above
//! the thresholds below.
//!
//! `cargo test --release --test scrub_corpus -- --nocapture` prints the figures.

use cirfed::anonymize::detectors::{Detector, Detectors};
use cirfed::anonymize::{ScrubPolicy, Scrubber};
use cirfed::normalize;
use serde::Deserialize;
use std::collections::BTreeMap;

const CORPUS: &str = include_str!("data/pii_corpus.jsonl");
/// The corpus must stay large enough for the figures to mean something.
const MIN_CORPUS_ITEMS: usize = 500;
/// Every detector is planted at least this often, so its recall is measured.
const MIN_PLANTED_PER_DETECTOR: usize = 5;
/// The classes issue 8 widened the scrubber with are planted at least this often.
const MIN_PLANTED_PER_WIDENED_CLASS: usize = 15;
/// Those classes.
const WIDENED_CLASSES: [Detector; 9] = [
    Detector::WebhookUrl,
    Detector::PresignedUrl,
    Detector::UrlToken,
    Detector::Phone,
    Detector::TenantHost,
    Detector::StorageBucket,
    Detector::Iban,
    Detector::MacAddress,
    Detector::NationalId,
];
/// Lines with nothing to find, so that precision is measured on text like a note's.
const MIN_NEGATIVES: usize = 50;
/// Overall recall over every planted item in free text.
const MIN_RECALL: f64 = 0.98;
/// Recall of each detector on its own.
const MIN_DETECTOR_RECALL: f64 = 0.95;
/// Overall precision: findings that are planted items, of all findings.
const MIN_PRECISION: f64 = 0.97;
/// Precision of each detector on its own.
const MIN_DETECTOR_PRECISION: f64 = 0.9;

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
    /// The format the value was written in (`phone/de`, `national_id/fr-nir`).
    #[serde(default)]
    format: Option<String>,
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

/// Per detector (or format): planted, caught, and findings that match nothing planted.
#[derive(Default, Debug, Clone, Copy)]
struct Tally {
    planted: usize,
    caught: usize,
    false_positives: usize,
}

impl Tally {
    fn recall(&self) -> f64 {
        ratio(self.caught, self.planted)
    }

    fn precision(&self) -> f64 {
        ratio(self.caught, self.caught + self.false_positives)
    }

    fn add(&mut self, other: &Tally) {
        self.planted += other.planted;
        self.caught += other.caught;
        self.false_positives += other.false_positives;
    }
}

/// A ratio that is 1 when there is nothing to count.
fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        1.0
    } else {
        part as f64 / whole as f64
    }
}

/// Byte ranges of each planted item in the text (every occurrence).
fn planted_spans(case: &Case) -> Vec<(&Planted, usize, usize)> {
    case.planted
        .iter()
        .flat_map(|p| case.text.match_indices(p.value.as_str()).map(move |(at, v)| (p, at, at + v.len())))
        .collect()
}

/// The corpus scored: per detector, per format, and the misses and false positives.
struct Score {
    detectors: BTreeMap<Detector, Tally>,
    formats: BTreeMap<String, Tally>,
    missed: Vec<String>,
    false_positives: Vec<String>,
}

fn score_free_text() -> Score {
    let policy = policy();
    let detectors = Detectors::new(&policy.internal_suffixes, &policy.names);
    let mut score =
        Score { detectors: BTreeMap::new(), formats: BTreeMap::new(), missed: Vec::new(), false_positives: Vec::new() };
    for case in cases().iter().filter(|c| c.kind == "description") {
        let findings = detectors.find(&case.text);
        let spans = planted_spans(case);
        for (planted, start, end) in &spans {
            let detector = planted.detector;
            let caught = findings.iter().any(|f| f.detector == detector && f.start <= *start && *end <= f.end);
            let format = planted.format.clone().unwrap_or_else(|| detector.to_string());
            for tally in [score.detectors.entry(detector).or_default(), score.formats.entry(format).or_default()] {
                tally.planted += 1;
                tally.caught += usize::from(caught);
            }
            if !caught {
                let got: Vec<String> = findings
                    .iter()
                    .filter(|f| f.start < *end && *start < f.end)
                    .map(|f| format!("{} {:?}", f.detector, &case.text[f.start..f.end]))
                    .collect();
                score.missed.push(format!("{} {detector} {:?} (found: {got:?})", case.id, planted.value));
            }
        }
        for f in &findings {
            if !spans.iter().any(|(_, start, end)| f.start < *end && *start < f.end) {
                score.detectors.entry(f.detector).or_default().false_positives += 1;
                score.false_positives.push(format!("{} {} {:?}", case.id, f.detector, &case.text[f.start..f.end]));
            }
        }
    }
    score
}

fn print_table(title: &str, rows: impl Iterator<Item = (String, Tally)>) {
    println!("{title:<28} {:>7} {:>7} {:>7} {:>7} {:>9}", "planted", "caught", "false+", "recall", "precision");
    for (name, t) in rows {
        println!(
            "{name:<28} {:>7} {:>7} {:>7} {:>7.3} {:>9.3}",
            t.planted,
            t.caught,
            t.false_positives,
            t.recall(),
            t.precision()
        );
    }
}

#[test]
fn free_text_recall_and_precision_per_detector_stay_above_their_thresholds() {
    let score = score_free_text();
    let mut total = Tally::default();
    score.detectors.values().for_each(|t| total.add(t));
    print_table("detector", score.detectors.iter().map(|(d, t)| (d.to_string(), *t)));
    print_table("all", std::iter::once(("all".to_string(), total)));
    println!();
    print_table("format", score.formats.iter().map(|(f, t)| (f.clone(), *t)));
    for line in score
        .missed
        .iter()
        .map(|m| format!("missed: {m}"))
        .chain(score.false_positives.iter().map(|f| format!("false positive: {f}")))
    {
        println!("  {line}");
    }
    let mut failures = Vec::new();
    if total.recall() < MIN_RECALL {
        failures.push(format!("overall recall {:.3} under {MIN_RECALL}", total.recall()));
    }
    if total.precision() < MIN_PRECISION {
        failures.push(format!("overall precision {:.3} under {MIN_PRECISION}", total.precision()));
    }
    for (detector, t) in &score.detectors {
        if t.planted > 0 && t.recall() < MIN_DETECTOR_RECALL {
            failures.push(format!("{detector} recall {:.3} under {MIN_DETECTOR_RECALL}", t.recall()));
        }
        if t.precision() < MIN_DETECTOR_PRECISION {
            failures.push(format!("{detector} precision {:.3} under {MIN_DETECTOR_PRECISION}", t.precision()));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\nmissed:\n{}\nfalse positives:\n{}",
        failures.join("\n"),
        score.missed.join("\n"),
        score.false_positives.join("\n")
    );
}

#[test]
fn the_corpus_is_large_and_plants_every_detector() {
    let cases = cases();
    assert!(cases.len() >= MIN_CORPUS_ITEMS, "{} items, under {MIN_CORPUS_ITEMS}", cases.len());
    let mut ids: Vec<&str> = cases.iter().map(|c| c.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), cases.len(), "case ids are unique");
    let score = score_free_text();
    for detector in Detector::ALL {
        let planted = score.detectors.get(&detector).map_or(0, |t| t.planted);
        let least =
            if WIDENED_CLASSES.contains(&detector) { MIN_PLANTED_PER_WIDENED_CLASS } else { MIN_PLANTED_PER_DETECTOR };
        assert!(planted >= least, "{detector} planted {planted} times, under {least}");
    }
    let negatives = cases.iter().filter(|c| c.planted.is_empty()).count();
    assert!(negatives >= MIN_NEGATIVES, "only {negatives} cases with nothing to find, under {MIN_NEGATIVES}");
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
