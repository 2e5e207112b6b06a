//! Publishing: a draft is completed (canonical value, defaults), scrubbed by
//! the policy, coarsened in time, encoded once, and only then signed. A dry
//! run stops before signing and returns the very bytes a publish would sign.

use super::{in_parallel, refuse_batch, Issuer, Node, NodeError, MAX_BATCH_RECORDS};
use crate::anonymize::Redaction;
use crate::cir::Tlp;
use crate::normalize::{self, ObservableType};
use crate::proto::{draft, record::Body, Draft, Indicator, Record};
use crate::record::{self, RecordError, RecordId};
use crate::store::Inserted;
use prost::Message;

/// A draft made ready to sign: the record bytes and what scrubbing changed.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The id the record will have: SHA-256 of `record`.
    pub id: RecordId,
    /// The record bytes that would be signed and shared, exactly.
    pub record: Vec<u8>,
    /// Every change the scrub policy made.
    pub redactions: Vec<Redaction>,
    /// The node already holds this record: publishing it would be a duplicate.
    pub stored: bool,
}

/// The outcome of publishing one draft, with what scrubbing changed.
#[derive(Debug)]
pub struct Published {
    pub outcome: Result<Inserted, NodeError>,
    pub redactions: Vec<Redaction>,
}

impl Node {
    /// Signs and stores drafts authored by this node; one outcome per draft.
    pub fn publish(&self, drafts: Vec<Draft>) -> Vec<Result<Inserted, NodeError>> {
        self.publish_reported(drafts).into_iter().map(|p| p.outcome).collect()
    }

    /// Like [`Node::publish`], also reporting each draft's redactions.
    pub fn publish_reported(&self, drafts: Vec<Draft>) -> Vec<Published> {
        if drafts.len() > MAX_BATCH_RECORDS {
            return refuse_batch(drafts.len())
                .into_iter()
                .map(|outcome| Published { outcome, redactions: vec![] })
                .collect();
        }
        let now = super::unix_now();
        let issuer = self.issuer();
        let sealed = in_parallel(drafts, |chunk| {
            chunk
                .into_iter()
                .map(|d| {
                    self.prepare_one(d, now, &issuer)
                        .map(|p| (issuer.identity.signer.sign_encoded(p.record), p.redactions))
                })
                .collect()
        });
        let mut envelopes = Vec::with_capacity(sealed.len());
        let mut reports = Vec::with_capacity(sealed.len());
        let mut refused = Vec::new();
        for (position, result) in sealed.into_iter().enumerate() {
            match result {
                Ok((envelope, redactions)) => {
                    envelopes.push(envelope);
                    reports.push(redactions);
                }
                Err(error) => refused.push((position, error)),
            }
        }
        let total = envelopes.len() + refused.len();
        let mut stored = self.ingest(envelopes, now).into_iter().zip(reports);
        let mut refused = refused.into_iter().peekable();
        (0..total)
            .map(|position| match refused.next_if(|(at, _)| *at == position) {
                Some((_, error)) => Published { outcome: Err(error), redactions: Vec::new() },
                None => {
                    let (outcome, redactions) = stored.next().expect("one outcome per sealed draft");
                    Published { outcome, redactions }
                }
            })
            .collect()
    }

    /// A dry run: what each draft would become, without signing or storing,
    /// and whether the node already holds it. Fails whole only when the
    /// store cannot say what it holds.
    pub fn prepare(&self, drafts: Vec<Draft>) -> Result<Vec<Result<Prepared, NodeError>>, NodeError> {
        if drafts.len() > MAX_BATCH_RECORDS {
            let error = || NodeError::BatchTooLarge { count: drafts.len(), max: MAX_BATCH_RECORDS };
            return Ok((0..drafts.len()).map(|_| Err(error())).collect());
        }
        let now = super::unix_now();
        let issuer = self.issuer();
        let mut prepared =
            in_parallel(drafts, |chunk| chunk.into_iter().map(|d| self.prepare_one(d, now, &issuer)).collect());
        let ids: Vec<RecordId> = prepared.iter().flatten().map(|p| p.id).collect();
        let stored = self.store.contains_many(&ids)?;
        for (prepared, stored) in prepared.iter_mut().flatten().zip(stored) {
            prepared.stored = stored;
        }
        Ok(prepared)
    }

    /// Turns a draft into the record bytes this node would sign.
    fn prepare_one(&self, draft: Draft, now: i64, issuer: &Issuer) -> Result<Prepared, NodeError> {
        let tlp = match draft.tlp {
            0 => self.default_tlp(draft.body.as_ref()),
            code => Tlp::from_code(code).ok_or(RecordError::UnknownEnum { field: "tlp", value: code })?,
        };
        let created_at = self.coarse(now);
        let mut redactions = Vec::new();
        let mut body = match draft.body.ok_or(NodeError::EmptyDraft)? {
            draft::Body::Indicator(indicator) => {
                Body::Indicator(self.complete_indicator(indicator, created_at, issuer, &mut redactions)?)
            }
            draft::Body::Lesson(lesson) => Body::Lesson(lesson),
            draft::Body::Sighting(sighting) => Body::Sighting(sighting),
            draft::Body::Retraction(retraction) => Body::Retraction(retraction),
        };
        issuer.scrubber.body_text(&mut body, &mut redactions)?;
        let record = Record {
            version: record::RECORD_VERSION,
            author: issuer.identity.signer.public_key().to_bytes().to_vec(),
            created_at,
            tlp: tlp.code(),
            body: Some(body),
        };
        let bytes = record.encode_to_vec();
        Ok(Prepared { id: RecordId::of(&bytes), record: bytes, redactions, stored: false })
    }

    /// The TLP of a draft that names none. A sighting or retraction travels
    /// as far as the record it is about: feedback on a GREEN indicator held
    /// to AMBER would never reach most of the nodes that hold the indicator.
    fn default_tlp(&self, body: Option<&draft::Body>) -> Tlp {
        let target = match body {
            Some(draft::Body::Sighting(sighting)) => &sighting.indicator_id,
            Some(draft::Body::Retraction(retraction)) => &retraction.target_id,
            _ => return self.publish.default_tlp,
        };
        RecordId::from_slice(target)
            .and_then(|id| self.store.get(&id).ok().flatten())
            .and_then(|stored| super::decode_record(&stored).ok())
            .and_then(|record| Tlp::from_code(record.tlp))
            .unwrap_or(self.publish.default_tlp)
    }

    /// A time rounded down to the policy's granularity: shared times say the
    /// hour (by default), not the minute a CSP noticed something.
    fn coarse(&self, time: i64) -> i64 {
        let granularity = i64::from(self.publish.time_granularity_secs);
        time - time.rem_euclid(granularity)
    }

    fn complete_indicator(
        &self,
        mut indicator: Indicator,
        created_at: i64,
        issuer: &Issuer,
        redactions: &mut Vec<Redaction>,
    ) -> Result<Indicator, NodeError> {
        let hint = match indicator.r#type {
            0 => None,
            code => Some(
                u8::try_from(code)
                    .ok()
                    .and_then(ObservableType::from_code)
                    .ok_or(RecordError::UnknownEnum { field: "type", value: code })?,
            ),
        };
        let observable = normalize::parse(hint, &indicator.value).map_err(RecordError::from)?;
        if let Some(list) = self.accept.warninglists().check(&observable) {
            return Err(NodeError::Warninglisted { list: list.to_string(), value: observable.value });
        }
        let shared = issuer.scrubber.value(observable, redactions)?;
        if shared.kind == ObservableType::KeyedHash {
            indicator.hash_epoch = issuer.identity.sharing.current().epoch;
        }
        indicator.r#type = i32::from(shared.kind.code());
        indicator.value = shared.value;
        if indicator.valid_until == 0 {
            indicator.valid_until = created_at + i64::from(self.publish.default_valid_days) * 86_400;
        }
        // Every shared time says the hour, not the second: an exact expiry of
        // `now + days` would give the publishing second away.
        for time in [&mut indicator.first_seen, &mut indicator.last_seen, &mut indicator.valid_until] {
            if *time != 0 {
                *time = self.coarse(*time);
            }
        }
        Ok(indicator)
    }
}
