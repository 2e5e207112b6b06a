//! `cirfed demo`: a narrated federation of three nodes in a line on loopback,
//! with generated keys: the operator admits three CSPs; A publishes
//! indicators and a lesson; C finds them through B; A retracts one and C stops
//! matching; B goes down, A publishes more, B returns and catches up. C serves
//! TAXII 2.1 and its SIEM pulls the community collection.
//! Cleans up after itself.

use super::client::status_error;
use anyhow::Context;
use cirfed::cir::{Category, Role, Tlp};
use cirfed::identity::{self, Federation};
use cirfed::node::unix_now;
use cirfed::normalize::ObservableType;
use cirfed::proto::{
    self, draft, node_client::NodeClient, Draft, Indicator, Lesson, LookupRequest, PhaseAction, PublishRequest,
};
use cirfed::server::{self, Overrides, RunningNode};
use clap::Args;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tonic::transport::Channel;

/// How long the demo waits for a record to cross the federation.
const DEMO_DEADLINE: Duration = Duration::from_secs(60);
/// How often it looks.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// `cirfed demo`
#[derive(Args)]
pub struct DemoArgs {
    /// Keep the demo's directories here instead of a temporary one.
    #[arg(long)]
    pub keep: Option<PathBuf>,
}

/// Narrates one step with the time it took.
struct Narrator {
    started: Instant,
}

impl Narrator {
    fn step(&self, text: &str) {
        println!("\n[{:>7.3}s] {text}", self.started.elapsed().as_secs_f64());
    }

    fn detail(&self, text: impl std::fmt::Display) {
        println!("           {text}");
    }
}

/// The sample feed: what CSP A learned from an access-key compromise.
fn sample_indicators() -> Vec<(ObservableType, &'static str, u32, &'static str)> {
    vec![
        (ObservableType::Cidr, "203.0.113.0/24", 4, "crypto-mining pool proxies"),
        (ObservableType::Domain, "evil-cloud.example", 4, "phishing kit imitating a cloud console"),
        (ObservableType::Url, "https://evil-cloud.example/console/login", 4, "credential harvesting page"),
        (ObservableType::Sha256, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", 3, "miner binary"),
        (ObservableType::CloudAccessKeyId, "AKIAIOSFODNN7EXAMPLE", 5, "leaked access key used from the pool"),
        (
            ObservableType::UserAgent,
            "aws-cli/1.16.312 Python/3.6.0 Linux/4.15.0 botocore/1.13.48 minerkit",
            3,
            "tooling of the intruder",
        ),
    ]
}

fn indicator_draft(kind: ObservableType, value: &str, level: u32, description: &str) -> Draft {
    Draft {
        tlp: Tlp::Green.code(),
        body: Some(draft::Body::Indicator(Indicator {
            r#type: i32::from(kind.code()),
            value: value.to_string(),
            cir_level: level,
            categories: vec![Category::CredentialTheft.code(), Category::Malware.code()],
            confidence: 85,
            description: description.to_string(),
            first_seen: unix_now() - 86_400,
            last_seen: unix_now(),
            ..Default::default()
        })),
    }
}

fn lesson_draft() -> Draft {
    Draft {
        tlp: Tlp::Green.code(),
        body: Some(draft::Body::Lesson(Lesson {
            title: "Leaked access key used for crypto-mining".into(),
            summary: "A long-lived access key committed to a public repository was used to start mining instances."
                .into(),
            cir_level: 4,
            categories: vec![Category::CredentialTheft.code()],
            service_model: cirfed::cir::ServiceModel::Iaas.code(),
            detection_method: "billing anomaly alert".into(),
            time_to_detect_secs: 5 * 3600,
            time_to_contain_secs: 3600,
            time_to_recover_secs: 8 * 3600,
            root_cause: "static credentials without rotation or secret scanning".into(),
            went_well: vec!["billing alert fired within hours".into()],
            to_improve: vec!["secret scanning on every push".into()],
            recommended_actions: vec![PhaseAction {
                phase: cirfed::cir::Phase::Preparation.code(),
                action: "replace static keys with short-lived role credentials".into(),
            }],
            ..Default::default()
        })),
    }
}

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let temp = tempfile::TempDir::with_prefix("cirfed-demo-")?;
    let root = args.keep.clone().unwrap_or_else(|| temp.path().to_path_buf());
    let say = Narrator { started: Instant::now() };
    println!("cirfed demo: three CSP nodes in a line, A - B - C, on loopback (files in {})", root.display());

    say.step("The operator creates the federation: an X.509 CA for transport and an ed25519 authority for content.");
    let federation = Federation::init(&root.join("operator"), "demo-federation", true)?;
    say.detail(format!("authority key {}", &federation.file().authority_key[..16]));

    say.step("Three CSPs create their nodes and ask to join; the operator admits each under a pseudonym.");
    let mut dirs = Vec::new();
    for (name, dir) in [("CSP A", "csp-a"), ("CSP B", "csp-b"), ("CSP C", "csp-c")] {
        let dir = root.join(dir);
        let request = identity::init_node(&dir, name, &["localhost".into(), "127.0.0.1".into()], true)?;
        let admission = federation.admit(&request, &[Role::Publish, Role::Read], 30, unix_now())?;
        identity::join_node(&dir, &admission, true)?;
        say.detail(format!("{name} is member {}: peers never see the name", admission.member_id));
        dirs.push(dir);
    }

    say.step("The nodes start: C, then B dialing C, then A dialing B. Peers authenticate each other with mutual TLS.");
    let siem_token = enable_taxii(&dirs[2])?;
    let c = start_with_http(&dirs[2]).await?;
    let b = start(&dirs[1], None, &[&c]).await?;
    let a = start(&dirs[0], None, &[&b]).await?;
    for (name, node) in [("A", &a), ("B", &b), ("C", &c)] {
        say.detail(format!("{name}: local API {}, peer service {}", node.api_addr, node.federation_addr));
    }
    let mut at_a = client(&a).await?;
    let mut at_c = client(&c).await?;

    let (ids, lesson) = publish_feed(&say, &mut at_a).await?;
    let started = Instant::now();
    let observed = [
        "203.0.113.77",
        "login.evil-cloud.example",
        "https://EVIL-cloud.example:443/console/login#x",
        "AKIAIOSFODNN7EXAMPLE",
    ];
    for value in observed {
        wait_until(&mut at_c, value, true).await?;
    }
    let (title, _) = wait_for_lesson(&mut at_c, &lesson).await?;
    let took = started.elapsed().as_millis();
    say.step(&format!(
        "The indicators and the post-mortem reached C through B in {took} ms. C's analyst looks observables up:"
    ));
    look_up(&say, &mut at_c, &[&observed[..], &["198.51.100.1"]].concat()).await?;
    say.detail(format!("C also holds A's post-mortem \"{title}\", signed by a pseudonym"));

    let http = c.http_addr.context("C's HTTP listener is on")?;
    say.step(&format!(
        "C's SIEM pulls the community collection over TAXII 2.1 (http://{http}/taxii2/, a bearer token):"
    ));
    let (count, kinds) = taxii_pull(http, &siem_token).await?;
    say.detail(format!("{count} STIX 2.1 objects: {}", kinds.join(", ")));

    say.step("A retracts the domain indicator (a false positive, say); the retraction travels the same way.");
    let retraction = Draft {
        tlp: Tlp::Green.code(),
        body: Some(draft::Body::Retraction(proto::Retraction {
            target_id: ids[1].clone(),
            reason: "false positive".into(),
        })),
    };
    at_a.publish(PublishRequest { drafts: vec![retraction], dry_run: false }).await.map_err(status_error)?;
    let took = wait_until(&mut at_c, "login.evil-cloud.example", false).await?;
    say.detail(format!("C stopped matching login.evil-cloud.example after {took} ms"));

    say.step("B goes down. A publishes three more indicators while B is away.");
    let b_address = b.federation_addr;
    b.stop().await?;
    let missed = [
        (ObservableType::Cidr, "192.0.2.0/24"),
        (ObservableType::Ipv4, "198.51.100.23"),
        (ObservableType::Domain, "c2.evil-cloud.example"),
    ];
    let drafts = missed.iter().map(|(kind, value)| indicator_draft(*kind, value, 4, "seen while B was down")).collect();
    at_a.publish(PublishRequest { drafts, dry_run: false }).await.map_err(status_error)?;

    say.step("B returns on the same address. A redials it (with backoff), the two reconcile, and B passes the records on to C.");
    let b = start(&dirs[1], Some(b_address), &[&c]).await?;
    let took = wait_until(&mut at_c, "c2.evil-cloud.example", true).await?;
    say.detail(format!(
        "C matches c2.evil-cloud.example {took} ms after B came back: nothing lost, no full re-download"
    ));
    let took = wait_for_same_records(&[&a, &b, &c]).await?;
    say.detail(format!("A, B and C hold the same records {took} ms later"));

    for (name, node) in [("A", &a), ("B", &b), ("C", &c)] {
        let status = client(node).await?.status(proto::StatusRequest {}).await.map_err(status_error)?.into_inner();
        say.detail(format!("{name}: {} records, {} active indicators", status.records, status.active_indicators));
    }
    for node in [a, b, c] {
        node.stop().await?;
    }
    say.step("Done. Every record was signed by its author, validated by every node, and routed by its TLP.");
    if args.keep.is_none() {
        drop(temp);
    }
    Ok(ExitCode::SUCCESS)
}

/// Turns on a node's HTTP listener with one read-only user, the SOC's SIEM;
/// returns its token.
fn enable_taxii(dir: &Path) -> anyhow::Result<String> {
    use std::io::Write;
    let (token, hash) = cirfed::http::auth::new_token();
    let section =
        format!("\n[taxii]\n\n[[taxii.users]]\nname = \"siem\"\ntoken_sha256 = \"{hash}\"\nread = [\"community\"]\n");
    std::fs::OpenOptions::new().append(true).open(dir.join("node.toml"))?.write_all(section.as_bytes())?;
    Ok(token)
}

async fn start_with_http(dir: &Path) -> anyhow::Result<RunningNode> {
    let mut overrides = Overrides::loopback();
    overrides.http_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    Ok(server::start(dir, overrides).await?)
}

/// One page of the community collection, as a SIEM's TAXII connector asks
/// for it; returns how many objects and of which types.
async fn taxii_pull(addr: SocketAddr, token: &str) -> anyhow::Result<(usize, Vec<String>)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let collection = cirfed::interop::taxii::Collection::find("community").context("community collection")?;
    let request = format!(
        "GET /cirfed/collections/{}/objects/?limit=1000 HTTP/1.1\r\nHost: {addr}\r\nAccept: {}\r\n\
         Authorization: Bearer {token}\r\nConnection: close\r\n\r\n",
        collection.id(),
        cirfed::interop::taxii::TAXII_MEDIA_TYPE
    );
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await?;
    let reply = String::from_utf8(reply)?;
    let (head, body) = reply.split_once("\r\n\r\n").context("an HTTP reply")?;
    anyhow::ensure!(head.starts_with("HTTP/1.1 200"), "TAXII answered {}", head.lines().next().unwrap_or(""));
    let envelope: serde_json::Value = serde_json::from_str(body)?;
    let objects = envelope["objects"].as_array().cloned().unwrap_or_default();
    let mut kinds: Vec<String> = Vec::new();
    for object in &objects {
        let kind = object["type"].as_str().unwrap_or("?").to_string();
        let count = objects.iter().filter(|o| o["type"] == kind.as_str()).count();
        let entry = format!("{count} {kind}");
        if !kinds.contains(&entry) {
            kinds.push(entry);
        }
    }
    Ok((objects.len(), kinds))
}

/// Starts a demo node on loopback, dialing `peers`.
async fn start(
    dir: &Path,
    federation_listen: Option<SocketAddr>,
    peers: &[&RunningNode],
) -> anyhow::Result<RunningNode> {
    let mut overrides = Overrides::loopback();
    overrides.federation_listen = federation_listen.or(overrides.federation_listen);
    overrides.peers = peers.iter().map(|p| p.federation_addr.to_string()).collect();
    Ok(server::start(dir, overrides).await?)
}

async fn client(node: &RunningNode) -> anyhow::Result<NodeClient<Channel>> {
    Ok(NodeClient::connect(format!("http://{}", node.api_addr)).await?)
}

/// Polls until `value` matches (or stops matching) at a node; returns the
/// milliseconds it took.
async fn wait_until(client: &mut NodeClient<Channel>, value: &str, matched: bool) -> anyhow::Result<u128> {
    let started = Instant::now();
    while started.elapsed() < DEMO_DEADLINE {
        let request = LookupRequest { values: vec![value.to_string()], r#type: 0, details: false, start: 0 };
        let reply = client.lookup(request).await.map_err(status_error)?.into_inner();
        if reply.results.iter().any(|r| !r.matches.is_empty()) == matched {
            return Ok(started.elapsed().as_millis());
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    anyhow::bail!("{value} did not {} within {DEMO_DEADLINE:?}", if matched { "arrive" } else { "stop matching" })
}

/// Publishes the sample feed at A; returns the indicator ids and the lesson's.
async fn publish_feed(say: &Narrator, client: &mut NodeClient<Channel>) -> anyhow::Result<(Vec<Vec<u8>>, Vec<u8>)> {
    say.step(
        "CSP A publishes what it learned from an incident: six indicators and a post-mortem, TLP:GREEN, each signed.",
    );
    let mut drafts: Vec<Draft> =
        sample_indicators().into_iter().map(|(k, v, l, d)| indicator_draft(k, v, l, d)).collect();
    drafts.push(lesson_draft());
    let reply = client.publish(PublishRequest { drafts, dry_run: false }).await.map_err(status_error)?.into_inner();
    let mut ids = Vec::new();
    for ((kind, value, _, _), outcome) in sample_indicators().iter().zip(&reply.outcomes) {
        anyhow::ensure!(outcome.error.is_empty(), "demo indicator refused: {}", outcome.error);
        say.detail(format!(
            "{:<24} {:<44} id {}",
            kind.to_string(),
            truncate(value, 44),
            &hex::encode(&outcome.id)[..16]
        ));
        for r in &outcome.redactions {
            say.detail(format!(
                "{:<24} scrubbed: {} {} -> shared as {}",
                "",
                r.action,
                r.detector,
                truncate(&r.replacement, 24)
            ));
        }
        ids.push(outcome.id.clone());
    }
    let lesson = reply.outcomes.last().expect("lesson outcome");
    anyhow::ensure!(lesson.error.is_empty(), "demo lesson refused: {}", lesson.error);
    say.detail(format!(
        "{:<24} {:<44} id {}",
        "lesson",
        "Leaked access key used for crypto-mining",
        &hex::encode(&lesson.id)[..16]
    ));
    Ok((ids, lesson.id.clone()))
}

/// Polls until every node stores as many records as the first; returns the
/// milliseconds it took.
async fn wait_for_same_records(nodes: &[&RunningNode]) -> anyhow::Result<u128> {
    let started = Instant::now();
    while started.elapsed() < DEMO_DEADLINE {
        let counts: Vec<u64> = nodes.iter().map(|node| node.node.status().kinds.iter().map(|(_, n)| n).sum()).collect();
        if counts.iter().all(|count| *count == counts[0]) {
            return Ok(started.elapsed().as_millis());
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    anyhow::bail!("the nodes did not converge within {DEMO_DEADLINE:?}")
}

/// Polls until the record `id` is stored at a node; returns its lesson title
/// and the milliseconds it took.
async fn wait_for_lesson(client: &mut NodeClient<Channel>, id: &[u8]) -> anyhow::Result<(String, u128)> {
    let started = Instant::now();
    while started.elapsed() < DEMO_DEADLINE {
        if let Ok(stored) = client.get(proto::GetRequest { id: id.to_vec() }).await {
            let envelope = stored.into_inner().envelope.unwrap_or_default();
            let record = <proto::Record as prost::Message>::decode(envelope.record.as_slice())?;
            let title = match record.body {
                Some(proto::record::Body::Lesson(lesson)) => lesson.title,
                _ => anyhow::bail!("record {} is not a lesson", hex::encode(id)),
            };
            return Ok((title, started.elapsed().as_millis()));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    anyhow::bail!("the lesson did not arrive within {DEMO_DEADLINE:?}")
}

async fn look_up(say: &Narrator, client: &mut NodeClient<Channel>, values: &[&str]) -> anyhow::Result<()> {
    say.detail("(values are normalised first: case, default port, fragment)");
    let values: Vec<String> = values.iter().map(|v| v.to_string()).collect();
    let started = Instant::now();
    let reply = client
        .lookup(LookupRequest { values: values.clone(), r#type: 0, details: true, start: 0 })
        .await
        .map_err(status_error)?
        .into_inner();
    for (index, value) in values.iter().enumerate() {
        match reply.results.iter().find(|r| r.index as usize == index) {
            Some(result) if !result.matches.is_empty() => {
                let m = &result.matches[0];
                let published = match ObservableType::from_code(m.indicator_type as u8) {
                    Some(ObservableType::KeyedHash) => "by its keyed hash".to_string(),
                    _ => m.indicator_value.clone(),
                };
                say.detail(format!(
                    "{:<48} MATCH {} {} (level {}, score {})",
                    truncate(value, 48),
                    super::output::match_kind(m.kind),
                    published,
                    result.max_cir_level,
                    result.score
                ));
            }
            Some(result) if !result.error.is_empty() => {
                say.detail(format!("{:<48} invalid: {}", truncate(value, 48), result.error))
            }
            _ => say.detail(format!("{:<48} no match", truncate(value, 48))),
        }
    }
    say.detail(format!("({} values in {:.1} ms)", values.len(), started.elapsed().as_secs_f64() * 1000.0));
    Ok(())
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let cut: String = text.chars().take(width - 1).collect();
    format!("{cut}…")
}
