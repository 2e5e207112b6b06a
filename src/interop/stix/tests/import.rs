//! Bundles and posted objects in: the sample bundles, STIX 2.0, TLP 1.0 and
//! 2.0 markings, objects refused or skipped whole with their reason, and the
//! objects only a node can resolve (sightings, revoked cirfed records).

use super::feed::{indicator, indicator_record, VecFeed, T0};
use crate::cir::{self, Tlp};
use crate::interop::bulk::{read_bulk, BulkFormat, BulkLine};
use crate::interop::draft::testing::{counts, errors, indicator as draft_indicator, read_shared, NOW};
use crate::interop::draft::{DraftError, DEFAULT_CONFIDENCE};
use crate::interop::stix::ids::object_id;
use crate::interop::stix::import::{read_bundle, MAX_BUNDLE_BYTES};
use crate::interop::stix::{import_objects, ImportAction};
use crate::interop::InteropError;
use crate::normalize::ObservableType;
use crate::proto::draft::Body;
use serde_json::{json, Value};

fn stix_lines(rel: &str) -> Vec<BulkLine> {
    read_bulk(&read_shared(rel), BulkFormat::StixBundle, NOW).unwrap()
}

fn bundle_of(objects: Value) -> String {
    json!({"type": "bundle", "id": "bundle--1", "objects": objects}).to_string()
}

fn one_indicator(indicator: Value) -> Vec<BulkLine> {
    read_bundle(&bundle_of(json!([indicator])), NOW).unwrap()
}

fn code(kind: ObservableType) -> i32 {
    i32::from(kind.code())
}

#[test]
fn the_c2_ip_bundle_imports_its_one_indicator() {
    let lines = stix_lines("stix/indicator-for-c2-ip-address.json");
    assert_eq!(counts(&lines), (1, 0));
    let draft = lines[0].draft.as_ref().unwrap();
    assert_eq!(draft.tlp, 0);
    let i = draft_indicator(draft);
    assert_eq!((i.r#type, i.value.as_str()), (code(ObservableType::Ipv4), "10.0.0.0"));
    assert_eq!(i.description, "Test description C2 channel.");
    assert_eq!(i.tags, ["malicious-activity"]);
    assert_eq!(i.confidence, u32::from(DEFAULT_CONFIDENCE));
    assert_eq!(lines[0].source, "ipv4-addr:value = '10.0.0.0'");
}

#[test]
fn the_c2_with_course_of_action_bundle_imports_two_indicators_and_names_the_other_types() {
    let lines = stix_lines("stix/indicators-for-C2-with-COA.json");
    assert_eq!(counts(&lines), (2, 6));
    let refused: Vec<(usize, String)> = errors(&lines).into_iter().map(|(n, e)| (n, e.to_string())).collect();
    let other = |kind: &str| format!("unsupported: STIX object type '{kind}': cirfed imports indicators, reports and sightings");
    assert_eq!(
        refused,
        [
            (1, "context: an identity: records are published under this node's pseudonym".to_owned()),
            (2, other("malware")),
            (5, other("course-of-action")),
            (6, other("relationship")),
            (7, other("relationship")),
            (8, other("relationship")),
        ]
    );
    assert!(lines.iter().filter_map(|l| l.draft.as_ref().err()).all(DraftError::is_skip), "all skipped, none refused");
    let hash = lines.iter().find(|l| l.line == 4).unwrap();
    let i = draft_indicator(hash.draft.as_ref().unwrap());
    assert_eq!(i.r#type, code(ObservableType::Sha256));
    assert_eq!(i.value, "ef537f25c895bfa782526529a9b63d97aa631564d5d789c2b765448c8635fb6c");
}

#[test]
fn the_sighting_bundle_imports_the_url_and_skips_the_sighting_it_cannot_resolve() {
    let lines = stix_lines("stix/sighting-of-an-indicator.json");
    assert_eq!(counts(&lines), (1, 3));
    let i = draft_indicator(lines[0].draft.as_ref().unwrap());
    assert_eq!((i.r#type, i.value.as_str()), (code(ObservableType::Url), "http://paypa1.banking.com"));
    let err = lines[3].draft.as_ref().unwrap_err();
    assert!(err.is_skip() && err.to_string().contains("sightings are imported through the node"), "{err}");
}

#[test]
fn or_patterns_give_one_draft_per_alternative_with_the_indicator_fields() {
    let lines = one_indicator(json!({
        "type": "indicator",
        "id": "indicator--1",
        "pattern_type": "stix",
        "pattern": "[ipv4-addr:value = '198.51.100.1' OR domain-name:value = 'evil.example'] OR \
                    ([file:hashes.MD5 = '0749bae92ca336a02c83d126e04ec628'] OR [autonomous-system:number = 64496]) \
                    OR [url:value = 'http://evil.example/a\\'b']",
        "confidence": 85,
        "valid_until": "2030-01-01T00:00:00Z",
        "description": "mining pool",
        "name": "ignored when there is a description",
        "labels": ["cryptomining"],
        "object_marking_refs": ["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da", "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"]
    }));
    assert!(lines.iter().all(|l| l.line == 1));
    let got: Vec<(i32, String)> = lines
        .iter()
        .map(|l| l.draft.as_ref().unwrap())
        .map(|d| (draft_indicator(d).r#type, draft_indicator(d).value.clone()))
        .collect();
    assert_eq!(
        got,
        [
            (code(ObservableType::Ipv4), "198.51.100.1".to_owned()),
            (code(ObservableType::Domain), "evil.example".to_owned()),
            (code(ObservableType::Md5), "0749bae92ca336a02c83d126e04ec628".to_owned()),
            (code(ObservableType::Asn), "64496".to_owned()),
            (code(ObservableType::Url), "http://evil.example/a'b".to_owned()),
        ]
    );
    let first = lines[0].draft.as_ref().unwrap();
    assert_eq!(first.tlp, Tlp::Amber.code(), "TLP 1.0 markings, the most restrictive wins");
    let i = draft_indicator(first);
    assert_eq!(i.confidence, 85);
    assert_eq!(i.valid_until, 1_893_456_000);
    assert_eq!(i.description, "mining pool");
    assert_eq!(i.tags, ["cryptomining"]);
}

#[test]
fn an_object_with_one_unmatchable_alternative_is_not_imported_at_all() {
    for (pattern, message) in [
        ("[ipv4-addr:value = '198.51.100.1' OR process:name = 'miner']", "unsupported STIX pattern: object path 'process:name'"),
        ("[ipv4-addr:value = '198.51.100.1'] OR [ipv4-addr:value != '10.0.0.1']", "unsupported STIX pattern: operator '!='"),
        ("[domain-name:value = 'good.example' OR domain-name:value = 'bad..example']", "`value` 'bad..example': invalid domain"),
        ("[ipv4-addr:value = '198.51.100.1' OR ipv4-addr:value = '198.51.100.1", "invalid stix pattern: unterminated string"),
    ] {
        let lines = one_indicator(json!({"type": "indicator", "id": "indicator--1", "pattern": pattern}));
        assert_eq!(lines.len(), 1, "one line for the object, no draft: {pattern}");
        let err = lines[0].draft.as_ref().unwrap_err().to_string();
        assert!(err.starts_with(message), "{pattern}: {err:?} should start with {message:?}");
        assert_eq!(lines[0].source, crate::interop::draft::excerpt(pattern));
    }
}

#[test]
fn indicators_that_expired_were_revoked_or_use_other_languages_are_refused() {
    let base = json!({"type": "indicator", "id": "indicator--1", "pattern": "[ipv4-addr:value = '198.51.100.1']"});
    let with = |key: &str, value: Value| {
        let mut object = base.clone();
        object[key] = value;
        object
    };
    let cases = [
        (with("valid_until", "2020-01-01T00:00:00Z".into()), "`valid_until` 2020-01-01T00:00:00Z is in the past"),
        (with("revoked", true.into()), "withdrawn: the STIX object is revoked"),
        (with("pattern_type", "sigma".into()), "unsupported STIX pattern: pattern_type 'sigma'"),
        (with("confidence", 101.into()), "`confidence` 101 is out of range"),
        (with("x_cirfed_observable_type", "ip".into()), "`x_cirfed_observable_type`: unknown observable type"),
    ];
    for (object, message) in cases {
        let lines = one_indicator(object);
        let err = lines[0].draft.as_ref().unwrap_err().to_string();
        assert!(err.starts_with(message), "{err:?} should start with {message:?}");
    }
}

#[test]
fn tlp_2_markings_and_marking_definitions_in_the_bundle_set_the_tlp() {
    let bundle = bundle_of(json!([
        {"type": "marking-definition", "id": "marking-definition--custom", "definition_type": "tlp", "definition": {"tlp": "red"}},
        {"type": "indicator", "id": "indicator--1", "pattern": "[ipv4-addr:value = '198.51.100.1']",
         "object_marking_refs": ["marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"]},
        {"type": "indicator", "id": "indicator--2", "pattern": "[ipv4-addr:value = '198.51.100.2']",
         "object_marking_refs": ["marking-definition--custom"]},
        {"type": "indicator", "id": "indicator--3", "pattern": "[ipv4-addr:value = '198.51.100.3']",
         "object_marking_refs": ["marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487", "marking-definition--not-a-tlp"]},
        {"type": "marking-definition", "id": "marking-definition--tlp2-green", "name": "TLP:GREEN",
         "extensions": {"extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d": {"extension_type": "property-extension", "tlp_2_0": "green"}}},
        {"type": "indicator", "id": "indicator--4", "pattern": "[ipv4-addr:value = '198.51.100.4']",
         "object_marking_refs": ["marking-definition--tlp2-green"]},
        {"type": "indicator", "id": "indicator--5", "pattern": "[ipv4-addr:value = '198.51.100.5']",
         "object_marking_refs": ["marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"]}
    ]));
    let lines = read_bundle(&bundle, NOW).unwrap();
    let tlps: Vec<i32> = lines.iter().filter_map(|l| l.draft.as_ref().ok()).map(|d| d.tlp).collect();
    assert_eq!(
        tlps,
        [Tlp::AmberStrict.code(), Tlp::Red.code(), Tlp::Clear.code(), Tlp::Green.code(), Tlp::Clear.code()],
        "TLP 1.0 WHITE reads as CLEAR"
    );
    assert_eq!(
        lines[0].draft,
        Err(DraftError::Context("a marking definition: read for the TLP of the objects that use it"))
    );
}

#[test]
fn stix_2_0_bundles_read_labels_and_objects_without_spec_version() {
    let bundle = json!({"type": "bundle", "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d", "spec_version": "2.0",
        "objects": [{
            "type": "indicator", "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
            "created": "2016-04-06T20:03:48Z", "modified": "2016-04-06T20:03:48Z",
            "labels": ["malicious-activity"], "name": "Poison Ivy Malware",
            "pattern": "[file:hashes.'SHA-256' = '4bac27393bdd9777ce02453256c5577cd02275510b2227f473d03f533924f877']",
            "valid_from": "2016-01-01T00:00:00Z",
            "object_marking_refs": ["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"]
        }]})
    .to_string();
    let lines = read_bundle(&bundle, NOW).unwrap();
    assert_eq!(counts(&lines), (1, 0));
    let draft = lines[0].draft.as_ref().unwrap();
    assert_eq!(draft.tlp, Tlp::Green.code());
    let i = draft_indicator(draft);
    assert_eq!((i.r#type, i.tags.as_slice()), (code(ObservableType::Sha256), &["malicious-activity".to_owned()][..]));
    assert_eq!(i.description, "Poison Ivy Malware", "the name when there is no description");
}

#[test]
fn the_latest_version_of_an_object_is_the_one_imported() {
    let version = |modified: &str, value: &str, revoked: bool| {
        json!({"type": "indicator", "id": "indicator--1", "modified": modified, "revoked": revoked,
               "pattern": format!("[domain-name:value = '{value}']")})
    };
    let lines = read_bundle(
        &bundle_of(json!([version("2024-01-01T00:00:00.000Z", "old.example", false), version("2024-02-01T00:00:00.000Z", "new.example", false)])),
        NOW,
    )
    .unwrap();
    assert_eq!(lines[0].draft, Err(DraftError::Context("an earlier version of an object whose latest version is also here")));
    assert_eq!(draft_indicator(lines[1].draft.as_ref().unwrap()).value, "new.example");
    let lines = read_bundle(
        &bundle_of(json!([version("2024-01-01T00:00:00.000Z", "old.example", false), version("2024-02-01T00:00:00.000Z", "old.example", true)])),
        NOW,
    )
    .unwrap();
    assert_eq!(counts(&lines), (0, 2), "a revoked object is not imported in any version");
}

#[test]
fn bad_bundles_are_refused_whole_with_the_reason() {
    for text in ["{\"Event\": {}}", "{\"type\": \"bundle\"}", "[", "{\"type\": \"indicator\"}", "{\"type\": \"bundle\", \"objects\": "] {
        let err = read_bulk(text, BulkFormat::StixBundle, NOW).unwrap_err();
        assert!(matches!(&err, InteropError::Invalid { what, .. } if what == "stix bundle"), "{text}: {err}");
    }
    let padding = " ".repeat(MAX_BUNDLE_BYTES);
    let big = format!("{{\"type\": \"bundle\", \"objects\": []{padding}}}");
    let err = read_bundle(&big, NOW).unwrap_err();
    assert!(matches!(err, InteropError::TooLarge { name: "MAX_BUNDLE_BYTES", .. }), "{err}");
    assert_eq!(err.code(), "too_large");
    let just_under = format!("{{\"type\": \"bundle\", \"objects\": []{}}}", &padding[..MAX_BUNDLE_BYTES - 40]);
    assert!(read_bundle(&just_under, NOW).unwrap().is_empty());
}

#[test]
fn posted_objects_become_drafts_context_or_refusals_naming_the_object() {
    let objects = vec![
        json!({"type": "marking-definition", "id": "marking-definition--x", "definition_type": "tlp", "definition": {"tlp": "green"}}),
        json!({"type": "indicator", "id": "indicator--a", "modified": "2026-01-01T00:00:00.000Z", "pattern": "[ipv4-addr:value = '198.51.100.1']"}),
        json!({"type": "indicator", "id": "indicator--b", "pattern": "[ipv4-addr:value = 'not-an-ip']"}),
        json!({"type": "malware", "id": "malware--c"}),
        json!({"type": "indicator", "id": "indicator--d", "pattern": "[domain-name:value = 'x.example']",
               "object_marking_refs": ["marking-definition--x"]}),
    ];
    let imports = import_objects(&objects, Some(Tlp::Amber), None, NOW);
    assert_eq!(imports.len(), 5);
    assert!(matches!(imports[0].action, ImportAction::Context(_)));
    assert_eq!((imports[1].id.as_str(), imports[1].version.as_str()), ("indicator--a", "2026-01-01T00:00:00.000Z"));
    let ImportAction::Publish(drafts) = &imports[1].action else { panic!("{:?}", imports[1]) };
    assert_eq!(drafts[0].tlp, Tlp::Amber.code(), "the default TLP where the object has no marking");
    let ImportAction::Refuse(err) = &imports[2].action else { panic!("{:?}", imports[2]) };
    assert_eq!(err.code(), "invalid_input");
    assert!(err.to_string().starts_with("indicator--b: `value` 'not-an-ip'"), "{err}");
    let ImportAction::Refuse(err) = &imports[3].action else { panic!("{:?}", imports[3]) };
    assert_eq!(err.code(), "unsupported");
    assert!(err.to_string().starts_with("malware--c: unsupported: STIX object type 'malware'"), "{err}");
    let ImportAction::Publish(drafts) = &imports[4].action else { panic!("{:?}", imports[4]) };
    assert_eq!(drafts[0].tlp, Tlp::Green.code(), "a marking definition posted alongside");
}

#[test]
fn with_a_feed_sightings_and_revoked_versions_of_cirfed_records_become_sightings_and_retractions() {
    let mut feed = VecFeed::default();
    let target = feed.push(indicator_record(indicator(ObservableType::Domain, "seen.example"), T0));
    let object = object_id("indicator", &target);
    let objects = vec![
        json!({"type": "sighting", "id": "sighting--1", "sighting_of_ref": object, "count": 3,
               "x_cirfed_sighting_type": "false-positive"}),
        json!({"type": "sighting", "id": "sighting--2", "sighting_of_ref": "indicator--6b5c2e9c-0a0b-4c3d-8e9f-0a1b2c3d4e5f"}),
        json!({"type": "indicator", "id": object, "revoked": true, "pattern": "[domain-name:value = 'seen.example']",
               "x_cirfed_retraction_reason": "benign after all"}),
        json!({"type": "report", "id": "report--1", "name": "post-mortem", "description": "what happened",
               "published": "2026-01-01T00:00:00Z", "object_refs": [object, "indicator--6b5c2e9c-0a0b-4c3d-8e9f-0a1b2c3d4e5f"]}),
        json!({"type": "report", "id": "report--2", "name": "no summary", "published": "2026-01-01T00:00:00Z", "object_refs": [object]}),
    ];
    let imports = import_objects(&objects, None, Some(&feed), NOW);
    let ImportAction::Publish(drafts) = &imports[0].action else { panic!("{:?}", imports[0]) };
    let Some(Body::Sighting(sighting)) = &drafts[0].body else { panic!("{drafts:?}") };
    assert_eq!(sighting.indicator_id, target.0.to_vec());
    assert_eq!((sighting.r#type, sighting.count), (cir::SightingType::FalsePositive.code(), 3));
    let ImportAction::Refuse(err) = &imports[1].action else { panic!("{:?}", imports[1]) };
    assert!(err.to_string().contains("is not a cirfed indicator this node holds"), "{err}");
    let ImportAction::Publish(drafts) = &imports[2].action else { panic!("{:?}", imports[2]) };
    let Some(Body::Retraction(retraction)) = &drafts[0].body else { panic!("{drafts:?}") };
    assert_eq!((retraction.target_id.as_slice(), retraction.reason.as_str()), (&target.0[..], "benign after all"));
    let ImportAction::Publish(drafts) = &imports[3].action else { panic!("{:?}", imports[3]) };
    let Some(Body::Lesson(lesson)) = &drafts[0].body else { panic!("{drafts:?}") };
    assert_eq!((lesson.title.as_str(), lesson.summary.as_str()), ("post-mortem", "what happened"));
    assert_eq!(lesson.indicator_refs, [target.0.to_vec()], "only indicators this node holds are referred to");
    let ImportAction::Refuse(err) = &imports[4].action else { panic!("{:?}", imports[4]) };
    assert!(err.to_string().contains("missing `description`"), "{err}");
}
