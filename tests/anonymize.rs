//! Scrubbing on real nodes: what a dry run shows is what peers receive, byte
//! for byte; sensitive values are redacted, hashed or refused before signing.

mod common;

use cirfed::anonymize::{detectors::Detector, Action};
use cirfed::cir::Tlp;
use cirfed::config::ConfigFile;
use cirfed::proto::{self, draft, Draft, Lesson};
use common::{indicator, wait_for, TestFederation, TestNode};
use std::path::Path;

/// Sets the node's scrub policy: organisation names, and overrides per detector.
fn set_policy(dir: &Path, names: &[&str], text: &[(Detector, Action)]) {
    let mut config = ConfigFile::load(dir).unwrap();
    config.publish.scrub.names = names.iter().map(|n| n.to_string()).collect();
    config.publish.scrub.text.extend(text.iter().copied());
    std::fs::write(dir.join("node.toml"), config.to_toml()).unwrap();
}

fn described(value: &str, description: &str) -> Draft {
    let mut draft = indicator(value, 3);
    if let Some(draft::Body::Indicator(i)) = &mut draft.body {
        i.description = description.into();
    }
    draft
}

fn lesson(summary: &str) -> Draft {
    Draft {
        tlp: Tlp::Green.code(),
        body: Some(draft::Body::Lesson(Lesson {
            title: "Exposed admin console".into(),
            summary: summary.into(),
            cir_level: 3,
            went_well: vec!["paged on-call at jane.doe@globex.example within 5 minutes".into()],
            ..Default::default()
        })),
    }
}

async fn dry_run(node: &mut TestNode, drafts: Vec<Draft>) -> Vec<proto::Outcome> {
    let request = proto::PublishRequest { drafts, dry_run: true };
    node.client.publish(request).await.expect("publish rpc").into_inner().outcomes
}

async fn stored_bytes(node: &mut TestNode, id: &[u8]) -> Vec<u8> {
    let stored = node.client.get(proto::GetRequest { id: id.to_vec() }).await.expect("get rpc").into_inner();
    stored.envelope.expect("envelope").record
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_output_is_byte_for_byte_what_peers_receive() {
    let fed = TestFederation::new();
    let a_dir = fed.admit_node("a");
    set_policy(&a_dir, &["Globex Bank"], &[]);
    let mut b = TestNode::start(&fed.admit_node("b")).await;
    let mut a = TestNode::start_with_peers(&a_dir, &[&b]).await;
    let drafts = || {
        vec![
            described("45.33.32.156", "C2 for Globex Bank hosts; lateral movement to 10.4.0.12 and db1.corp"),
            lesson("Attacker used token=hunter2hunter2 from 185.220.101.4 against vault.internal"),
        ]
    };
    let records = records_published_as_dry_run_said(&mut a, drafts).await;
    for (id, bytes) in &records {
        wait_for("the record at the peer", || {
            let mut b = b.client.clone();
            let id = id.clone();
            async move { b.get(proto::GetRequest { id }).await.is_ok() }
        })
        .await;
        assert_eq!(&stored_bytes(&mut b, id).await, bytes, "the peer holds exactly the dry run's bytes");
        let text = String::from_utf8_lossy(bytes);
        for secret in ["Globex", "10.4.0.12", "db1.corp", "hunter2", "vault.internal", "jane.doe"] {
            assert!(!text.contains(secret), "{secret} left the node: {text}");
        }
    }
    a.stop().await;
    b.stop().await;
}

/// Dry-runs then publishes the same drafts; returns (id, record bytes) of
/// each, checking the dry run named the same record. Retries when the hour
/// (the time granularity) turns between the two calls.
async fn records_published_as_dry_run_said(
    node: &mut TestNode,
    drafts: impl Fn() -> Vec<Draft>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    for _ in 0..3 {
        let dry = dry_run(node, drafts()).await;
        assert!(dry.iter().all(|o| o.error.is_empty() && !o.redactions.is_empty()), "{dry:?}");
        let published = node.publish(drafts()).await;
        if dry.iter().zip(&published).all(|(d, p)| d.id == p.id) {
            for (d, p) in dry.iter().zip(&published) {
                assert_eq!(d.redactions, p.redactions, "publish reports the dry run's redactions");
                assert_eq!(stored_bytes(node, &p.id).await, d.record);
            }
            return dry.into_iter().map(|o| (o.id, o.record)).collect();
        }
    }
    panic!("the dry run and the publish never named the same records");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_signs_and_stores_nothing() {
    let fed = TestFederation::new();
    let mut a = TestNode::start(&fed.admit_node("a")).await;
    let before = a.status().await.records;
    let outcomes = dry_run(&mut a, vec![described("evil.example", "seen from 192.168.4.20")]).await;
    assert_eq!(outcomes[0].redactions[0].detector, "private_ip");
    assert_eq!(outcomes[0].redactions[0].replacement, "[redacted:private_ip]");
    assert!(!outcomes[0].created);
    assert_eq!(a.status().await.records, before);
    assert!(a.matches("evil.example").await.is_empty());
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_internal_indicator_is_refused_naming_its_detector_and_nothing_is_stored() {
    let fed = TestFederation::new();
    let mut a = TestNode::start(&fed.admit_node("a")).await;
    let before = a.status().await.records;
    for (value, detector) in [("10.1.2.3", "private_ip"), ("build01.corp", "internal_host"), ("fd00::1", "private_ip")]
    {
        let outcome = a.publish(vec![indicator(value, 3)]).await.remove(0);
        assert_eq!(outcome.error_code, "refused_by_scrub_policy", "{value}");
        assert!(outcome.error.contains(detector), "{}", outcome.error);
        assert_eq!(outcome.redactions[0].action, "refuse");
    }
    assert_eq!(a.status().await.records, before);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_text_policy_of_refuse_blocks_the_record() {
    let fed = TestFederation::new();
    let dir = fed.admit_node("a");
    set_policy(&dir, &["Initech"], &[(Detector::OrgName, Action::Refuse)]);
    let mut a = TestNode::start(&dir).await;
    let outcome = a.publish(vec![described("evil.example", "phishing aimed at Initech staff")]).await.remove(0);
    assert_eq!(outcome.error_code, "refused_by_scrub_policy");
    assert!(outcome.error.contains("indicator.description") && outcome.error.contains("org_name"), "{}", outcome.error);
    assert!(a.matches("evil.example").await.is_empty());
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_email_indicator_is_shared_as_a_keyed_hash_that_peers_match_by_value() {
    let fed = TestFederation::new();
    let mut b = TestNode::start(&fed.admit_node("b")).await;
    let mut a = TestNode::start_with_peers(&fed.admit_node("a"), &[&b]).await;
    let outcome = a.publish(vec![indicator("Billing@Phish-Invoices.example", 3)]).await.remove(0);
    assert!(outcome.error.is_empty(), "{}", outcome.error);
    assert_eq!(outcome.redactions[0].action, "keyed_hash");
    b.wait_for_matches("billing@phish-invoices.example", 1).await;
    let bytes = stored_bytes(&mut b, &outcome.id).await;
    assert!(!String::from_utf8_lossy(&bytes).contains("phish-invoices"), "the address itself never left A");
    let reply = b.lookup(&["other@phish-invoices.example"]).await;
    assert!(reply.results.iter().all(|r| r.matches.is_empty()));
    a.stop().await;
    b.stop().await;
}
