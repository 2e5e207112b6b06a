//! Load tool for the federation, on real nodes over mutual TLS on loopback:
//! catch-up of a node that missed 100,000 records (and the rate it ingests
//! from its peer), reconciliation of 1,000,000 common records with 1,000
//! differing on each side (time and bytes on the wire), and publish-to-present
//! latency across a random 3-regular graph of 10 nodes.
//!
//! `cargo bench --locked --profile release --bench federation_load`
//! (CIRFED_CATCHUP_RECORDS, CIRFED_RECONCILE_COMMON, CIRFED_PROPAGATION_RECORDS resize it).
//! Wire bytes are read from the loopback interface's counters (/proc/net/dev),
//! so they include TCP/IP and TLS framing; run it on an otherwise quiet machine.

#[path = "support/mod.rs"]
mod support;

use cirfed::proto::Envelope;
use cirfed::record::RecordKind;
use cirfed::server::{self, Overrides, RunningNode};
use prost::Message;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long any wait may take before the tool gives up.
const DEADLINE: Duration = Duration::from_secs(900);
/// Drafts per in-process publish call while loading a feed.
const LOAD_BATCH: u64 = 10_000;
/// Records differing on each side in the reconciliation run.
const DIFFERING: u64 = 1_000;
/// Nodes and degree of the propagation graph.
const GRAPH_NODES: usize = 10;
const GRAPH_DEGREE: usize = 3;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Bytes received on the loopback interface so far (each loopback byte is counted once).
fn loopback_bytes() -> u64 {
    let dev = std::fs::read_to_string("/proc/net/dev").unwrap_or_default();
    dev.lines()
        .find_map(|line| line.trim_start().strip_prefix("lo:"))
        .and_then(|fields| fields.split_whitespace().next())
        .and_then(|rx| rx.parse().ok())
        .unwrap_or(0)
}

async fn start(dir: &Path, peers: &[&RunningNode]) -> RunningNode {
    let mut overrides = Overrides::loopback();
    overrides.peers = peers.iter().map(|p| p.federation_addr.to_string()).collect();
    server::start(dir, overrides).await.expect("node starts")
}

fn indicators(node: &RunningNode) -> u64 {
    node.node.store().count(RecordKind::Indicator)
}

/// Publishes feed values `range` in batches; returns the envelopes of the records stored.
async fn publish(node: &RunningNode, range: std::ops::Range<u64>) -> Vec<Envelope> {
    let mut envelopes = Vec::new();
    let mut from = range.start;
    while from < range.end {
        let to = (from + LOAD_BATCH).min(range.end);
        let node = node.node.clone();
        let batch = tokio::task::spawn_blocking(move || {
            let ids: Vec<_> = node.publish(support::drafts(from..to)).into_iter().filter_map(Result::ok).collect();
            node.shareable_envelopes(&ids.iter().map(|i| i.id).collect::<Vec<_>>(), usize::MAX).expect("envelopes").0
        })
        .await
        .expect("publish task");
        envelopes.extend(batch);
        from = to;
    }
    envelopes
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < DEADLINE, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    started.elapsed()
}

fn bytes(envelopes: &[Envelope]) -> u64 {
    envelopes.iter().map(|e| e.encoded_len() as u64).sum()
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// A node that missed `records` catches up from its peer when it first connects,
/// then the two grow to `common` shared records, part company, each take
/// `DIFFERING` records of their own, and reconcile when they meet again.
async fn catch_up_and_reconcile(records: u64, common: u64) -> Vec<String> {
    let (_root, dirs) = support::federation_dirs(2);
    let a = start(&dirs[0], &[]).await;
    let feed = publish(&a, 0..records).await;
    let feed_bytes = bytes(&feed);
    let held = indicators(&a);

    let started = Instant::now();
    let b = start(&dirs[1], &[&a]).await;
    let took = wait_until("catch-up", || indicators(&b) == held).await;
    let catch_up = format!(
        "| catch-up of a node that missed {held} records (start to last record stored) | {:.2} s: {:.0} records/s verified and stored from the peer ({:.1} MB of envelopes) |",
        started.elapsed().as_secs_f64(),
        held as f64 / took.as_secs_f64(),
        mb(feed_bytes),
    );
    eprintln!("{catch_up}");

    // Grow to `common` shared records while the link is live (gossip), then part.
    publish(&a, records..common).await;
    let held = indicators(&a);
    wait_until("live gossip of the rest of the feed", || indicators(&b) == held).await;
    b.stop().await.expect("b stops");
    let only_a = publish(&a, 100_000_000..100_000_000 + DIFFERING).await;
    let b = start(&dirs[1], &[]).await;
    let only_b = publish(&b, 200_000_000..200_000_000 + DIFFERING).await;
    b.stop().await.expect("b stops");
    let total = held + only_a.len() as u64 + only_b.len() as u64;

    // Reopening a store of a million records takes its own time; measure from the moment B dials A.
    let b = start(&dirs[1], &[]).await;
    let wire_before = loopback_bytes();
    let started = Instant::now();
    b.links.add(&a.federation_addr.to_string());
    wait_until("reconciliation", || indicators(&a) == total && indicators(&b) == total).await;
    let took = started.elapsed();
    let wire = loopback_bytes() - wire_before;
    let negentropy: u64 = b.links.statuses().iter().map(|l| l.reconcile_bytes).sum();
    let missing = bytes(&only_a) + bytes(&only_b);
    let full_feed = total * missing / (only_a.len() + only_b.len()) as u64;
    let reconcile = format!(
        "| reconciliation of {held} common records and {}+{} differing, from reconnect to both sides identical | {:.0} ms; {:.2} MB on the wire (TCP/IP, TLS, HTTP/2, gRPC) = {:.2}x the {:.2} MB of missing envelopes plus {:.2} MB of negentropy messages; a full feed transfer would move {:.0} MB |",
        only_a.len(),
        only_b.len(),
        took.as_secs_f64() * 1000.0,
        mb(wire),
        wire as f64 / (missing + negentropy) as f64,
        mb(missing),
        mb(negentropy),
        mb(full_feed),
    );
    eprintln!("{reconcile}");
    b.stop().await.expect("b stops");
    a.stop().await.expect("a stops");
    vec![catch_up, reconcile]
}

/// The edges of a random connected `degree`-regular graph on `nodes` nodes
/// (pairing model, retried until simple and connected), each as (later, earlier).
fn regular_graph(nodes: usize, degree: usize, rng: &mut support::Rng) -> Vec<(usize, usize)> {
    'retry: loop {
        let mut stubs: Vec<usize> = (0..nodes).flat_map(|n| std::iter::repeat_n(n, degree)).collect();
        for i in (1..stubs.len()).rev() {
            stubs.swap(i, (rng.next() % (i as u64 + 1)) as usize);
        }
        let mut edges: Vec<(usize, usize)> = Vec::new();
        for pair in stubs.chunks(2) {
            let edge = (pair[0].max(pair[1]), pair[0].min(pair[1]));
            if edge.0 == edge.1 || edges.contains(&edge) {
                continue 'retry;
            }
            edges.push(edge);
        }
        let mut reached = vec![false; nodes];
        let mut frontier = vec![0];
        while let Some(n) = frontier.pop() {
            if !std::mem::replace(&mut reached[n], true) {
                frontier.extend(edges.iter().filter_map(|&(a, b)| (a == n).then_some(b).or((b == n).then_some(a))));
            }
        }
        if reached.iter().all(|r| *r) {
            return edges;
        }
    }
}

/// Publish-to-present-everywhere latency on a random 3-regular graph of 10 nodes:
/// from the publish call at a random node to the record stored at the last node.
async fn propagation(records: u64) -> String {
    let (_root, dirs) = support::federation_dirs(GRAPH_NODES);
    let mut rng = support::Rng::new(42);
    let edges = regular_graph(GRAPH_NODES, GRAPH_DEGREE, &mut rng);
    let mut nodes: Vec<RunningNode> = Vec::new();
    for (n, dir) in dirs.iter().enumerate() {
        let peers: Vec<&RunningNode> = edges.iter().filter(|e| e.0 == n).map(|e| &nodes[e.1]).collect();
        let node = start(dir, &peers).await;
        nodes.push(node);
    }
    let links = edges.len();
    wait_until("every link connected", || {
        nodes.iter().map(|n| n.links.statuses().iter().filter(|l| l.dialed && l.connected).count()).sum::<usize>()
            == links
    })
    .await;
    let mut latencies = Vec::new();
    for n in 0..records {
        let origin = &nodes[(rng.next() % GRAPH_NODES as u64) as usize];
        let expected: Vec<u64> = nodes.iter().map(|node| indicators(node) + 1).collect();
        let started = Instant::now();
        publish(origin, 300_000_000 + n..300_000_001 + n).await;
        wait_until("propagation", || nodes.iter().zip(&expected).all(|(node, want)| indicators(node) >= *want)).await;
        latencies.push(started.elapsed());
    }
    latencies.sort();
    let percentile = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1000.0;
    let row = format!(
        "| propagation, {GRAPH_NODES} nodes, random {GRAPH_DEGREE}-regular graph, {records} records published one at a time at random nodes, publish call to stored at every node | p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms |",
        percentile(0.5),
        percentile(0.99),
        percentile(1.0),
    );
    eprintln!("{row}");
    for node in nodes {
        node.stop().await.expect("node stops");
    }
    row
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let mut rows = catch_up_and_reconcile(
        env_u64("CIRFED_CATCHUP_RECORDS", 100_000),
        env_u64("CIRFED_RECONCILE_COMMON", 1_000_000),
    )
    .await;
    rows.push(propagation(env_u64("CIRFED_PROPAGATION_RECORDS", 300)).await);
    println!("| measure | result |");
    println!("|---|---|");
    for row in rows {
        println!("{row}");
    }
}
