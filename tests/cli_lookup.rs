//! `cirfed lookup` as a pipeline stage: `--stdin` answers before its input
//! ends, holds its memory bounded for any input length, reports bad lines
//! with their numbers and goes on, and exits like grep.

mod common;

use common::cli::{cirfed, ok, s, setup, spawn};
use common::{serve, DEADLINE};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdout};
use std::sync::mpsc;
use std::time::Instant;

/// Peak resident memory the streaming lookup may reach, whatever its input.
const STREAM_RSS_BOUND_BYTES: u64 = 96 << 20;
/// Input fed to the bounded-memory test: several times the bound, so an
/// implementation that held its input would go over it.
const LARGE_INPUT_BYTES: usize = 400 << 20;

/// The CLI's longest line (MAX_LINE_BYTES in src/cli/lookup.rs): the
/// binary's constants cannot be imported, so the test states it once.
const MAX_LINE_BYTES: usize = 64 << 10;

/// Reads the child's stdout lines on a thread, so a test can wait for one with a deadline.
fn stdout_lines(stdout: ChildStdout) -> mpsc::Receiver<String> {
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    received
}

fn publish(server: &common::Server, value: &str) {
    ok(&["publish", "indicator", "--value", value, "--level", "3", "--tlp", "green", "--api", &server.addr]);
}

fn stdin_lookup(server: &common::Server) -> Child {
    spawn(&["--json", "lookup", "--stdin", "--hits-only", "--api", &server.addr])
}

#[test]
fn the_first_answer_arrives_while_the_input_is_still_open() {
    let setup = setup();
    let server = serve(&setup.node);
    publish(&server, "evil.example");
    let mut child = stdin_lookup(&server);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"benign.example\nwww.evil.example\n").unwrap();
    stdin.flush().unwrap();
    let lines = stdout_lines(child.stdout.take().unwrap());
    let answer = lines.recv_timeout(DEADLINE).expect("an answer before the input ends");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["value"], "www.evil.example");
    assert_eq!(answer["line"], 2);
    assert_eq!(answer["matched"], true);
    drop(stdin);
    assert_eq!(child.wait().unwrap().code(), Some(0), "a match exits 0");
}

/// Peak resident set (VmHWM) of a running process, in bytes.
fn peak_rss(child: &Child) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).expect("/proc status");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM line");
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Lines of long valid URLs (the longest observable is 2048 bytes), so the
/// input is large in bytes while the node's work stays small.
fn url_line(n: usize) -> String {
    format!("https://h{n}.example/{}\n", "p".repeat(1_900))
}

#[test]
fn memory_stays_bounded_for_an_input_several_times_the_bound() {
    let setup = setup();
    let server = serve(&setup.node);
    publish(&server, "last.example");
    let mut child = stdin_lookup(&server);
    let mut stdin = child.stdin.take().unwrap();
    let lines = stdout_lines(child.stdout.take().unwrap());
    let (mut written, mut n, mut peak) = (0, 0, 0);
    let started = Instant::now();
    while written < LARGE_INPUT_BYTES {
        let chunk: String = (0..512).map(|i| url_line(n + i)).collect();
        stdin.write_all(chunk.as_bytes()).expect("the lookup keeps reading");
        (written, n) = (written + chunk.len(), n + 512);
        peak = peak.max(peak_rss(&child));
    }
    stdin.write_all(b"last.example\n").unwrap();
    stdin.flush().unwrap();
    let answer = lines.recv_timeout(DEADLINE).expect("the last line is answered");
    peak = peak.max(peak_rss(&child));
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(answer.contains("\"last.example\""), "{answer}");
    assert_eq!(status.code(), Some(0));
    eprintln!("streamed {} MiB ({n} lines) in {:?}; peak RSS {} MiB", written >> 20, started.elapsed(), peak >> 20);
    assert!(
        peak < STREAM_RSS_BOUND_BYTES,
        "peak RSS {} MiB over the {} MiB bound for {} MiB of input",
        peak >> 20,
        STREAM_RSS_BOUND_BYTES >> 20,
        written >> 20
    );
}

#[test]
fn bad_lines_are_reported_with_their_line_numbers_and_the_run_goes_on() {
    let setup = setup();
    let server = serve(&setup.node);
    publish(&server, "evil.example");
    publish(&server, "203.0.113.0/24");
    let over_long = "a".repeat(MAX_LINE_BYTES + 1);
    let input = [
        b"evil.example\n".to_vec(),
        b"not an observable at all\n".to_vec(),
        format!("{over_long}\n").into_bytes(),
        b"\xff\xfe\n".to_vec(),
        b"# a comment\n\n".to_vec(),
        b"203.0.113.9\n".to_vec(),
    ]
    .concat();
    let mut child = stdin_lookup(&server);
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 2: invalid value"), "{stderr}");
    assert!(stderr.contains(&format!("line 3: longer than {} bytes", MAX_LINE_BYTES)), "{stderr}");
    assert!(stderr.contains("line 4: not UTF-8"), "{stderr}");
    let hits: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let matched: Vec<_> = hits.iter().filter(|h| h["matched"] == true).map(|h| h["line"].clone()).collect();
    assert_eq!(matched, [1, 7], "the lines before and after the bad ones are answered");
    assert_eq!(out.status.code(), Some(0), "bad lines do not turn a match into an error");
}

#[test]
fn exit_status_is_0_for_a_match_1_for_none_and_2_for_an_error() {
    let setup = setup();
    let server = serve(&setup.node);
    publish(&server, "evil.example");
    let run = |input: &str| {
        let mut child = stdin_lookup(&server);
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        child.wait_with_output().unwrap().status.code()
    };
    assert_eq!(run("benign.example\nevil.example\n"), Some(0));
    assert_eq!(run("benign.example\nnot an observable\n"), Some(1));
    assert_eq!(run(""), Some(1), "no input, no match");
    let lookup = |args: &[&str]| cirfed(&[&["lookup"][..], args, &["--api", &server.addr][..]].concat()).status.code();
    assert_eq!(lookup(&["evil.example"]), Some(0));
    assert_eq!(lookup(&["benign.example"]), Some(1));
    let unreachable = cirfed(&["lookup", "--stdin", "--api", "127.0.0.1:1"]);
    assert_eq!(unreachable.status.code(), Some(2), "no node is an error");
    assert_eq!(
        cirfed(&["lookup", "evil.example", "--node", s(&setup.root.path().join("none"))]).status.code(),
        Some(2)
    );
}
