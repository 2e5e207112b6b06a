//! Running the `cirfed` binary as a user or a script would.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// The binary with the caller's CIRFED_* environment removed.
pub fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cirfed"));
    command.args(args).env_remove("CIRFED_API").env_remove("CIRFED_NODE");
    command
}

pub fn cirfed(args: &[&str]) -> Output {
    command(args).output().expect("cirfed runs")
}

/// Starts the binary with piped stdin, stdout and stderr.
pub fn spawn(args: &[&str]) -> Child {
    command(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("cirfed starts")
}

pub fn ok(args: &[&str]) -> String {
    let out = cirfed(args);
    assert!(out.status.success(), "cirfed {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

pub fn json(args: &[&str]) -> Value {
    serde_json::from_str(&ok(args)).expect("json output")
}

/// stdout as one JSON document, whatever the exit status.
pub fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

pub fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A federation and one joined node, set up through the CLI.
pub struct Setup {
    pub root: tempfile::TempDir,
    pub fed: PathBuf,
    pub node: PathBuf,
}

pub fn setup() -> Setup {
    let root = tempfile::tempdir().unwrap();
    let fed = root.path().join("fed");
    let node = root.path().join("node");
    ok(&["federation", "init", "--dir", s(&fed), "--name", "cli-test"]);
    ok(&["node", "init", "--dir", s(&node), "--name", "CSP A"]);
    let admission = root.path().join("a.admission.json");
    ok(&["federation", "admit", "--dir", s(&fed), s(&node.join("join-request.json")), "--out", s(&admission)]);
    ok(&["node", "join", "--dir", s(&node), s(&admission)]);
    Setup { root, fed, node }
}
