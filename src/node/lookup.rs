//! The lookup read path: values matched against the engine under its locks,
//! handed one finding at a time to the caller (which decides when its reply is
//! full), and descriptions read from the store afterwards, once per record.

use super::{decode_record, unix_now, Node, NodeError, Roster};
use crate::decay::{self, SightingBook, Sightings};
use crate::lookup::{Engine, Entry, Hit, MatchKind};
use crate::normalize::{self, NormalizeError, Observable, ObservableType};
use crate::proto::record::Body;
use crate::record::{RecordId, Trust};

/// Most values in one lookup request or stream batch.
pub const MAX_LOOKUP_BATCH: usize = 100_000;
/// Most matches reported for one value (and most held-back reasons): the
/// strongest are kept, the rest only counted. It keeps one value's answer,
/// with a description of the longest length per match, inside one reply.
pub const MAX_MATCHES_PER_VALUE: usize = 128;
/// Records read from the store per step when reading descriptions: a step
/// holds at most this many envelopes in memory.
const DESCRIPTION_CHUNK: usize = 64;

/// One published indicator matching one looked-up value.
#[derive(Debug, Clone)]
pub struct IndicatorMatch {
    /// How it matched.
    pub how: MatchKind,
    /// The published value that matched.
    pub matched: String,
    /// The engine's view of the indicator.
    pub entry: Entry,
    /// When the author's membership was revoked, if it was (after this record
    /// was made, or the record would not match): the record stands, flagged.
    pub author_revoked_at: Option<i64>,
    /// The community's sightings of this indicator.
    pub sightings: Sightings,
    /// Confidence after sightings and time decay, 0-100 (see `decay`).
    pub score: u8,
}

/// What all the matches of one value say together, counted before any were
/// left out, so a value past `MAX_MATCHES_PER_VALUE` still reports its worst.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Highest CIR level among the matches.
    pub max_level: u8,
    /// Highest confidence among the matches.
    pub confidence: u8,
    /// Highest decayed score among the matches.
    pub score: u8,
    /// Earliest first sighting reported by any match (0: unknown).
    pub first_seen: i64,
    /// Latest sighting reported by any match (0: unknown).
    pub last_seen: i64,
}

impl Summary {
    fn of(matches: &[IndicatorMatch]) -> Summary {
        let entries = || matches.iter().map(|m| &m.entry);
        Summary {
            max_level: entries().map(|e| e.level).max().unwrap_or(0),
            confidence: entries().map(|e| e.confidence).max().unwrap_or(0),
            score: matches.iter().map(|m| m.score).max().unwrap_or(0),
            first_seen: entries().map(|e| e.first_seen).filter(|t| *t > 0).min().unwrap_or(0),
            last_seen: entries().map(|e| e.last_seen).max().unwrap_or(0),
        }
    }
}

/// The answer for one looked-up value.
#[derive(Debug, Clone)]
pub struct Finding {
    /// Position of the value in the request.
    pub index: u32,
    /// The value's canonical form, or why it was refused.
    pub observable: Result<Observable, NormalizeError>,
    /// Live indicators that match it, as the accept policy lets through: at
    /// most `MAX_MATCHES_PER_VALUE`, the highest scores first when cut.
    pub matches: Vec<IndicatorMatch>,
    /// Over all the matches, those left out included.
    pub summary: Summary,
    /// Matches left out past `MAX_MATCHES_PER_VALUE`.
    pub omitted_matches: u32,
    /// The warninglist the value is on, when matches were held back for it.
    pub benign: Option<String>,
    /// Why each match the accept policy held back was held back (at most
    /// `MAX_MATCHES_PER_VALUE`).
    pub filtered: Vec<String>,
    /// Held-back reasons left out past `MAX_MATCHES_PER_VALUE`.
    pub omitted_filtered: u32,
}

impl Finding {
    fn refused(index: u32, error: NormalizeError) -> Finding {
        Finding {
            index,
            observable: Err(error),
            matches: Vec::new(),
            summary: Summary::default(),
            omitted_matches: 0,
            benign: None,
            filtered: Vec::new(),
            omitted_filtered: 0,
        }
    }
}

impl Node {
    /// Looks up `values[from..]` against every live indicator, without
    /// touching disk, and hands each value that matched or was invalid to
    /// `take` in order. `take` returns false when it cannot hold the finding
    /// (its reply is full): the lookup stops there, so the work and memory of
    /// one call are bounded by what the caller keeps.
    pub fn lookup(
        &self,
        values: &[String],
        from: usize,
        hint: Option<ObservableType>,
        mut take: impl FnMut(Finding) -> bool,
    ) -> Result<(), NodeError> {
        if values.len() > MAX_LOOKUP_BATCH {
            return Err(NodeError::BatchTooLarge { count: values.len(), max: MAX_LOOKUP_BATCH });
        }
        let now = unix_now();
        let engine = self.engine.read().expect("engine lock");
        let roster = self.roster.read().expect("roster lock");
        let sightings = self.sightings.read().expect("sightings lock");
        let mut hits = Vec::new();
        for (index, value) in values.iter().enumerate().skip(from) {
            let index = index as u32;
            let finding = match normalize::parse(hint, value) {
                Ok(observable) => {
                    engine.lookup_into(&observable, now, &mut hits);
                    if hits.is_empty() {
                        continue;
                    }
                    let matches = hits
                        .drain(..)
                        .map(|hit| self.indicator_match(hit, &engine, &roster, &sightings, now))
                        .collect();
                    self.accepted(index, observable, matches)
                }
                Err(e) => Finding::refused(index, e),
            };
            if !take(finding) {
                break;
            }
        }
        Ok(())
    }

    /// Reads the descriptions of indicators `ids` from the store, in order
    /// and a chunk at a time, handing each to `take` until it returns false.
    pub fn descriptions(
        &self,
        ids: &[RecordId],
        mut take: impl FnMut(RecordId, String) -> bool,
    ) -> Result<(), NodeError> {
        for chunk in ids.chunks(DESCRIPTION_CHUNK) {
            for stored in self.store.get_many(chunk)? {
                let Some(Body::Indicator(indicator)) = decode_record(&stored)?.body else { continue };
                if !take(stored.id, indicator.description) {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// A finding with the matches the accept policy lets through, cut to
    /// `MAX_MATCHES_PER_VALUE` after the summary is taken.
    fn accepted(&self, index: u32, observable: Observable, matches: Vec<IndicatorMatch>) -> Finding {
        let benign = self.accept.warninglists().check(&observable).map(String::from);
        let mut finding = Finding {
            index,
            observable: Ok(observable),
            matches: Vec::new(),
            summary: Summary::default(),
            omitted_matches: 0,
            benign,
            filtered: Vec::new(),
            omitted_filtered: 0,
        };
        if finding.benign.is_some() {
            return finding;
        }
        for m in matches {
            match self.accept.refusal(&m.entry, m.score) {
                Some(reason) => finding.filtered.push(reason),
                None => finding.matches.push(m),
            }
        }
        finding.summary = Summary::of(&finding.matches);
        if finding.matches.len() > MAX_MATCHES_PER_VALUE {
            finding.matches.sort_by(|a, b| b.score.cmp(&a.score).then(b.entry.level.cmp(&a.entry.level)));
            finding.omitted_matches = (finding.matches.len() - MAX_MATCHES_PER_VALUE) as u32;
            finding.matches.truncate(MAX_MATCHES_PER_VALUE);
        }
        if finding.filtered.len() > MAX_MATCHES_PER_VALUE {
            finding.omitted_filtered = (finding.filtered.len() - MAX_MATCHES_PER_VALUE) as u32;
            finding.filtered.truncate(MAX_MATCHES_PER_VALUE);
        }
        finding
    }

    /// A hit with its author's standing, its sightings and its decayed score.
    fn indicator_match(
        &self,
        hit: Hit,
        engine: &Engine,
        roster: &Roster,
        sightings: &SightingBook,
        now: i64,
    ) -> IndicatorMatch {
        let entry = engine.entry(hit.entry).clone();
        let author_revoked_at = roster.membership(engine.author_key(entry.author)).and_then(|m| m.revoked_at);
        let sightings = sightings.of(&entry.id);
        IndicatorMatch {
            how: hit.kind,
            score: decay::score(entry.evidence(), &sightings, now),
            entry,
            matched: hit.matched,
            author_revoked_at,
            sightings,
        }
    }
}
