//! cirfed -> STIX -> cirfed keeps every field STIX can carry.

use super::feed::{indicator_record, record, VecFeed, MEMBER, T0};
use crate::cir::{Category, Phase, ServiceModel, Tlp};
use crate::interop::stix::markings::EXPORTABLE_TLPS;
use crate::interop::stix::{import_objects, objects_of, ImportAction};
use crate::normalize::{self, ObservableType as T};
use crate::proto::draft::Body as DraftBody;
use crate::proto::record::Body;
use crate::proto::{Draft, Indicator, Lesson, PhaseAction};
use proptest::prelude::*;
use serde_json::Value;

/// Before every `valid_until` the strategies make.
const NOW: i64 = T0 - 1;

/// The STIX objects of `record`, as JSON.
fn export(feed: &VecFeed, record: &crate::interop::FeedRecord) -> Vec<Value> {
    let objects = objects_of(feed, record).unwrap().unwrap();
    objects.iter().map(|o| serde_json::from_str(&o.json).unwrap()).collect()
}

/// The drafts of objects read back.
fn import(objects: &[Value]) -> Vec<Draft> {
    let mut drafts = Vec::new();
    for imported in import_objects(objects, None, None, NOW) {
        match imported.action {
            ImportAction::Publish(more) => drafts.extend(more),
            other => panic!("{} not imported: {other:?}", imported.id),
        }
    }
    drafts
}

/// A raw value of an exportable type (normalised before use).
fn raw_value() -> impl Strategy<Value = (T, String)> {
    let hex = |n: usize| proptest::collection::vec(any::<u8>(), n).prop_map(hex::encode);
    prop_oneof![
        any::<u32>().prop_map(|n| (T::Ipv4, std::net::Ipv4Addr::from(n).to_string())),
        any::<u128>().prop_map(|n| (T::Ipv6, std::net::Ipv6Addr::from(n).to_string())),
        (any::<u32>(), 8u8..=32).prop_map(|(n, p)| {
            let net = ipnet::Ipv4Net::new(std::net::Ipv4Addr::from(n), p).unwrap().trunc();
            (T::Cidr, net.to_string())
        }),
        (any::<u128>(), 16u8..=128).prop_map(|(n, p)| {
            let net = ipnet::Ipv6Net::new(std::net::Ipv6Addr::from(n), p).unwrap().trunc();
            (T::Cidr, net.to_string())
        }),
        "[a-z][a-z0-9-]{0,12}[a-z0-9]\\.(example|test|org)".prop_map(|d| (T::Domain, d)),
        ("[a-z]{1,10}\\.example", "[a-zA-Z0-9/_.~'-]{0,20}").prop_map(|(d, p)| (T::Url, format!("https://{d}/{p}"))),
        ("[a-z0-9._]{1,10}", "[a-z]{1,10}\\.example").prop_map(|(l, d)| (T::Email, format!("{l}@{d}"))),
        hex(16).prop_map(|h| (T::Md5, h)),
        hex(20).prop_map(|h| (T::Sha1, h)),
        hex(32).prop_map(|h| (T::Sha256, h)),
        any::<u32>().prop_map(|n| (T::Asn, format!("AS{n}"))),
        "[ -~]{1,60}".prop_map(|ua| (T::UserAgent, ua)),
        "[A-Z0-9]{16}".prop_map(|k| (T::CloudAccessKeyId, format!("AKIA{k}"))),
        "[a-z0-9-]{3,30}".prop_map(|b| (T::CloudResourceName, format!("arn:aws:s3:::{b}"))),
        prop_oneof![hex(20), hex(32)].prop_map(|h| (T::CertificateFingerprint, h)),
    ]
}

/// An indicator as the node stores it: canonical value, clean lists.
fn stored_indicator() -> impl Strategy<Value = (Indicator, Tlp)> {
    let canonical = raw_value().prop_filter_map("not canonical", |(kind, raw)| {
        normalize::normalize(kind, &raw).ok().map(|value| (kind, value))
    });
    let categories = proptest::sample::subsequence(Category::ALL.to_vec(), 0..4);
    let seen = prop_oneof![Just((0, 0)), (0i64..10_000_000, 0i64..10_000_000).prop_map(|(a, b)| (T0 - a - b, T0 - b))];
    (
        canonical,
        1u32..=5,
        categories,
        0u32..=100,
        prop_oneof![Just(0i64), 1i64..100_000_000],
        seen,
        proptest::collection::btree_set("[a-z][a-z0-9:=-]{0,10}", 0..4),
        prop_oneof![Just(String::new()), "[a-zA-Z0-9][ -~]{0,40}[a-zA-Z0-9.]"],
        prop_oneof![Just(String::new()), "[a-z0-9-]{1,16}"],
        proptest::sample::select(EXPORTABLE_TLPS.to_vec()),
    )
        .prop_map(|((kind, value), level, categories, confidence, valid, (first, last), tags, description, incident, tlp)| {
            let indicator = Indicator {
                r#type: i32::from(kind.code()),
                value,
                cir_level: level,
                categories: categories.iter().map(|c| c.code()).collect(),
                confidence,
                valid_until: if valid == 0 { 0 } else { T0 + valid },
                first_seen: first,
                last_seen: last,
                tags: tags.into_iter().collect(),
                description,
                incident_ref: incident,
                supersedes: Vec::new(),
                hash_epoch: 0,
            };
            (indicator, tlp)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn an_indicator_keeps_every_field_stix_can_carry((original, tlp) in stored_indicator()) {
        let mut feed = VecFeed::default();
        let mut stored = indicator_record(original.clone(), T0);
        stored.record.tlp = tlp.code();
        feed.push(stored.clone());
        let objects = export(&feed, &feed.records[0]);
        let drafts = import(&objects);
        prop_assert_eq!(drafts.len(), 1);
        prop_assert_eq!(drafts[0].tlp, tlp.code());
        let Some(DraftBody::Indicator(back)) = &drafts[0].body else { panic!("{:?}", drafts[0]) };
        let kind = T::from_code(original.r#type as u8).unwrap();
        // The pattern may spell the value another way (an ASN as a number): it normalises back to the same.
        let canonical = normalize::normalize(kind, &back.value);
        prop_assert_eq!(canonical.as_deref(), Ok(original.value.as_str()));
        let expected = Indicator { value: back.value.clone(), ..original };
        prop_assert_eq!(back, &expected);
    }
}

#[test]
fn a_lesson_keeps_every_field_stix_can_carry() {
    let lesson = Lesson {
        title: "Leaked key used for mining".into(),
        summary: "A CI key leaked; GPU instances mined until a billing alert.".into(),
        cir_level: 4,
        categories: vec![Category::CredentialTheft.code(), Category::Intrusion.code()],
        service_model: ServiceModel::Iaas.code(),
        detection_method: "billing anomaly alert".into(),
        time_to_detect_secs: 19_200,
        time_to_contain_secs: 2_700,
        time_to_recover_secs: 93_600,
        root_cause: "a long-lived key in a CI file".into(),
        went_well: vec!["the alert fired".into()],
        to_improve: vec!["short-lived credentials".into(), "secret scanning".into()],
        recommended_actions: vec![
            PhaseAction { phase: Phase::Preparation.code(), action: "scan every push".into() },
            PhaseAction { phase: Phase::ContainmentEradicationRecovery.code(), action: "disable the key".into() },
        ],
        indicator_refs: Vec::new(),
        tags: vec!["cryptomining".into()],
    };
    let mut feed = VecFeed::default();
    feed.push(record(Body::Lesson(lesson.clone()), Tlp::Amber, T0, Some(MEMBER)));
    let objects = export(&feed, &feed.records[0]);
    assert_eq!(objects[0]["type"], "report");
    let drafts = import(&objects);
    assert_eq!(drafts[0].tlp, Tlp::Amber.code());
    let Some(DraftBody::Lesson(back)) = &drafts[0].body else { panic!("{:?}", drafts[0]) };
    assert_eq!(back, &lesson);
}
