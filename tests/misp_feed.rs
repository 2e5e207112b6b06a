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

/// A feed directory made of the shared MISP samples, each as `<uuid>.json`,
/// with a manifest of their timestamps. Returns the uuids by sample name.
fn sample_feed(dir: &Path) -> Vec<(String, String)> {
    std::fs::create_dir_all(dir).unwrap();
    let beside = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/misp");
    // A checkout elsewhere (a CI clone in a temp dir) on a machine that has them.
    let samples = if beside.exists() { beside } else { std::path::PathBuf::from("/work/shared/data/misp") };
    let mut manifest = serde_json::Map::new();
    let mut uuids = Vec::new();
    for name in ["57c4445b-c548-4654-af0b-4be3950d210f.json", "misp_event.json", "sighting_1.json"] {
        let text = std::fs::read_to_string(samples.join(name)).unwrap();
        let root: Value = serde_json::from_str(&text).unwrap();
        let event = root.get("Event").unwrap_or(&root);
        let uuid = event["uuid"].as_str().unwrap().to_string();
        let timestamp: i64 = event["timestamp"].as_str().unwrap().parse().unwrap();
        manifest.insert(uuid.clone(), serde_json::json!({ "info": event["info"], "timestamp": timestamp }));
        std::fs::write(dir.join(format!("{uuid}.json")), text).unwrap();
        uuids.push((name.to_string(), uuid));
    }
    write_manifest(dir, &Value::Object(manifest));
    uuids
}

fn write_manifest(dir: &Path, manifest: &Value) {
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).unwrap();
}

/// `cirfed --json import misp-feed DIR --node NODE`: exit success and the report.
fn import_feed(dir: &Path, node: &Path) -> (bool, Value) {
    let out = cirfed(&["--json", "import", "misp-feed", s(dir), "--node", s(node)]);
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    });
    (out.status.success(), report)
}

fn event_report<'a>(report: &'a Value, uuid: &str) -> &'a Value {
    report["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["uuid"] == uuid)
        .unwrap_or_else(|| panic!("{uuid}: {report}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_misp_feed_imports_incrementally_and_a_missing_event_file_is_named_and_imports_nothing() {
    let fed = TestFederation::new();
    let node_dir = fed.admit_node("b");
    let mut node = TestNode::start(&node_dir).await;
    let feed = fed.root.path().join("samples-feed");
    let uuids = sample_feed(&feed);
    let uuid = |name: &str| uuids.iter().find(|(n, _)| n == name).unwrap().1.clone();
    let (hashes, bare, sightings) =
        (uuid("57c4445b-c548-4654-af0b-4be3950d210f.json"), uuid("misp_event.json"), uuid("sighting_1.json"));

    // First run: every event; attributes marked to_ids become indicators, MISP sightings sightings.
    let (ok, report) = import_feed(&feed, &node_dir);
    assert!(ok, "{report}");
    assert_eq!(report["events_read"], 3);
    assert_eq!(event_report(&report, &hashes)["created"], 3, "md5, sha1 and sha256");
    assert_eq!(event_report(&report, &hashes)["skipped"].as_array().unwrap().len(), 6);
    assert_eq!(event_report(&report, &bare)["created"], 0, "nothing in it is marked to_ids");
    let with_sightings = event_report(&report, &sightings);
    assert_eq!((with_sightings["created"].as_u64(), with_sightings["sightings"].as_u64()), (Some(5), Some(6)));
    assert_eq!(node.matches("ooiasjdnqjwbeasdasd.com").await.len(), 1);
    let state = node_dir.join("imports").read_dir().unwrap().next().unwrap().unwrap().path();
    assert!(state.file_name().unwrap().to_str().unwrap().starts_with("misp-feed-"), "{}", state.display());

    // Second run: nothing changed, so nothing is read (a broken file goes unnoticed).
    std::fs::write(feed.join(format!("{bare}.json")), "not json").unwrap();
    let (ok, report) = import_feed(&feed, &node_dir);
    assert!(ok, "{report}");
    assert_eq!((report["events_read"].as_u64(), report["events_unchanged"].as_u64()), (Some(0), Some(3)));

    // One event changes: only it is read, and of it only the new attribute is published.
    let mut manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(feed.join("manifest.json")).unwrap()).unwrap();
    manifest[&sightings]["timestamp"] = Value::from(1_533_306_200);
    write_manifest(&feed, &manifest);
    let path = feed.join(format!("{sightings}.json"));
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let added = serde_json::json!({"type": "domain", "value": "added-later.example", "to_ids": true,
                                   "category": "Network activity", "timestamp": "1533306200"});
    event["Event"]["Attribute"].as_array_mut().unwrap().push(added);
    std::fs::write(&path, event.to_string()).unwrap();
    let (ok, report) = import_feed(&feed, &node_dir);
    assert!(ok, "{report}");
    assert_eq!(report["events_read"], 1);
    let changed = event_report(&report, &sightings);
    assert_eq!((changed["created"].as_u64(), changed["unchanged_attributes"].as_u64()), (Some(1), Some(5)));
    assert_eq!(node.matches("added-later.example").await.len(), 1);

    // A manifest naming a file that is not there: the error names it, nothing of that event is
    // published, the other events are untouched, and the next run tries it again.
    let missing = "0b6ddc5c-1a5e-4f4b-9d3c-5f0b2e7a9c11";
    manifest[missing] = serde_json::json!({ "timestamp": 1_700_000_000 });
    manifest[&hashes]["timestamp"] = Value::from(1_472_541_012);
    write_manifest(&feed, &manifest);
    for read in [1, 0] {
        let (ok, report) = import_feed(&feed, &node_dir);
        assert!(!ok, "{report}");
        assert_eq!(report["events_read"], read, "the changed event beside the missing one is imported once");
        let failed = &report["failed"][0];
        assert_eq!(failed["uuid"], missing);
        let error = failed["error"].as_str().unwrap();
        assert!(error.contains(&format!("manifest.json names {missing}.json, which is not in")), "{error}");
    }
    let imported: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert!(imported["events"].get(missing).is_none());
    assert_eq!(imported["events"][&sightings]["timestamp"], 1_533_306_200);
    node.stop().await;
}

#[test]
fn cirfed_import_still_reads_a_file_of_signed_envelopes() {
    let temp = tempfile::tempdir().unwrap();
    let file = temp.path().join("envelopes.txt");
    std::fs::write(&file, "# nothing but a comment\nnot base64!\n").unwrap();
    let out = cirfed(&["import", s(&file), "--api", "127.0.0.1:1"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 2: not base64"), "{stderr}");
}
