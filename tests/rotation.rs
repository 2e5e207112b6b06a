//! Key rotation on real nodes over mutual TLS: a sharing-key rotation loses
//! no keyed-hash match, and a signing-key rotation keeps what the old key
//! signed before its end while refusing what it signs after.

mod common;

use cirfed::cir::Role;
use cirfed::identity::{self, renewal};
use cirfed::node::unix_now;
use cirfed::normalize::ObservableType;
use cirfed::proto;
use cirfed::record::Signer;
use common::{indicator, signed_indicator, wait_for, TestFederation, TestNode};
use prost::Message;
use std::path::{Path, PathBuf};

const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

/// Checks for a renewed admission every second instead of every 30.
fn fast_reload(dir: &Path) {
    let config = std::fs::read_to_string(dir.join("node.toml")).unwrap();
    std::fs::write(dir.join("node.toml"), config.replace("crl_reload_secs = 30", "crl_reload_secs = 1")).unwrap();
}

/// Renews the node in `dir` as of `now`, optionally to a new signing key, and installs it.
fn renew(fed: &TestFederation, dir: &Path, rotate_signing_key: bool, now: i64) -> identity::Admission {
    let request = renewal::renew_node(dir, true, rotate_signing_key).unwrap();
    let admission = fed.federation.renew(&request, &[Role::Publish, Role::Read], 30, now).unwrap();
    identity::join_node(dir, &admission, false).unwrap();
    admission
}

/// A node admitted as of `now` (its card valid from that day).
fn admit_at(fed: &TestFederation, name: &str, now: i64) -> PathBuf {
    let dir = fed.root.path().join(name);
    let request = identity::init_node(&dir, name, &["localhost".into(), "127.0.0.1".into()], false).unwrap();
    let admission = fed.federation.admit(&request, &[Role::Publish, Role::Read], 30, now).unwrap();
    identity::join_node(&dir, &admission, false).unwrap();
    dir
}

async fn hash_epoch_of(node: &mut TestNode, id: &[u8]) -> u32 {
    let stored = node.client.get(proto::GetRequest { id: id.to_vec() }).await.unwrap().into_inner();
    let record = proto::Record::decode(stored.envelope.unwrap().record.as_slice()).unwrap();
    match record.body {
        Some(proto::record::Body::Indicator(indicator)) => {
            assert_eq!(indicator.r#type, i32::from(ObservableType::KeyedHash.code()));
            indicator.hash_epoch
        }
        other => panic!("not an indicator: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sharing_key_rotation_keeps_matching_keyed_hash_indicators_from_both_epochs() {
    let mut fed = TestFederation::new();
    let a_dir = fed.admit_node("a");
    fast_reload(&a_dir);
    let mut a = TestNode::start(&a_dir).await;
    let before = a.publish_ok(indicator("phish@before.example", 3)).await;
    assert_eq!(hash_epoch_of(&mut a, &before).await, 1);

    assert_eq!(fed.federation.rotate_sharing_key(unix_now()).unwrap().epoch, 2);
    let b_dir = fed.admit_node("b");
    let b_keys = identity::load_node(&b_dir).unwrap().admission.sharing_keys().unwrap();
    assert_eq!(b_keys.all().len(), 2, "an admission after the rotation carries both epochs");
    let mut b = TestNode::start_with_peers(&b_dir, &[&a]).await;
    let after = b.publish_ok(indicator("phish@after.example", 3)).await;
    assert_eq!(hash_epoch_of(&mut b, &after).await, 2);

    // B holds both epochs: it matches both, once A's record arrives.
    b.wait_for_matches("phish@before.example", 1).await;
    b.wait_for_matches("phish@after.example", 1).await;
    // A holds epoch 1 only until it renews; then it matches epoch 2 too, without a restart.
    a.wait_for_matches("phish@before.example", 1).await;
    assert!(a.matches("phish@after.example").await.is_empty(), "epoch 2 unknown to A before it renews");
    renew(&fed, &a_dir, false, unix_now());
    a.wait_for_matches("phish@after.example", 1).await;
    a.wait_for_matches("phish@before.example", 1).await;
    let renewed = a.publish_ok(indicator("phish@renewed.example", 3)).await;
    assert_eq!(hash_epoch_of(&mut a, &renewed).await, 2, "a renewed node hashes under the current epoch");
    b.wait_for_matches("phish@renewed.example", 1).await;
    a.stop().await;
    b.stop().await;
}

#[test]
fn a_revoked_member_receives_no_later_sharing_epoch() {
    let mut fed = TestFederation::new();
    let dir = fed.admit_node("a");
    let member = identity::load_node(&dir).unwrap().admission.member_id;
    let now = unix_now();
    fed.federation.revoke_member(&member, now, "left", now).unwrap();
    fed.federation.rotate_sharing_key(now).unwrap();
    let request = renewal::renew_node(&dir, false, false).unwrap();
    let refused = fed.federation.renew(&request, &[Role::Read], 30, now).unwrap_err();
    assert!(refused.to_string().contains("revoked"), "{refused}");
    let held = identity::load_node(&dir).unwrap().admission.sharing_keys().unwrap();
    assert_eq!(held.all().len(), 1);
    assert_ne!(held.current().key, fed.federation.sharing_keys().current().key);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_signing_key_keeps_earlier_records_and_refuses_later_ones() {
    let fed = TestFederation::new();
    let now = unix_now();
    // A was admitted two days ago, so its old card covers the hours before the rotation.
    let a_dir = admit_at(&fed, "a", now - 2 * DAY);
    fast_reload(&a_dir);
    let old_signer = Signer::new(identity::load_node(&a_dir).unwrap().signing);
    let mut a = TestNode::start(&a_dir).await;
    let mut b = TestNode::start_with_peers(&fed.admit_node("b"), &[&a]).await;
    a.publish_ok(indicator("before-rotation.example", 3)).await;
    b.wait_for_matches("before-rotation.example", 1).await;
    let old_key = a.status().await.signing_key;

    // The operator answered the rotation so that the old key's end is an hour ago.
    renew(&fed, &a_dir, true, now - HOUR - renewal::KEY_ROTATION_GRACE_SECS);
    wait_for("A to sign with its new key", || {
        let mut a = a.client.clone();
        let old_key = old_key.clone();
        async move { a.status(proto::StatusRequest {}).await.unwrap().into_inner().signing_key != old_key }
    })
    .await;
    a.publish_ok(indicator("after-rotation.example", 3)).await;
    b.wait_for_matches("after-rotation.example", 1).await;
    b.wait_for_matches("before-rotation.example", 1).await;

    let domain = ObservableType::Domain.code();
    let (_, early) = signed_indicator(&old_signer, domain, "early.example", now - 2 * HOUR, now + DAY);
    let (_, late) = signed_indicator(&old_signer, domain, "late.example", now - HOUR / 2, now + DAY);
    let outcomes = b.import(vec![early, late]).await;
    assert!(outcomes[0].error.is_empty(), "signed before the old key's end: {}", outcomes[0].error);
    assert_eq!(outcomes[1].error_code, "key_replaced", "{}", outcomes[1].error);
    a.stop().await;
    b.stop().await;
}
