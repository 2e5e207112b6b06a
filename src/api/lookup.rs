//! Lookup replies under a stock gRPC client's 4 MiB message limit. Findings
//! are converted as the node hands them over and counted in encoded bytes;
//! the reply is cut after the last whole value that fits, and descriptions go
//! in once per record (never once per match), cut the same way.

use super::convert;
use crate::node::Node;
use crate::normalize::ObservableType;
use crate::proto;
use crate::record::{RecordError, RecordId};
use crate::status;
use prost::encoding::{encoded_len_varint, key_len};
use prost::Message;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use tonic::Status;

/// Largest encoded Lookup or LookupStream reply. Under the 4 MiB that stock
/// gRPC clients accept, with a margin for framing and the estimate of each
/// description entry (an upper bound).
pub const MAX_REPLY_BYTES: usize = 3 << 20;

/// Field number of `LookupReply.results` and `LookupReply.descriptions`.
const RESULTS_FIELD: u32 = 1;
const DESCRIPTIONS_FIELD: u32 = 3;

/// One reply being filled.
struct Page {
    reply: proto::LookupReply,
    /// Encoded bytes of the reply so far.
    bytes: usize,
    /// Matched record ids in the order they first appear, to describe them.
    described: Vec<RecordId>,
    /// The position of the result each id first appears in.
    first_needed: HashMap<RecordId, usize>,
    details: bool,
}

impl Page {
    fn new(details: bool) -> Page {
        let reply = proto::LookupReply::default();
        Page { reply, bytes: 0, described: Vec::new(), first_needed: HashMap::new(), details }
    }

    /// Adds a result unless it would take the reply past the limit. The first
    /// result always goes (one value's answer is capped to fit), so every
    /// reply makes progress.
    fn take(&mut self, result: proto::LookupResult) -> bool {
        let size = field_len(RESULTS_FIELD, result.encoded_len());
        if !self.reply.results.is_empty() && self.bytes + size > MAX_REPLY_BYTES {
            self.reply.next_index = result.index;
            return false;
        }
        if self.details {
            let position = self.reply.results.len();
            for id in result.matches.iter().filter_map(|m| RecordId::from_slice(&m.record_id)) {
                if let Entry::Vacant(vacant) = self.first_needed.entry(id) {
                    vacant.insert(position);
                    self.described.push(id);
                }
            }
        }
        self.bytes += size;
        self.reply.results.push(result);
        true
    }

    /// Adds a description, cutting results to make room when it does not
    /// fit. Returns whether describing goes on.
    fn describe(&mut self, id: RecordId, description: String) -> bool {
        let first = self.first_needed.get(&id).copied().unwrap_or(usize::MAX);
        if first >= self.reply.results.len() {
            // Ids come in order of first appearance: once one is no longer
            // needed (its results were cut), none after it is.
            return false;
        }
        if description.is_empty() {
            return true;
        }
        let key = id.to_string();
        let entry = key_len(1) + encoded_len_varint(key.len() as u64) + key.len();
        let entry = entry + key_len(2) + encoded_len_varint(description.len() as u64) + description.len();
        let size = field_len(DESCRIPTIONS_FIELD, entry);
        if self.bytes + size > MAX_REPLY_BYTES {
            // Cut before the first result that needs it, keeping at least one
            // result: one value's answer with all its descriptions fits (the
            // per-value cap sees to it).
            self.cut_to(first.max(1));
            if first > 0 || self.bytes + size > MAX_REPLY_BYTES {
                return false;
            }
        }
        self.bytes += size;
        self.reply.descriptions.insert(key, description);
        true
    }

    /// Keeps the first `keep` results and the descriptions they need.
    fn cut_to(&mut self, keep: usize) {
        let Some(next) = self.reply.results.get(keep) else { return };
        self.reply.next_index = next.index;
        self.reply.results.truncate(keep);
        let kept: HashSet<String> =
            self.reply.results.iter().flat_map(|r| &r.matches).map(|m| hex::encode(&m.record_id)).collect();
        self.reply.descriptions.retain(|key, _| kept.contains(key));
        self.bytes = self.reply.encoded_len();
    }
}

/// Encoded length of a length-delimited field holding `len` bytes.
fn field_len(field: u32, len: usize) -> usize {
    key_len(field) + encoded_len_varint(len as u64) + len
}

/// The observable type a request hints at, if any.
fn hint(request: &proto::LookupRequest) -> Result<Option<ObservableType>, Status> {
    match request.r#type {
        0 => Ok(None),
        code => u8::try_from(code)
            .ok()
            .and_then(ObservableType::from_code)
            .map(Some)
            .ok_or_else(|| status::invalid(RecordError::UnknownEnum { field: "type", value: code })),
    }
}

/// Answers `request.values[start..]` in one reply of at most
/// `MAX_REPLY_BYTES`; `next_index` is set when it was cut.
pub fn lookup_page(node: &Node, request: &proto::LookupRequest, start: usize) -> Result<proto::LookupReply, Status> {
    let values = &request.values;
    if start > values.len() {
        return Err(Status::invalid_argument(format!("start {start} is past the {} values", values.len())));
    }
    let hint = hint(request)?;
    let mut page = Page::new(request.details);
    node.lookup(values, start, hint, |finding| page.take(convert::lookup_result(finding)))
        .map_err(status::to_status)?;
    if request.details {
        let ids = std::mem::take(&mut page.described);
        node.descriptions(&ids, |id, description| page.describe(id, description)).map_err(status::to_status)?;
    }
    let mut reply = page.reply;
    let end = if reply.next_index == 0 { values.len() } else { reply.next_index as usize };
    reply.looked_up = (end - start) as u32;
    debug_assert!(reply.encoded_len() <= MAX_REPLY_BYTES, "reply of {} bytes", reply.encoded_len());
    Ok(reply)
}
