#!/usr/bin/env bash
# Creates the Python venv the interop tests run the ecosystem's own tools from:
# OASIS stix2-validator and taxii2-client, and PyMISP. Pinned versions; safe to
# run repeatedly (it does nothing once the venv holds them). The Rust tests
# find it through CIRFED_PYTHON_VENV (default below) and fail with a clear
# message when it is missing.
set -euo pipefail

venv="${CIRFED_PYTHON_VENV:-$HOME/.cache/cirfed-venv}"
pins=(stix2-validator==3.3.2 taxii2-client==2.3.0 pymisp==2.5.34.4)
stamp="$venv/.cirfed-pins"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "${pins[*]}" ]; then
  exit 0
fi
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "installing python3-venv" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >/dev/null
fi
echo "creating the Python venv for interop tests in $venv" >&2
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}"
echo "${pins[*]}" > "$stamp"
