//! STIX 2.1 through a real node: `cirfed export stix` (the Export RPC) holds
//! every exportable record, leaves out what must not leave, is byte-identical
//! on re-export and passes OASIS stix2-validator; the bundle re-imports into
//! another node with `publish --file`; bad bundles are refused with the
//! reason and nothing of them half-imported.

mod common;

use cirfed::interop::stix::ids::object_id;
use cirfed::interop::stix::import::MAX_BUNDLE_BYTES;
use cirfed::record::RecordId;
use common::cli::{cirfed, ok, s, setup, stdout_json, Setup};
use common::python::python_tool;
use common::{serve, Server};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// stix2-validator warnings cirfed's bundles may give, each a deliberate
/// choice documented in the README. None: the bundles pass clean.
const DELIBERATE_WARNINGS: &[&str] = &[];

/// One indicator of every type a node exports as a pattern, the user agent
/// with a quote and a backslash to escape. (Emails, access key ids and ARNs
/// naming an account are keyed-hashed by the default scrub policy.)
const EXPORTABLE: [(&str, &str); 13] = [
    ("ipv4", "198.51.100.7"),
    ("ipv6", "2001:db8::7"),
    ("cidr", "198.51.100.0/24"),
    ("cidr", "2001:db8:1::/48"),
    ("domain", "bad.example"),
    ("url", "http://bad.example/a?b=1"),
    ("md5", "0749bae92ca336a02c83d126e04ec628"),
    ("sha1", "77b0c41b7d340b8a3d903f21347bbf06aa766b5b"),
    ("sha256", "ef537f25c895bfa782526529a9b63d97aa631564d5d789c2b765448c8635fb6c"),
    ("asn", "AS64496"),
    ("user-agent", "Mozilla/5.0 (it's \\ odd)"),
    ("cloud-resource-name", "arn:aws:s3:::bad-bucket"),
    ("certificate-fingerprint", "ef537f25c895bfa782526529a9b63d97aa631564d5d789c2b765448c8635fb6d"),
];

/// Values the scrub policy shares as keyed hashes, which STIX cannot carry.
const KEYED: [(&str, &str); 2] = [("email", "x@bad.example"), ("cloud-access-key-id", "AKIAIOSFODNN7EXAMPLE")];

/// What `publish_everything` published.
struct Published {
    /// The first indicator (an IPv4 address): the lesson and the sighting refer to it.
    ipv4: RecordId,
    /// The indicator that was then retracted.
    retracted: RecordId,
}

fn api(server: &Server) -> [&str; 2] {
    ["--api", server.addr.as_str()]
}

fn run_ok(args: &[&str], server: &Server) -> String {
    ok(&[args, &api(server)[..]].concat())
}

/// Publishes indicators of every exportable type, two keyed hashes, a RED
/// indicator, a lesson, a sighting and a retraction.
fn publish_everything(setup: &Setup, server: &Server) -> Published {
    let file = setup.root.path().join("indicators.jsonl");
    let lines: Vec<String> = EXPORTABLE
        .iter()
        .chain(&KEYED)
        .enumerate()
        .map(|(n, (kind, value))| {
            let mut line = json!({"type": kind, "value": value, "level": 1 + n % 5, "confidence": 60 + n});
            if n == 0 {
                line["categories"] = json!(["intrusion", "malware"]);
                line["tags"] = json!(["c2", "vpn exit"]);
                line["description"] = json!("C2 address from the 2026-01 incident");
                line["incident_ref"] = json!("inc-7f3a");
                line["first_seen"] = json!("2026-01-01T00:00:00Z");
                line["last_seen"] = json!("2026-01-02T00:00:00Z");
            }
            line.to_string()
        })
        .collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let report: Value = serde_json::from_str(&run_ok(&["--json", "publish", "--file", s(&file)], server)).unwrap();
    assert_eq!(report["created"], EXPORTABLE.len() + KEYED.len(), "{report}");
    let ipv4 = RecordId::from_str(report["records"][0]["id"].as_str().unwrap()).unwrap();

    run_ok(&["publish", "indicator", "--value", "red.example", "--tlp", "red"], server);
    let gone = run_ok(&["--json", "publish", "indicator", "--value", "gone.example", "--tlp", "green"], server);
    let gone: Value = serde_json::from_str(&gone).unwrap();
    let retracted = RecordId::from_str(gone["id"].as_str().unwrap()).unwrap();
    run_ok(&["retract", &retracted.to_hex(), "--reason", "false positive"], server);

    let template = ok(&["publish", "lesson", "--template"]);
    let lesson = template.replace("indicator_refs = []", &format!("indicator_refs = [\"{}\"]", ipv4.to_hex()));
    let lesson_file = setup.root.path().join("pm.toml");
    std::fs::write(&lesson_file, lesson).unwrap();
    run_ok(&["publish", "lesson", s(&lesson_file)], server);
    run_ok(&["sighting", &ipv4.to_hex(), "--type", "false-positive"], server);
    Published { ipv4, retracted }
}

/// `cirfed export stix --out F`, with its summary.
fn export(server: &Server, out: &Path) -> Value {
    serde_json::from_str(&run_ok(&["--json", "export", "stix", "--out", s(out)], server)).expect("summary")
}

fn objects_of_type<'a>(bundle: &'a Value, kind: &str) -> Vec<&'a Value> {
    bundle["objects"].as_array().unwrap().iter().filter(|o| o["type"] == kind).collect()
}

/// Runs OASIS stix2-validator; fails on any error or any undocumented warning.
fn validate(bundle: &Path) {
    let validator = python_tool("stix2_validator");
    let out = std::process::Command::new(validator).args(["--version", "2.1", s(bundle)]).output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stix2-validator failed: {report}{}", String::from_utf8_lossy(&out.stderr));
    assert!(report.contains("STIX JSON: Valid") && !report.contains("[X]"), "{report}");
    for line in report.lines().filter(|l| l.contains("[!]")) {
        assert!(DELIBERATE_WARNINGS.iter().any(|w| line.contains(w)), "undocumented warning: {line}");
    }
}

#[test]
fn a_stix_export_holds_every_exportable_record_leaves_out_red_and_keyed_hashes_and_validates() {
    let setup = setup();
    let server = serve(&setup.node);
    let published = publish_everything(&setup, &server);
    let file = setup.root.path().join("bundle.json");
    let summary = export(&server, &file);

    let exported = &summary["exported"];
    assert_eq!(exported["indicator"], EXPORTABLE.len() + 2, "the exportables, the retracted one and its revoked version: {summary}");
    assert_eq!((exported["report"].as_u64(), exported["sighting"].as_u64()), (Some(1), Some(1)), "{summary}");
    assert_eq!(exported["extension-definition"], 1);
    assert!(exported["identity"].as_u64().unwrap() >= 3, "cirfed, the authority and the member: {summary}");
    assert_eq!(summary["skipped"]["keyed_hash"], KEYED.len(), "{summary}");
    assert_eq!(summary["skipped"]["tlp_red"], 1, "{summary}");

    let bytes = std::fs::read(&file).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(!text.contains("red.example"), "RED never leaves the node");
    let bundle: Value = serde_json::from_str(&text).unwrap();
    assert!(text.starts_with(r#"{"type":"bundle","objects":["#), "{}", &text[..60]);
    let id = bundle["id"].as_str().unwrap();
    assert!(text.ends_with(&format!(r#"],"id":"{id}"}}"#)), "the id last, so the bundle streams");
    let ids: BTreeSet<&str> = bundle["objects"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap()).collect();
    for object in bundle["objects"].as_array().unwrap() {
        for marking in object["object_marking_refs"].as_array().into_iter().flatten() {
            assert!(ids.contains(marking.as_str().unwrap()), "{marking} is defined in the bundle");
        }
    }

    let indicators = objects_of_type(&bundle, "indicator");
    let pattern_of = |needle: &str| {
        indicators.iter().map(|i| i["pattern"].as_str().unwrap()).find(|p| p.contains(needle)).unwrap_or_else(|| panic!("{needle}"))
    };
    assert_eq!(pattern_of("64496"), "[autonomous-system:number = 64496]");
    assert_eq!(pattern_of("Mozilla"), r"[network-traffic:extensions.'http-request-ext'.request_header.'User-Agent' = 'Mozilla/5.0 (it\'s \\ odd)']");
    assert_eq!(pattern_of("198.51.100.0"), "[ipv4-addr:value ISSUBSET '198.51.100.0/24']");
    let ipv4_id = object_id("indicator", &published.ipv4);
    let ipv4 = indicators.iter().find(|i| i["id"] == ipv4_id.as_str()).unwrap();
    assert_eq!(ipv4["indicator_types"], json!(["malicious-activity"]));
    assert_eq!(ipv4["labels"], json!(["c2", "vpn exit"]));
    assert_eq!(ipv4["x_cirfed_categories"], json!(["intrusion", "malware"]));
    assert_eq!(ipv4["external_references"][0]["external_id"], published.ipv4.to_hex());
    let versions: Vec<&&Value> =
        indicators.iter().filter(|i| i["id"] == object_id("indicator", &published.retracted).as_str()).collect();
    assert_eq!(versions.len(), 2);
    assert_eq!((versions[0].get("revoked"), &versions[1]["revoked"]), (None, &json!(true)));
    assert!(versions[1]["modified"].as_str() > versions[0]["modified"].as_str());
    let report = objects_of_type(&bundle, "report")[0];
    assert_eq!(report["object_refs"], json!([ipv4_id]));
    assert_eq!(report["x_cirfed_time_to_detect_secs"], 19_200);
    let sighting = objects_of_type(&bundle, "sighting")[0];
    assert_eq!((&sighting["sighting_of_ref"], &sighting["x_cirfed_sighting_type"]), (&json!(ipv4_id), &json!("false-positive")));

    let again = setup.root.path().join("again.json");
    assert_eq!(export(&server, &again), summary);
    assert_eq!(std::fs::read(&again).unwrap(), bytes, "a re-export is byte-identical");
    validate(&file);
}

/// A second node of the same federation, set up through the CLI.
fn second_node(setup: &Setup) -> PathBuf {
    let node = setup.root.path().join("node-b");
    ok(&["node", "init", "--dir", s(&node), "--name", "CSP B"]);
    let admission = setup.root.path().join("b.admission.json");
    ok(&["federation", "admit", "--dir", s(&setup.fed), s(&node.join("join-request.json")), "--out", s(&admission)]);
    ok(&["node", "join", "--dir", s(&node), s(&admission)]);
    node
}

/// What a re-import must keep of each active indicator.
fn indicator_fields(server: &Server) -> BTreeSet<String> {
    let listed: Value =
        serde_json::from_str(&run_ok(&["--json", "list", "--kind", "indicator", "--limit", "500"], server)).unwrap();
    listed["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["tlp"] != "red" && r["indicator"]["type"] != "keyed-hash")
        .map(|r| {
            let i = &r["indicator"];
            let fields = [
                "type", "value", "cir_level", "categories", "confidence", "valid_until", "first_seen", "last_seen", "tags",
                "incident_ref", "description",
            ];
            let mut kept = json!({ "tlp": r["tlp"] });
            for key in fields {
                kept[key] = i[key].clone();
            }
            kept.to_string()
        })
        .collect()
}

#[test]
fn an_exported_bundle_re_imports_into_another_node_with_the_same_indicators() {
    let setup = setup();
    let server = serve(&setup.node);
    publish_everything(&setup, &server);
    let file = setup.root.path().join("bundle.json");
    export(&server, &file);
    let other = serve(&second_node(&setup));
    let out = cirfed(&["--json", "publish", "--file", s(&file), "--api", &other.addr]);
    let report = stdout_json(&out);
    assert!(out.status.success(), "{report}");
    assert_eq!(report["created"], EXPORTABLE.len() + 1, "the indicators and the lesson: {report}");
    assert_eq!(report["refused"], json!([]), "{report}");
    let reasons = &report["skipped_by_reason"];
    assert_eq!(reasons["withdrawn"], 1, "the revoked indicator, in none of its versions: {report}");
    assert_eq!(reasons["unsupported"], 1, "the sighting, which only a node's TAXII import resolves: {report}");
    assert!(reasons["context"].as_u64().unwrap() >= 5, "markings, identities, the extension: {report}");
    let original = indicator_fields(&server);
    assert_eq!(original.len(), EXPORTABLE.len());
    assert_eq!(indicator_fields(&other), original);
}

fn bad_bundle(setup: &Setup, name: &str, text: &str) -> PathBuf {
    let path = setup.root.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn stored_indicators(server: &Server) -> usize {
    let listed: Value =
        serde_json::from_str(&run_ok(&["--json", "list", "--kind", "indicator", "--all"], server)).unwrap();
    listed["records"].as_array().unwrap().len()
}

#[test]
fn bad_bundles_are_refused_with_the_reason_and_nothing_half_imported() {
    let setup = setup();
    let server = serve(&setup.node);

    let malformed = bad_bundle(&setup, "malformed.json", r#"{"type": "bundle", "objects": [{"type": "indicator""#);
    let out = cirfed(&["--json", "publish", "--file", s(&malformed), "--format", "stix", "--api", &server.addr]);
    assert!(!out.status.success());
    let error = stdout_json(&out);
    assert_eq!(error["error"]["code"], "invalid_input", "{error}");
    assert!(error["error"]["message"].as_str().unwrap().contains("stix bundle: EOF while parsing"), "{error}");

    let padding = " ".repeat(MAX_BUNDLE_BYTES);
    let large = bad_bundle(&setup, "large.json", &format!(r#"{{"type": "bundle", "objects": []{padding}}}"#));
    let out = cirfed(&["--json", "publish", "--file", s(&large), "--format", "stix", "--api", &server.addr]);
    let error = stdout_json(&out);
    assert_eq!(error["error"]["code"], "too_large", "{error}");
    assert!(error["error"]["message"].as_str().unwrap().contains("MAX_BUNDLE_BYTES"), "{error}");
    assert_eq!(stored_indicators(&server), 0, "nothing of a refused file is stored");

    let indicator = |id: u32, pattern: &str| {
        json!({"type": "indicator", "spec_version": "2.1", "id": format!("indicator--{id:08x}-0000-4000-8000-000000000000"),
               "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z",
               "pattern": pattern, "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z"})
    };
    let bundle = json!({"type": "bundle", "id": "bundle--6b5c2e9c-0a0b-4c3d-8e9f-0a1b2c3d4e5f", "objects": [
        indicator(1, "[domain-name:value = 'good.example']"),
        indicator(2, "[ipv4-addr:value = '198.51.100.1'"),
        indicator(3, "[ipv4-addr:value = '999.1.1.1']"),
        indicator(4, "[domain-name:value = 'half.example' OR process:name = 'miner']"),
        indicator(5, "[domain-name:value = 'late.example'] WITHIN 300 SECONDS"),
    ]});
    let mixed = bad_bundle(&setup, "mixed.json", &bundle.to_string());
    let out = cirfed(&["--json", "publish", "--file", s(&mixed), "--api", &server.addr]);
    let report = stdout_json(&out);
    assert!(!out.status.success(), "refused objects make the exit code non-zero");
    assert_eq!(report["created"], 1, "{report}");
    let refused: Vec<(u64, &str)> = report["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r["error"].as_str().unwrap()))
        .collect();
    assert_eq!(refused.len(), 2, "{report}");
    assert_eq!(refused[0].0, 2);
    assert!(refused[0].1.starts_with("invalid stix pattern: expected ] at the end"), "{report}");
    assert_eq!(refused[1].0, 3);
    assert!(refused[1].1.starts_with("`value` '999.1.1.1': not an IP address or network"), "{report}");
    assert_eq!(report["skipped_by_reason"], json!({"unsupported_pattern": 2}), "{report}");
    let skipped: Vec<&str> = report["skipped"].as_array().unwrap().iter().map(|r| r["reason"].as_str().unwrap()).collect();
    assert!(skipped[0].starts_with("unsupported STIX pattern: object path 'process:name'"), "{skipped:?}");
    assert!(skipped[1].starts_with("unsupported STIX pattern: qualifier WITHIN"), "{skipped:?}");
    assert_eq!(stored_indicators(&server), 1, "half.example is not published without the rest of its pattern");

    let human = cirfed(&["publish", "--file", s(&mixed), "--api", &server.addr]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(text.contains("skipped by reason: 2 unsupported_pattern"), "{text}");
}
