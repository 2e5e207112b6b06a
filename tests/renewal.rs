//! Renewal with no downtime, on real nodes over mutual TLS: `node renew`,
//! `federation admit --renew` and `node join` give a running node a new
//! certificate and card, served from its next handshake, while a live stream
//! opened before keeps flowing.

mod common;

use cirfed::cir::Role;
use cirfed::identity::{self, pki, renewal};
use cirfed::node::unix_now;
use cirfed::proto::{self, federation_client::FederationClient};
use common::{indicator, wait_for, TestFederation, TestNode};
use std::path::Path;
use std::sync::Arc;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// Checks for a renewed admission every second instead of every 30.
fn fast_reload(dir: &Path) {
    let config = std::fs::read_to_string(dir.join("node.toml")).unwrap();
    assert!(config.contains("crl_reload_secs = 30"), "{config}");
    std::fs::write(dir.join("node.toml"), config.replace("crl_reload_secs = 30", "crl_reload_secs = 1")).unwrap();
}

/// The serial of the certificate `node`'s peer listener presents in a new handshake.
async fn served_serial(node: &TestNode, client: &identity::NodeKeys) -> String {
    let ca = &client.admission.federation.ca_cert;
    let config = pki::client_config(ca, &client.admission.certificate, &client.tls_key).unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(node.running.federation_addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.expect("handshake");
    let der = tls.get_ref().1.peer_certificates().expect("a server certificate")[0].clone();
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, der.as_ref())
    );
    pki::cert_info(&pem).unwrap().serial_hex
}

/// A client of `node`'s peer service authenticated as `client`.
async fn peer_client(node: &TestNode, client: &identity::NodeKeys) -> FederationClient<Channel> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&client.admission.federation.ca_cert))
        .domain_name("localhost")
        .identity(Identity::from_pem(&client.admission.certificate, &client.tls_key));
    let endpoint =
        Endpoint::from_shared(format!("https://{}", node.running.federation_addr)).unwrap().tls_config(tls).unwrap();
    FederationClient::new(endpoint.connect().await.unwrap())
}

/// Waits for the next record on a live stream whose indicator has `value`.
async fn next_indicator(live: &mut tonic::Streaming<proto::RecordBatch>, value: &str) {
    let found = tokio::time::timeout(common::DEADLINE, async {
        while let Some(batch) = live.message().await.expect("the live stream keeps flowing") {
            for envelope in batch.envelopes {
                let record = <proto::Record as prost::Message>::decode(envelope.record.as_slice()).unwrap();
                if let Some(proto::record::Body::Indicator(i)) = record.body {
                    if i.value == value {
                        return true;
                    }
                }
            }
        }
        false
    });
    assert!(found.await.expect("the record came on the stream in time"), "the stream ended");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_renewed_certificate_is_served_from_the_next_handshake_while_a_live_stream_keeps_flowing() {
    let fed = TestFederation::new();
    let a_dir = fed.admit_node("a");
    let mut a = TestNode::start(&a_dir).await;
    let b_dir = fed.admit_node("b");
    fast_reload(&b_dir);
    let mut b = TestNode::start_with_peers(&b_dir, &[&a]).await;
    let a_keys = identity::load_node(&a_dir).unwrap();
    let old = identity::load_node(&b_dir).unwrap();
    let old_serial = pki::cert_info(&old.admission.certificate).unwrap().serial_hex;
    assert_eq!(served_serial(&b, &a_keys).await, old_serial);
    // A's raw session to B, opened before the renewal, must outlive it.
    let mut live = peer_client(&b, &a_keys).await.subscribe(proto::SubscribeRequest {}).await.unwrap().into_inner();
    let card_until = b.status().await.trust.unwrap().card_valid_until;

    let request = renewal::renew_node(&b_dir, false, false).unwrap();
    assert_eq!(request.member_id, old.admission.member_id);
    let renewed = fed.federation.renew(&request, &[Role::Publish, Role::Read], 90, unix_now()).unwrap();
    identity::join_node(&b_dir, &renewed, false).expect("a renewal installs over the current admission");
    let new_serial = pki::cert_info(&renewed.certificate).unwrap().serial_hex;
    assert_ne!(new_serial, old_serial);

    wait_for("B to serve its renewed certificate", || async { served_serial(&b, &a_keys).await == new_serial }).await;
    wait_for("B's status to show the renewed card", || {
        let mut b = b.client.clone();
        async move {
            let trust = b.status(proto::StatusRequest {}).await.unwrap().into_inner().trust.unwrap();
            trust.card_valid_until > card_until
        }
    })
    .await;
    assert_eq!(identity::load_node(&b_dir).unwrap().admission.member_id, old.admission.member_id);

    // The session opened with B's old certificate still streams; B's link to A carries new records.
    b.publish_ok(indicator("after-renewal.example", 3)).await;
    next_indicator(&mut live, "after-renewal.example").await;
    a.wait_for_matches("after-renewal.example", 1).await;
    // A new session with A presents B's new certificate and is accepted.
    a.publish_ok(indicator("to-renewed.example", 3)).await;
    b.wait_for_matches("to-renewed.example", 1).await;
    b.stop().await;
    a.stop().await;
}

#[test]
fn a_renewal_request_signed_by_another_key_or_for_a_revoked_member_is_refused() {
    let fed = TestFederation::new();
    let dir = fed.admit_node("a");
    let member = identity::load_node(&dir).unwrap().admission.member_id;
    renewal::renew_node(&dir, false, false).unwrap();
    assert!(renewal::renew_node(&dir, false, false).is_err(), "a waiting renewal is not replaced without --force");
    let request = renewal::renew_node(&dir, true, false).unwrap();

    let mut forged = request.clone();
    forged.csr = renewal::renew_node(&fed.admit_node("b"), false, false).unwrap().csr;
    let error = fed.federation.renew(&forged, &[Role::Read], 30, unix_now()).unwrap_err();
    assert!(error.to_string().contains("proof does not verify"), "{error}");

    let now = unix_now();
    fed.federation.revoke_member(&member, now, "compromised", now).unwrap();
    let error = fed.federation.renew(&request, &[Role::Read], 30, now).unwrap_err();
    assert!(error.to_string().contains("revoked"), "{error}");
}

/// A node admitted for `valid_days`.
fn admit_for(fed: &TestFederation, name: &str, valid_days: u32) -> std::path::PathBuf {
    let dir = fed.root.path().join(name);
    let request = identity::init_node(&dir, name, &["localhost".into(), "127.0.0.1".into()], false).unwrap();
    let admission = fed.federation.admit(&request, &[Role::Publish, Role::Read], valid_days, unix_now()).unwrap();
    identity::join_node(&dir, &admission, false).unwrap();
    dir
}

async fn trust_of(node: &TestNode) -> proto::TrustStatus {
    let mut client = node.client.clone();
    client.status(proto::StatusRequest {}).await.unwrap().into_inner().trust.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_warns_in_status_from_the_configured_days_before_its_certificate_and_card_expire() {
    let fed = TestFederation::new();
    let soon = TestNode::start(&admit_for(&fed, "soon", 10)).await;
    let later = TestNode::start(&admit_for(&fed, "later", 400)).await;
    wait_for("both nodes to report their expiry", || async {
        trust_of(&soon).await.card_valid_until > 0 && trust_of(&later).await.card_valid_until > 0
    })
    .await;
    let warnings = trust_of(&soon).await.warnings;
    for what in ["tls certificate", "member card"] {
        assert!(
            warnings.iter().any(|w| w.contains(what) && w.contains("cirfed node renew")),
            "{what} not warned of: {warnings:?}"
        );
    }
    assert!(trust_of(&later).await.warnings.is_empty(), "400 days out is past the 30-day default");
    soon.stop().await;
    later.stop().await;
}
