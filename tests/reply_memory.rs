//! A node's memory stays bounded under the largest lookup the limits allow.
//! The node runs as a child process (`cirfed serve`) so its peak resident set
//! (VmHWM) is its own, not the test harness's.

mod common;

use cirfed::api::{MAX_API_MESSAGE_BYTES, MAX_REPLY_BYTES};
use cirfed::node::{MAX_LOOKUP_BATCH, MAX_MATCHES_PER_VALUE};
use cirfed::normalize::MAX_DOMAIN_LEN;
use cirfed::proto::{self, draft, node_client::NodeClient};
use cirfed::record::MAX_TEXT_BYTES;
use common::{indicator, serve, TestFederation};
use prost::Message;

/// Most a node may hold resident at its peak while answering the worst-case
/// lookup: its store, engine and runtime, the decoded request (up to
/// MAX_API_MESSAGE_BYTES, held twice while it is decoded) and a few replies.
/// Before replies were bounded the same request needed tens of GiB.
const MAX_LOOKUP_PEAK_RSS_BYTES: u64 = 256 << 20;

/// The published domain every looked-up value is a subdomain of.
const PARENT: &str = "evil.example";

/// Peak resident set of a process, from /proc/PID/status.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM line");
    let kib: u64 = line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("VmHWM in kB");
    kib << 10
}

/// More indicators on the parent than a value may report, each with the
/// longest description.
fn crowded_parent() -> Vec<proto::Draft> {
    (0..=MAX_MATCHES_PER_VALUE)
        .map(|n| {
            let mut draft = indicator(PARENT, 3);
            if let Some(draft::Body::Indicator(i)) = &mut draft.body {
                let mut text = format!("variant {n}: ");
                while text.len() < MAX_TEXT_BYTES {
                    text.push_str("relays console sign-ins to the operator. ");
                }
                text.truncate(MAX_TEXT_BYTES);
                i.description = text;
            }
            draft
        })
        .collect()
}

/// MAX_LOOKUP_BATCH subdomains of the parent, each as long as a domain may be.
fn largest_request() -> proto::LookupRequest {
    let label = "y".repeat(60);
    let tail = format!("{label}.{label}.{label}.{PARENT}");
    let values: Vec<String> = (0..MAX_LOOKUP_BATCH)
        .map(|n| {
            let head = format!("h{n:06}");
            let pad = MAX_DOMAIN_LEN - tail.len() - 1 - head.len();
            format!("{head}{}.{tail}", "z".repeat(pad))
        })
        .collect();
    assert!(values.iter().all(|v| v.len() == MAX_DOMAIN_LEN));
    let request = proto::LookupRequest { values, r#type: 0, details: true, start: 0 };
    assert!(request.encoded_len() <= MAX_API_MESSAGE_BYTES, "the request itself is within the limits");
    request
}

#[tokio::test(flavor = "multi_thread")]
async fn the_largest_lookup_the_limits_allow_keeps_the_node_under_its_memory_bound() {
    let fed = TestFederation::new();
    let server = serve(&fed.admit_node("a"));
    let mut client =
        NodeClient::connect(format!("http://{}", server.addr)).await.unwrap().max_encoding_message_size(usize::MAX);
    let published = client.publish(proto::PublishRequest { drafts: crowded_parent(), dry_run: false }).await.unwrap();
    assert!(published.into_inner().outcomes.iter().all(|o| o.error.is_empty()));
    let before = peak_rss(server.child.id());
    let request = largest_request();

    let reply = client.lookup(request.clone()).await.expect("one page of the answer").into_inner();
    assert!(reply.encoded_len() <= MAX_REPLY_BYTES);
    assert!(reply.next_index > 0, "the answer is cut");
    assert_eq!(reply.results[0].matches.len(), MAX_MATCHES_PER_VALUE);
    assert_eq!(reply.descriptions.len(), MAX_MATCHES_PER_VALUE);

    // The same batch streamed: the node answers page after page with at most
    // a few replies queued; read some, then hang up.
    let mut replies = client.lookup_stream(tokio_stream::iter(vec![request])).await.unwrap().into_inner();
    for _ in 0..4 {
        let page = replies.message().await.unwrap().expect("a page");
        assert!(page.encoded_len() <= MAX_REPLY_BYTES && page.next_index > 0);
    }
    drop(replies);

    let peak = peak_rss(server.child.id());
    eprintln!("node peak RSS: {} MiB before the lookups, {} MiB after", before >> 20, peak >> 20);
    assert!(
        peak <= MAX_LOOKUP_PEAK_RSS_BYTES,
        "peak RSS {} MiB over {} MiB",
        peak >> 20,
        MAX_LOOKUP_PEAK_RSS_BYTES >> 20
    );
}
