//! A single real node (RocksDB in a temp dir, local API on 127.0.0.1:0),
//! driven through its public gRPC API.

mod common;

use cirfed::cir::Role;
use cirfed::node::unix_now;
use cirfed::normalize::ObservableType;
use cirfed::proto::{self, draft, Draft, Envelope, Lesson};
use cirfed::record::{Signer, MAX_RECORD_BYTES};
use common::{indicator, retraction, signed_indicator, wait_for, TestFederation, TestNode};
use prost::Message;

const DAY: i64 = 86_400;

#[tokio::test(flavor = "multi_thread")]
async fn published_indicators_are_found_by_exact_cidr_parent_domain_and_url_host_lookups() {
    let fed = TestFederation::new();
    let mut node = TestNode::start(&fed.admit_node("a")).await;
    let cidr = node.publish_ok(indicator("203.0.113.0/24", 4)).await;
    let domain = node.publish_ok(indicator("Evil.Example.", 3)).await;
    let ip = node.publish_ok(indicator("198.51.100.7", 2)).await;

    assert_eq!(node.matches("198.51.100.7").await, vec![ip.clone()]);
    assert_eq!(node.matches("203.0.113.200").await, vec![cidr]);
    assert_eq!(node.matches("login.evil.example").await, vec![domain.clone()]);
    assert_eq!(node.matches("https://EVIL.example:443/a/../b").await, vec![domain]);
    assert_eq!(node.matches("http://198.51.100.7/x").await, vec![ip]);
    assert!(node.matches("198.51.100.8").await.is_empty());

    let reply = node.lookup(&["sub.evil.example", "203.0.113.5", "nothing.example"]).await;
    assert_eq!(reply.looked_up, 3);
    assert_eq!(reply.results.len(), 2, "misses are left out");
    assert_eq!(reply.results[0].index, 0);
    assert_eq!(reply.results[0].max_cir_level, 3);
    assert_eq!(reply.results[0].canonical, "sub.evil.example");
    assert_eq!(reply.results[1].max_cir_level, 4);
    assert_eq!(reply.results[1].matches[0].kind, proto::MatchKind::CidrContains as i32);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_match_reports_the_highest_level_confidence_and_seen_times() {
    let fed = TestFederation::new();
    let mut node = TestNode::start(&fed.admit_node("a")).await;
    let now = unix_now();
    let mut draft = indicator("evil.example", 2);
    if let Some(draft::Body::Indicator(i)) = &mut draft.body {
        i.first_seen = now - 10 * DAY;
        i.last_seen = now - DAY;
        i.confidence = 90;
    }
    node.publish_ok(draft).await;
    node.publish_ok(indicator("c2.evil.example", 5)).await;
    let reply = node.lookup(&["c2.evil.example"]).await;
    let result = &reply.results[0];
    assert_eq!(result.matches.len(), 2);
    assert_eq!(result.max_cir_level, 5);
    assert_eq!(result.confidence, 90);
    // Shared times are coarsened to the hour (publish.time_granularity_secs).
    let hour = |t: i64| t - t.rem_euclid(3600);
    assert_eq!(result.first_seen, hour(now - 10 * DAY));
    assert_eq!(result.last_seen, hour(now - DAY));
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_duplicate_publish_is_a_no_op_that_returns_the_same_id() {
    let fed = TestFederation::new();
    let mut node = TestNode::start(&fed.admit_node("a")).await;
    let first = node.publish(vec![indicator("evil.example", 3)]).await.remove(0);
    let second = node.publish(vec![indicator("EVIL.example.", 3)]).await.remove(0);
    assert!(first.created);
    assert!(!second.created);
    assert_eq!(first.id, second.id);
    assert_eq!(node.status().await.last_seq, 2, "the card and one indicator");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_observable_is_refused_with_the_reason_and_nothing_is_stored() {
    let fed = TestFederation::new();
    let mut node = TestNode::start(&fed.admit_node("a")).await;
    let before = node.status().await.records;
    let mut bad = indicator("999.1.1.1", 3);
    if let Some(draft::Body::Indicator(i)) = &mut bad.body {
        i.r#type = i32::from(ObservableType::Ipv4.code());
    }
    let outcomes =
        node.publish(vec![bad, indicator("d41d8cd98f00b204e9800998ecf8427", 3), indicator("evil.example", 3)]).await;
    assert_eq!(outcomes[0].error_code, "invalid_observable", "{}", outcomes[0].error);
    assert!(outcomes[0].error.contains("999.1.1.1") || outcomes[0].error.contains("ipv4"), "{}", outcomes[0].error);
    assert_eq!(outcomes[1].error_code, "invalid_observable", "a 31-character hash: {}", outcomes[1].error);
    assert!(outcomes[2].error.is_empty(), "one bad line does not fail the others");
    assert_eq!(node.status().await.records, before + 1);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn retracted_indicators_stop_matching_and_leave_the_default_listing() {
    let fed = TestFederation::new();
    let mut node = TestNode::start(&fed.admit_node("a")).await;
    let id = node.publish_ok(indicator("evil.example", 3)).await;
    node.publish_ok(retraction(&id, "false positive")).await;
    assert!(node.matches("evil.example").await.is_empty());

    let stored = node.client.get(proto::GetRequest { id: id.clone() }).await.unwrap().into_inner();
    assert!(stored.retracted);
    assert_eq!(stored.retraction_reason, "false positive");

    let kind = proto::RecordKind::Indicator as i32;
    let active = node.client.list(proto::ListRequest { kind, ..Default::default() }).await.unwrap().into_inner();
    assert!(active.records.is_empty());
    let all = node
        .client
        .list(proto::ListRequest { kind, include_inactive: true, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.records.len(), 1);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn retraction_by_a_non_author_is_refused() {
    let fed = TestFederation::new();
    let mut node = TestNode::start(&fed.admit_node("a")).await;
    let id = node.publish_ok(indicator("evil.example", 3)).await;
    let now = unix_now();
    let (other, card) = fed.member(&[Role::Publish, Role::Read], now - DAY, now + DAY);
    let body = proto::record::Body::Retraction(proto::Retraction { target_id: id.clone(), reason: "not yours".into() });
    let (_, forged) =
        other.seal(proto::Record { version: 1, author: vec![], created_at: now, tlp: 2, body: Some(body) });
    let outcomes = node.import(vec![card, forged]).await;
    assert!(outcomes[0].error.is_empty(), "{}", outcomes[0].error);
    assert_eq!(outcomes[1].error_code, "not_author", "{}", outcomes[1].error);
    assert_eq!(node.matches("evil.example").await, vec![id]);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn indicators_stop_matching_when_they_expire() {
    let fed = TestFederation::new();
    let mut node = TestNode::start(&fed.admit_node("a")).await;
    let now = unix_now();
    let (member, card) = fed.member(&[Role::Publish], now - DAY, now + DAY);
    let (_, soon) = signed_indicator(&member, ObservableType::Domain.code(), "short-lived.example", now, now + 2);
    let outcomes = node.import(vec![card, soon]).await;
    assert!(outcomes.iter().all(|o| o.error.is_empty()), "{outcomes:?}");
    assert_eq!(node.matches("short-lived.example").await.len(), 1);
    wait_for("the indicator to expire", || {
        let mut client = node.client.clone();
        async move {
            let reply = client
                .lookup(proto::LookupRequest {
                    values: vec!["short-lived.example".into()],
                    r#type: 0,
                    details: false,
                    start: 0,
                })
                .await
                .unwrap()
                .into_inner();
            reply.results.is_empty()
        }
    })
    .await;
    node.stop().await;
}

/// Imports `envelope` and checks it is refused with `code` and that the store
/// is untouched: same record count, the earlier indicator still matches.
async fn assert_refused(node: &mut TestNode, envelope: Envelope, code: &str) {
    let before = node.status().await;
    let outcome = node.import(vec![envelope]).await.remove(0);
    assert_eq!(outcome.error_code, code, "{}", outcome.error);
    assert!(!outcome.error.is_empty());
    let after = node.status().await;
    assert_eq!(after.records, before.records, "nothing stored");
    assert_eq!(after.last_seq, before.last_seq);
    assert_eq!(node.matches("kept.example").await.len(), 1, "earlier records untouched");
}

/// A publishing member whose card the node already holds.
async fn known_member(fed: &TestFederation, node: &mut TestNode, valid_from: i64, valid_until: i64) -> Signer {
    let (member, card) = fed.member(&[Role::Publish], valid_from, valid_until);
    let outcome = node.import(vec![card]).await.remove(0);
    assert!(outcome.error.is_empty(), "{}", outcome.error);
    member
}

async fn node_with_one_indicator(fed: &TestFederation) -> TestNode {
    let mut node = TestNode::start(&fed.admit_node("a")).await;
    node.publish_ok(indicator("kept.example", 3)).await;
    node
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_protobuf_is_refused() {
    let fed = TestFederation::new();
    let mut node = node_with_one_indicator(&fed).await;
    let garbage = Envelope { record: vec![0xff, 0xff, 0xff, 0x01, 0x02], signature: vec![0; 64] };
    assert_refused(&mut node, garbage, "malformed").await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_signature_is_refused() {
    let fed = TestFederation::new();
    let mut node = node_with_one_indicator(&fed).await;
    let now = unix_now();
    let member = known_member(&fed, &mut node, now - DAY, now + DAY).await;
    let (_, mut envelope) = signed_indicator(&member, ObservableType::Domain.code(), "forged.example", now, now + DAY);
    envelope.signature[0] ^= 1;
    assert_refused(&mut node, envelope, "bad_signature").await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn records_by_an_unknown_member_key_are_refused() {
    let fed = TestFederation::new();
    let mut node = node_with_one_indicator(&fed).await;
    let now = unix_now();
    let (stranger, _card_never_imported) = fed.member(&[Role::Publish], now - DAY, now + DAY);
    let (_, envelope) = signed_indicator(&stranger, ObservableType::Domain.code(), "x.example", now, now + DAY);
    assert_refused(&mut node, envelope, "unknown_member").await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn records_by_an_expired_member_card_are_refused() {
    let fed = TestFederation::new();
    let mut node = node_with_one_indicator(&fed).await;
    let now = unix_now();
    let member = known_member(&fed, &mut node, now - 10 * DAY, now - DAY).await;
    let (_, envelope) = signed_indicator(&member, ObservableType::Domain.code(), "x.example", now, now + DAY);
    assert_refused(&mut node, envelope, "member_not_valid").await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn revoked_member_records_are_rejected_after_the_revocation_time() {
    let fed = TestFederation::new();
    let mut node = node_with_one_indicator(&fed).await;
    let now = unix_now();
    let (member, card) = fed.member(&[Role::Publish], now - 10 * DAY, now + DAY);
    let revoked_at = now - DAY;
    let (_, revocation) = fed.federation.sign_revocation(&member.public_key(), revoked_at, "key compromised", now);
    let outcomes = node.import(vec![card, revocation]).await;
    assert!(outcomes.iter().all(|o| o.error.is_empty()), "{outcomes:?}");
    let (_, before) =
        signed_indicator(&member, ObservableType::Domain.code(), "before.example", revoked_at - 3600, now + DAY);
    assert!(node.import(vec![before]).await[0].error.is_empty(), "records from before the revocation stay valid");
    let (_, after) = signed_indicator(&member, ObservableType::Domain.code(), "after.example", now, now + DAY);
    assert_refused(&mut node, after, "member_revoked").await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_card_signed_by_anyone_but_the_authority_is_refused() {
    let fed = TestFederation::new();
    let mut node = node_with_one_indicator(&fed).await;
    let other = TestFederation::new();
    let now = unix_now();
    let (_, foreign_card) = other.member(&[Role::Publish], now - DAY, now + DAY);
    assert_refused(&mut node, foreign_card, "not_authority").await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_over_the_size_limit_is_refused() {
    let fed = TestFederation::new();
    let mut node = node_with_one_indicator(&fed).await;
    let now = unix_now();
    let member = known_member(&fed, &mut node, now - DAY, now + DAY).await;
    let body = proto::record::Body::Lesson(Lesson {
        title: "big".into(),
        cir_level: 2,
        summary: "x".repeat(MAX_RECORD_BYTES),
        ..Default::default()
    });
    let (_, envelope) =
        member.seal(proto::Record { version: 1, author: vec![], created_at: now, tlp: 2, body: Some(body) });
    assert!(envelope.record.len() > MAX_RECORD_BYTES);
    assert_refused(&mut node, envelope, "too_large").await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn created_at_beyond_the_clock_skew_is_refused() {
    let fed = TestFederation::new();
    let mut node = node_with_one_indicator(&fed).await;
    let now = unix_now();
    let member = known_member(&fed, &mut node, now - DAY, now + 10 * DAY).await;
    let future = now + cirfed::record::MAX_CLOCK_SKEW_SECS + 60;
    let (_, envelope) =
        signed_indicator(&member, ObservableType::Domain.code(), "future.example", future, future + DAY);
    assert_refused(&mut node, envelope, "from_the_future").await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_non_canonical_value_in_a_signed_record_is_refused() {
    let fed = TestFederation::new();
    let mut node = node_with_one_indicator(&fed).await;
    let now = unix_now();
    let member = known_member(&fed, &mut node, now - DAY, now + DAY).await;
    let (_, envelope) = signed_indicator(&member, ObservableType::Domain.code(), "UPPER.example", now, now + DAY);
    assert_refused(&mut node, envelope, "not_canonical").await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replayed_record_is_a_no_op() {
    let fed = TestFederation::new();
    let mut node = node_with_one_indicator(&fed).await;
    let now = unix_now();
    let (member, card) = fed.member(&[Role::Publish], now - DAY, now + DAY);
    let (id, envelope) = signed_indicator(&member, ObservableType::Domain.code(), "replayed.example", now, now + DAY);
    let first = node.import(vec![card, envelope.clone()]).await;
    let replay = node.import(vec![envelope]).await.remove(0);
    assert!(first[1].created);
    assert!(!replay.created && replay.error.is_empty());
    assert_eq!(replay.id, id.0.to_vec());
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lessons_are_published_and_shown() {
    let fed = TestFederation::new();
    let mut node = TestNode::start(&fed.admit_node("a")).await;
    let lesson = Draft {
        tlp: 2,
        body: Some(draft::Body::Lesson(Lesson {
            title: "Leaked key".into(),
            cir_level: 4,
            root_cause: "static credentials".into(),
            ..Default::default()
        })),
    };
    let id = node.publish_ok(lesson).await;
    let stored = node.client.get(proto::GetRequest { id: id.clone() }).await.unwrap().into_inner();
    let record = proto::Record::decode(stored.envelope.unwrap().record.as_slice()).unwrap();
    match record.body {
        Some(proto::record::Body::Lesson(l)) => assert_eq!(l.root_cause, "static credentials"),
        other => panic!("expected a lesson, got {other:?}"),
    }
    let missing = node.client.get(proto::GetRequest { id: vec![7; 32] }).await.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    let bad = node.client.get(proto::GetRequest { id: vec![7; 5] }).await.unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn list_pages_through_one_kind_in_arrival_order() {
    let fed = TestFederation::new();
    let mut node = TestNode::start(&fed.admit_node("a")).await;
    let drafts = (0..25).map(|n| indicator(&format!("host{n}.example"), 2)).collect();
    let outcomes = node.publish(drafts).await;
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let request =
            proto::ListRequest { kind: proto::RecordKind::Indicator as i32, after, limit: 10, include_inactive: false };
        let page = node.client.list(request).await.unwrap().into_inner();
        seen.extend(page.records.iter().map(|r| r.id.clone()));
        if page.next == 0 {
            break;
        }
        after = page.next;
    }
    assert_eq!(seen, outcomes.into_iter().map(|o| o.id).collect::<Vec<_>>());
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lookup_stream_answers_each_batch_in_order() {
    let fed = TestFederation::new();
    let mut node = TestNode::start(&fed.admit_node("a")).await;
    node.publish_ok(indicator("evil.example", 3)).await;
    let batches: Vec<proto::LookupRequest> = (0..5)
        .map(|b| proto::LookupRequest {
            values: (0..100)
                .map(|n| if n == b { "a.evil.example".into() } else { format!("benign{n}.example") })
                .collect(),
            r#type: 0,
            details: false,
            start: 0,
        })
        .collect();
    let mut replies = node.client.lookup_stream(tokio_stream::iter(batches)).await.unwrap().into_inner();
    for b in 0..5 {
        let reply = replies.message().await.unwrap().expect("one reply per batch");
        assert_eq!(reply.looked_up, 100);
        assert_eq!(reply.results.len(), 1);
        assert_eq!(reply.results[0].index, b);
    }
    assert!(replies.message().await.unwrap().is_none());
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_lookup_values_are_reported_with_the_reason() {
    let fed = TestFederation::new();
    let mut node = TestNode::start(&fed.admit_node("a")).await;
    let reply = node.lookup(&["not a thing at all", "evil.example"]).await;
    assert_eq!(reply.results.len(), 1);
    assert_eq!(reply.results[0].index, 0);
    assert!(!reply.results[0].error.is_empty());
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn records_and_retractions_survive_a_restart() {
    let fed = TestFederation::new();
    let dir = fed.admit_node("a");
    let mut node = TestNode::start(&dir).await;
    let kept = node.publish_ok(indicator("kept.example", 3)).await;
    let gone = node.publish_ok(indicator("gone.example", 3)).await;
    node.publish_ok(retraction(&gone, "mistake")).await;
    let before = node.status().await;
    node.stop().await;

    let mut node = TestNode::start(&dir).await;
    let after = node.status().await;
    assert_eq!(after.records, before.records);
    assert_eq!(after.active_indicators, 1);
    assert_eq!(node.matches("kept.example").await, vec![kept]);
    assert!(node.matches("gone.example").await.is_empty());
    let next = node.publish(vec![indicator("new.example", 3)]).await.remove(0);
    assert!(next.created);
    assert_eq!(node.status().await.last_seq, before.last_seq + 1, "sequence numbers continue");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_node_on_the_same_data_dir_is_refused() {
    let fed = TestFederation::new();
    let dir = fed.admit_node("a");
    let node = TestNode::start(&dir).await;
    let overrides = cirfed::server::Overrides::loopback();
    let err = cirfed::server::start(&dir, overrides).await.err().expect("second start fails");
    assert!(err.to_string().contains("in use by another cirfed process"), "{err}");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn matches_report_categories_always_and_descriptions_when_details_are_asked() {
    let fed = TestFederation::new();
    let mut node = TestNode::start(&fed.admit_node("a")).await;
    let mut draft = indicator("evil.example", 3);
    if let Some(draft::Body::Indicator(i)) = &mut draft.body {
        i.description = "console phishing kit".into();
        i.categories = vec![cirfed::cir::Category::Phishing.code(), cirfed::cir::Category::CredentialTheft.code()];
    }
    node.publish_ok(draft).await;
    for details in [true, false] {
        let request = proto::LookupRequest { values: vec!["a.evil.example".into()], r#type: 0, details, start: 0 };
        let reply = node.client.lookup(request).await.unwrap().into_inner();
        let found = &reply.results[0].matches[0];
        assert_eq!(found.indicator_value, "evil.example");
        let mut categories = found.categories.clone();
        categories.sort_unstable();
        assert_eq!(
            categories,
            vec![cirfed::cir::Category::Phishing.code(), cirfed::cir::Category::CredentialTheft.code()]
        );
        let description = reply.descriptions.get(&hex::encode(&found.record_id)).map(String::as_str);
        assert_eq!(description, details.then_some("console phishing kit"));
    }
    node.stop().await;
}
