//! Misbehaviour scoring: every invalid record a peer sends counts against it;
//! past a threshold within a window the peer is cut off and refused for a
//! cool-down. Honest peers do send the odd record that fails here (one that
//! expired in transit, one whose author's card or revocation has not reached
//! them yet), so those do not count.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Invalid records within [`SCORE_WINDOW`] that get a peer cut off.
pub const MISBEHAVIOUR_THRESHOLD: u32 = 50;
/// How long invalid records count against a peer.
pub const SCORE_WINDOW: Duration = Duration::from_secs(600);
/// How long a cut-off peer is refused.
pub const COOL_DOWN: Duration = Duration::from_secs(900);

/// Refusal codes that honest peers produce too and that do not count.
const BENIGN: [&str; 5] = ["expired", "unknown_member", "member_not_valid", "member_revoked", "key_replaced"];

/// True when a refusal with this code counts against the peer that sent it.
pub fn is_misbehaviour(code: &str) -> bool {
    !BENIGN.contains(&code)
}

#[derive(Debug)]
struct Score {
    window_start: Instant,
    invalid: u32,
    banned_until: Option<Instant>,
}

/// Scores of every peer this node has dealt with, by member id.
#[derive(Debug, Default)]
pub struct PeerScores {
    scores: Mutex<HashMap<String, Score>>,
}

impl PeerScores {
    /// Counts `invalid` records from `peer`; returns true when this crossed
    /// the threshold and the peer is now cut off.
    pub fn record_invalid(&self, peer: &str, invalid: u32, reason: &str) -> bool {
        if invalid == 0 {
            return false;
        }
        let now = Instant::now();
        let mut scores = self.scores.lock().expect("scores lock");
        let score =
            scores.entry(peer.to_string()).or_insert(Score { window_start: now, invalid: 0, banned_until: None });
        if now.duration_since(score.window_start) > SCORE_WINDOW {
            score.window_start = now;
            score.invalid = 0;
        }
        score.invalid = score.invalid.saturating_add(invalid);
        if score.invalid < MISBEHAVIOUR_THRESHOLD || score.banned_until.is_some_and(|until| until > now) {
            return false;
        }
        score.banned_until = Some(now + COOL_DOWN);
        tracing::warn!(
            peer = %peer,
            invalid = score.invalid,
            cool_down = ?COOL_DOWN,
            last_reason = %reason,
            "peer cut off for misbehaviour"
        );
        true
    }

    /// When `peer` may be served again, if it is cooling down now.
    pub fn banned_until(&self, peer: &str) -> Option<Instant> {
        let now = Instant::now();
        let scores = self.scores.lock().expect("scores lock");
        scores.get(peer).and_then(|s| s.banned_until).filter(|until| *until > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_is_cut_off_once_it_crosses_the_threshold() {
        let scores = PeerScores::default();
        assert!(!scores.record_invalid("m-bad", MISBEHAVIOUR_THRESHOLD - 1, "bad_signature"));
        assert!(scores.banned_until("m-bad").is_none());
        assert!(scores.record_invalid("m-bad", 1, "bad_signature"));
        assert!(scores.banned_until("m-bad").is_some());
        assert!(!scores.record_invalid("m-bad", 10, "bad_signature"), "already cut off");
        assert!(scores.banned_until("m-good").is_none());
    }

    #[test]
    fn expiry_unknown_and_revoked_authors_do_not_count() {
        assert!(!is_misbehaviour("expired"));
        assert!(!is_misbehaviour("unknown_member"));
        assert!(!is_misbehaviour("member_revoked"), "the revocation may not have reached the sender yet");
        assert!(is_misbehaviour("bad_signature"));
        assert!(is_misbehaviour("tlp_violation"));
        assert!(is_misbehaviour("malformed"));
    }
}

/// Records per second a node accepts from one peer, by default.
pub const DEFAULT_PEER_RECORDS_PER_SECOND: u32 = 20_000;

/// A token bucket per peer: `rate` records per second, bursts up to one
/// second's worth.
#[derive(Debug)]
pub struct PeerRates {
    rate: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl PeerRates {
    /// Buckets refilling at `per_second`.
    pub fn new(per_second: u32) -> Self {
        PeerRates { rate: f64::from(per_second.max(1)), buckets: Mutex::new(HashMap::new()) }
    }

    /// Records per second each peer may send.
    pub fn per_second(&self) -> u32 {
        self.rate as u32
    }

    /// Takes `records` tokens for `peer`, or refuses the whole batch.
    pub fn admit(&self, peer: &str, records: usize) -> bool {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("rates lock");
        let (tokens, last) = buckets.entry(peer.to_string()).or_insert((self.rate, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(self.rate);
        *last = now;
        if records as f64 > *tokens {
            return false;
        }
        *tokens -= records as f64;
        true
    }
}

#[cfg(test)]
mod rate_tests {
    use super::*;

    #[test]
    fn a_batch_over_the_remaining_tokens_is_refused_whole() {
        let rates = PeerRates::new(100);
        assert!(rates.admit("m-a", 60));
        assert!(!rates.admit("m-a", 60), "only 40 tokens left");
        assert!(rates.admit("m-a", 40));
        assert!(rates.admit("m-b", 100), "each peer has its own bucket");
    }
}
