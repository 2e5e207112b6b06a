//! Load tool: a real node's TAXII 2.1 server over loopback HTTP with a
//! 1,000,000-indicator feed. Measures one client paging the whole collection
//! at `limit=1000` (beside the same listing in process, the ceiling), then
//! 50 concurrent pollers with `added_after` and their per-page latency.
//!
//! `cargo bench --profile release --bench taxii_load`
//! (CIRFED_TAXII_FEED, CIRFED_TAXII_POLLERS, CIRFED_TAXII_POLLS resize it).

#[path = "support/mod.rs"]
mod support;

use cirfed::http::auth::new_token;
use cirfed::interop::taxii::{self, Admission, Query};
use cirfed::interop::FeedRecord;
use cirfed::server::{self, Overrides};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Objects per page, as SIEM connectors ask.
const PAGE: usize = 1_000;
/// How far behind the end of the feed an up-to-date poller asks from.
const RECENT: u64 = 100;

struct Everything;

impl Admission for Everything {
    fn admits(&self, _: &FeedRecord) -> bool {
        true
    }
}

/// One keep-alive HTTP/1.1 connection.
struct Client {
    reader: BufReader<TcpStream>,
    addr: SocketAddr,
    auth: String,
}

impl Client {
    fn new(addr: SocketAddr, token: &str) -> Client {
        let stream = TcpStream::connect(addr).expect("connects");
        stream.set_nodelay(true).unwrap();
        Client { reader: BufReader::new(stream), addr, auth: format!("Bearer {token}") }
    }

    /// GETs `path`; returns the body.
    fn get(&mut self, path: &str) -> String {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: {}\r\nAuthorization: {}\r\n\r\n",
            self.addr,
            taxii::TAXII_MEDIA_TYPE,
            self.auth
        );
        self.reader.get_mut().write_all(request.as_bytes()).unwrap();
        let (mut length, mut status) = (0usize, String::new());
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            if status.is_empty() {
                status = line.clone();
            }
            if line == "\r\n" {
                break;
            }
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).unwrap();
        assert!(status.contains(" 200 "), "{status}: {}", String::from_utf8_lossy(&body));
        String::from_utf8(body).unwrap()
    }
}

/// What the client reads of a page: the objects are checked to be JSON and
/// counted, not built into values, so that the client, which shares the two
/// cores with the node, costs as little as a real poller's parse.
#[derive(serde::Deserialize)]
struct Envelope {
    #[serde(default)]
    more: bool,
    next: Option<String>,
    #[serde(default)]
    objects: Vec<serde::de::IgnoredAny>,
}

/// Pages `path` to the end from `first`; returns (objects, pages, latencies).
fn page_through(client: &mut Client, path: &str, first: &str, max_pages: usize) -> (usize, Vec<Duration>) {
    let (mut objects, mut latencies, mut query) = (0, Vec::new(), first.to_string());
    while latencies.len() < max_pages {
        let started = Instant::now();
        let body = client.get(&format!("{path}?{query}"));
        latencies.push(started.elapsed());
        let envelope: Envelope = serde_json::from_str(&body).unwrap();
        objects += envelope.objects.len();
        match envelope.next {
            Some(next) if envelope.more => query = format!("limit={PAGE}&next={next}"),
            _ => break,
        }
    }
    (objects, latencies)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(()); // `cargo bench -- --list` probes every bench target
    }
    let feed = env_u64("CIRFED_TAXII_FEED", 1_000_000);
    let pollers = env_u64("CIRFED_TAXII_POLLERS", 50) as usize;
    let polls = env_u64("CIRFED_TAXII_POLLS", 20) as usize;
    let (_root, dir) = support::node_dir();
    let (token, hash) = new_token();
    let users = format!("\n[taxii]\n[[taxii.users]]\nname = \"bench\"\ntoken_sha256 = \"{hash}\"\nread = [\"*\"]\n");
    std::fs::OpenOptions::new().append(true).open(dir.join("node.toml"))?.write_all(users.as_bytes())?;
    let mut overrides = Overrides::loopback();
    overrides.http_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    let running = server::start(&dir, overrides).await?;
    let node = running.node.clone();
    let http = running.http_addr.expect("http listener on");
    support::load_feed(&node, feed).await?;
    let collection = taxii::Collection::find("analysts").unwrap();
    let path = format!("/cirfed/collections/{}/objects/", collection.id());

    // The ceiling: the same listing in process, no HTTP, no auth.
    let inner = node.clone();
    let (ceiling_objects, ceiling_secs) = tokio::task::spawn_blocking(move || {
        let query = Query::parse(&[("limit".into(), PAGE.to_string())], PAGE).unwrap();
        let (started, mut objects, mut from) = (Instant::now(), 0, None);
        loop {
            let page = taxii::list(inner.as_ref(), &Everything, &query, from).unwrap();
            objects += page.objects.len();
            for listed in &page.objects {
                std::hint::black_box(&listed.object.json);
            }
            match page.next {
                Some(next) => from = Some(next),
                None => return (objects, started.elapsed().as_secs_f64()),
            }
        }
    })
    .await?;

    // `cirfed export stix` does this inside the node: the whole feed as one bundle.
    let inner = node.clone();
    let (exported, export_secs) = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let summary =
            cirfed::interop::stix::export_bundle(inner.as_ref(), &Default::default(), &mut std::io::sink()).unwrap();
        (summary.total(), started.elapsed().as_secs_f64())
    })
    .await?;

    let (one_path, one_token) = (path.clone(), token.clone());
    let (objects, one_secs, pages) = tokio::task::spawn_blocking(move || {
        let mut client = Client::new(http, &one_token);
        let started = Instant::now();
        let (objects, latencies) = page_through(&mut client, &one_path, &format!("limit={PAGE}"), usize::MAX);
        (objects, started.elapsed().as_secs_f64(), latencies.len())
    })
    .await?;
    anyhow::ensure!(objects >= feed as usize, "paged {objects} objects of a {feed}-record feed");

    // Pollers: each asks for what was added after a point in the feed, and pages on.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for poller in 0..pollers {
        let (path, token) = (path.clone(), token.clone());
        let node = node.clone();
        tasks.push(tokio::task::spawn_blocking(move || {
            let mut client = Client::new(http, &token);
            let seq = 1 + (poller as u64 * 7_919 * 1_000) % feed.max(1);
            let added = node.store().added_at(seq).unwrap().unwrap_or(0);
            let after = taxii::format_micros(added);
            page_through(&mut client, &path, &format!("limit={PAGE}&added_after={after}"), polls).1
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await?);
    }
    let poll_secs = started.elapsed().as_secs_f64();
    latencies.sort();

    // Pollers that are up to date, as a SIEM polling every few minutes is:
    // each asks what was added after the record RECENT before the end.
    let mut tasks = Vec::new();
    for poller in 0..pollers {
        let (path, token) = (path.clone(), token.clone());
        let node = node.clone();
        tasks.push(tokio::task::spawn_blocking(move || {
            let mut client = Client::new(http, &token);
            let seq = feed.saturating_sub(RECENT + poller as u64 % 10);
            let added = node.store().added_at(seq.max(1)).unwrap().unwrap_or(0);
            let after = taxii::format_micros(added);
            let mut all = Vec::new();
            for _ in 0..polls {
                all.extend(page_through(&mut client, &path, &format!("limit={PAGE}&added_after={after}"), 1).1);
            }
            all
        }));
    }
    let mut recent = Vec::new();
    for task in tasks {
        recent.extend(task.await?);
    }
    recent.sort();
    drop(node);
    running.stop().await?;

    println!("| measure | value | ceiling / peer in the same run |");
    println!("|---|---|---|");
    println!(
        "| one client pages {objects} objects at limit={PAGE} over HTTP | {:.0} objects/s ({pages} pages in {one_secs:.1} s) | in-process listing: {:.0} objects/s |",
        objects as f64 / one_secs,
        ceiling_objects as f64 / ceiling_secs
    );
    println!(
        "| STIX export of the node's feed in process (export_bundle into a sink) | {:.0} objects/s ({exported} objects in {export_secs:.1} s) | |",
        exported as f64 / export_secs
    );
    println!(
        "| {pollers} concurrent pollers with added_after, {} pages of {PAGE} | p50 {:.1} ms, p99 {:.1} ms per page; {:.0} objects/s in all | |",
        latencies.len(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        (latencies.len() * PAGE) as f64 / poll_secs
    );
    println!(
        "| {pollers} concurrent up-to-date pollers (added_after {RECENT}-110 records before the end), {} polls | p50 {:.1} ms, p99 {:.1} ms per page | |",
        recent.len(),
        percentile(&recent, 0.50),
        percentile(&recent, 0.99)
    );
    Ok(())
}
