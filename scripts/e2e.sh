#!/usr/bin/env bash
# End-to-end suites with real clients against target/release/modelyard.
# Creates (or reuses) a Python venv under target/e2e-venv with pinned client versions.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/e2e-venv
stamp="$venv/.requirements"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! cmp -s e2e/requirements.txt "$stamp" 2>/dev/null; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r e2e/requirements.txt
  cp e2e/requirements.txt "$stamp"
fi
export MODELYARD_BIN="$PWD/target/release/modelyard"
"$venv/bin/python" -m pytest -q e2e "$@"
