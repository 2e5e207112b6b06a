//! The peer service of real nodes over mutual TLS on 127.0.0.1.

mod common;

use cirfed::federation::PROTOCOL_VERSION;
use cirfed::identity::pki::{self, CertUsage};
use cirfed::node::unix_now;
use cirfed::proto::{federation_client::FederationClient, HelloRequest};
use common::{TestFederation, TestNode};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// A TLS client of a node's peer service, presenting `identity` (or nothing).
async fn peer_client(
    node: &TestNode,
    ca_pem: &str,
    identity: Option<(&str, &str)>,
) -> Result<FederationClient<Channel>, String> {
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca_pem)).domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    let endpoint = Endpoint::from_shared(format!("https://{}", node.running.federation_addr))
        .unwrap()
        .tls_config(tls)
        .map_err(|e| e.to_string())?;
    let channel = endpoint.connect().await.map_err(|e| format!("{e:?}"))?;
    Ok(FederationClient::new(channel))
}

/// Says hello; returns the member id the node read from our certificate.
async fn hello(node: &TestNode, ca_pem: &str, identity: Option<(&str, &str)>) -> Result<String, String> {
    let mut client = peer_client(node, ca_pem, identity).await?;
    let reply = client
        .hello(HelloRequest { protocol_version: PROTOCOL_VERSION, limits: None })
        .await
        .map_err(|e| format!("{e:?}"))?;
    Ok(reply.into_inner().peer_member_id)
}

/// A key and a certificate for it from `ca`, valid over [not_before, not_after].
fn certificate(
    ca: &pki::FederationCa,
    member: &str,
    not_before: i64,
    not_after: i64,
    usage: CertUsage,
) -> (String, String) {
    let (key, csr) = pki::create_node_key_and_csr(member, &["localhost".into()]).unwrap();
    let issued = pki::issue_node_cert_with_validity(ca, &csr, member, not_before, not_after, usage).unwrap();
    (issued.cert_pem, key)
}

fn ca_pem(fed: &TestFederation) -> String {
    fed.federation.file().ca_cert.clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_presenting_its_federation_certificate_is_named_by_it() {
    let fed = TestFederation::new();
    let node = TestNode::start(&fed.admit_node("a")).await;
    let b = cirfed::identity::load_node(&fed.admit_node("b")).unwrap();
    let named = hello(&node, &ca_pem(&fed), Some((&b.admission.certificate, &b.tls_key))).await.unwrap();
    assert_eq!(named, b.admission.member_id);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_peer_without_a_client_certificate_is_refused() {
    let fed = TestFederation::new();
    let node = TestNode::start(&fed.admit_node("a")).await;
    assert!(hello(&node, &ca_pem(&fed), None).await.is_err());
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_from_another_ca_is_refused() {
    let fed = TestFederation::new();
    let node = TestNode::start(&fed.admit_node("a")).await;
    let other = TestFederation::new();
    let now = unix_now();
    let (cert, key) =
        certificate(other.federation.ca(), "m-stranger", now - 3600, now + 3600, CertUsage::ClientAndServer);
    assert!(hello(&node, &ca_pem(&fed), Some((&cert, &key))).await.is_err());
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_certificate_is_refused() {
    let fed = TestFederation::new();
    let node = TestNode::start(&fed.admit_node("a")).await;
    let now = unix_now();
    let (cert, key) = certificate(fed.federation.ca(), "m-expired", now - 7200, now - 3600, CertUsage::ClientAndServer);
    assert!(hello(&node, &ca_pem(&fed), Some((&cert, &key))).await.is_err());
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_only_certificate_cannot_be_used_as_a_client() {
    let fed = TestFederation::new();
    let node = TestNode::start(&fed.admit_node("a")).await;
    let now = unix_now();
    let (cert, key) = certificate(fed.federation.ca(), "m-server", now - 3600, now + 3600, CertUsage::ServerOnly);
    assert!(hello(&node, &ca_pem(&fed), Some((&cert, &key))).await.is_err());
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_on_the_operators_crl_is_refused_and_others_still_pass() {
    let fed = TestFederation::new();
    let dir = fed.admit_node("a");
    let now = unix_now();
    let (revoked_cert, revoked_key) =
        certificate(fed.federation.ca(), "m-revoked", now - 3600, now + 3600, CertUsage::ClientAndServer);
    let (good_cert, good_key) =
        certificate(fed.federation.ca(), "m-good", now - 3600, now + 3600, CertUsage::ClientAndServer);
    let serial = pki::cert_info(&revoked_cert).unwrap().serial_hex;
    let crl = pki::create_crl(fed.federation.ca(), &[serial], now - 60, now + 3600, 1).unwrap();
    std::fs::write(dir.join(cirfed::identity::CRL_FILE), crl).unwrap();
    let node = TestNode::start(&dir).await;
    assert!(hello(&node, &ca_pem(&fed), Some((&revoked_cert, &revoked_key))).await.is_err());
    assert_eq!(hello(&node, &ca_pem(&fed), Some((&good_cert, &good_key))).await.unwrap(), "m-good");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_peer_speaking_another_protocol_version_is_told_so() {
    let fed = TestFederation::new();
    let node = TestNode::start(&fed.admit_node("a")).await;
    let b = cirfed::identity::load_node(&fed.admit_node("b")).unwrap();
    let mut client = peer_client(&node, &ca_pem(&fed), Some((&b.admission.certificate, &b.tls_key))).await.unwrap();
    let status = client.hello(HelloRequest { protocol_version: PROTOCOL_VERSION + 1, limits: None }).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    assert!(status.message().contains("version"), "{}", status.message());
    node.stop().await;
}

/// An indicator draft with the given TLP.
fn with_tlp(value: &str, tlp: cirfed::cir::Tlp) -> cirfed::proto::Draft {
    let mut draft = common::indicator(value, 3);
    draft.tlp = tlp.code();
    draft
}

#[tokio::test(flavor = "multi_thread")]
async fn records_published_on_either_side_reach_the_other() {
    let fed = TestFederation::new();
    let mut b = TestNode::start(&fed.admit_node("b")).await;
    let mut a = TestNode::start_with_peers(&fed.admit_node("a"), &[&b]).await;
    a.publish_ok(common::indicator("from-a.example", 3)).await;
    b.wait_for_matches("from-a.example", 1).await;
    b.publish_ok(common::indicator("from-b.example", 3)).await;
    a.wait_for_matches("from-b.example", 1).await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn in_a_line_green_floods_amber_stays_with_neighbours_and_red_stays_home() {
    use cirfed::cir::Tlp;
    let fed = TestFederation::new();
    let c = TestNode::start(&fed.admit_node("c")).await;
    let b = TestNode::start_with_peers(&fed.admit_node("b"), &[&c]).await;
    let mut a = TestNode::start_with_peers(&fed.admit_node("a"), &[&b]).await;
    a.publish_ok(with_tlp("amber.example", Tlp::Amber)).await;
    a.publish_ok(with_tlp("red.example", Tlp::Red)).await;
    a.publish_ok(with_tlp("green.example", Tlp::Green)).await;
    c.wait_for_matches("green.example", 1).await;
    b.wait_for_matches("amber.example", 1).await;
    // A sends in order, so once GREEN is at C, AMBER and RED had their chance.
    c.wait_for_matches("amber.example", 0).await;
    b.wait_for_matches("red.example", 0).await;
    c.wait_for_matches("red.example", 0).await;
    a.wait_for_matches("red.example", 1).await;
    for node in [a, b, c] {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_that_was_down_catches_up_when_it_returns() {
    let fed = TestFederation::new();
    let mut a = TestNode::start(&fed.admit_node("a")).await;
    let b_dir = fed.admit_node("b");
    let b = TestNode::start_with_peers(&b_dir, &[&a]).await;
    a.publish_ok(common::indicator("before.example", 3)).await;
    b.wait_for_matches("before.example", 1).await;
    b.stop().await;
    let drafts = (0..50).map(|n| common::indicator(&format!("missed{n}.example"), 2)).collect();
    assert!(a.publish(drafts).await.iter().all(|o| o.error.is_empty()));
    let b = TestNode::start_with_peers(&b_dir, &[&a]).await;
    let expected = a.indicator_ids().await;
    assert_eq!(expected.len(), 51);
    common::wait_for("b to catch up", || {
        let (client, expected) = (b.client.clone(), expected.clone());
        async move { common::indicator_ids(client).await == expected }
    })
    .await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partition_heals_to_identical_record_sets() {
    let fed = TestFederation::new();
    let mut a = TestNode::start(&fed.admit_node("a")).await;
    let b_dir = fed.admit_node("b");
    let mut apart = TestNode::start(&b_dir).await;
    for n in 0..10 {
        a.publish_ok(common::indicator(&format!("a{n}.example"), 2)).await;
        apart.publish_ok(common::indicator(&format!("b{n}.example"), 2)).await;
    }
    apart.stop().await;
    let mut b = TestNode::start_with_peers(&b_dir, &[&a]).await;
    common::wait_for("both halves to hold the same records", || {
        let (a, b) = (a.client.clone(), b.client.clone());
        async move {
            let (a, b) = (common::indicator_ids(a).await, common::indicator_ids(b).await);
            a.len() == 20 && a == b
        }
    })
    .await;
    assert_eq!(a.indicator_ids().await, b.indicator_ids().await);
    a.stop().await;
    b.stop().await;
}

/// A signed record of `member` with the given TLP and body.
fn signed(
    member: &cirfed::record::Signer,
    tlp: cirfed::cir::Tlp,
    body: cirfed::proto::record::Body,
) -> cirfed::proto::Envelope {
    let record =
        cirfed::proto::Record { version: 1, author: vec![], created_at: unix_now(), tlp: tlp.code(), body: Some(body) };
    member.seal(record).1
}

fn domain_indicator(value: &str) -> cirfed::proto::record::Body {
    cirfed::proto::record::Body::Indicator(cirfed::proto::Indicator {
        r#type: i32::from(cirfed::normalize::ObservableType::Domain.code()),
        value: value.into(),
        cir_level: 3,
        confidence: 50,
        valid_until: unix_now() + 86_400,
        ..Default::default()
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_misbehaving_peer_is_refused_record_by_record_while_honest_records_flow() {
    use cirfed::cir::{Role, Tlp};
    use cirfed::proto::{Envelope, Lesson, RecordBatch};
    let fed = TestFederation::new();
    let mut a = TestNode::start(&fed.admit_node("a")).await;
    let b = cirfed::identity::load_node(&fed.admit_node("b")).unwrap();
    let b_signer = cirfed::record::Signer::new(b.signing.clone());
    let now = unix_now();
    let (d_signer, d_card) = fed.member(&[Role::Publish], now - 86_400, now + 86_400);
    let mut peer = peer_client(&a, &ca_pem(&fed), Some((&b.admission.certificate, &b.tls_key))).await.unwrap();

    let honest = signed(&b_signer, Tlp::Green, domain_indicator("honest.example"));
    let mut forged = signed(&b_signer, Tlp::Green, domain_indicator("forged.example"));
    forged.signature[3] ^= 0x10;
    let garbage = Envelope { record: vec![0xff; 40], signature: vec![0; 64] };
    let big = Lesson {
        title: "big".into(),
        cir_level: 2,
        summary: "x".repeat(cirfed::record::MAX_RECORD_BYTES),
        ..Default::default()
    };
    let oversized = signed(&b_signer, Tlp::Green, cirfed::proto::record::Body::Lesson(big));
    let red = signed(&b_signer, Tlp::Red, domain_indicator("red.example"));
    let relayed_amber = signed(&d_signer, Tlp::Amber, domain_indicator("someone-elses-amber.example"));
    let batch = vec![
        b.admission.card_envelope().unwrap(),
        d_card,
        honest.clone(),
        forged,
        garbage,
        oversized,
        red,
        relayed_amber,
    ];
    let reply =
        peer.push(RecordBatch { envelopes: batch, stem: false, ..Default::default() }).await.unwrap().into_inner();
    assert_eq!((reply.accepted, reply.refused), (3, 5), "two cards and the honest record");

    let records = a.status().await.records;
    let replay = peer
        .push(RecordBatch { envelopes: vec![honest], stem: false, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replay.refused, 0, "a replay is a no-op, not an error");
    assert_eq!(a.status().await.records, records, "and stores nothing twice");
    for refused in ["forged.example", "red.example", "someone-elses-amber.example"] {
        assert!(a.matches(refused).await.is_empty(), "{refused} must not be stored");
    }
    assert_eq!(a.matches("honest.example").await.len(), 1);

    let more = signed(&b_signer, Tlp::Green, domain_indicator("still-flowing.example"));
    assert_eq!(
        peer.push(RecordBatch { envelopes: vec![more], stem: false, ..Default::default() })
            .await
            .unwrap()
            .into_inner()
            .accepted,
        1
    );
    assert_eq!(a.matches("still-flowing.example").await.len(), 1);

    let too_many = vec![Envelope::default(); cirfed::federation::MAX_PEER_BATCH_RECORDS + 1];
    let status = peer.push(RecordBatch { envelopes: too_many, stem: false, ..Default::default() }).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn in_a_ring_of_four_a_record_published_anywhere_is_found_everywhere() {
    let fed = TestFederation::new();
    let a = TestNode::start(&fed.admit_node("a")).await;
    let b = TestNode::start_with_peers(&fed.admit_node("b"), &[&a]).await;
    let mut c = TestNode::start_with_peers(&fed.admit_node("c"), &[&b]).await;
    let d = TestNode::start_with_peers(&fed.admit_node("d"), &[&c, &a]).await;
    c.publish_ok(common::indicator("from-c.example", 3)).await;
    for node in [&a, &b, &d] {
        node.wait_for_matches("from-c.example", 1).await;
    }
    let mut a = a;
    a.publish_ok(common::indicator("from-a.example", 3)).await;
    for node in [&b, &c, &d] {
        node.wait_for_matches("from-a.example", 1).await;
    }
    for node in [a, b, c, d] {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_peer_past_the_misbehaviour_threshold_is_cut_off_and_others_are_not() {
    use cirfed::federation::scoring::MISBEHAVIOUR_THRESHOLD;
    use cirfed::proto::{Envelope, RecordBatch};
    let fed = TestFederation::new();
    let a = TestNode::start(&fed.admit_node("a")).await;
    let bad = cirfed::identity::load_node(&fed.admit_node("bad")).unwrap();
    let good = cirfed::identity::load_node(&fed.admit_node("good")).unwrap();
    let mut peer = peer_client(&a, &ca_pem(&fed), Some((&bad.admission.certificate, &bad.tls_key))).await.unwrap();
    let garbage = vec![Envelope { record: vec![0xff; 8], signature: vec![0; 64] }; MISBEHAVIOUR_THRESHOLD as usize];
    let reply =
        peer.push(RecordBatch { envelopes: garbage, stem: false, ..Default::default() }).await.unwrap().into_inner();
    assert_eq!(reply.refused, MISBEHAVIOUR_THRESHOLD);
    let status = peer.hello(HelloRequest { protocol_version: PROTOCOL_VERSION, limits: None }).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    assert!(status.message().contains("cut off"), "{}", status.message());
    let named = hello(&a, &ca_pem(&fed), Some((&good.admission.certificate, &good.tls_key))).await.unwrap();
    assert_eq!(named, good.admission.member_id, "other peers are still served");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_peer_pushing_over_its_rate_is_told_to_slow_down() {
    use cirfed::cir::Tlp;
    use cirfed::proto::RecordBatch;
    let fed = TestFederation::new();
    let dir = fed.admit_node("a");
    let config = std::fs::read_to_string(dir.join("node.toml")).unwrap();
    assert!(config.contains("max_peer_records_per_second = 20000"), "{config}");
    std::fs::write(
        dir.join("node.toml"),
        config.replace("max_peer_records_per_second = 20000", "max_peer_records_per_second = 10"),
    )
    .unwrap();
    let a = TestNode::start(&dir).await;
    let b = cirfed::identity::load_node(&fed.admit_node("b")).unwrap();
    let b_signer = cirfed::record::Signer::new(b.signing.clone());
    let mut peer = peer_client(&a, &ca_pem(&fed), Some((&b.admission.certificate, &b.tls_key))).await.unwrap();
    let card = b.admission.card_envelope().unwrap();
    let record = signed(&b_signer, Tlp::Green, domain_indicator("rated.example"));
    let reply = peer
        .push(RecordBatch { envelopes: vec![card, record.clone()], stem: false, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.accepted, 2);
    let status =
        peer.push(RecordBatch { envelopes: vec![record; 11], stem: false, ..Default::default() }).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    assert!(status.message().contains("slow down"), "{}", status.message());
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn catch_up_spanning_many_fetch_batches_completes_in_one_anti_entropy_run() {
    let fed = TestFederation::new();
    let mut a = TestNode::start(&fed.admit_node("a")).await;
    let records = 2 * cirfed::federation::MAX_PEER_BATCH_RECORDS + 500;
    for chunk in (0..records).collect::<Vec<_>>().chunks(1000) {
        let drafts = chunk.iter().map(|n| common::indicator(&format!("bulk{n}.example"), 2)).collect();
        assert!(a.publish(drafts).await.iter().all(|o| o.error.is_empty()));
    }
    let expected = a.indicator_ids().await;
    let b = TestNode::start_with_peers(&fed.admit_node("b"), &[&a]).await;
    common::wait_for("b to hold every record of a", || {
        let (client, expected) = (b.client.clone(), expected.clone());
        async move { common::indicator_ids(client).await == expected }
    })
    .await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stem_hops_are_validated_in_full_and_only_clear_or_green_may_travel_in_one() {
    use cirfed::cir::Tlp;
    use cirfed::proto::RecordBatch;
    let fed = TestFederation::new();
    let mut a = TestNode::start(&fed.admit_node("a")).await;
    let b = cirfed::identity::load_node(&fed.admit_node("b")).unwrap();
    let b_signer = cirfed::record::Signer::new(b.signing.clone());
    let mut peer = peer_client(&a, &ca_pem(&fed), Some((&b.admission.certificate, &b.tls_key))).await.unwrap();
    let card = b.admission.card_envelope().unwrap();
    peer.push(RecordBatch { envelopes: vec![card], stem: false, ..Default::default() }).await.unwrap();

    let amber = signed(&b_signer, Tlp::Amber, domain_indicator("amber-stem.example"));
    let mut forged = signed(&b_signer, Tlp::Green, domain_indicator("forged-stem.example"));
    forged.signature[0] ^= 1;
    let honest = signed(&b_signer, Tlp::Green, domain_indicator("stemmed.example"));
    let reply = peer
        .push(RecordBatch { envelopes: vec![amber, forged, honest], stem: true, ..Default::default() })
        .await
        .unwrap();
    assert_eq!((reply.get_ref().accepted, reply.get_ref().refused), (1, 2));
    // A has no live peer to pass it on to (B only pushed), so the stem ends
    // at A and the record floods from there.
    a.wait_for_matches("stemmed.example", 1).await;
    for refused in ["amber-stem.example", "forged-stem.example"] {
        assert!(a.matches(refused).await.is_empty(), "{refused} must not be stored");
    }
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_peer_message_over_the_size_limit_is_refused_and_the_node_keeps_serving() {
    use cirfed::federation::MAX_PEER_MESSAGE_BYTES;
    use cirfed::proto::{Envelope, RecordBatch};
    let fed = TestFederation::new();
    let a = TestNode::start(&fed.admit_node("a")).await;
    let b = cirfed::identity::load_node(&fed.admit_node("b")).unwrap();
    let identity = Some((b.admission.certificate.as_str(), b.tls_key.as_str()));
    let mut peer = peer_client(&a, &ca_pem(&fed), identity).await.unwrap();
    // Fewer records than the batch limit, more bytes than the message limit.
    let chunk = 64 * 1024;
    let envelopes =
        vec![Envelope { record: vec![0x0a; chunk], signature: vec![0; 64] }; MAX_PEER_MESSAGE_BYTES / chunk + 1];
    let status = peer.push(RecordBatch { envelopes, ..Default::default() }).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains(&MAX_PEER_MESSAGE_BYTES.to_string()), "names the limit: {}", status.message());
    assert_eq!(hello(&a, &ca_pem(&fed), identity).await.unwrap(), b.admission.member_id);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_peer_gets_a_bounded_number_of_live_streams_and_reconciliations() {
    use cirfed::federation::{MAX_RECONCILES_PER_PEER, MAX_SUBSCRIPTIONS_PER_PEER};
    use cirfed::proto::{ReconcileMessage, SubscribeRequest};
    let fed = TestFederation::new();
    let a = TestNode::start(&fed.admit_node("a")).await;
    let b = cirfed::identity::load_node(&fed.admit_node("b")).unwrap();
    let identity = Some((b.admission.certificate.as_str(), b.tls_key.as_str()));
    let mut peer = peer_client(&a, &ca_pem(&fed), identity).await.unwrap();
    let mut streams = Vec::new();
    for _ in 0..MAX_SUBSCRIPTIONS_PER_PEER {
        streams.push(peer.subscribe(SubscribeRequest {}).await.unwrap());
    }
    let refused = peer.subscribe(SubscribeRequest {}).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted, "{refused:?}");
    assert!(refused.message().contains("live streams"), "{}", refused.message());
    let mut exchanges = Vec::new();
    for _ in 0..MAX_RECONCILES_PER_PEER {
        exchanges.push(peer.reconcile(tokio_stream::pending::<ReconcileMessage>()).await.unwrap());
    }
    let refused = peer.reconcile(tokio_stream::pending::<ReconcileMessage>()).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted, "{refused:?}");
    // A stream that ends gives its slot back.
    streams.pop();
    common::wait_for("a live stream slot to come back", || {
        let mut peer = peer.clone();
        async move { peer.subscribe(SubscribeRequest {}).await.is_ok() }
    })
    .await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crl_published_while_the_node_runs_is_enforced_from_the_next_handshake() {
    let fed = TestFederation::new();
    let dir = fed.admit_node("a");
    let config = std::fs::read_to_string(dir.join("node.toml")).unwrap();
    assert!(config.contains("crl_reload_secs = 30"), "{config}");
    std::fs::write(dir.join("node.toml"), config.replace("crl_reload_secs = 30", "crl_reload_secs = 1")).unwrap();
    let node = TestNode::start(&dir).await;
    let now = unix_now();
    let (cert, key) =
        certificate(fed.federation.ca(), "m-revoked-later", now - 3600, now + 3600, CertUsage::ClientAndServer);
    assert_eq!(hello(&node, &ca_pem(&fed), Some((&cert, &key))).await.unwrap(), "m-revoked-later");
    let serial = pki::cert_info(&cert).unwrap().serial_hex;
    let crl = pki::create_crl(fed.federation.ca(), &[serial], now - 60, now + 3600, 2).unwrap();
    std::fs::write(dir.join(cirfed::identity::CRL_FILE), crl).unwrap();
    common::wait_for("the new CRL to be enforced", || async {
        hello(&node, &ca_pem(&fed), Some((&cert, &key))).await.is_err()
    })
    .await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_reconciliation_messages_count_against_the_peer() {
    use cirfed::federation::scoring::MISBEHAVIOUR_THRESHOLD;
    use cirfed::proto::ReconcileMessage;
    let fed = TestFederation::new();
    let a = TestNode::start(&fed.admit_node("a")).await;
    let bad = cirfed::identity::load_node(&fed.admit_node("bad")).unwrap();
    let identity = Some((bad.admission.certificate.as_str(), bad.tls_key.as_str()));
    let mut peer = peer_client(&a, &ca_pem(&fed), identity).await.unwrap();
    for _ in 0..MISBEHAVIOUR_THRESHOLD {
        let garbage = tokio_stream::iter(vec![ReconcileMessage { payload: vec![0x61, 0x00, 0x00, 0x07] }]);
        let mut replies = peer.reconcile(garbage).await.unwrap().into_inner();
        let refused = replies.message().await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    }
    let status = peer.hello(HelloRequest { protocol_version: PROTOCOL_VERSION, limits: None }).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    a.stop().await;
}
