//! Origin hiding in the manner of Dandelion++: a node's own CLEAR and GREEN
//! records do not flood from their author. They first walk a stem: each hop
//! passes the record to one random live peer after a random delay, and with
//! probability `fluff_probability` floods it instead (the fluff phase). A
//! direct neighbour that receives a record from its author cannot tell the
//! author from a relay, and the author's other neighbours first see it come
//! from wherever the fluff started.
//!
//! Fail-safe: every record in a stem has an embargo deadline. A node that has
//! not seen it flood by then floods it itself, so a stem that dies with a
//! dropped connection delays a record by the embargo, never loses it. The
//! author keeps its own record out of reconciliation until it floods.

use super::sharing::StemTarget;
use super::{NodeError, StoredEvent};
use crate::cir::Tlp;
use crate::proto::{Envelope, Record};
use crate::record::RecordId;
use prost::Message;
use rand::seq::IteratorRandom;
use rand::Rng;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Default chance that a stem hop floods the record instead of passing it on:
/// a stem is 1 / 0.3, about 3.3 hops long on average.
pub const DEFAULT_FLUFF_PROBABILITY: f64 = 0.3;
/// Default largest random delay before each stem hop (milliseconds).
pub const DEFAULT_STEM_JITTER_MS: u32 = 10;
/// Default time a record may stay in a stem before its holder floods it (seconds).
pub const DEFAULT_EMBARGO_SECS: u32 = 5;
/// When a record this node held in a stem floods back to it, it passes the
/// record on after a random delay in this range: its own, or its other
/// neighbours would first see the flood come from its author; and relayed
/// ones alike, so that the delay does not tell the author from a relay.
pub const OWN_REFLOOD_DELAY: std::ops::RangeInclusive<Duration> = Duration::from_millis(10)..=Duration::from_millis(50);
/// How often the node sends due stem hops and expires embargoes.
pub const STEM_TICK: Duration = Duration::from_millis(5);

/// Stem settings (`[federation]` in node.toml).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StemSettings {
    /// Off: own records flood from their author at once.
    pub enabled: bool,
    pub fluff_probability: f64,
    pub max_jitter: Duration,
    pub embargo: Duration,
}

impl Default for StemSettings {
    fn default() -> Self {
        StemSettings {
            enabled: true,
            fluff_probability: DEFAULT_FLUFF_PROBABILITY,
            max_jitter: Duration::from_millis(u64::from(DEFAULT_STEM_JITTER_MS)),
            embargo: Duration::from_secs(u64::from(DEFAULT_EMBARGO_SECS)),
        }
    }
}

impl StemSettings {
    /// No stem: what nodes do when origin hiding is switched off.
    pub fn disabled() -> Self {
        StemSettings { enabled: false, ..StemSettings::default() }
    }
}

/// What a stem hop decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hop {
    /// Pass the record on to this peer after the delay.
    Forward { to: String, after: Duration },
    /// Flood it now.
    Fluff,
}

/// A record held in a stem, with what to do at its deadline.
#[derive(Debug, Clone)]
struct Held {
    envelope: Envelope,
    deadline: Instant,
    /// This node's own record, stored but kept from peers until it floods.
    own: bool,
}

/// A stem hop, or a delayed flood, waiting for its time.
#[derive(Debug, Clone)]
pub struct DueHop {
    pub id: RecordId,
    pub envelope: Envelope,
    /// The one peer of a stem hop; None: flood to every peer but `source`.
    pub to: Option<String>,
    pub source: Option<String>,
    at: Instant,
}

/// The stem state of one node.
#[derive(Debug)]
pub struct Stem {
    settings: StemSettings,
    /// Live sessions per peer member id (a pair of nodes may hold two).
    live: HashMap<String, usize>,
    held: HashMap<RecordId, Held>,
    due: Vec<DueHop>,
}

impl Stem {
    pub fn new(settings: StemSettings) -> Stem {
        Stem { settings, live: HashMap::new(), held: HashMap::new(), due: Vec::new() }
    }

    pub fn settings(&self) -> StemSettings {
        self.settings
    }

    pub fn configure(&mut self, settings: StemSettings) {
        self.settings = settings;
    }

    pub fn peer_up(&mut self, member_id: &str) {
        *self.live.entry(member_id.to_string()).or_default() += 1;
    }

    pub fn peer_down(&mut self, member_id: &str) {
        if let Some(count) = self.live.get_mut(member_id) {
            *count -= 1;
            if *count == 0 {
                self.live.remove(member_id);
            }
        }
    }

    /// Decides one hop: flood with the fluff probability (or when there is no
    /// peer to pass to), else pass to a random live peer, preferring one other
    /// than the peer it came from. A node never floods its `own` record when
    /// the stem brings it back: its neighbours would see it flood from its author.
    pub fn decide(&self, from: Option<&str>, own: bool, rng: &mut impl Rng) -> Hop {
        if !own && rng.gen_bool(self.settings.fluff_probability.clamp(0.0, 1.0)) {
            return Hop::Fluff;
        }
        let others = self.live.keys().filter(|p| Some(p.as_str()) != from);
        let to = others.choose(rng).or_else(|| self.live.keys().choose(rng));
        match to {
            Some(to) => Hop::Forward { to: to.clone(), after: self.jitter(rng) },
            None => Hop::Fluff,
        }
    }

    fn jitter(&self, rng: &mut impl Rng) -> Duration {
        let max = self.settings.max_jitter.as_micros() as u64;
        Duration::from_micros(if max == 0 { 0 } else { rng.gen_range(0..=max) })
    }

    /// Starts this node's own record on a stem: it stays out of reconciliation
    /// until it floods. The first hop never fluffs at the author, or the
    /// author's neighbours would see it flood from its source. Returns false,
    /// holding nothing, when no peer is live: no neighbour watches the record
    /// leave, and the next reconciliation cannot tell author from relay.
    pub fn start(&mut self, id: RecordId, envelope: Envelope, now: Instant, rng: &mut impl Rng) -> bool {
        let Some(to) = self.live.keys().choose(rng).cloned() else { return false };
        self.hold(id, envelope.clone(), now, true);
        let at = now + self.jitter(rng);
        self.due.push(DueHop { id, envelope, to: Some(to), source: None, at });
        true
    }

    /// A record this node held in a stem (its own or a relayed one) came back
    /// flooded from `source`: schedules its flood to the other peers after a
    /// random delay (see [`OWN_REFLOOD_DELAY`]), the same for both, so that a
    /// neighbour cannot tell the author by how fast it passes the flood on.
    pub fn flooded_back(&mut self, id: RecordId, envelope: Envelope, source: &str, now: Instant, rng: &mut impl Rng) {
        let delay = rng.gen_range(OWN_REFLOOD_DELAY);
        self.due.push(DueHop { id, envelope, to: None, source: Some(source.to_string()), at: now + delay });
    }

    /// Schedules a relayed hop and holds the record until its deadline.
    pub fn forward(&mut self, id: RecordId, envelope: Envelope, to: String, after: Duration, now: Instant) {
        self.hold(id, envelope.clone(), now, false);
        self.due.push(DueHop { id, envelope, to: Some(to), source: None, at: now + after });
    }

    fn hold(&mut self, id: RecordId, envelope: Envelope, now: Instant, own: bool) {
        let deadline = now + self.settings.embargo;
        let held = self.held.entry(id).or_insert(Held { envelope, deadline, own });
        held.own |= own;
    }

    /// True when `id` is this node's own record still in its stem.
    pub fn embargoed(&self, id: &RecordId) -> bool {
        self.held.get(id).is_some_and(|h| h.own)
    }

    /// The record flooded (it came back, or this node flooded it): stop holding
    /// it and drop its pending stem hops. Returns whether it was held, and if
    /// so whether it was this node's own record.
    pub fn flooded(&mut self, id: &RecordId) -> Option<bool> {
        let held = self.held.remove(id)?;
        self.due.retain(|d| d.id != *id || d.to.is_none());
        Some(held.own)
    }

    /// Hops whose delay is over.
    pub fn take_due(&mut self, now: Instant) -> Vec<DueHop> {
        let (due, waiting) = std::mem::take(&mut self.due).into_iter().partition(|d| d.at <= now);
        self.due = waiting;
        due
    }

    /// Records past their embargo, to flood: (id, envelope, own).
    pub fn take_expired(&mut self, now: Instant) -> Vec<(RecordId, Envelope, bool)> {
        let expired: Vec<RecordId> = self.held.iter().filter(|(_, h)| h.deadline <= now).map(|(id, _)| *id).collect();
        expired
            .into_iter()
            .filter_map(|id| {
                self.due.retain(|d| d.id != id);
                self.held.remove(&id).map(|h| (id, h.envelope, h.own))
            })
            .collect()
    }
}

/// The node's side of the stem: relaying, flooding and the clock.
impl super::Node {
    /// Applies the stem settings (the server calls this from the config).
    pub fn configure_stem(&self, settings: StemSettings) {
        self.stem.lock().expect("stem lock").configure(settings);
    }

    /// A session with `member_id` opened: it may take stem hops.
    pub fn peer_up(&self, member_id: &str) {
        self.stem.lock().expect("stem lock").peer_up(member_id);
    }

    /// A session with `member_id` closed.
    pub fn peer_down(&self, member_id: &str) {
        self.stem.lock().expect("stem lock").peer_down(member_id);
    }

    /// Stem hops received from `source`: each is validated in full, then passed
    /// on or flooded. Nothing here tells whether this node is the author.
    pub fn relay_stem(&self, envelopes: Vec<Envelope>, source: &str) -> Vec<Result<(), NodeError>> {
        let now = super::unix_now();
        let validated = self.validate(envelopes.clone(), now);
        let mut rng = rand::thread_rng();
        validated
            .into_iter()
            .zip(envelopes)
            .map(|(verified, envelope)| {
                let verified = verified?;
                if !matches!(verified.tlp, Tlp::Clear | Tlp::Green) {
                    let reason = "only CLEAR and GREEN records travel in a stem".to_string();
                    return Err(NodeError::TlpViolation { tlp: verified.tlp, reason });
                }
                let mut stem = self.stem.lock().expect("stem lock");
                if !stem.embargoed(&verified.id) && self.store.get(&verified.id)?.is_some() {
                    return Ok(()); // it already flooded here
                }
                let own = stem.embargoed(&verified.id);
                match stem.decide(Some(source), own, &mut rng) {
                    Hop::Forward { to, after } => {
                        stem.forward(verified.id, envelope, to, after, Instant::now());
                        Ok(())
                    }
                    Hop::Fluff => {
                        drop(stem);
                        self.fluff(verified.id, envelope, now)
                    }
                }
            })
            .collect()
    }

    /// Sends the stem hops that are due and floods what outlived its embargo.
    pub fn stem_tick(&self) {
        let now = Instant::now();
        let (due, expired) = {
            let mut stem = self.stem.lock().expect("stem lock");
            (stem.take_due(now), stem.take_expired(now))
        };
        for hop in due {
            if let Some((tlp, author, _)) = routing(&hop.envelope) {
                let event = StoredEvent {
                    id: hop.id,
                    envelope: hop.envelope,
                    tlp,
                    author,
                    source: hop.source,
                    stem_to: hop.to.map(StemTarget::new),
                };
                let _ = self.events.send(Arc::new(event));
            }
        }
        for (id, envelope, own) in expired {
            tracing::debug!(record = %id, own, "stem embargo over: flooding");
            let flooded = match own {
                true => self.release(id, envelope),
                false => self.ingest_from(vec![envelope], super::unix_now(), None).remove(0).map(|_| ()),
            };
            if let Err(error) = flooded {
                tracing::warn!(record = %id, reason = %error, "cannot flood a record after its stem");
            }
        }
    }

    /// Ends a stem here: the record floods from this node.
    fn fluff(&self, id: RecordId, envelope: Envelope, now: i64) -> Result<(), NodeError> {
        let own = self.stem.lock().expect("stem lock").flooded(&id) == Some(true);
        if own && self.store.get(&id)?.is_some() {
            return self.release(id, envelope);
        }
        self.ingest_from(vec![envelope], now, None).remove(0).map(|_| ())
    }

    /// This node's own record leaves its embargo: into the shared set, and to every live peer.
    fn release(&self, id: RecordId, envelope: Envelope) -> Result<(), NodeError> {
        let (tlp, author, record) = routing(&envelope).ok_or(NodeError::NotFound(id))?;
        self.stem.lock().expect("stem lock").flooded(&id);
        self.shared.write().expect("shared lock").add(&id, &record);
        let event = StoredEvent { id, envelope, tlp, author, source: None, stem_to: None };
        let _ = self.events.send(Arc::new(event));
        Ok(())
    }
}

/// TLP, author and record of an envelope this node has validated.
fn routing(envelope: &Envelope) -> Option<(Tlp, [u8; 32], Record)> {
    let record = Record::decode(envelope.record.as_slice()).ok()?;
    Some((Tlp::from_code(record.tlp)?, record.author.as_slice().try_into().ok()?, record))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn stem(fluff: f64, peers: &[&str]) -> Stem {
        let mut stem = Stem::new(StemSettings { fluff_probability: fluff, ..StemSettings::default() });
        for peer in peers {
            stem.peer_up(peer);
        }
        stem
    }

    #[test]
    fn a_hop_passes_to_a_peer_other_than_its_source_when_it_can() {
        let mut rng = StdRng::seed_from_u64(1);
        let s = stem(0.0, &["b", "c"]);
        for _ in 0..50 {
            match s.decide(Some("b"), false, &mut rng) {
                Hop::Forward { to, after } => {
                    assert_eq!(to, "c");
                    assert!(after <= s.settings().max_jitter);
                }
                Hop::Fluff => panic!("fluff probability is 0"),
            }
        }
        assert!(matches!(stem(0.0, &["b"]).decide(Some("b"), false, &mut rng), Hop::Forward { to, .. } if to == "b"));
        assert_eq!(stem(0.0, &[]).decide(None, false, &mut rng), Hop::Fluff, "no peer: flood");
        assert_eq!(stem(1.0, &["b"]).decide(None, false, &mut rng), Hop::Fluff);
        assert!(matches!(stem(1.0, &["b"]).decide(None, true, &mut rng), Hop::Forward { .. }), "own: never fluffed");
    }

    #[test]
    fn the_fluff_probability_sets_the_stem_length() {
        let mut rng = StdRng::seed_from_u64(2);
        let s = stem(0.25, &["b", "c", "d"]);
        let fluffs = (0..10_000).filter(|_| s.decide(None, false, &mut rng) == Hop::Fluff).count();
        assert!((2_200..2_800).contains(&fluffs), "{fluffs}");
    }

    #[test]
    fn an_own_record_is_embargoed_until_it_floods_or_its_deadline_passes() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut s = stem(0.25, &["b"]);
        let now = Instant::now();
        let (a, b) = (RecordId([1; 32]), RecordId([2; 32]));
        assert!(s.start(a, Envelope::default(), now, &mut rng));
        assert!(s.start(b, Envelope::default(), now, &mut rng));
        assert!(!stem(0.25, &[]).start(a, Envelope::default(), now, &mut rng), "no peer: flood at once");
        assert!(s.embargoed(&a));
        let due = s.take_due(now + s.settings().max_jitter);
        assert_eq!(due.len(), 2);
        assert!(due.iter().all(|d| d.to.as_deref() == Some("b")));
        assert_eq!(s.flooded(&a), Some(true), "it came back flooded");
        assert_eq!(s.flooded(&a), None, "a second copy finds nothing held");
        assert!(!s.embargoed(&a));
        let expired = s.take_expired(now + s.settings().embargo);
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].0, b);
        assert!(expired[0].2, "own record");
        assert!(s.take_expired(now + 2 * s.settings().embargo).is_empty());
    }
}
