//! What a script driving the CLI relies on: record ids per bulk line, a
//! report when a bulk run is cut short, JSON errors with stable codes, a
//! short client timeout, address files that name only running nodes, error
//! chains without repeats, and a word when the node caps a page.

mod common;

use common::cli::{cirfed, json, ok, s, setup, spawn, stdout_json, Setup};
use common::{serve, wait_for, TestNode, DEADLINE};
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

/// Drafts per Publish request in a bulk run (PUBLISH_CHUNK in src/cli/bulk.rs).
const PUBLISH_CHUNK: usize = 1_000;
/// Records per List page at most (cirfed::node::MAX_LIST_LIMIT).
const MAX_LIST_LIMIT: usize = cirfed::node::MAX_LIST_LIMIT;
/// The client timeout when --timeout is not given (DEFAULT_TIMEOUT in src/cli/client.rs).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

fn write_lines(path: &Path, values: impl Iterator<Item = String>) {
    let text: String = values.map(|v| format!("{{\"value\": \"{v}\", \"level\": 3, \"tlp\": \"green\"}}\n")).collect();
    std::fs::write(path, text).unwrap();
}

fn domains(count: usize) -> impl Iterator<Item = String> {
    (0..count).map(|n| format!("bulk-{n}.example"))
}

#[test]
fn bulk_publish_json_gives_each_accepted_lines_record_id_and_each_refused_lines_reason() {
    let setup = setup();
    let server = serve(&setup.node);
    let file = setup.node.join("feed.jsonl");
    std::fs::write(
        &file,
        "{\"value\": \"198.51.100.7\", \"level\": 3, \"tlp\": \"green\"}\n\
         {\"value\": \"not an observable at all\", \"level\": 3}\n\
         {\"value\": \"c2.example\", \"level\": 3}\n",
    )
    .unwrap();
    let publish = || stdout_json(&cirfed(&["--json", "publish", "--file", s(&file), "--api", &server.addr]));
    let report = publish();
    let records = report["records"].as_array().unwrap();
    assert_eq!(records.iter().map(|r| r["line"].as_u64().unwrap()).collect::<Vec<_>>(), [1, 3], "{report}");
    assert!(records.iter().all(|r| r["created"] == true), "{report}");
    assert_eq!(report["refused"][0]["line"], 2);
    assert_eq!(report["refused"][0]["error_code"], "invalid_line");
    assert!(!report["refused"][0]["error"].as_str().unwrap().is_empty());
    for (record, value) in records.iter().zip(["198.51.100.7", "c2.example"]) {
        let shown = json(&["--json", "show", record["id"].as_str().unwrap(), "--api", &server.addr]);
        assert_eq!(shown["indicator"]["value"], value, "the id names the line's record");
    }
    let again = publish();
    assert_eq!(again["created"], 0);
    assert_eq!(again["records"][0]["id"], records[0]["id"]);
    assert_eq!(again["records"][0]["created"], false, "a re-run is a duplicate: {again}");
}

#[test]
fn a_dry_run_says_already_stored_for_lines_the_node_holds() {
    let setup = setup();
    let server = serve(&setup.node);
    let file = setup.node.join("feed.jsonl");
    write_lines(&file, domains(2));
    ok(&["publish", "--file", s(&file), "--api", &server.addr]);
    write_lines(&file, domains(3));
    let human = ok(&["publish", "--file", s(&file), "--dry-run", "--api", &server.addr]);
    assert!(human.contains("1 line(s) would be published, 2 already stored"), "{human}");
    assert!(human.contains("line 1: already stored as record"), "{human}");
    assert!(human.contains("line 3: would share record"), "{human}");
    let dry = json(&["--json", "publish", "--file", s(&file), "--dry-run", "--api", &server.addr]);
    assert_eq!(dry["would_publish"], 1);
    assert_eq!(dry["already_stored"], 2);
    let flags: Vec<_> = dry["records"].as_array().unwrap().iter().map(|r| r["already_stored"].clone()).collect();
    assert_eq!(flags, [true, true, false]);
    let args = ["publish", "indicator", "--value", "bulk-0.example", "--level", "3", "--tlp", "green", "--dry-run"];
    let one = ok(&[&args[..], &["--api", &server.addr]].concat());
    assert!(one.contains("already stores this record"), "{one}");
}

/// Sets the node's time granularity to its maximum, a day, so that a re-run
/// within the test lands in the same window as the first run.
fn coarse_times(node: &Path) {
    let path = node.join("node.toml");
    let config = std::fs::read_to_string(&path).unwrap();
    assert!(config.contains("time_granularity_secs = 3600"), "{config}");
    std::fs::write(&path, config.replace("time_granularity_secs = 3600", "time_granularity_secs = 86400")).unwrap();
}

/// Runs a bulk publish of `lines` lines and stops the node cleanly once two
/// chunks are stored; returns the CLI's output and the node's directory.
async fn publish_cut_short(setup: &Setup, lines: usize, json: bool) -> std::process::Output {
    let node = TestNode::start(&setup.node).await;
    let file = setup.node.join("big.jsonl");
    write_lines(&file, domains(lines));
    let api = node.running.api_addr.to_string();
    let args = ["publish", "--file", s(&file), "--api", &api];
    let child = if json { spawn(&[&["--json"][..], &args[..]].concat()) } else { spawn(&args) };
    wait_for("two chunks stored", || {
        let mut node_client = node.client.clone();
        async move {
            let status = node_client.status(cirfed::proto::StatusRequest {}).await.unwrap().into_inner();
            status.records >= (2 * PUBLISH_CHUNK) as u64
        }
    })
    .await;
    node.stop().await;
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
    assert!(!out.status.success(), "a run cut short fails: {}", String::from_utf8_lossy(&out.stdout));
    out
}

const CUT_SHORT_LINES: usize = 100 * PUBLISH_CHUNK;

#[tokio::test(flavor = "multi_thread")]
async fn a_bulk_publish_cut_short_lists_what_was_acknowledged_and_a_rerun_completes_it() {
    let setup = setup();
    coarse_times(&setup.node);
    let out = publish_cut_short(&setup, CUT_SHORT_LINES, true).await;
    let report = stdout_json(&out);
    let acknowledged: Vec<String> =
        report["records"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
    assert!(acknowledged.len() >= 2 * PUBLISH_CHUNK && acknowledged.len() < CUT_SHORT_LINES, "{}", acknowledged.len());
    assert_eq!(report["accepted"], acknowledged.len());
    assert_eq!(report["stopped_at_line"], acknowledged.len() + 1, "chunks go in order");
    assert_eq!(report["rerun_safe"], true);
    assert!(!report["error"]["code"].as_str().unwrap().is_empty(), "{report}");

    let server = serve(&setup.node);
    let file = setup.node.join("big.jsonl");
    let rerun = stdout_json(&cirfed(&["--json", "publish", "--file", s(&file), "--api", &server.addr]));
    assert_eq!(rerun["accepted"], CUT_SHORT_LINES, "the re-run completes the file");
    let rerun_ids: Vec<&str> = rerun["records"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(&rerun_ids[..acknowledged.len()], &acknowledged[..], "acknowledged lines are the same records");
    let duplicates = rerun["duplicates"].as_u64().unwrap() as usize;
    assert!(duplicates >= acknowledged.len(), "every acknowledged line was stored: {duplicates}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bulk_publish_cut_short_says_so_on_stdout_and_that_rerunning_is_safe() {
    let setup = setup();
    let out = publish_cut_short(&setup, CUT_SHORT_LINES, false).await;
    let stdout = String::from_utf8(out.stdout).unwrap();
    let accepted: usize = stdout
        .strip_prefix("accepted ")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("counts first: {stdout}"));
    assert!(accepted >= 2 * PUBLISH_CHUNK, "{stdout}");
    assert!(stdout.contains(&format!("stopped at line {} of {CUT_SHORT_LINES}", accepted + 1)), "{stdout}");
    assert!(stdout.contains("re-running the same file is safe"), "{stdout}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("publishing stopped at line"), "{stderr}");
}

#[test]
fn every_json_command_prints_a_json_error_object_with_a_stable_code() {
    let setup = setup();
    let server = serve(&setup.node);
    let unknown = "00".repeat(32);
    let nowhere = setup.root.path().join("nowhere");
    let cases: [(&[&str], &str); 5] = [
        (&["show", &unknown, "--api", &server.addr], "not_found"),
        (&["publish", "indicator", "--value", "192.168.1.1", "--api", &server.addr], "refused_by_scrub_policy"),
        (&["status", "--api", "127.0.0.1:1"], "unreachable"),
        (&["list", "--node", s(&nowhere)], "node_not_running"),
        (&["list", "--kind", "nonsense", "--api", &server.addr], "usage"),
    ];
    for (args, code) in cases {
        let out = cirfed(&[&["--json"][..], args].concat());
        assert!(!out.status.success(), "{args:?}");
        let error = stdout_json(&out);
        assert_eq!(error["error"]["code"], code, "{args:?}: {error}");
        assert!(!error["error"]["message"].as_str().unwrap().is_empty(), "{error}");
    }
}

/// A TCP listener that accepts connections and never answers: a paused node.
fn silent_listener() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    (listener, addr)
}

/// Holds every accepted connection open without a byte in reply.
fn hold_connections(listener: TcpListener) {
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
}

#[test]
fn a_node_that_accepts_but_never_answers_fails_within_the_timeout() {
    let (listener, addr) = silent_listener();
    hold_connections(listener);
    let started = Instant::now();
    let out = cirfed(&["--json", "status", "--api", &addr, "--timeout", "1"]);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(stdout_json(&out)["error"]["code"], "timeout");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("did not answer within 1s") && stderr.contains("--timeout"), "{stderr}");

    let started = Instant::now();
    let out = cirfed(&["lookup", "evil.example", "--api", &addr]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(2));
    assert!(took >= DEFAULT_TIMEOUT && took < DEFAULT_TIMEOUT + DEADLINE, "the default timeout: took {took:?}");
}

#[test]
fn the_timeout_also_covers_a_tls_handshake_that_never_completes() {
    let setup = setup();
    let config = std::fs::read_to_string(setup.node.join("node.toml")).unwrap().replace("tls = false", "tls = true");
    std::fs::write(setup.node.join("node.toml"), config).unwrap();
    let (listener, addr) = silent_listener();
    hold_connections(listener);
    std::fs::write(setup.node.join("api.addr"), &addr).unwrap();
    let started = Instant::now();
    let out = cirfed(&["--json", "status", "--node", s(&setup.node), "--timeout", "1"]);
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert_eq!(stdout_json(&out)["error"]["code"], "timeout");
}

/// SIGTERM, as a service manager stops a node.
fn terminate(child: &std::process::Child) {
    let status = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success(), "kill -TERM {}", child.id());
}

#[test]
fn a_clean_shutdown_removes_the_address_files_and_a_stale_one_says_the_node_is_not_running() {
    let setup = setup();
    let (api_addr, federation_addr) = (setup.node.join("api.addr"), setup.node.join("federation.addr"));
    let mut server = serve(&setup.node);
    assert!(api_addr.exists() && federation_addr.exists());
    terminate(&server.child);
    let deadline = Instant::now() + DEADLINE;
    while server.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!api_addr.exists() && !federation_addr.exists(), "address files outlive the node");
    let err = String::from_utf8(cirfed(&["status", "--node", s(&setup.node)]).stderr).unwrap();
    assert!(err.contains("is not running"), "{err}");

    let gone = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    std::fs::write(&api_addr, gone.to_string()).unwrap();
    let out = cirfed(&["--json", "status", "--node", s(&setup.node)]);
    assert_eq!(stdout_json(&out)["error"]["code"], "node_not_running");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("is not running") && err.contains("stale"), "{err}");
}

#[test]
fn each_cause_of_an_error_is_printed_once() {
    let err = String::from_utf8(cirfed(&["lookup", "evil.example", "--api", "127.0.0.1:1"]).stderr).unwrap();
    let line = err.lines().find(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("{err}"));
    let causes: Vec<&str> = line.trim_start_matches("error: ").split(": ").collect();
    for (n, cause) in causes.iter().enumerate() {
        assert!(!causes[..n].iter().any(|earlier| earlier.contains(cause)), "{cause:?} repeats in {line}");
    }
    assert!(line.contains("Connection refused"), "the root cause is kept: {line}");
}

#[test]
fn a_list_limit_over_the_page_size_is_reported_on_stderr() {
    let setup = setup();
    let server = serve(&setup.node);
    let file = setup.node.join("feed.jsonl");
    write_lines(&file, domains(MAX_LIST_LIMIT + 1));
    ok(&["publish", "--file", s(&file), "--api", &server.addr]);
    let out = cirfed(&["--json", "list", "--kind", "indicator", "--limit", "5000", "--api", &server.addr]);
    let page = stdout_json(&out);
    assert_eq!(page["records"].as_array().unwrap().len(), MAX_LIST_LIMIT);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains(&format!("{MAX_LIST_LIMIT} of the 5000 records asked for")), "{stderr}");
    assert!(stderr.contains(&format!("--after {}", page["next"])), "{stderr}");
    let small = cirfed(&["list", "--kind", "indicator", "--limit", "10", "--api", &server.addr]);
    assert!(small.stderr.is_empty(), "a page as asked needs no note: {}", String::from_utf8_lossy(&small.stderr));
}
