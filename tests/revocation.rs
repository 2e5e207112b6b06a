//! Revocation that holds at every layer, on real nodes over mutual TLS: a
//! revoked member is cut off on every peer RPC the moment its revocation
//! arrives, the CRL travels inside the revocation, and a CRL is installed only
//! once it verifies.

mod common;

use cirfed::cir::Tlp;
use cirfed::federation::PROTOCOL_VERSION;
use cirfed::identity::pki::{self, CertUsage};
use cirfed::identity::{self, NodeKeys};
use cirfed::node::unix_now;
use cirfed::proto::{self, federation_client::FederationClient, HelloRequest};
use common::{indicator, wait_for, TestFederation, TestNode};
use std::path::Path;
use std::time::Duration;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// How soon a revoked member's open stream must end once its revocation is stored.
const CUT_OFF_DEADLINE: Duration = Duration::from_secs(1);
const HOUR: i64 = 3_600;

/// A client of `node`'s peer service presenting `cert` and `key`.
async fn peer_client(
    node: &TestNode,
    ca_pem: &str,
    cert: &str,
    key: &str,
) -> Result<FederationClient<Channel>, String> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name("localhost")
        .identity(Identity::from_pem(cert, key));
    let endpoint = Endpoint::from_shared(format!("https://{}", node.running.federation_addr))
        .unwrap()
        .tls_config(tls)
        .map_err(|e| e.to_string())?;
    let channel = endpoint.connect().await.map_err(|e| format!("{e:?}"))?;
    Ok(FederationClient::new(channel))
}

/// Says hello with `cert`; the member id the node read from it, or why not.
async fn hello(node: &TestNode, ca_pem: &str, cert: &str, key: &str) -> Result<String, String> {
    let mut client = peer_client(node, ca_pem, cert, key).await?;
    let reply = client
        .hello(HelloRequest { protocol_version: PROTOCOL_VERSION, limits: None })
        .await
        .map_err(|e| format!("{e:?}"))?;
    Ok(reply.into_inner().peer_member_id)
}

fn ca_pem(fed: &TestFederation) -> String {
    fed.federation.file().ca_cert.clone()
}

fn keys(dir: &Path) -> NodeKeys {
    identity::load_node(dir).unwrap()
}

/// Checks for a new CRL every second instead of every 30.
fn fast_crl_reload(dir: &Path) {
    let config = std::fs::read_to_string(dir.join("node.toml")).unwrap();
    assert!(config.contains("crl_reload_secs = 30"), "{config}");
    std::fs::write(dir.join("node.toml"), config.replace("crl_reload_secs = 30", "crl_reload_secs = 1")).unwrap();
}

fn revoked_status(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::PermissionDenied && status.message().contains("revoked")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_member_is_cut_off_on_every_rpc_and_receives_nothing_after_its_revocation() {
    let fed = TestFederation::new();
    // B will be revoked; A dials B, C dials A. No CRL anywhere: only the revocation record acts.
    let b_dir = fed.admit_node("b");
    let b = TestNode::start(&b_dir).await;
    let mut a = TestNode::start_with_peers(&fed.admit_node("a"), &[&b]).await;
    let c = TestNode::start_with_peers(&fed.admit_node("c"), &[&a]).await;
    let b_keys = keys(&b_dir);
    let b_member = b_keys.admission.member_id.clone();
    let ca = ca_pem(&fed);
    let mut raw = peer_client(&a, &ca, &b_keys.admission.certificate, &b_keys.tls_key).await.unwrap();
    let mut live = raw.subscribe(proto::SubscribeRequest {}).await.expect("b may subscribe before").into_inner();
    wait_for("A's link to B and C's link to A", || {
        let mut a = a.client.clone();
        async move {
            let peers = a.status(proto::StatusRequest {}).await.unwrap().into_inner().peers;
            peers.iter().filter(|p| p.connected).count() >= 2
        }
    })
    .await;

    let now = unix_now();
    let revoked = fed.federation.revoke_member(&b_member, now - now % HOUR, "left the federation", now).unwrap();
    assert!(a.import(vec![revoked.envelope]).await[0].error.is_empty());

    // Records stored before the revocation may still be in flight; then the stream must end.
    let ended = tokio::time::timeout(CUT_OFF_DEADLINE, async {
        loop {
            match live.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the stream closed without saying why"),
                Err(refusal) => return refusal,
            }
        }
    });
    let refusal = ended.await.expect("the open stream ended at once");
    assert!(revoked_status(&refusal), "{refusal:?}");
    let hello = raw.hello(HelloRequest { protocol_version: PROTOCOL_VERSION, limits: None }).await.unwrap_err();
    assert!(revoked_status(&hello), "hello: {hello:?}");
    let reconcile = raw.reconcile(tokio_stream::pending::<proto::ReconcileMessage>()).await.unwrap_err();
    assert!(revoked_status(&reconcile), "reconcile: {reconcile:?}");
    let fetch = raw.fetch(proto::FetchRequest { ids: vec![vec![0; 32]] }).await.unwrap_err();
    assert!(revoked_status(&fetch), "fetch: {fetch:?}");
    let push = raw.push(proto::RecordBatch::default()).await.unwrap_err();
    assert!(revoked_status(&push), "push: {push:?}");
    let subscribe = raw.subscribe(proto::SubscribeRequest {}).await.unwrap_err();
    assert!(revoked_status(&subscribe), "subscribe: {subscribe:?}");

    // AMBER goes to direct peers only: C, a neighbour, gets it; B, a neighbour revoked, does not.
    let mut amber = indicator("amber-after-revocation.example", 4);
    amber.tlp = Tlp::Amber.code();
    let id = a.publish_ok(amber).await;
    c.wait_for_matches("amber-after-revocation.example", 1).await;
    let mut b = b;
    assert!(!b.indicator_ids().await.contains(&id), "the revoked member received a record after its revocation");

    let peers = a.status().await.peers;
    let dialed = peers.iter().find(|p| p.dialed && p.member_id == b_member).expect("A's link to B");
    assert!(dialed.revoked_at > 0 && !dialed.connected, "{dialed:?}");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cirfed"))
        .args(["status", "--api", &a.running.api_addr.to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("revoked at"), "{text}");
    for node in [a, b, c] {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_crl_that_federation_revoke_writes_reaches_every_node_of_a_line_without_a_file_copy() {
    let fed = TestFederation::new();
    let c = TestNode::start(&fed.admit_node("c")).await;
    let b = TestNode::start_with_peers(&fed.admit_node("b"), &[&c]).await;
    let mut a = TestNode::start_with_peers(&fed.admit_node("a"), &[&b]).await;
    let d = keys(&fed.admit_node("d"));
    let ca = ca_pem(&fed);
    assert_eq!(hello(&c, &ca, &d.admission.certificate, &d.tls_key).await.unwrap(), d.admission.member_id);

    let now = unix_now();
    let revoked = fed.federation.revoke_member(&d.admission.member_id, now - now % HOUR, "key leaked", now).unwrap();
    assert_eq!(revoked.crl_serials, 1);
    assert!(fed.root.path().join("operator").join(identity::CRL_FILE).exists(), "the operator keeps the crl");
    assert!(a.import(vec![revoked.envelope]).await[0].error.is_empty());
    for node in [&a, &b, &c] {
        wait_for("the revocation's crl installed", || {
            let mut client = node.client.clone();
            async move {
                let trust = client.status(proto::StatusRequest {}).await.unwrap().into_inner().trust.unwrap();
                trust.crl_number > 0 && trust.crl_source == "record" && trust.crl_revoked == 1
            }
        })
        .await;
        assert!(node.dir.join(identity::CRL_FILE).exists(), "kept on disk for restarts");
    }
    // The certificate is now refused at the TLS layer, before any RPC.
    let refused = hello(&c, &ca, &d.admission.certificate, &d.tls_key).await.unwrap_err();
    assert!(!refused.contains("PermissionDenied"), "refused by tls, not by the rpc: {refused}");
    for node in [a, b, c] {
        node.stop().await;
    }
}

/// The node's CRL status, once `check` holds (polled up to the harness deadline).
async fn wait_for_trust(
    node: &TestNode,
    what: &str,
    check: impl Fn(&proto::TrustStatus) -> bool,
) -> proto::TrustStatus {
    let started = std::time::Instant::now();
    let mut client = node.client.clone();
    loop {
        let trust = client.status(proto::StatusRequest {}).await.unwrap().into_inner().trust.unwrap();
        if check(&trust) {
            return trust;
        }
        assert!(started.elapsed() < common::DEADLINE, "timed out waiting for {what}: {trust:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crl_that_is_expired_forged_or_from_the_future_is_refused_and_the_last_good_one_stays() {
    let fed = TestFederation::new();
    let dir = fed.admit_node("a");
    fast_crl_reload(&dir);
    let node = TestNode::start(&dir).await;
    let ca = ca_pem(&fed);
    let now = unix_now();
    let (revoked_cert, revoked_key) = member_certificate(&fed, "m-revoked");
    let (honest_cert, honest_key) = member_certificate(&fed, "m-honest");
    let serial = pki::cert_info(&revoked_cert).unwrap().serial_hex;
    let good = pki::create_crl(fed.federation.ca(), std::slice::from_ref(&serial), now - 60, now + HOUR, 10).unwrap();
    std::fs::write(dir.join(identity::CRL_FILE), good).unwrap();
    wait_for_trust(&node, "the good crl", |t| t.crl_number == 10).await;

    let impostor = pki::create_ca("test-federation", 30).unwrap();
    let bad = [
        ("expired", pki::create_crl(fed.federation.ca(), &[], now - 2 * HOUR, now - HOUR, 11).unwrap(), "has passed"),
        ("forged", pki::create_crl(&impostor, &[], now - 60, now + HOUR, 12).unwrap(), "does not verify"),
        ("future", pki::create_crl(fed.federation.ca(), &[], now + HOUR, now + 2 * HOUR, 13).unwrap(), "in the future"),
    ];
    for (what, crl, reason) in bad {
        std::fs::write(dir.join(identity::CRL_FILE), crl).unwrap();
        let trust = wait_for_trust(&node, &format!("the {what} crl refused"), |t| t.crl_refused.contains(reason)).await;
        assert_eq!(trust.crl_number, 10, "{what}: the last good crl stays in force");
        assert!(hello(&node, &ca, &revoked_cert, &revoked_key).await.is_err(), "{what}: still revoked");
        assert_eq!(
            hello(&node, &ca, &honest_cert, &honest_key).await.unwrap(),
            "m-honest",
            "{what}: honest peers stay"
        );
    }
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_whose_last_good_crl_goes_stale_keeps_serving_and_says_so() {
    let fed = TestFederation::new();
    let dir = fed.admit_node("a");
    fast_crl_reload(&dir);
    let node = TestNode::start(&dir).await;
    let ca = ca_pem(&fed);
    let now = unix_now();
    let (revoked_cert, revoked_key) = member_certificate(&fed, "m-revoked");
    let (honest_cert, honest_key) = member_certificate(&fed, "m-honest");
    let serial = pki::cert_info(&revoked_cert).unwrap().serial_hex;
    let short = pki::create_crl(fed.federation.ca(), &[serial], now - 60, now + 3, 20).unwrap();
    std::fs::write(dir.join(identity::CRL_FILE), short).unwrap();
    wait_for_trust(&node, "the short-lived crl", |t| t.crl_number == 20).await;
    let trust =
        wait_for_trust(&node, "a stale-crl warning", |t| t.warnings.iter().any(|w| w.contains("next update"))).await;
    assert_eq!(trust.crl_number, 20);
    assert_eq!(hello(&node, &ca, &honest_cert, &honest_key).await.unwrap(), "m-honest", "keeps serving");
    assert!(hello(&node, &ca, &revoked_cert, &revoked_key).await.is_err(), "with the revocations it lists");
    node.stop().await;
}

/// A client certificate for `member` from the federation CA, valid for an hour either side.
fn member_certificate(fed: &TestFederation, member: &str) -> (String, String) {
    let now = unix_now();
    let (key, csr) = pki::create_node_key_and_csr(member, &["localhost".into()]).unwrap();
    let issued = pki::issue_node_cert_with_validity(
        fed.federation.ca(),
        &csr,
        member,
        now - HOUR,
        now + HOUR,
        CertUsage::ClientAndServer,
    )
    .unwrap();
    (issued.cert_pem, key)
}
