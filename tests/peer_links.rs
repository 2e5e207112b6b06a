//! The dialing side of federation: who a link trusts, how it batches and
//! paces what it sends, and what it reconciles, with real nodes over mutual
//! TLS on 127.0.0.1.

mod common;

use cirfed::cir::{SightingType, Tlp};
use cirfed::identity::{self, pki};
use cirfed::node::unix_now;
use cirfed::proto::{self, draft, federation_server, Draft, Lesson};
use common::{wait_for, TestFederation, TestNode};
use std::collections::BTreeSet;
use std::path::Path;
use std::pin::Pin;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

/// The state of the link `node` keeps to `addr`, once it has one.
fn link_to(node: &TestNode, addr: &str) -> Option<cirfed::federation::link::LinkStatus> {
    node.running.links.statuses().into_iter().find(|s| s.dialed && s.addr == addr)
}

/// Waits until the link to `addr` has failed with an error containing `reason`.
async fn wait_for_link_error(node: &TestNode, addr: &str, reason: &str) {
    wait_for(&format!("the link to {addr} to fail with {reason:?}"), || async {
        link_to(node, addr).is_some_and(|s| !s.connected && s.last_error.contains(reason))
    })
    .await;
    let status = link_to(node, addr).unwrap();
    assert!(status.member_id.is_empty(), "never got as far as a session: {status:?}");
}

/// Ids of every record of `kind` (0: all) a node stores.
async fn record_ids(node: &TestNode, kind: proto::RecordKind) -> BTreeSet<Vec<u8>> {
    let mut client = node.client.clone();
    let (mut ids, mut after) = (BTreeSet::new(), 0);
    loop {
        // The node cuts a page of large lessons to fit this client's stock 4 MiB limit.
        let request = proto::ListRequest { kind: kind as i32, after, limit: 1000, include_inactive: true };
        let page = client.list(request).await.expect("list rpc").into_inner();
        ids.extend(page.records.into_iter().map(|r| r.id));
        if page.next == 0 {
            return ids;
        }
        after = page.next;
    }
}

/// Waits until `node` holds exactly `expected` records of `kind`.
async fn wait_for_records(node: &TestNode, kind: proto::RecordKind, expected: &BTreeSet<Vec<u8>>) {
    wait_for("the record sets to match", || async { record_ids(node, kind).await == *expected }).await;
}

/// Waits until every node holds the same records, of every kind.
async fn wait_for_same(nodes: &[&TestNode]) {
    wait_for("the nodes to hold the same records", || async {
        let first = record_ids(nodes[0], proto::RecordKind::Unspecified).await;
        for node in &nodes[1..] {
            if record_ids(node, proto::RecordKind::Unspecified).await != first {
                return false;
            }
        }
        true
    })
    .await;
}

/// Sets a key of a node's config file.
fn configure(dir: &Path, key: &str, from: &str, to: &str) {
    let path = dir.join("node.toml");
    let config = std::fs::read_to_string(&path).unwrap();
    let line = format!("{key} = {from}");
    assert!(config.contains(&line), "{line} not in {config}");
    std::fs::write(&path, config.replace(&line, &format!("{key} = {to}"))).unwrap();
}

/// A peer service whose certificate is a member's, but whose hello claims to
/// be another member. Everything after hello is refused.
struct Impostor {
    claims: String,
}

type Replies<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl federation_server::Federation for Impostor {
    async fn hello(&self, _: Request<proto::HelloRequest>) -> Result<Response<proto::HelloReply>, Status> {
        let member_id = self.claims.clone();
        Ok(Response::new(proto::HelloReply { protocol_version: 1, member_id, ..Default::default() }))
    }

    type ReconcileStream = Replies<proto::ReconcileMessage>;

    async fn reconcile(
        &self,
        _: Request<Streaming<proto::ReconcileMessage>>,
    ) -> Result<Response<Self::ReconcileStream>, Status> {
        Err(Status::unimplemented("impostor"))
    }

    async fn fetch(&self, _: Request<proto::FetchRequest>) -> Result<Response<proto::RecordBatch>, Status> {
        Err(Status::unimplemented("impostor"))
    }

    async fn push(&self, _: Request<proto::RecordBatch>) -> Result<Response<proto::PushReply>, Status> {
        Err(Status::unimplemented("impostor"))
    }

    type SubscribeStream = Replies<proto::RecordBatch>;

    async fn subscribe(&self, _: Request<proto::SubscribeRequest>) -> Result<Response<Self::SubscribeStream>, Status> {
        Err(Status::unimplemented("impostor"))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_peer_whose_hello_names_another_member_than_its_certificate_is_dropped() {
    let fed = TestFederation::new();
    let a = TestNode::start(&fed.admit_node("a")).await;
    let mallory = identity::load_node(&fed.admit_node("mallory")).unwrap();
    let ca = &mallory.admission.federation.ca_cert;
    let tls = pki::server_config(ca, &mallory.admission.certificate, &mallory.tls_key, &[]).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let incoming = cirfed::transport::tls_incoming(listener, cirfed::transport::fixed(tls), Default::default());
    let impostor = Impostor { claims: a.running.node.identity().member_id.clone() };
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(federation_server::FederationServer::new(impostor))
            .serve_with_incoming(incoming),
    );
    assert!(a.running.links.add(&addr));
    wait_for_link_error(&a, &addr, &format!("certificate names {}", mallory.admission.member_id)).await;
    server.abort();
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_link_refuses_a_server_from_another_federation() {
    let (ours, theirs) = (TestFederation::new(), TestFederation::new());
    let a = TestNode::start(&ours.admit_node("a")).await;
    let stranger = TestNode::start(&theirs.admit_node("x")).await;
    let addr = stranger.running.federation_addr.to_string();
    assert!(a.running.links.add(&addr));
    wait_for_link_error(&a, &addr, "invalid peer certificate").await;
    a.stop().await;
    stranger.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_link_refuses_a_server_on_the_operators_crl() {
    let fed = TestFederation::new();
    let x_dir = fed.admit_node("x");
    let revoked = identity::load_node(&x_dir).unwrap();
    let serial = pki::cert_info(&revoked.admission.certificate).unwrap().serial_hex;
    let now = unix_now();
    let crl = pki::create_crl(fed.federation.ca(), &[serial], now - 60, now + 3600, 1).unwrap();
    let a_dir = fed.admit_node("a");
    std::fs::write(a_dir.join(identity::CRL_FILE), crl).unwrap();
    let x = TestNode::start(&x_dir).await;
    let a = TestNode::start_with_peers(&a_dir, &[&x]).await;
    wait_for_link_error(&a, &x.running.federation_addr.to_string(), "Revoked").await;
    a.stop().await;
    x.stop().await;
}

/// A lesson of about 45 KB: a thousand of them would not fit in one message.
fn large_lesson(n: usize) -> Draft {
    let text = |what: &str| format!("{what} {n}: ") + &"the change window overlapped the failover drill. ".repeat(300);
    Draft {
        tlp: Tlp::Green.code(),
        body: Some(draft::Body::Lesson(Lesson {
            title: format!("Lesson {n}"),
            summary: text("summary"),
            root_cause: text("root cause"),
            went_well: vec![text("went well")],
            cir_level: 2,
            ..Default::default()
        })),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn catch_up_of_large_lessons_is_cut_into_batches_that_fit_a_message() {
    let fed = TestFederation::new();
    let mut a = TestNode::start(&fed.admit_node("a")).await;
    // 250 lessons of ~45 KB: 11 MB, over the 8 MiB message limit.
    for chunk in (0..250).collect::<Vec<_>>().chunks(25) {
        let outcomes = a.publish(chunk.iter().map(|n| large_lesson(*n)).collect()).await;
        assert!(outcomes.iter().all(|o| o.error.is_empty()), "{outcomes:?}");
    }
    let lessons = record_ids(&a, proto::RecordKind::Lesson).await;
    assert_eq!(lessons.len(), 250);
    // B dials A and fetches; A then dials C and pushes.
    let b = TestNode::start_with_peers(&fed.admit_node("b"), &[&a]).await;
    wait_for_records(&b, proto::RecordKind::Lesson, &lessons).await;
    let c = TestNode::start(&fed.admit_node("c")).await;
    let c_addr = c.running.federation_addr.to_string();
    assert!(a.running.links.add(&c_addr));
    wait_for_records(&c, proto::RecordKind::Lesson, &lessons).await;
    assert_eq!(link_to(&a, &c_addr).unwrap().last_error, "", "no session failed on the way");
    for node in [a, b, c] {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_peer_with_a_low_rate_limit_is_caught_up_without_tripping_it() {
    let fed = TestFederation::new();
    let mut a = TestNode::start(&fed.admit_node("a")).await;
    let drafts = (0..600).map(|n| common::indicator(&format!("paced{n}.example"), 2)).collect();
    assert!(a.publish(drafts).await.iter().all(|o| o.error.is_empty()));
    let expected = record_ids(&a, proto::RecordKind::Indicator).await;
    let b_dir = fed.admit_node("b");
    configure(&b_dir, "max_peer_records_per_second", "20000", "250");
    let b = TestNode::start(&b_dir).await;
    let b_addr = b.running.federation_addr.to_string();
    assert!(a.running.links.add(&b_addr), "A dials B, so A pushes what B lacks");
    wait_for_records(&b, proto::RecordKind::Indicator, &expected).await;
    let link = link_to(&a, &b_addr).unwrap();
    assert!(link.connected && link.last_error.is_empty(), "paced under the limit, never refused: {link:?}");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn amber_is_never_offered_or_served_past_its_authors_neighbours() {
    let fed = TestFederation::new();
    let b = TestNode::start(&fed.admit_node("b")).await;
    let mut a = TestNode::start_with_peers(&fed.admit_node("a"), &[&b]).await;
    let mut amber = common::indicator("amber-early.example", 3);
    amber.tlp = Tlp::Amber.code();
    let amber_id = a.publish_ok(amber).await;
    b.wait_for_matches("amber-early.example", 1).await;
    // C joins after the AMBER record is at B: only reconciliation could carry it.
    let c_dir = fed.admit_node("c");
    let c_member = identity::load_node(&c_dir).unwrap().admission.member_id;
    let c = TestNode::start_with_peers(&c_dir, &[&b]).await;
    let a_member = a.running.node.identity().member_id.clone();
    a.publish_ok(common::indicator("green-later.example", 3)).await;
    c.wait_for_matches("green-later.example", 1).await;
    let item = |items: Vec<cirfed::node::Item>| items.into_iter().any(|(_, id)| id.as_slice() == amber_id.as_slice());
    assert!(!item(b.running.node.shared_items(&c_member)), "B never offers A's AMBER to C");
    assert!(item(b.running.node.shared_items(&a_member)), "B and A reconcile it, so A never pushes it again");
    let ids = [cirfed::record::RecordId::from_slice(&amber_id).unwrap()];
    let (served, _) = b.running.node.shareable_envelopes(&ids, usize::MAX).unwrap();
    assert!(served.is_empty(), "nor serves it to a fetch");
    assert!(c.running.node.store().get(&ids[0]).unwrap().is_none());
    for node in [a, b, c] {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn anti_entropy_runs_again_on_its_interval_within_a_session() {
    let fed = TestFederation::new();
    let b = TestNode::start(&fed.admit_node("b")).await;
    let a_dir = fed.admit_node("a");
    configure(&a_dir, "anti_entropy_secs", "60", "1");
    let a = TestNode::start_with_peers(&a_dir, &[&b]).await;
    let addr = b.running.federation_addr.to_string();
    wait_for("a first reconciliation", || async { link_to(&a, &addr).is_some_and(|s| s.last_reconciled > 0) }).await;
    let (first, bytes) = link_to(&a, &addr).map(|s| (s.last_reconciled, s.reconcile_bytes)).unwrap();
    wait_for("a later one", || async {
        link_to(&a, &addr).is_some_and(|s| s.last_reconciled > first && s.reconcile_bytes > bytes)
    })
    .await;
    assert!(link_to(&a, &addr).unwrap().connected, "in the same session");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partition_of_four_nodes_heals_to_identical_sets_of_every_record_kind() {
    let fed = TestFederation::new();
    let (a_dir, b_dir, c_dir, d_dir) =
        (fed.admit_node("a"), fed.admit_node("b"), fed.admit_node("c"), fed.admit_node("d"));
    let b = TestNode::start(&b_dir).await;
    let mut a = TestNode::start_with_peers(&a_dir, &[&b]).await;
    let d = TestNode::start(&d_dir).await;
    let mut c = TestNode::start_with_peers(&c_dir, &[&d]).await;
    // Each half publishes indicators, a lesson, a sighting and a retraction while apart.
    let mut published = Vec::new();
    for (node, half) in [(&mut a, "left"), (&mut c, "right")] {
        let kept = node.publish_ok(common::indicator(&format!("{half}-kept.example"), 3)).await;
        let withdrawn = node.publish_ok(common::indicator(&format!("{half}-withdrawn.example"), 3)).await;
        let sighting = proto::Sighting { indicator_id: kept.clone(), r#type: SightingType::Seen.code(), count: 2 };
        published.extend([
            node.publish_ok(common::retraction(&withdrawn, "false positive")).await,
            node.publish_ok(Draft { tlp: Tlp::Green.code(), body: Some(draft::Body::Sighting(sighting)) }).await,
            node.publish_ok(large_lesson(half.len())).await,
            kept,
            withdrawn,
        ]);
    }
    wait_for_same(&[&a, &b]).await;
    wait_for_same(&[&c, &d]).await;
    let left = record_ids(&a, proto::RecordKind::Unspecified).await;
    assert!(!left.contains(&published[5]), "the halves are apart");
    // The partition ends: B dials C.
    assert!(b.running.links.add(&c.running.federation_addr.to_string()));
    wait_for_same(&[&a, &b, &c, &d]).await;
    let everywhere = record_ids(&d, proto::RecordKind::Unspecified).await;
    assert!(published.iter().all(|id| everywhere.contains(id)), "every record of both halves is everywhere");
    for node in [a, b, c, d] {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_peer_that_dialed_in_shows_in_status_until_it_goes_away() {
    let fed = TestFederation::new();
    let mut b = TestNode::start(&fed.admit_node("b")).await;
    let mut a = TestNode::start_with_peers(&fed.admit_node("a"), &[&b]).await;
    let a_member = a.running.node.identity().member_id.clone();
    a.publish_ok(common::indicator("counted.example", 3)).await;
    b.wait_for_matches("counted.example", 1).await;
    let inbound = |b: &TestNode| b.running.links.statuses().into_iter().find(|s| s.member_id == a_member);
    wait_for("A to show at B as connected, with what it sent", || async {
        inbound(&b).is_some_and(|s| s.connected && s.received >= 1 && s.last_reconciled > 0)
    })
    .await;
    let shown = b.status().await.peers.into_iter().find(|p| p.member_id == a_member).expect("in cirfed status");
    assert!(!shown.dialed && shown.addr.starts_with("127.0.0.1:"), "{shown:?}");
    a.stop().await;
    wait_for("A to show as gone", || async { inbound(&b).is_some_and(|s| !s.connected) }).await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_peer_error_is_cleared_once_a_new_session_works_and_names_each_cause_once() {
    let fed = TestFederation::new();
    let b_dir = fed.admit_node("b");
    let b = TestNode::start(&b_dir).await;
    let b_addr = b.running.federation_addr;
    let a = TestNode::start_with_peers(&fed.admit_node("a"), &[&b]).await;
    let addr = b_addr.to_string();
    wait_for("A's link to B", || async { link_to(&a, &addr).is_some_and(|s| s.connected) }).await;

    b.stop().await;
    wait_for("the link to go down with a reason", || async {
        link_to(&a, &addr).is_some_and(|s| !s.connected && !s.last_error.is_empty())
    })
    .await;
    let down = link_to(&a, &addr).unwrap().last_error;
    let causes: Vec<&str> = down.split(": ").collect();
    let distinct: BTreeSet<&str> = causes.iter().copied().collect();
    assert_eq!(causes.len(), distinct.len(), "a cause said twice: {down}");

    // B comes back on the same address: the next session works and the old error goes.
    let mut overrides = cirfed::server::Overrides::loopback();
    overrides.federation_listen = Some(b_addr);
    let b = cirfed::server::start(&b_dir, overrides).await.expect("b restarts on its address");
    wait_for("A's link to B to come back", || async { link_to(&a, &addr).is_some_and(|s| s.connected) }).await;
    assert_eq!(link_to(&a, &addr).unwrap().last_error, "", "the error was the earlier session's");
    b.stop().await.unwrap();
    a.stop().await;
}
