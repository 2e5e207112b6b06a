//! The ecosystem's own Python tools (stix2-validator, taxii2-client, PyMISP),
//! from the pinned venv `scripts/python-venv.sh` creates (`make test` runs it).

use std::path::PathBuf;
use std::process::{Command, Output};

/// The venv: `CIRFED_PYTHON_VENV`, or `~/.cache/cirfed-venv`.
pub fn venv() -> PathBuf {
    match std::env::var_os("CIRFED_PYTHON_VENV") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/cirfed-venv"),
    }
}

/// A program in the venv's bin directory; panics with the fix when missing.
pub fn python_tool(name: &str) -> PathBuf {
    let path = venv().join("bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: run `bash scripts/python-venv.sh` (the README's test command, `make test`, runs it)",
        path.display()
    );
    path
}

/// Runs a script from tests/python with the venv's interpreter.
pub fn run_script(script: &str, args: &[&str]) -> Output {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python").join(script);
    Command::new(python_tool("python")).arg(path).args(args).output().expect("python runs")
}
