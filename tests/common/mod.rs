//! Test harness: a federation in a temp dir and real nodes on 127.0.0.1:0.
#![allow(dead_code)]

pub mod cli;
pub mod http;
pub mod python;

use cirfed::cir::{Role, Tlp};
use cirfed::identity::{self, Federation};
use cirfed::node::unix_now;
use cirfed::proto::{self, draft, node_client::NodeClient, record::Body, Draft, Envelope, Indicator, Record};
use cirfed::record::{RecordId, Signer, RECORD_VERSION};
use cirfed::server::{self, Overrides, RunningNode};
use ed25519_dalek::SigningKey;
use std::collections::BTreeSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tonic::transport::Channel;

/// How long a test waits for a condition before failing.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A federation operator's directory.
pub struct TestFederation {
    pub root: TempDir,
    pub federation: Federation,
}

impl TestFederation {
    pub fn new() -> Self {
        let root = tempfile::tempdir().expect("temp dir");
        let federation =
            Federation::init(&root.path().join("operator"), "test-federation", false).expect("federation init");
        TestFederation { root, federation }
    }

    /// Creates, admits and joins a node directory named `name`.
    pub fn admit_node(&self, name: &str) -> PathBuf {
        let dir = self.root.path().join(name);
        let request =
            identity::init_node(&dir, name, &["localhost".into(), "127.0.0.1".into()], false).expect("node init");
        let admission = self.federation.admit(&request, &[Role::Publish, Role::Read], 30, unix_now()).expect("admit");
        identity::join_node(&dir, &admission, false).expect("join");
        dir
    }

    /// A member key with a card from the authority, as another CSP would hold.
    pub fn member(&self, roles: &[Role], valid_from: i64, valid_until: i64) -> (Signer, Envelope) {
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let id = identity::member_id(&key.verifying_key());
        let (_, card) = self.federation.sign_card(&id, &key.verifying_key(), roles, valid_from, valid_until);
        (Signer::new(key), card)
    }
}

/// A running node and a client of its local API.
pub struct TestNode {
    pub dir: PathBuf,
    pub running: RunningNode,
    pub client: NodeClient<Channel>,
}

impl TestNode {
    pub async fn start(dir: &Path) -> TestNode {
        Self::start_with_peers(dir, &[]).await
    }

    /// Starts a node that dials `peers` (peer service addresses).
    pub async fn start_with_peers(dir: &Path, peers: &[&TestNode]) -> TestNode {
        let mut overrides = Overrides::loopback();
        overrides.peers = peers.iter().map(|p| p.running.federation_addr.to_string()).collect();
        let running = server::start(dir, overrides).await.expect("node starts");
        let client = NodeClient::connect(format!("http://{}", running.api_addr)).await.expect("client connects");
        TestNode { dir: dir.to_path_buf(), running, client }
    }

    /// Starts a node with its HTTP listener (TAXII, feeds) on 127.0.0.1:0.
    pub async fn start_with_http(dir: &Path) -> TestNode {
        let mut overrides = Overrides::loopback();
        overrides.http_listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
        let running = server::start(dir, overrides).await.expect("node starts");
        let client = NodeClient::connect(format!("http://{}", running.api_addr)).await.expect("client connects");
        TestNode { dir: dir.to_path_buf(), running, client }
    }

    /// The HTTP listener's base URL.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.running.http_addr.expect("the HTTP listener is on"))
    }

    pub async fn stop(self) {
        self.running.stop().await.expect("node stops");
    }

    /// Publishes drafts and returns their outcomes.
    pub async fn publish(&mut self, drafts: Vec<Draft>) -> Vec<proto::Outcome> {
        self.client
            .publish(proto::PublishRequest { drafts, dry_run: false })
            .await
            .expect("publish rpc")
            .into_inner()
            .outcomes
    }

    /// Publishes one draft that must be accepted; returns its id.
    pub async fn publish_ok(&mut self, draft: Draft) -> Vec<u8> {
        let outcome = self.publish(vec![draft]).await.remove(0);
        assert!(outcome.error.is_empty(), "refused: {} {}", outcome.error_code, outcome.error);
        outcome.id
    }

    /// Imports envelopes and returns their outcomes.
    pub async fn import(&mut self, envelopes: Vec<Envelope>) -> Vec<proto::Outcome> {
        self.client.import(proto::ImportRequest { envelopes }).await.expect("import rpc").into_inner().outcomes
    }

    /// Looks values up; returns the reply.
    pub async fn lookup(&mut self, values: &[&str]) -> proto::LookupReply {
        let values = values.iter().map(|v| v.to_string()).collect();
        self.client
            .lookup(proto::LookupRequest { values, r#type: 0, details: true, start: 0 })
            .await
            .expect("lookup rpc")
            .into_inner()
    }

    /// Ids of the records matching one value.
    pub async fn matches(&mut self, value: &str) -> Vec<Vec<u8>> {
        let reply = self.lookup(&[value]).await;
        reply.results.into_iter().flat_map(|r| r.matches).map(|m| m.record_id).collect()
    }

    /// Ids of every stored indicator, retracted and expired ones included.
    pub async fn indicator_ids(&mut self) -> BTreeSet<Vec<u8>> {
        indicator_ids(self.client.clone()).await
    }

    /// Waits until `value` matches exactly `count` indicators here.
    pub async fn wait_for_matches(&self, value: &str, count: usize) {
        let what = format!("{value} to match {count} indicator(s)");
        wait_for(&what, || {
            let mut client = self.client.clone();
            let value = value.to_string();
            async move {
                let request = proto::LookupRequest { values: vec![value], r#type: 0, details: false, start: 0 };
                let reply = client.lookup(request).await.expect("lookup rpc").into_inner();
                reply.results.iter().map(|r| r.matches.len()).sum::<usize>() == count
            }
        })
        .await;
    }

    pub async fn status(&mut self) -> proto::StatusReply {
        self.client.status(proto::StatusRequest {}).await.expect("status rpc").into_inner()
    }
}

/// An indicator draft with sensible fields.
pub fn indicator(value: &str, level: u32) -> Draft {
    Draft {
        tlp: Tlp::Green.code(),
        body: Some(draft::Body::Indicator(Indicator {
            value: value.to_string(),
            cir_level: level,
            confidence: 70,
            ..Default::default()
        })),
    }
}

/// A retraction draft.
pub fn retraction(target: &[u8], reason: &str) -> Draft {
    Draft {
        tlp: Tlp::Green.code(),
        body: Some(draft::Body::Retraction(proto::Retraction { target_id: target.to_vec(), reason: reason.into() })),
    }
}

/// A signed indicator record with the given fields (canonical value expected).
pub fn signed_indicator(
    signer: &Signer,
    kind: u8,
    value: &str,
    created_at: i64,
    valid_until: i64,
) -> (RecordId, Envelope) {
    let body = Body::Indicator(Indicator {
        r#type: i32::from(kind),
        value: value.into(),
        cir_level: 3,
        confidence: 50,
        valid_until,
        ..Default::default()
    });
    signer.seal(Record {
        version: RECORD_VERSION,
        author: vec![],
        created_at,
        tlp: Tlp::Green.code(),
        body: Some(body),
    })
}

/// Polls `check` until it returns true or the deadline passes.
pub async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < DEADLINE {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out after {DEADLINE:?} waiting for {what}");
}

/// A `cirfed serve` process, killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn serve(node: &Path) -> Server {
    let addr_file = node.join("api.addr");
    let _ = std::fs::remove_file(&addr_file);
    let mut child = Command::new(env!("CARGO_BIN_EXE_cirfed"))
        .args([
            "serve",
            "--dir",
            node.to_str().unwrap(),
            "--api-listen",
            "127.0.0.1:0",
            "--federation-listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let started = Instant::now();
    while started.elapsed() < DEADLINE {
        if let Ok(addr) = std::fs::read_to_string(&addr_file) {
            return Server { child, addr: addr.trim().to_string() };
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
            panic!("serve exited with {status}: {stderr}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("serve did not write {}", addr_file.display());
}

/// Ids of every indicator a node stores, retracted and expired ones included.
pub async fn indicator_ids(mut client: NodeClient<Channel>) -> BTreeSet<Vec<u8>> {
    let mut ids = BTreeSet::new();
    let mut after = 0;
    loop {
        let request = proto::ListRequest {
            kind: proto::RecordKind::Indicator as i32,
            after,
            limit: 1000,
            include_inactive: true,
        };
        let page = client.list(request).await.expect("list rpc").into_inner();
        ids.extend(page.records.into_iter().map(|r| r.id));
        if page.next == 0 {
            return ids;
        }
        after = page.next;
    }
}
