//! The `cirfed` binary as a user runs it: set-up commands, a real `serve`
//! process, client commands against it, and the errors a user can hit.

mod common;

use common::serve;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn cirfed(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cirfed"))
        .args(args)
        .env_remove("CIRFED_API")
        .env_remove("CIRFED_NODE")
        .output()
        .expect("cirfed runs")
}

fn ok(args: &[&str]) -> String {
    let out = cirfed(args);
    assert!(out.status.success(), "cirfed {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn fails(args: &[&str]) -> String {
    let out = cirfed(args);
    assert!(!out.status.success(), "cirfed {args:?} should fail; stdout: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8(out.stderr).unwrap()
}

fn json(args: &[&str]) -> Value {
    serde_json::from_str(&ok(args)).expect("json output")
}

/// `lookup --json`, which exits like grep: 0 when a value matched, 1 when none did.
fn no_match(args: &[&str]) -> Value {
    let out = cirfed(args);
    assert_eq!(out.status.code(), Some(1), "no match exits 1: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json output")
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A federation and one joined node, set up through the CLI.
struct Setup {
    _root: tempfile::TempDir,
    fed: PathBuf,
    node: PathBuf,
}

fn setup() -> Setup {
    let root = tempfile::tempdir().unwrap();
    let fed = root.path().join("fed");
    let node = root.path().join("node");
    ok(&["federation", "init", "--dir", s(&fed), "--name", "cli-test"]);
    ok(&["node", "init", "--dir", s(&node), "--name", "CSP A"]);
    let admission = root.path().join("a.admission.json");
    ok(&["federation", "admit", "--dir", s(&fed), s(&node.join("join-request.json")), "--out", s(&admission)]);
    ok(&["node", "join", "--dir", s(&node), s(&admission)]);
    Setup { _root: root, fed, node }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn set_up_writes_private_keys_mode_0600_and_never_overwrites_without_force() {
    let setup = setup();
    for key in [
        setup.fed.join("ca.key"),
        setup.fed.join("authority.key"),
        setup.fed.join("sharing.key"),
        setup.node.join("keys/signing.key"),
        setup.node.join("keys/tls.key"),
        // The admission carries the federation's secret sharing key.
        setup.node.join("admission.json"),
        setup.fed.parent().unwrap().join("a.admission.json"),
    ] {
        assert_eq!(mode(&key), 0o600, "{}", key.display());
    }
    let err = fails(&["federation", "init", "--dir", s(&setup.fed)]);
    assert!(err.contains("--force"), "{err}");
    let err = fails(&["node", "init", "--dir", s(&setup.node), "--name", "again"]);
    assert!(err.contains("--force"), "{err}");
    let key_before = std::fs::read(setup.node.join("keys/signing.key")).unwrap();
    ok(&["node", "init", "--dir", s(&setup.node), "--name", "again", "--force"]);
    assert_ne!(std::fs::read(setup.node.join("keys/signing.key")).unwrap(), key_before);
    assert_eq!(mode(&setup.node.join("keys/signing.key")), 0o600);
}

#[test]
fn joining_with_another_nodes_admission_is_refused() {
    let setup = setup();
    let other = setup.fed.parent().unwrap().join("other");
    ok(&["node", "init", "--dir", s(&other), "--name", "CSP B"]);
    let err = fails(&["node", "join", "--dir", s(&other), s(&setup.node.join("admission.json"))]);
    assert!(err.contains("not for this node"), "{err}");
}

#[test]
fn publish_lookup_show_list_retract_and_status_work_against_a_running_node() {
    let setup = setup();
    let server = serve(&setup.node);
    let api = ["--api", server.addr.as_str()];
    let publish = |value: &str| {
        let flags = ["--level", "4", "--tlp", "green", "--confidence", "80", "--category", "phishing"];
        let args =
            [&["publish", "indicator", "--value", value][..], &flags[..], &["--description", "kit"][..], &api[..]];
        ok(&args.concat())
    };
    let out = publish("evil.example");
    let id = out.trim().strip_prefix("published ").expect("prints the id").to_string();
    assert_eq!(id.len(), 64);
    let again = publish("EVIL.example.");
    assert!(again.contains("already published") && again.contains(&id), "{again}");

    let found = json(&[&["--json", "lookup", "www.evil.example"][..], &api[..]].concat());
    assert_eq!(found["matched"], true);
    assert_eq!(found["max_cir_level"], 4);
    assert_eq!(found["matches"][0]["match"], "parent-domain");
    let table = ok(&[&["lookup", "www.evil.example", "benign.example"][..], &api[..]].concat());
    assert!(table.contains("parent-domain") && table.contains("no match"), "{table}");

    let shown = json(&[&["--json", "show", &id][..], &api[..]].concat());
    assert_eq!(shown["indicator"]["value"], "evil.example");
    assert_eq!(shown["indicator"]["categories"][0], "phishing");
    assert_eq!(shown["tlp"], "green");

    let listed = json(&[&["--json", "list", "--kind", "indicator"][..], &api[..]].concat());
    assert_eq!(listed["records"].as_array().unwrap().len(), 1);

    ok(&[&["retract", &id, "--reason", "false positive"][..], &api[..]].concat());
    let gone = no_match(&[&["--json", "lookup", "evil.example"][..], &api[..]].concat());
    assert_eq!(gone["matched"], false);
    let shown = json(&[&["--json", "show", &id][..], &api[..]].concat());
    assert_eq!(shown["state"], "retracted");

    let status = json(&["--json", "status", "--node", s(&setup.node)]);
    assert_eq!(status["kinds"]["indicator"], 1);
    assert_eq!(status["kinds"]["retraction"], 1);
    assert_eq!(status["active_indicators"], 0);
}

#[test]
fn bulk_publish_reports_accepted_and_refused_lines_with_reasons() {
    let setup = setup();
    let server = serve(&setup.node);
    let file = setup.node.join("feed.jsonl");
    std::fs::write(
        &file,
        "{\"value\": \"198.51.100.7\", \"level\": 3, \"tlp\": \"green\"}\n\
         {\"value\": \"not an observable at all\", \"level\": 3}\n\
         {\"type\": \"domain\", \"value\": \"c2.example\", \"level\": 9}\n\
         {\"type\": \"sha256\", \"value\": \"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\", \"level\": 2}\n",
    )
    .unwrap();
    let out = cirfed(&["publish", "--file", s(&file), "--api", &server.addr]);
    assert!(!out.status.success(), "refused lines make the exit code non-zero");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("accepted 2"), "{stdout}");
    assert!(stdout.contains("refused 2"), "{stdout}");
    assert!(stdout.contains("line 2"), "{stdout}");
    assert!(stdout.contains("line 3"), "{stdout}");
    let found = json(&["--json", "lookup", "198.51.100.7", "--api", &server.addr]);
    assert_eq!(found["matched"], true);
}

#[test]
fn bulk_lookup_from_stdin_streams_every_value() {
    let setup = setup();
    let server = serve(&setup.node);
    ok(&["publish", "indicator", "--value", "203.0.113.0/24", "--level", "3", "--api", &server.addr]);
    let input: String =
        (0..25_000).map(|n| format!("10.{}.{}.{}\n", n / 65536, (n / 256) % 256, n % 256)).collect::<String>()
            + "203.0.113.9\n";
    let mut child = Command::new(env!("CARGO_BIN_EXE_cirfed"))
        .args(["--json", "lookup", "--stdin", "--hits-only", "--api", &server.addr])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), input.as_bytes()).unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "only the hit is printed");
    assert_eq!(lines[0]["value"], "203.0.113.9");
}

#[test]
fn the_lesson_template_publishes_as_is() {
    let setup = setup();
    let server = serve(&setup.node);
    let template = ok(&["publish", "lesson", "--template"]);
    let file = setup.node.join("pm.toml");
    std::fs::write(&file, template).unwrap();
    let out = ok(&["--json", "publish", "lesson", s(&file), "--api", &server.addr]);
    let published: Value = serde_json::from_str(&out).unwrap();
    let id = published["id"].as_str().unwrap();
    let shown = json(&["--json", "show", id, "--api", &server.addr]);
    assert_eq!(shown["kind"], "lesson");
    assert!(!shown["lesson"]["title"].as_str().unwrap().is_empty());
}

#[test]
fn a_second_serve_on_the_same_data_dir_fails_clearly() {
    let setup = setup();
    let _server = serve(&setup.node);
    let err =
        fails(&["serve", "--dir", s(&setup.node), "--api-listen", "127.0.0.1:0", "--federation-listen", "127.0.0.1:0"]);
    assert!(err.contains("in use by another cirfed process"), "{err}");
}

#[test]
fn serve_refuses_a_non_loopback_api_without_tls() {
    let setup = setup();
    let err = fails(&["serve", "--dir", s(&setup.node), "--api-listen", "0.0.0.0:0"]);
    assert!(err.contains("api.tls"), "{err}");
}

#[test]
fn serve_without_a_config_says_how_to_create_one() {
    let root = tempfile::tempdir().unwrap();
    let err = fails(&["serve", "--dir", s(root.path())]);
    assert!(err.contains("cirfed node init"), "{err}");
}

#[test]
fn serve_with_an_invalid_config_names_the_problem() {
    let setup = setup();
    std::fs::write(setup.node.join("node.toml"), "[publish]\ndefault_valid_dayz = 3\n").unwrap();
    let err = fails(&["serve", "--dir", s(&setup.node)]);
    assert!(err.contains("invalid config") && err.contains("default_valid_dayz"), "{err}");
}

#[test]
fn serve_with_a_corrupt_key_file_names_the_file() {
    let setup = setup();
    let key = setup.node.join("keys/signing.key");
    std::fs::write(
        &key,
        "-----BEGIN CIRFED ED25519 PRIVATE KEY-----\nnot hex\n-----END CIRFED ED25519 PRIVATE KEY-----\n",
    )
    .unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let err = fails(&["serve", "--dir", s(&setup.node)]);
    assert!(err.contains("signing.key"), "{err}");
}

#[test]
fn client_commands_without_a_node_say_so() {
    let err = fails(&["lookup", "evil.example", "--api", "127.0.0.1:1"]);
    assert!(err.contains("cannot reach the node's local API"), "{err}");
}

#[test]
fn classify_prints_the_level_and_why() {
    let out = ok(&["classify", "--enisa", "3", "--nist-functional", "medium"]);
    assert!(out.contains("level 4") || out.contains("Level 4"), "{out}");
    assert!(out.contains("ENISA"), "{out}");
    let value = json(&["--json", "classify", "--tr62", "a"]);
    assert_eq!(value["level"], 5);
    let err = fails(&["classify"]);
    assert!(!err.is_empty());
    let err = fails(&["classify", "--enisa", "7"]);
    assert!(err.contains("7"), "{err}");
}

#[test]
fn the_local_api_over_mutual_tls_serves_the_cli_with_the_node_certificate() {
    let setup = setup();
    let config = std::fs::read_to_string(setup.node.join("node.toml")).unwrap().replace("tls = false", "tls = true");
    std::fs::write(setup.node.join("node.toml"), config).unwrap();
    let server = serve(&setup.node);
    let status = json(&["--json", "status", "--node", s(&setup.node)]);
    assert!(status["member_id"].as_str().unwrap().starts_with("m-"));
    let err = fails(&["status", "--api", &server.addr]);
    assert!(err.contains("error:"), "plain gRPC is refused: {err}");
}

/// The shared sample files (MISP events, STIX bundles) beside the project.
fn shared_data(rel: &str) -> PathBuf {
    let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data").join(rel);
    if beside.exists() {
        return beside;
    }
    // A checkout elsewhere (a CI clone in a temp dir) on a machine that has them.
    Path::new("/work/shared/data").join(rel)
}

#[test]
fn a_stix_bundle_publishes_its_indicators_and_skips_context_objects() {
    let setup = setup();
    let server = serve(&setup.node);
    let bundle = shared_data("stix/indicators-for-C2-with-COA.json");
    let out = cirfed(&["--json", "publish", "--file", s(&bundle), "--api", &server.addr]);
    let report: Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert_eq!(report["created"], 1, "{report}");
    // The sample's C2 address is 10.0.0.0: a private address never leaves a node.
    assert_eq!(report["refused"][0]["error_code"], "refused_by_scrub_policy", "{report}");
    assert!(!out.status.success(), "a refused line makes the exit code non-zero");
    assert_eq!(
        report["skipped"].as_array().unwrap().len(),
        6,
        "identity, malware, course-of-action, relationships: {report}"
    );
}

#[test]
fn a_misp_event_publishes_its_attributes_and_matches_on_lookup() {
    let setup = setup();
    let server = serve(&setup.node);
    let event = shared_data("misp/sighting_1.json");
    let out = ok(&["publish", "--file", s(&event), "--api", &server.addr]);
    assert!(out.contains("accepted 5"), "{out}");
    let listed = json(&["--json", "list", "--kind", "indicator", "--api", &server.addr]);
    let first = listed["records"][0]["indicator"]["value"].as_str().unwrap().to_string();
    let found = json(&["--json", "lookup", &first, "--api", &server.addr]);
    assert_eq!(found["matched"], true, "{found}");
}

#[test]
fn the_demo_runs_a_three_node_federation_and_cleans_up() {
    let out = ok(&["demo"]);
    assert!(out.contains("reached C through B"), "{out}");
    let matched = |value: &str| out.lines().any(|l| l.trim_start().starts_with(value) && l.contains("MATCH"));
    for value in ["203.0.113.77", "login.evil-cloud.example", "AKIAIOSFODNN7EXAMPLE"] {
        assert!(matched(value), "C finds {value}: {out}");
    }
    assert!(!matched("198.51.100.1"), "{out}");
    assert!(out.contains("A, B and C hold the same records"), "{out}");
    assert!(out.contains("C stopped matching login.evil-cloud.example"), "{out}");
    assert!(out.contains("after B came back"), "{out}");
    let files = out.lines().next().unwrap().rsplit_once("files in ").unwrap().1.trim_end_matches(')').to_string();
    assert!(!Path::new(&files).exists(), "the demo removes {files}");
}

#[test]
fn peer_add_links_two_running_nodes_and_status_shows_the_link() {
    let setup = setup();
    let other = setup.fed.parent().unwrap().join("other");
    ok(&["node", "init", "--dir", s(&other), "--name", "CSP B"]);
    let admission = setup.fed.parent().unwrap().join("b.admission.json");
    ok(&["federation", "admit", "--dir", s(&setup.fed), s(&other.join("join-request.json")), "--out", s(&admission)]);
    ok(&["node", "join", "--dir", s(&other), s(&admission)]);
    let a = serve(&setup.node);
    let b = serve(&other);
    let b_status = json(&["--json", "status", "--api", &b.addr]);
    let b_peer_addr = std::fs::read_to_string(other.join("federation.addr")).unwrap();
    let added = json(&["--json", "peer", "add", b_peer_addr.trim(), "--api", &a.addr]);
    assert_eq!(added["added"], true);
    ok(&["publish", "indicator", "--value", "linked.example", "--tlp", "green", "--api", &a.addr]);
    let deadline = std::time::Instant::now() + common::DEADLINE;
    loop {
        if cirfed(&["lookup", "linked.example", "--api", &b.addr]).status.success() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "linked.example never reached B");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let status = json(&["--json", "status", "--api", &a.addr]);
    let peer = &status["peers"][0];
    assert_eq!(peer["connected"], true, "{status}");
    assert_eq!(peer["member_id"], b_status["member_id"]);
    assert!(peer["records_sent"].as_u64().unwrap() >= 1, "{status}");
    let again = json(&["--json", "peer", "add", b_peer_addr.trim(), "--api", &a.addr]);
    assert_eq!(again["added"], false);
    let err = fails(&["peer", "add", "no-port", "--api", &a.addr]);
    assert!(err.contains("host:port"), "{err}");
}

#[test]
fn publish_dry_run_shows_the_record_and_redactions_and_stores_nothing() {
    let setup = setup();
    let server = serve(&setup.node);
    let args = [
        "publish",
        "indicator",
        "--dry-run",
        "--value",
        "evil.example",
        "--level",
        "3",
        "--description",
        "beacons from 10.9.8.7 to evil.example",
        "--api",
        &server.addr,
    ];
    let human = ok(&args);
    assert!(human.contains("dry run: nothing was signed or stored"), "{human}");
    assert!(human.contains("private_ip") && human.contains("[redacted:private_ip]"), "{human}");
    let mut with_json = vec!["--json"];
    with_json.extend(args);
    let dry = json(&with_json);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["indicator"]["description"], "beacons from [redacted:private_ip] to evil.example");
    assert_eq!(dry["redactions"][0]["detector"], "private_ip");
    assert_eq!(dry["redactions"][0]["found"], "10.9.8.7");
    let found = no_match(&["--json", "lookup", "evil.example", "--api", &server.addr]);
    assert_eq!(found["matched"], false, "a dry run publishes nothing");
}

#[test]
fn bulk_publish_reports_redactions_per_line() {
    let setup = setup();
    let server = serve(&setup.node);
    let file = setup.node.join("feed.jsonl");
    std::fs::write(
        &file,
        "{\"value\": \"198.51.100.7\", \"level\": 3, \"description\": \"seen by ops@victim.example\"}\n\
         {\"value\": \"c2.example\", \"level\": 3}\n\
         {\"value\": \"192.168.1.1\", \"level\": 3}\n",
    )
    .unwrap();
    let dry = serde_json::from_slice::<Value>(
        &cirfed(&["--json", "publish", "--file", s(&file), "--dry-run", "--api", &server.addr]).stdout,
    )
    .expect("json dry-run report");
    let lines: Vec<&Value> = dry["records"].as_array().unwrap().iter().map(|r| &r["line"]).collect();
    assert_eq!(lines, [1, 2], "each line that would be shared, with its record: {dry}");
    assert!(dry["records"][0]["record"].as_str().is_some_and(|hex| hex.len() > 40), "{dry}");
    assert_eq!(dry["redacted"][0]["line"], 1);
    let found = no_match(&["--json", "lookup", "c2.example", "--api", &server.addr]);
    assert_eq!(found["matched"], false, "a bulk dry run publishes nothing");
    let report = serde_json::from_slice::<Value>(
        &cirfed(&["--json", "publish", "--file", s(&file), "--api", &server.addr]).stdout,
    )
    .expect("json report");
    assert_eq!(report["created"], 2);
    assert_eq!(report["redacted"][0]["line"], 1);
    assert_eq!(report["redacted"][0]["redactions"][0]["detector"], "email");
    assert_eq!(report["refused"][0]["line"], 3);
    assert_eq!(report["refused"][0]["error_code"], "refused_by_scrub_policy");
}

#[test]
fn an_operator_revocation_imported_at_a_node_refuses_the_members_new_records() {
    let setup = setup();
    let server = serve(&setup.node);
    let admission: Value =
        serde_json::from_str(&std::fs::read_to_string(setup.fed.parent().unwrap().join("a.admission.json")).unwrap())
            .unwrap();
    let member_id = admission["member_id"].as_str().unwrap();
    let revocation = setup.node.join("revocation.b64");
    let args = ["federation", "revoke", "--dir", s(&setup.fed), member_id, "--reason", "key leaked"];
    ok(&[&args[..], &["--out", s(&revocation)]].concat());
    assert!(ok(&["import", s(&revocation), "--api", &server.addr]).contains("imported"));
    let refused = fails(&["publish", "indicator", "--value", "late.example", "--api", &server.addr]);
    assert!(refused.contains("member_revoked"), "{refused}");
    assert!(fails(&["import", s(&setup.node.join("node.toml")), "--api", &server.addr]).contains("not base64"));
}

#[test]
fn a_sighting_from_the_cli_shows_in_lookups() {
    let setup = setup();
    let server = serve(&setup.node);
    let published = json(&["--json", "publish", "indicator", "--value", "sighted.example", "--api", &server.addr]);
    let id = published["id"].as_str().unwrap();
    ok(&["sighting", id, "--type", "false-positive", "--api", &server.addr]);
    let found = json(&["--json", "lookup", "sighted.example", "--api", &server.addr]);
    assert_eq!(found["matches"][0]["sightings"]["false_positive"], 1);
    assert!(found["matches"][0]["score"].as_u64().unwrap() < found["matches"][0]["confidence"].as_u64().unwrap());
    let refused = fails(&["sighting", id, "--type", "maybe", "--api", &server.addr]);
    assert!(refused.contains("sighting type"), "{refused}");
    ok(&["sighting", id, "--type", "seen", "--tlp", "amber", "--api", &server.addr]);
    let found = json(&["--json", "lookup", "sighted.example", "--api", &server.addr]);
    assert_eq!(found["matches"][0]["sightings"]["seen"], 1);
    let refused = fails(&["sighting", id, "--tlp", "purple", "--api", &server.addr]);
    assert!(refused.contains("purple"), "{refused}");
}
