//! Records out: every kind's object, versions, what is left out and why,
//! filters, determinism and streaming.

use super::feed::{indicator, indicator_record, record, VecFeed, HOUR, MEMBER, T0};
use crate::cir::{Category, Phase, SightingType, Tlp};
use crate::interop::export::Summary;
use crate::interop::stix::export::{reason, EXPORT_READ_CHUNK};
use crate::interop::stix::ids::{named_uuid, object_id};
use crate::interop::stix::markings::{marking_id, EXTENSION_ID};
use crate::interop::stix::{export_bundle, objects_of, preamble};
use crate::interop::Filter;
use crate::normalize::ObservableType as T;
use crate::proto::record::Body;
use crate::proto::{Lesson, MemberCard, MemberRevocation, PhaseAction, Retraction, Sighting};
use crate::record::{RecordId, RecordKind};
use serde_json::Value;
use std::sync::atomic::Ordering;

fn export(feed: &VecFeed, filter: &Filter) -> (Vec<u8>, Summary) {
    let mut out = Vec::new();
    let summary = export_bundle(feed, filter, &mut out).expect("export");
    (out, summary)
}

fn bundle(feed: &VecFeed) -> (Value, Summary) {
    let (bytes, summary) = export(feed, &Filter::default());
    (serde_json::from_slice(&bytes).expect("the bundle is JSON"), summary)
}

/// The bundle's objects of one STIX type.
fn of_type<'a>(bundle: &'a Value, kind: &str) -> Vec<&'a Value> {
    bundle["objects"].as_array().unwrap().iter().filter(|o| o["type"] == kind).collect()
}

fn count(summary: &Summary, kind: &str) -> u64 {
    summary.exported.get(kind).copied().unwrap_or(0)
}

fn skipped(summary: &Summary, reason: &str) -> u64 {
    summary.skipped.get(reason).copied().unwrap_or(0)
}

/// A feed with one record of every kind, the edge cases included.
fn mixed_feed() -> (VecFeed, Vec<RecordId>) {
    let mut feed = VecFeed::default();
    let card = MemberCard { member_id: MEMBER.into(), signing_key: vec![7; 32], ..MemberCard::default() };
    let mut ids = vec![feed.push(record(Body::MemberCard(card), Tlp::Clear, T0, None))];
    ids.push(feed.push(indicator_record(indicator(T::Ipv4, "198.51.100.7"), T0)));
    ids.push(feed.push(indicator_record(indicator(T::KeyedHash, &"ab".repeat(32)), T0)));
    let red = record(Body::Indicator(indicator(T::Domain, "red.example")), Tlp::Red, T0, Some(MEMBER));
    ids.push(feed.push(red));
    let lesson = Lesson {
        title: "leaked key".into(),
        summary: "a key was leaked".into(),
        cir_level: 4,
        categories: vec![Category::CredentialTheft.code()],
        recommended_actions: vec![PhaseAction { phase: Phase::Preparation.code(), action: "scan pushes".into() }],
        indicator_refs: vec![ids[1].0.to_vec()],
        ..Lesson::default()
    };
    ids.push(feed.push(record(Body::Lesson(lesson), Tlp::Green, T0 + HOUR, Some(MEMBER))));
    let sighting =
        Sighting { indicator_id: ids[1].0.to_vec(), r#type: SightingType::FalsePositive.code(), count: 2_000_000_000 };
    ids.push(feed.push(record(Body::Sighting(sighting), Tlp::Green, T0 + HOUR, Some(MEMBER))));
    let revocation = MemberRevocation { signing_key: vec![9; 32], revoked_at: T0, ..MemberRevocation::default() };
    ids.push(feed.push(record(Body::MemberRevocation(revocation), Tlp::Clear, T0, None)));
    (feed, ids)
}

#[test]
fn every_kind_of_record_becomes_its_object_and_red_keyed_hash_and_revocations_are_left_out() {
    let (feed, ids) = mixed_feed();
    let (bundle, summary) = bundle(&feed);
    assert_eq!(bundle["type"], "bundle");
    assert_eq!((count(&summary, "indicator"), count(&summary, "report"), count(&summary, "sighting")), (1, 1, 1));
    assert_eq!(count(&summary, "identity"), 3, "the member, cirfed and the authority");
    assert_eq!(count(&summary, "extension-definition"), 1);
    assert_eq!(count(&summary, "marking-definition"), 2, "the two TLPs used: CLEAR (the card) and GREEN");
    assert_eq!(skipped(&summary, reason::TLP_RED), 1);
    assert_eq!(skipped(&summary, reason::KEYED_HASH), 1);
    assert_eq!(skipped(&summary, reason::MEMBER_REVOCATION), 1);
    assert_eq!(summary.total() as usize, bundle["objects"].as_array().unwrap().len());
    let text = serde_json::to_string(&bundle).unwrap();
    assert!(!text.contains("red.example"), "RED never leaves");

    let member = format!("identity--{}", named_uuid("cirfed/identity", MEMBER));
    let identity = of_type(&bundle, "identity").into_iter().find(|o| o["id"] == member.as_str()).expect("member");
    assert_eq!(identity["name"], MEMBER);
    assert_eq!(identity["identity_class"], "organization");

    let indicator = of_type(&bundle, "indicator")[0];
    assert_eq!(indicator["id"], object_id("indicator", &ids[1]));
    assert_eq!(indicator["pattern"], "[ipv4-addr:value = '198.51.100.7']");
    assert_eq!(indicator["created"], "2026-01-01T00:00:00.000Z");
    assert_eq!(indicator["modified"], "2026-01-01T00:00:00.000Z");
    assert_eq!(indicator["valid_until"], "2026-01-31T00:00:00.000Z");
    assert_eq!(indicator["created_by_ref"], member.as_str());
    assert_eq!(indicator["name"], "ipv4 198.51.100.7");
    assert_eq!(indicator["description"], "ipv4 indicator of CIR level 3 shared through cirfed");
    assert_eq!(indicator["object_marking_refs"][0], marking_id(Tlp::Green));
    assert_eq!(indicator["external_references"][0]["external_id"], ids[1].to_hex());
    assert_eq!(indicator["extensions"][EXTENSION_ID]["extension_type"], "toplevel-property-extension");
    assert!(indicator.get("labels").is_none(), "no empty lists");
    assert_eq!(indicator["indicator_types"], serde_json::json!(["unknown"]), "no category");

    let report = of_type(&bundle, "report")[0];
    assert_eq!(report["object_refs"], serde_json::json!([object_id("indicator", &ids[1])]));
    assert_eq!(report["published"], "2026-01-01T01:00:00.000Z");
    assert_eq!(report["report_types"][0], "threat-report");
    assert_eq!(report["x_cirfed_categories"][0], "credential-theft");
    assert_eq!(report["x_cirfed_recommended_actions"][0]["phase"], "preparation");

    let sighting = of_type(&bundle, "sighting")[0];
    assert_eq!(sighting["sighting_of_ref"], object_id("indicator", &ids[1]));
    assert_eq!(sighting["count"], 999_999_999, "clamped to the STIX maximum");
    assert_eq!(sighting["x_cirfed_sighting_type"], "false-positive");
    assert_eq!(sighting["where_sighted_refs"][0], member.as_str());
}

#[test]
fn a_bundle_is_byte_identical_on_re_export_and_names_its_id_last() {
    let (feed, _) = mixed_feed();
    let (first, _) = export(&feed, &Filter::default());
    let (second, _) = export(&feed, &Filter::default());
    assert_eq!(first, second);
    let text = String::from_utf8(first).unwrap();
    assert!(text.starts_with(r#"{"type":"bundle","objects":["#), "{}", &text[..40]);
    let (_, last) = text.rsplit_once(r#"],"id":""#).expect("the id after the objects");
    assert!(last.starts_with("bundle--") && last.ends_with("\"}") && last.len() == "bundle--".len() + 36 + 2, "{last}");
    let mut other = mixed_feed().0;
    other.push(indicator_record(indicator(T::Domain, "more.example"), T0));
    let (third, _) = export(&other, &Filter::default());
    let id = |bytes: &[u8]| serde_json::from_slice::<Value>(bytes).unwrap()["id"].as_str().unwrap().to_owned();
    assert_ne!(id(text.as_bytes()), id(&third), "the bundle id follows the content");
}

#[test]
fn superseding_indicators_are_later_versions_of_their_first_object() {
    let mut feed = VecFeed::default();
    let first = feed.push(indicator_record(indicator(T::Domain, "v1.example"), T0));
    let mut second = indicator(T::Domain, "v2.example");
    second.supersedes = first.0.to_vec();
    // Created in the same coarsened hour as the first: its `modified` must still be later.
    let second = feed.push(indicator_record(second, T0));
    let mut third = indicator(T::Domain, "v3.example");
    third.supersedes = second.0.to_vec();
    feed.push(indicator_record(third, T0 + 2 * HOUR));
    let (bundle, _) = bundle(&feed);
    let versions = of_type(&bundle, "indicator");
    assert_eq!(versions.len(), 3);
    let root = object_id("indicator", &first);
    assert!(versions.iter().all(|v| v["id"] == root.as_str()), "one object, three versions");
    assert!(versions.iter().all(|v| v["created"] == "2026-01-01T00:00:00.000Z"));
    let modified: Vec<&str> = versions.iter().map(|v| v["modified"].as_str().unwrap()).collect();
    assert_eq!(modified, ["2026-01-01T00:00:00.000Z", "2026-01-01T00:00:00.001Z", "2026-01-01T02:00:00.000Z"]);
}

#[test]
fn a_retraction_is_the_revoked_version_of_its_target_with_every_required_property() {
    let mut feed = VecFeed::default();
    let target = feed.push(indicator_record(indicator(T::Url, "http://bad.example/a"), T0));
    let retraction = Retraction { target_id: target.0.to_vec(), reason: "false positive".into() };
    let retraction = feed.push(record(Body::Retraction(retraction), Tlp::Green, T0, Some(MEMBER)));
    feed.retract(&target, &retraction);
    let stray = Retraction { target_id: target.0.to_vec(), reason: "not mine".into() };
    feed.push(record(Body::Retraction(stray), Tlp::Green, T0 + HOUR, Some("m-other")));
    let gone = Retraction { target_id: vec![1; 32], reason: "unknown".into() };
    feed.push(record(Body::Retraction(gone), Tlp::Green, T0, Some(MEMBER)));

    let (bundle, summary) = bundle(&feed);
    let versions = of_type(&bundle, "indicator");
    assert_eq!(versions.len(), 2);
    let (original, revoked) = (versions[0], versions[1]);
    assert_eq!(revoked["id"], original["id"]);
    assert_eq!(revoked["revoked"], true);
    assert_eq!(revoked["created"], original["created"]);
    assert_eq!(revoked["modified"], "2026-01-01T00:00:00.001Z", "after the version it revokes");
    assert_eq!(revoked["x_cirfed_retraction_reason"], "false positive");
    for key in ["pattern", "pattern_type", "valid_from", "spec_version", "created_by_ref", "object_marking_refs"] {
        assert_eq!(revoked[key], original[key], "{key}");
    }
    assert_eq!(skipped(&summary, reason::RETRACTION_NOT_IN_FORCE), 1);
    assert_eq!(skipped(&summary, reason::RETRACTION_TARGET_MISSING), 1);
}

#[test]
fn objects_of_gives_a_records_objects_or_the_reason_for_none() {
    let (feed, ids) = mixed_feed();
    let by_id = |id: &RecordId| feed.records.iter().find(|r| r.id == *id).unwrap().clone();
    let objects = objects_of(&feed, &by_id(&ids[1])).unwrap().unwrap();
    assert_eq!(objects.len(), 1);
    assert_eq!((objects[0].kind, objects[0].version.as_str()), ("indicator", "2026-01-01T00:00:00.000Z"));
    assert_eq!(objects[0].id, object_id("indicator", &ids[1]));
    let json: Value = serde_json::from_str(&objects[0].json).unwrap();
    assert_eq!(json["id"], objects[0].id.as_str());
    assert_eq!(objects_of(&feed, &by_id(&ids[2])).unwrap(), Err("keyed_hash"));
    assert_eq!(objects_of(&feed, &by_id(&ids[3])).unwrap(), Err("tlp_red"));
    assert_eq!(objects_of(&feed, &by_id(&ids[6])).unwrap(), Err("member_revocation"));
    let kinds: Vec<&str> = preamble().iter().map(|o| o.kind).collect();
    assert_eq!(
        kinds,
        [
            "marking-definition",
            "marking-definition",
            "marking-definition",
            "marking-definition",
            "extension-definition",
            "identity",
            "identity"
        ]
    );
    assert!(!preamble().iter().any(|o| o.id == marking_id(Tlp::Red)), "RED is never offered");
}

#[test]
fn filters_leave_records_out_with_their_reason() {
    let (feed, _) = mixed_feed();
    let run = |filter: Filter| export(&feed, &filter).1;
    let summary = run(Filter { kinds: vec![RecordKind::Lesson], ..Filter::default() });
    assert_eq!((count(&summary, "report"), count(&summary, "indicator")), (1, 0));
    assert!(skipped(&summary, reason::FILTERED_KIND) >= 3, "{summary:?}");
    let summary = run(Filter { types: vec![T::Domain], ..Filter::default() });
    assert_eq!((count(&summary, "indicator"), skipped(&summary, reason::FILTERED_TYPE)), (0, 2));
    let summary = run(Filter { min_level: 4, ..Filter::default() });
    assert_eq!((count(&summary, "report"), count(&summary, "indicator")), (1, 0));
    let summary = run(Filter { categories: 1 << Category::CredentialTheft.code(), ..Filter::default() });
    assert_eq!((count(&summary, "report"), skipped(&summary, reason::FILTERED_CATEGORY)), (1, 2));
    let summary = run(Filter { since: T0 + HOUR, ..Filter::default() });
    assert_eq!((count(&summary, "report"), count(&summary, "sighting"), count(&summary, "indicator")), (1, 1, 0));
    let summary = run(Filter { max_tlp: Some(Tlp::Clear), ..Filter::default() });
    assert_eq!(count(&summary, "indicator"), 0);
    assert_eq!(skipped(&summary, reason::TLP_ABOVE_CEILING), 4, "{summary:?}");
    assert_eq!(skipped(&summary, reason::TLP_RED), 1, "RED whatever the filter says");
    let mut out = Vec::new();
    let err = export_bundle(&feed, &Filter { min_score: 50, ..Filter::default() }, &mut out).unwrap_err();
    assert!(err.to_string().contains("--min-score applies to blocklists"), "{err}");
}

#[test]
fn a_retraction_follows_its_targets_filters() {
    let mut feed = VecFeed::default();
    let target = feed.push(indicator_record(indicator(T::Ipv4, "198.51.100.9"), T0));
    let retraction = Retraction { target_id: target.0.to_vec(), reason: "fp".into() };
    let retraction = feed.push(record(Body::Retraction(retraction), Tlp::Green, T0 + HOUR, Some(MEMBER)));
    feed.retract(&target, &retraction);
    let (_, summary) = export(&feed, &Filter { kinds: vec![RecordKind::Indicator], ..Filter::default() });
    assert_eq!(count(&summary, "indicator"), 2, "the revoked version comes with the indicators");
    let (_, summary) = export(&feed, &Filter { types: vec![T::Domain], ..Filter::default() });
    assert_eq!((count(&summary, "indicator"), skipped(&summary, reason::FILTERED_TYPE)), (0, 2));
}

#[test]
fn an_export_reads_the_feed_in_chunks() {
    let mut feed = VecFeed::default();
    for n in 0..2_500u32 {
        let value = std::net::Ipv4Addr::from(0xC633_6400 + n).to_string();
        feed.push(indicator_record(indicator(T::Ipv4, &value), T0));
    }
    let (_, summary) = export(&feed, &Filter::default());
    assert_eq!(count(&summary, "indicator"), 2_500);
    assert_eq!(feed.largest_read.load(Ordering::Relaxed), EXPORT_READ_CHUNK);
    assert_eq!(feed.reads.load(Ordering::Relaxed), 4, "three chunks and the empty read that ends them");
}

#[test]
fn a_lesson_without_indicators_refers_to_its_author_and_categories_give_indicator_types() {
    let mut feed = VecFeed::default();
    let lesson = Lesson { title: "outage".into(), summary: "power".into(), cir_level: 2, ..Lesson::default() };
    feed.push(record(Body::Lesson(lesson), Tlp::Clear, T0, None));
    let mut malware = indicator(T::Sha256, &"ab".repeat(32));
    malware.categories =
        vec![Category::Malware.code(), Category::Phishing.code(), Category::PowerLoss.code(), Category::Misconfiguration.code()];
    malware.tags = vec!["loader".into()];
    feed.push(indicator_record(malware, T0));
    let (bundle, _) = bundle(&feed);
    let report = of_type(&bundle, "report")[0];
    assert_eq!(report["object_refs"][0], report["created_by_ref"]);
    assert_eq!(report["created_by_ref"], "identity--a285ece4-1414-4183-934e-2a08f6d22153", "the authority");
    let indicator = of_type(&bundle, "indicator")[0];
    assert_eq!(indicator["indicator_types"], serde_json::json!(["malicious-activity", "benign", "anomalous-activity"]));
    assert_eq!(indicator["labels"], serde_json::json!(["loader"]));
    assert_eq!(indicator["pattern"], format!("[file:hashes.'SHA-256' = '{}']", "ab".repeat(32)));
}

