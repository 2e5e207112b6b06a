//! Lookup replies stay under a stock gRPC client's 4 MiB message limit: cut
//! after a whole value and resumed from `next_index`, descriptions once per
//! record, and at most MAX_MATCHES_PER_VALUE matches per value.

mod common;

use cirfed::api::MAX_REPLY_BYTES;
use cirfed::node::{MAX_LOOKUP_BATCH, MAX_MATCHES_PER_VALUE};
use cirfed::proto::{self, draft};
use cirfed::record::MAX_TEXT_BYTES;
use common::{indicator, TestFederation, TestNode};
use prost::Message;
use std::collections::BTreeSet;

/// What a stock gRPC client accepts.
const STOCK_CLIENT_LIMIT: usize = 4 << 20;

/// An indicator draft with a description of `len` bytes, distinct per `n`.
fn described(value: &str, level: u32, n: usize, len: usize) -> proto::Draft {
    let mut draft = indicator(value, level);
    if let Some(draft::Body::Indicator(i)) = &mut draft.body {
        let mut text = format!("variant {n} of the phishing kit seen in the campaign. ");
        while text.len() < len {
            text.push_str("the kit harvests console sign-ins and relays them at once. ");
        }
        text.truncate(len);
        i.description = text;
    }
    draft
}

fn request(values: Vec<String>, details: bool) -> proto::LookupRequest {
    proto::LookupRequest { values, r#type: 0, details, start: 0 }
}

/// Asks until the answer is complete, checking every reply against the limits;
/// returns the replies.
async fn lookup_all(node: &TestNode, mut request: proto::LookupRequest) -> Vec<proto::LookupReply> {
    // A stock client: tonic's default 4 MiB decoding limit.
    let mut client =
        proto::node_client::NodeClient::connect(format!("http://{}", node.running.api_addr)).await.unwrap();
    let mut replies = Vec::new();
    loop {
        let reply = client.lookup(request.clone()).await.expect("lookup fits a stock client").into_inner();
        assert!(reply.encoded_len() <= MAX_REPLY_BYTES, "reply of {} bytes", reply.encoded_len());
        let next = reply.next_index;
        replies.push(reply);
        if next == 0 {
            return replies;
        }
        assert!(next > request.start, "every reply makes progress");
        request.start = next;
    }
}

fn indexes(replies: &[proto::LookupReply]) -> Vec<u32> {
    replies.iter().flat_map(|r| &r.results).map(|r| r.index).collect()
}

#[test]
fn the_reply_limit_leaves_a_margin_under_a_stock_client() {
    const { assert!(MAX_REPLY_BYTES + (512 << 10) <= STOCK_CLIENT_LIMIT) };
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lookup_with_the_most_hits_is_cut_under_the_limit_and_resumes_from_next_index() {
    let fed = TestFederation::new();
    let mut node = TestNode::start(&fed.admit_node("a")).await;
    node.publish_ok(indicator("evil.example", 3)).await;
    let values: Vec<String> = (0..MAX_LOOKUP_BATCH).map(|n| format!("host-{n}.evil.example")).collect();
    let replies = lookup_all(&node, request(values, false)).await;
    assert!(replies.len() >= 3, "{} bytes of hits come in several replies", 100 * MAX_LOOKUP_BATCH);
    assert_eq!(indexes(&replies), (0..MAX_LOOKUP_BATCH as u32).collect::<Vec<_>>(), "each value once, in order");
    assert_eq!(replies.iter().map(|r| r.looked_up as usize).sum::<usize>(), MAX_LOOKUP_BATCH);
    assert!(replies.iter().all(|r| r.results.iter().all(|r| r.matches.len() == 1)));
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_description_comes_once_per_record_however_many_values_match_it() {
    let fed = TestFederation::new();
    let mut node = TestNode::start(&fed.admit_node("a")).await;
    let id = node.publish_ok(described("evil.example", 3, 0, MAX_TEXT_BYTES)).await;
    node.publish_ok(indicator("plain.example", 2)).await;
    let mut values: Vec<String> = (0..10_000).map(|n| format!("s{n}.evil.example")).collect();
    values.push("plain.example".into());
    let replies = lookup_all(&node, request(values, true)).await;
    assert_eq!(replies.len(), 1, "10,000 matches of one record fit one reply");
    let reply = &replies[0];
    assert_eq!(reply.results.len(), 10_001);
    assert_eq!(reply.descriptions.len(), 1, "one copy; the record without a description has no entry");
    assert_eq!(reply.descriptions[&hex::encode(&id)].len(), MAX_TEXT_BYTES);
    assert!(reply.encoded_len() < 2 << 20, "{} bytes", reply.encoded_len());
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn descriptions_past_the_limit_cut_the_reply_before_the_value_that_needs_them() {
    let fed = TestFederation::new();
    let mut node = TestNode::start(&fed.admit_node("a")).await;
    // More distinct records of the longest description than one reply holds.
    let records = MAX_REPLY_BYTES / MAX_TEXT_BYTES + 20;
    let drafts = (0..records).map(|n| described(&format!("d{n}.example"), 3, n, MAX_TEXT_BYTES)).collect();
    assert!(node.publish(drafts).await.iter().all(|o| o.error.is_empty()));
    let values = (0..records).map(|n| format!("d{n}.example")).collect();
    let replies = lookup_all(&node, request(values, true)).await;
    assert_eq!(replies.len(), 2);
    assert_eq!(indexes(&replies), (0..records as u32).collect::<Vec<_>>());
    for reply in &replies {
        let needed: BTreeSet<String> =
            reply.results.iter().flat_map(|r| &r.matches).map(|m| hex::encode(&m.record_id)).collect();
        let given: BTreeSet<String> = reply.descriptions.keys().cloned().collect();
        assert_eq!(needed, given, "every match of a reply has its description in that reply, and only those");
    }
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_value_past_the_match_cap_keeps_the_strongest_and_counts_the_rest() {
    let fed = TestFederation::new();
    let mut node = TestNode::start(&fed.admit_node("a")).await;
    let extra = 5;
    let mut drafts: Vec<proto::Draft> =
        (0..MAX_MATCHES_PER_VALUE + extra).map(|n| described("crowded.example", 2, n, 64)).collect();
    // The one level-5 report has the lowest confidence: cut, yet the summary still counts it.
    if let Some(draft::Body::Indicator(i)) = &mut drafts[0].body {
        i.cir_level = 5;
        i.confidence = 10;
    }
    assert!(node.publish(drafts).await.iter().all(|o| o.error.is_empty()));
    let reply = lookup_all(&node, request(vec!["crowded.example".into()], true)).await.remove(0);
    let result = &reply.results[0];
    assert_eq!(result.matches.len(), MAX_MATCHES_PER_VALUE);
    assert_eq!(result.omitted_matches as usize, extra);
    assert_eq!(result.max_cir_level, 5, "the summary counts the left-out matches");
    assert!(result.matches.iter().all(|m| m.confidence > 10), "the weakest match is the one left out");
    assert_eq!(reply.descriptions.len(), MAX_MATCHES_PER_VALUE);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_value_with_the_most_matches_and_longest_descriptions_fits_one_reply() {
    let fed = TestFederation::new();
    let mut node = TestNode::start(&fed.admit_node("a")).await;
    let label = "x".repeat(60);
    let longest = format!("{label}.{label}.{label}.example");
    let drafts = (0..MAX_MATCHES_PER_VALUE).map(|n| described(&longest, 3, n, MAX_TEXT_BYTES)).collect::<Vec<_>>();
    assert!(node.publish(drafts).await.iter().all(|o| o.error.is_empty()));
    let values = vec![format!("a.{longest}"), format!("b.{longest}")];
    let replies = lookup_all(&node, request(values, true)).await;
    assert_eq!(replies.len(), 1, "the second value needs no new description");
    assert_eq!(replies[0].descriptions.len(), MAX_MATCHES_PER_VALUE);
    assert_eq!(replies[0].results.iter().map(|r| r.matches.len()).sum::<usize>(), 2 * MAX_MATCHES_PER_VALUE);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lookup_stream_splits_a_batch_into_replies_under_the_limit() {
    let fed = TestFederation::new();
    let mut node = TestNode::start(&fed.admit_node("a")).await;
    node.publish_ok(indicator("evil.example", 3)).await;
    let big: Vec<String> = (0..MAX_LOOKUP_BATCH).map(|n| format!("host-{n}.evil.example")).collect();
    let batches = vec![request(big, false), request(vec!["x.evil.example".into(), "nothing.example".into()], false)];
    let mut client =
        proto::node_client::NodeClient::connect(format!("http://{}", node.running.api_addr)).await.unwrap();
    let mut replies = client.lookup_stream(tokio_stream::iter(batches)).await.unwrap().into_inner();
    let mut first = Vec::new();
    loop {
        let reply = replies.message().await.expect("fits a stock client").expect("the batch's replies");
        assert!(reply.encoded_len() <= MAX_REPLY_BYTES);
        let last = reply.next_index == 0;
        first.push(reply);
        if last {
            break;
        }
    }
    assert!(first.len() >= 3);
    assert_eq!(indexes(&first), (0..MAX_LOOKUP_BATCH as u32).collect::<Vec<_>>());
    let second = replies.message().await.unwrap().expect("the second batch's reply");
    assert_eq!((second.looked_up, second.next_index, indexes(std::slice::from_ref(&second))), (2, 0, vec![0]));
    assert!(replies.message().await.unwrap().is_none());
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_start_past_the_values_is_refused() {
    let fed = TestFederation::new();
    let mut node = TestNode::start(&fed.admit_node("a")).await;
    let request = proto::LookupRequest { values: vec!["a.example".into()], r#type: 0, details: false, start: 2 };
    let status = node.client.lookup(request).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("start 2"), "{}", status.message());
    node.stop().await;
}
