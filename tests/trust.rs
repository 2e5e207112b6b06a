//! The trust lifecycle across three nodes in a line (A - B - C): member
//! revocation, sightings and time decay, each end to end.

mod common;

use cirfed::cir::{Role, SightingType, Tlp};
use cirfed::decay;
use cirfed::node::unix_now;
use cirfed::normalize::ObservableType;
use cirfed::proto::{self, draft, record::Body, Draft, Indicator, Record, Sighting};
use cirfed::record::{Signer, RECORD_VERSION};
use common::{indicator, wait_for, TestFederation, TestNode};

const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

/// Three nodes in a line: A dials B, B dials C.
async fn line(fed: &TestFederation) -> (TestNode, TestNode, TestNode) {
    let c = TestNode::start(&fed.admit_node("c")).await;
    let b = TestNode::start_with_peers(&fed.admit_node("b"), &[&c]).await;
    let a = TestNode::start_with_peers(&fed.admit_node("a"), &[&b]).await;
    (a, b, c)
}

/// An indicator signed by `member` with the given times and confidence.
fn member_indicator(
    member: &Signer,
    value: &str,
    created_at: i64,
    valid_until: i64,
    confidence: u32,
) -> proto::Envelope {
    let body = Body::Indicator(Indicator {
        r#type: i32::from(ObservableType::Domain.code()),
        value: value.into(),
        cir_level: 3,
        confidence,
        valid_until,
        ..Default::default()
    });
    member
        .seal(Record { version: RECORD_VERSION, author: vec![], created_at, tlp: Tlp::Green.code(), body: Some(body) })
        .1
}

/// The one match of `value` at `node`, once it is there.
async fn the_match(node: &mut TestNode, value: &str) -> proto::Match {
    node.wait_for_matches(value, 1).await;
    node.lookup(&[value]).await.results.remove(0).matches.remove(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_members_later_records_are_refused_and_earlier_ones_flagged_everywhere() {
    let fed = TestFederation::new();
    let (mut a, b, mut c) = line(&fed).await;
    let now = unix_now();
    let (member, card) = fed.member(&[Role::Publish, Role::Read], now - 10 * DAY, now + 30 * DAY);
    let before = member_indicator(&member, "before.example", now - 3 * HOUR, now + DAY, 70);
    let outcomes = a.import(vec![card, before]).await;
    assert!(outcomes.iter().all(|o| o.error.is_empty()), "{outcomes:?}");
    assert!(!the_match(&mut c, "before.example").await.author_revoked);

    let (_, revocation) = fed.federation.sign_revocation(&member.public_key(), now - 2 * HOUR, "key leaked", now);
    assert!(a.import(vec![revocation]).await[0].error.is_empty());
    wait_for("C to flag the revoked author's earlier record", || {
        let mut c = c.client.clone();
        async move {
            let request =
                proto::LookupRequest { values: vec!["before.example".into()], r#type: 0, details: false, start: 0 };
            let reply = c.lookup(request).await.unwrap().into_inner();
            reply.results.first().is_some_and(|r| r.matches.first().is_some_and(|m| m.author_revoked))
        }
    })
    .await;
    let flagged = the_match(&mut c, "before.example").await;
    assert_eq!(flagged.author_revoked_at, now - 2 * HOUR);

    let after = member_indicator(&member, "after.example", now - HOUR, now + DAY, 70);
    for node in [&mut a, &mut c] {
        let outcome = node.import(vec![after.clone()]).await.remove(0);
        assert_eq!(outcome.error_code, "member_revoked", "{}", outcome.error);
        assert!(node.matches("after.example").await.is_empty());
    }
    for node in [a, b, c] {
        node.stop().await;
    }
}

fn sighting(id: &[u8], kind: SightingType, count: u32) -> Draft {
    Draft {
        tlp: Tlp::Green.code(),
        body: Some(draft::Body::Sighting(Sighting { indicator_id: id.to_vec(), r#type: kind.code(), count })),
    }
}

/// Waits until `value` at `node` shows `seen` and `false_positive` sightings; returns the match.
async fn wait_for_sightings(node: &TestNode, value: &str, seen: u32, false_positive: u32) -> proto::Match {
    let lookup = || {
        let mut client = node.client.clone();
        let request = proto::LookupRequest { values: vec![value.into()], r#type: 0, details: false, start: 0 };
        async move { client.lookup(request).await.unwrap().into_inner().results.pop().and_then(|mut r| r.matches.pop()) }
    };
    wait_for("sightings to arrive", || async {
        lookup().await.is_some_and(|m| m.sightings_seen == seen && m.sightings_false_positive == false_positive)
    })
    .await;
    lookup().await.expect("a match")
}

#[tokio::test(flavor = "multi_thread")]
async fn sightings_from_any_member_reach_every_node_and_move_the_score() {
    let fed = TestFederation::new();
    let (mut a, mut b, mut c) = line(&fed).await;
    let id = a.publish_ok(indicator("sighted.example", 3)).await;
    let fresh = the_match(&mut c, "sighted.example").await;
    // Created at most an hour ago (times are coarsened) of a 30-day life: it
    // keeps nearly all of its confidence.
    assert!((fresh.confidence - 3..=fresh.confidence).contains(&fresh.score), "{fresh:?}");

    c.publish_ok(sighting(&id, SightingType::Seen, 3)).await;
    let seen = wait_for_sightings(&a, "sighted.example", 1, 0).await;
    assert!(seen.score > fresh.score, "seen sightings raise the score: {} then {}", fresh.score, seen.score);
    assert!(seen.last_sighting > 0);

    b.publish_ok(sighting(&id, SightingType::FalsePositive, 1)).await;
    let disputed = wait_for_sightings(&c, "sighted.example", 1, 1).await;
    assert!(disputed.score < seen.score, "a false positive lowers it: {} then {}", seen.score, disputed.score);
    let at_a = wait_for_sightings(&a, "sighted.example", 1, 1).await;
    assert_eq!(at_a.score, disputed.score, "every node computes the same score");
    // One member cannot vote an indicator out alone: it counts once per type.
    b.publish_ok(sighting(&id, SightingType::FalsePositive, 5)).await;
    let again = the_match(&mut b, "sighted.example").await;
    assert_eq!((again.sightings_false_positive, again.score), (1, disputed.score));
    for node in [a, b, c] {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ageing_indicator_decays_by_the_documented_model_on_every_node() {
    let fed = TestFederation::new();
    let (mut a, b, mut c) = line(&fed).await;
    let now = unix_now();
    let (member, card) = fed.member(&[Role::Publish, Role::Read], now - 90 * DAY, now + 90 * DAY);
    let (created_at, valid_until) = (now - 50 * DAY, now + 50 * DAY);
    let old = member_indicator(&member, "ageing.example", created_at, valid_until, 80);
    assert!(a.import(vec![card, old]).await.iter().all(|o| o.error.is_empty()));
    let evidence = decay::Evidence { confidence: 80, created_at, valid_until };
    let expected = decay::score(evidence, &decay::Sightings::default(), now);
    assert_eq!(expected, 23, "half its lifetime gone, DECAY_SPEED 2: 80 * (1 - 0.5^0.5)");
    let at_c = the_match(&mut c, "ageing.example").await;
    assert!(at_c.score.abs_diff(u32::from(expected)) <= 1, "score {} at C, expected {expected}", at_c.score);
    assert_eq!(at_c.confidence, 80, "the author's confidence is reported unchanged");
    for node in [a, b, c] {
        node.stop().await;
    }
}

/// Gives a node an accept policy: a warninglist of public resolvers and a minimum score.
fn set_accept(dir: &std::path::Path, min_confidence: u8) {
    let list = dir.join("public-resolvers.txt");
    std::fs::write(&list, "# test list\n8.8.8.8\n1.1.1.1\n").unwrap();
    let mut config = cirfed::config::ConfigFile::load(dir).unwrap();
    config.accept.warninglists = vec!["public-resolvers.txt".into()];
    config.accept.min_confidence = min_confidence;
    std::fs::write(dir.join("node.toml"), config.to_toml()).unwrap();
}

fn with_confidence(value: &str, confidence: u32) -> Draft {
    let mut draft = indicator(value, 3);
    if let Some(draft::Body::Indicator(i)) = &mut draft.body {
        i.confidence = confidence;
    }
    draft
}

#[tokio::test(flavor = "multi_thread")]
async fn warninglists_and_the_accept_policy_hold_matches_back_with_the_reason() {
    let fed = TestFederation::new();
    let c_dir = fed.admit_node("c");
    set_accept(&c_dir, 50);
    let mut c = TestNode::start(&c_dir).await;
    let b = TestNode::start_with_peers(&fed.admit_node("b"), &[&c]).await;
    let mut a = TestNode::start_with_peers(&fed.admit_node("a"), &[&b]).await;
    a.publish_ok(indicator("8.8.8.8", 3)).await;
    a.publish_ok(with_confidence("weak.example", 20)).await;
    a.publish_ok(with_confidence("strong.example", 90)).await;
    b.wait_for_matches("8.8.8.8", 1).await;
    b.wait_for_matches("weak.example", 1).await;
    c.wait_for_matches("strong.example", 1).await;

    let reply = c.lookup(&["8.8.8.8", "weak.example"]).await;
    let resolver = reply.results.iter().find(|r| r.index == 0).expect("a result for the resolver");
    assert!(resolver.matches.is_empty());
    assert_eq!(resolver.benign, "public-resolvers");
    let weak = reply.results.iter().find(|r| r.index == 1).expect("a result for the weak indicator");
    assert!(weak.matches.is_empty());
    assert!(weak.filtered[0].contains("min_confidence 50"), "{:?}", weak.filtered);

    let outcome = c.publish(vec![indicator("1.1.1.1", 3)]).await.remove(0);
    assert_eq!(outcome.error_code, "warninglisted");
    assert!(outcome.error.contains("public-resolvers"), "{}", outcome.error);
    for node in [a, b, c] {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sighting_without_a_tlp_travels_as_far_as_its_indicator() {
    let fed = TestFederation::new();
    let (mut a, b, mut c) = line(&fed).await;
    let id = a.publish_ok(indicator("far.example", 3)).await;
    the_match(&mut c, "far.example").await;
    let mut draft = sighting(&id, SightingType::Seen, 1);
    draft.tlp = 0;
    c.publish_ok(draft).await;
    // AMBER, the node default, would stop at B: A is two hops from C.
    wait_for_sightings(&a, "far.example", 1, 0).await;
    for node in [a, b, c] {
        node.stop().await;
    }
}

fn member_sighting(member: &Signer, indicator_id: &[u8], created_at: i64) -> proto::Envelope {
    let body =
        Body::Sighting(Sighting { indicator_id: indicator_id.to_vec(), r#type: SightingType::Seen.code(), count: 1 });
    member
        .seal(Record { version: RECORD_VERSION, author: vec![], created_at, tlp: Tlp::Green.code(), body: Some(body) })
        .1
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revocation_withdraws_the_sightings_its_key_made_after_the_revocation_time() {
    let fed = TestFederation::new();
    let mut a = TestNode::start(&fed.admit_node("a")).await;
    let now = unix_now();
    let id = a.publish_ok(indicator("sighted-by-a-leaked-key.example", 3)).await;
    let (member, card) = fed.member(&[Role::Publish, Role::Read], now - 10 * DAY, now + 30 * DAY);
    let outcomes = a.import(vec![card, member_sighting(&member, &id, now - HOUR)]).await;
    assert!(outcomes.iter().all(|o| o.error.is_empty()), "{outcomes:?}");
    wait_for_sightings(&a, "sighted-by-a-leaked-key.example", 1, 0).await;

    let (_, revocation) = fed.federation.sign_revocation(&member.public_key(), now - 2 * HOUR, "key leaked", now);
    assert!(a.import(vec![revocation]).await[0].error.is_empty());
    wait_for_sightings(&a, "sighted-by-a-leaked-key.example", 0, 0).await;
    let dir = a.dir.clone();
    a.stop().await;
    // And it stays withdrawn when the node starts again from its store.
    let a = TestNode::start(&dir).await;
    wait_for_sightings(&a, "sighted-by-a-leaked-key.example", 0, 0).await;
    a.stop().await;
}
