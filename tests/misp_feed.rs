//! MISP feeds through a real node: `cirfed export misp-feed` and the HTTP
//! listener's `/misp-feed/`, checked with PyMISP; `cirfed import misp-feed`
//! of a feed directory into another node, incrementally.

mod common;

use cirfed::cir::{SightingType, Tlp};
use cirfed::http::auth::new_token;
use cirfed::interop::stix::ids;
use cirfed::proto::{draft, Draft, Indicator, Lesson, Sighting};
use cirfed::record::RecordId;
use common::cli::{cirfed, s};
use common::http::{request, Reply};
use common::{python, TestFederation, TestNode};
use serde_json::Value;
use std::io::Write;
use std::path::Path;

/// HTTP users: one may read the MISP feed and blocklists, one only a collection.
struct Tokens {
    feeds: String,
    other: String,
}

fn configure_http(dir: &Path) -> Tokens {
    let (feeds, feeds_hash) = new_token();
    let (other, other_hash) = new_token();
    let section = format!(
        r#"
[taxii]

[[taxii.users]]
name = "misp"
token_sha256 = "{feeds_hash}"
read = ["misp-feed", "blocklist"]

[[taxii.users]]
name = "siem"
token_sha256 = "{other_hash}"
read = ["community"]
"#
    );
    let mut file = std::fs::OpenOptions::new().append(true).open(dir.join("node.toml")).unwrap();
    file.write_all(section.as_bytes()).unwrap();
    Tokens { feeds, other }
}

fn get(node: &TestNode, token: Option<&str>, path: &str) -> Reply {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    request(&node.running.http_addr.unwrap().to_string(), "GET", path, &headers, b"")
}

fn indicator(value: &str, tlp: Tlp) -> Draft {
    Draft {
        tlp: tlp.code(),
        body: Some(draft::Body::Indicator(Indicator {
            value: value.to_string(),
            cir_level: 4,
            confidence: 80,
            description: format!("seen: {value}"),
            ..Default::default()
        })),
    }
}

fn lesson(refs: &[&[u8]]) -> Draft {
    Draft {
        tlp: Tlp::Green.code(),
        body: Some(draft::Body::Lesson(Lesson {
            title: "Leaked key used for crypto-mining".into(),
            summary: "A CI key leaked and was used to start GPU instances.".into(),
            cir_level: 3,
            indicator_refs: refs.iter().map(|r| r.to_vec()).collect(),
            went_well: vec!["billing alert".into()],
            ..Default::default()
        })),
    }
}

fn sighting(target: &[u8]) -> Draft {
    Draft {
        tlp: Tlp::Green.code(),
        body: Some(draft::Body::Sighting(Sighting {
            indicator_id: target.to_vec(),
            r#type: SightingType::Seen.code(),
            count: 2,
        })),
    }
}

fn uuid_of(id: &[u8]) -> String {
    ids::record_uuid(&RecordId::from_slice(id).unwrap()).hyphenated().to_string()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Runs the PyMISP check over a feed directory; its report.
fn pymisp_check(dir: &Path) -> Value {
    let out = python::run_script("misp_feed_check.py", &[s(dir)]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "PyMISP check failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(&stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_exported_feed_loads_in_pymisp_matches_its_manifest_and_hashes_and_is_served_over_http() {
    let fed = TestFederation::new();
    let dir = fed.admit_node("a");
    let tokens = configure_http(&dir);
    let mut node = TestNode::start_with_http(&dir).await;
    let ip = node.publish_ok(indicator("198.51.100.7", Tlp::Green)).await;
    let domain = node.publish_ok(indicator("bad.example", Tlp::Amber)).await;
    let lesson_id = node.publish_ok(lesson(&[&ip, &domain])).await;
    let hash = "b3c4ae251f8094fa15b510051835c657eaef2a6cea46075d3aec964b14a99f68";
    let alone = node.publish_ok(indicator(hash, Tlp::Clear)).await;
    node.publish_ok(sighting(&ip)).await;
    // The scrub policy shares an email address as a keyed hash, which MISP cannot match.
    node.publish_ok(indicator("phish@evil.example", Tlp::Green)).await;
    node.publish_ok(indicator("red.example", Tlp::Red)).await;

    let feed_dir = fed.root.path().join("feed");
    let api = node.running.api_addr.to_string();
    let out = cirfed(&["export", "misp-feed", s(&feed_dir), "--api", &api]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("exported: 3 attribute, 2 event, 1 sighting"), "{stderr}");
    assert!(stderr.contains("1 keyed_hash") && stderr.contains("1 tlp_red"), "{stderr}");

    let report = pymisp_check(&feed_dir);
    assert_eq!(report["hashes"], 3);
    let events = report["events"].as_object().unwrap();
    assert_eq!(events.len(), 2);
    let lesson_event = &events[&uuid_of(&lesson_id)];
    assert_eq!(lesson_event["info"], "Leaked key used for crypto-mining");
    assert_eq!(lesson_event["reports"], 1);
    let values: Vec<&str> =
        lesson_event["attributes"].as_array().unwrap().iter().map(|a| a["value"].as_str().unwrap()).collect();
    assert_eq!(values, ["198.51.100.7", "bad.example"]);
    assert_eq!(lesson_event["attributes"][0]["sightings"], serde_json::json!(["0"]));
    let rolling = ids::named_uuid("cirfed/misp-rolling", "feed").hyphenated().to_string();
    let rolling_event = &events[&rolling];
    assert_eq!(rolling_event["attributes"][0]["value"], hash);
    assert_eq!(rolling_event["attributes"][0]["type"], "sha256");
    assert!(rolling_event["tags"].as_array().unwrap().contains(&Value::from("tlp:clear")));
    let exported = serde_json::to_string(&events).unwrap();
    assert!(!exported.contains("red.example") && !exported.contains("evil.example"), "{exported}");
    assert!(!feed_dir.join(format!("{}.json", uuid_of(&alone))).exists(), "no event per indicator");

    // The HTTP listener serves the same files, to readers of the misp-feed scope only.
    let token = Some(tokens.feeds.as_str());
    for file in ["manifest.json".to_string(), "hashes.csv".to_string(), format!("{rolling}.json")] {
        let reply = get(&node, token, &format!("/misp-feed/{file}"));
        assert_eq!(reply.status, 200, "{file}: {}", reply.body);
        assert_eq!(reply.body, std::fs::read_to_string(feed_dir.join(&file)).unwrap(), "{file}");
    }
    let reply = get(&node, token, &format!("/misp-feed/{}.json", uuid_of(&lesson_id)));
    assert_eq!(reply.json(), read_json(&feed_dir.join(format!("{}.json", uuid_of(&lesson_id)))));
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(get(&node, token, &format!("/misp-feed/{}.json", uuid_of(&ip))).status, 404);
    assert_eq!(get(&node, token, "/misp-feed/not-a-uuid.json").status, 404);
    assert_eq!(get(&node, None, "/misp-feed/manifest.json").status, 401);
    assert_eq!(get(&node, Some(&tokens.other), "/misp-feed/manifest.json").status, 403);
    node.stop().await;
}
