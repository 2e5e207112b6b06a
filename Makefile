# One entry point for people and CI. Everything builds in the release profile
# (tests, demo and benches alike) so RocksDB's C++ is compiled once, into a
# target directory outside the work tree that later sessions reuse.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/cirfed-target
CARGO_FLAGS := --release --locked

.PHONY: deps demo test lint fmt bench build

deps:
	@bash scripts/install-deps.sh

build: deps
	cargo build $(CARGO_FLAGS)

## The README's first command: a narrated local demo.
demo: deps
	cargo run $(CARGO_FLAGS) --bin cirfed -- demo

## The README's second command: the whole test suite. The interop tests run
## the ecosystem's own tools (stix2-validator, taxii2-client, PyMISP) from a
## pinned venv that this creates.
export CIRFED_PYTHON_VENV ?= $(HOME)/.cache/cirfed-venv
test: deps
	@bash scripts/python-venv.sh
	cargo test $(CARGO_FLAGS)

lint: deps
	cargo fmt --all -- --check
	cargo clippy $(CARGO_FLAGS) --all-targets -- -D warnings

fmt:
	cargo fmt --all

## Criterion benches and load tools; figures go to BENCHMARKS.md. The release
## profile, not cargo's bench profile, so the compiled RocksDB is reused.
bench: deps
	cargo bench --locked --profile release
