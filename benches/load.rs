//! Load tool: a real node on loopback with a 1,000,000-indicator feed.
//! Measures bulk publish at scale, store bytes per indicator, the node's RSS,
//! and LookupStream throughput end to end over the local gRPC API.
//!
//! `cargo bench --bench load` (CIRFED_LOAD_FEED and CIRFED_LOAD_QUERIES resize it).

#[path = "support/mod.rs"]
mod support;

use cirfed::proto::{node_client::NodeClient, LookupRequest};
use cirfed::server::{self, Overrides};
use std::time::Instant;

/// Values per LookupStream batch.
const STREAM_BATCH: usize = 10_000;

/// Share of looked-up values that are in the feed: a SOC's logs mostly miss
/// (10%); the hit-heavy run shows the cost of reporting matches (50%).
const HIT_PERCENTS: [u64; 2] = [10, 50];

/// Streams `queries` values and returns (values/s, values matched).
async fn lookup_stream(
    client: &mut NodeClient<tonic::transport::Channel>,
    feed: u64,
    queries: usize,
    hit_percent: u64,
) -> anyhow::Result<(f64, u64)> {
    let values: Vec<String> = (0..queries as u64)
        .map(|n| if n % 100 < hit_percent { support::feed_value(n % feed).1 } else { format!("miss{n}.example") })
        .collect();
    let batches: Vec<LookupRequest> = values
        .chunks(STREAM_BATCH)
        .map(|c| LookupRequest { values: c.to_vec(), r#type: 0, details: false, start: 0 })
        .collect();
    let started = Instant::now();
    let mut replies = client.lookup_stream(tokio_stream::iter(batches)).await?.into_inner();
    let (mut looked_up, mut matched) = (0u64, 0u64);
    while let Some(reply) = replies.message().await? {
        looked_up += u64::from(reply.looked_up);
        matched += reply.results.iter().filter(|r| !r.matches.is_empty()).count() as u64;
    }
    anyhow::ensure!(looked_up == queries as u64, "the node answered {looked_up} of {queries} values");
    Ok((looked_up as f64 / started.elapsed().as_secs_f64(), matched))
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

fn dir_bytes(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(()); // `cargo bench -- --list` probes every bench target
    }
    let feed = env_u64("CIRFED_LOAD_FEED", 1_000_000);
    let queries = env_u64("CIRFED_LOAD_QUERIES", 5_000_000) as usize;
    let (_root, dir) = support::node_dir();
    let running = server::start(&dir, Overrides::loopback()).await?;
    let node = running.node.clone();

    let started = Instant::now();
    support::load_feed(&node, feed).await?;
    let publish_secs = started.elapsed().as_secs_f64();
    node.store().flush()?;
    let store_bytes = dir_bytes(node.store().path());
    let sst_bytes = node.store().sst_bytes()?;
    let rss = rss_mib();

    let mut client =
        NodeClient::connect(format!("http://{}", running.api_addr)).await?.max_decoding_message_size(64 << 20);
    let mut stream_rows = Vec::new();
    for hit_percent in HIT_PERCENTS {
        let (rate, matched) = lookup_stream(&mut client, feed, queries, hit_percent).await?;
        stream_rows.push(format!(
            "| LookupStream end to end ({STREAM_BATCH}/batch, one stream, {hit_percent}% hits) | {rate:.0} observables/s ({queries} looked up, {matched} matched) |"
        ));
    }
    running.stop().await?;

    println!("| measure | value |");
    println!("|---|---|");
    println!("| feed | {feed} indicators |");
    println!(
        "| bulk publish (in-process, batches of {}) | {:.0} records/s |",
        support::LOAD_BATCH,
        feed as f64 / publish_secs
    );
    println!(
        "| store on disk after flush | {:.1} MiB in all, {:.0} bytes/indicator; SST files {:.0} bytes/indicator |",
        store_bytes as f64 / 1048576.0,
        store_bytes as f64 / feed as f64,
        sst_bytes as f64 / feed as f64
    );
    println!("| node RSS at {feed} indicators | {rss:.0} MiB |");
    for row in stream_rows {
        println!("{row}");
    }
    Ok(())
}
