//! Confidence with community feedback and time decay.
//!
//! The model follows the polynomial decay of MISP's decaying-of-indicators
//! framework, with OpenCTI's idea that an indicator's lifetime, not a global
//! clock, sets the pace:
//!
//! ```text
//! base  = confidence + SEEN_BOOST per "seen" sighting (at most MAX_SEEN_BOOST)
//!                    - FALSE_POSITIVE_PENALTY per "false positive" sighting
//! t     = now - (the later of: the record's creation, the last "seen" sighting)
//! tau   = the indicator's lifetime: valid_until - created_at
//! score = base * (1 - min(1, t / tau) ^ (1 / DECAY_SPEED)) * EXPIRED_FACTOR ^ ("expired" sightings)
//! ```
//!
//! A fresh indicator scores its confidence; a "seen" sighting restarts the
//! clock (someone observed it again) and adds a little weight; false positives
//! and "expired" votes pull it down; at the end of its lifetime it reaches 0.
//! With DECAY_SPEED above 1 the score falls fast at first and then levels
//! out, as MISP's default curve does; at 1 it is linear.

/// How fast the score decays (MISP's `decay_speed`).
pub const DECAY_SPEED: f64 = 2.0;
/// Confidence points each "seen" sighting adds.
pub const SEEN_BOOST: f64 = 5.0;
/// Most points "seen" sightings can add together.
pub const MAX_SEEN_BOOST: f64 = 25.0;
/// Confidence points each "false positive" sighting takes away.
pub const FALSE_POSITIVE_PENALTY: f64 = 25.0;
/// What each "expired" sighting multiplies the score by.
pub const EXPIRED_FACTOR: f64 = 0.5;

/// The sightings of one indicator: how many members reported each type.
/// A member counts once per type, however many sightings it sends, so that
/// one member can neither inflate an indicator nor vote it out alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sightings {
    pub seen: u32,
    pub false_positive: u32,
    pub expired: u32,
    /// Latest "seen" sighting (unix seconds, 0: none).
    pub last_seen: i64,
}

impl Sightings {
    /// Adds one sighting; `first` is false when its member already reported this type.
    pub fn add(&mut self, kind: crate::cir::SightingType, first: bool, at: i64) {
        use crate::cir::SightingType;
        let count = u32::from(first);
        match kind {
            SightingType::Seen => {
                self.seen = self.seen.saturating_add(count);
                self.last_seen = self.last_seen.max(at);
            }
            SightingType::FalsePositive => self.false_positive = self.false_positive.saturating_add(count),
            SightingType::Expired => self.expired = self.expired.saturating_add(count),
        }
    }
}

/// Every indicator's sightings, and who reported what.
#[derive(Debug, Default)]
pub struct SightingBook {
    tallies: std::collections::HashMap<crate::record::RecordId, Sightings>,
    reporters: std::collections::HashSet<(crate::record::RecordId, [u8; 32], i32)>,
}

impl SightingBook {
    /// Adds a sighting of `indicator` by `member`.
    pub fn add(
        &mut self,
        indicator: crate::record::RecordId,
        member: [u8; 32],
        kind: crate::cir::SightingType,
        at: i64,
    ) {
        let first = self.reporters.insert((indicator, member, kind.code()));
        self.tallies.entry(indicator).or_default().add(kind, first, at);
    }

    /// The sightings of one indicator.
    pub fn of(&self, indicator: &crate::record::RecordId) -> Sightings {
        self.tallies.get(indicator).copied().unwrap_or_default()
    }
}

/// What the score of one indicator depends on.
#[derive(Debug, Clone, Copy)]
pub struct Evidence {
    /// The author's confidence, 0-100.
    pub confidence: u8,
    pub created_at: i64,
    pub valid_until: i64,
}

/// The decayed score, 0-100, at `now`.
pub fn score(evidence: Evidence, sightings: &Sightings, now: i64) -> u8 {
    let boost = (f64::from(sightings.seen) * SEEN_BOOST).min(MAX_SEEN_BOOST);
    let penalty = f64::from(sightings.false_positive) * FALSE_POSITIVE_PENALTY;
    let base = (f64::from(evidence.confidence) + boost - penalty).clamp(0.0, 100.0);
    // The author's own `last_seen` is not trusted to extend the life: an honest
    // one is never after `created_at`, and a future one would stop the decay.
    let fresh = evidence.created_at.max(sightings.last_seen);
    let lifetime = (evidence.valid_until - evidence.created_at).max(1) as f64;
    let age = ((now - fresh).max(0) as f64 / lifetime).min(1.0);
    let decayed = base * (1.0 - age.powf(1.0 / DECAY_SPEED));
    let voted_out = EXPIRED_FACTOR.powi(sightings.expired.min(64) as i32);
    (decayed * voted_out).round().clamp(0.0, 100.0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cir::SightingType;
    use proptest::prelude::*;

    const DAY: i64 = 86_400;

    fn evidence(confidence: u8) -> Evidence {
        Evidence { confidence, created_at: 0, valid_until: 100 * DAY }
    }

    #[test]
    fn a_fresh_indicator_scores_its_confidence_and_an_old_one_zero() {
        let none = Sightings::default();
        assert_eq!(score(evidence(80), &none, 0), 80);
        assert_eq!(score(evidence(80), &none, 100 * DAY), 0);
        assert_eq!(score(evidence(80), &none, 500 * DAY), 0);
        // DECAY_SPEED 2: a quarter of the lifetime takes half the score.
        assert_eq!(score(evidence(80), &none, 25 * DAY), 40);
    }

    #[test]
    fn a_seen_sighting_restarts_the_clock_and_adds_weight() {
        let mut sightings = Sightings::default();
        sightings.add(SightingType::Seen, true, 60 * DAY);
        assert_eq!(score(evidence(50), &sightings, 60 * DAY), 55);
        assert!(score(evidence(50), &sightings, 61 * DAY) > score(evidence(50), &Sightings::default(), 61 * DAY));
    }

    #[test]
    fn false_positives_and_expired_votes_pull_the_score_down() {
        let mut sightings = Sightings::default();
        sightings.add(SightingType::FalsePositive, true, 0);
        assert_eq!(score(evidence(80), &sightings, 0), 55);
        sightings.add(SightingType::Expired, true, 0);
        assert_eq!(score(evidence(80), &sightings, 0), 28);
        for _ in 0..3 {
            sightings.add(SightingType::FalsePositive, true, 0);
        }
        assert_eq!(score(evidence(80), &sightings, 0), 0);
    }

    #[test]
    fn a_member_counts_once_per_type_however_often_it_reports() {
        let mut book = SightingBook::default();
        let indicator = crate::record::RecordId([1; 32]);
        for _ in 0..5 {
            book.add(indicator, [7; 32], SightingType::FalsePositive, 0);
        }
        book.add(indicator, [8; 32], SightingType::FalsePositive, 0);
        book.add(indicator, [7; 32], SightingType::Seen, 10);
        let s = book.of(&indicator);
        assert_eq!((s.seen, s.false_positive, s.last_seen), (1, 2, 10));
    }

    proptest! {
        #[test]
        fn the_score_stays_in_range_and_never_rises_with_age(
            confidence in 0u8..=100, seen in 0u32..20, fp in 0u32..5, expired in 0u32..5,
            lifetime in 1i64..(3650 * DAY), t1 in 0i64..(4000 * DAY), dt in 0i64..(400 * DAY),
        ) {
            let e = Evidence { confidence, created_at: 0, valid_until: lifetime };
            let s = Sightings { seen, false_positive: fp, expired, last_seen: 0 };
            let (a, b) = (score(e, &s, t1), score(e, &s, t1 + dt));
            prop_assert!(a <= 100 && b <= a);
        }
    }
}
