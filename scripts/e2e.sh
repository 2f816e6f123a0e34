#!/usr/bin/env bash
# End-to-end suites with real clients against target/release/modelyard.
# Installs Debian's chromium + chromedriver for the browser suite (scripts/install-browser.sh)
# and Debian's skopeo for the OCI suite (scripts/install-skopeo.sh).
# Creates (or reuses) Python venvs under target/ with the pinned client versions:
#   target/e2e-venv          e2e/requirements.txt          (python-gitlab, MLflow 3, browser driver, oras)
#   target/e2e-venv-mlflow2  e2e/requirements-mlflow2.txt  (MLflow 2, runs e2e/mlflow only)
set -euo pipefail
cd "$(dirname "$0")/.."

venv_for() {
  local venv=$1 requirements=$2
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
  fi
  if ! cmp -s "$requirements" "$venv/.requirements" 2>/dev/null; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$venv/.requirements"
  fi
}

export MODELYARD_BIN="$PWD/target/release/modelyard"
scripts/install-browser.sh
scripts/install-skopeo.sh

venv_for target/e2e-venv e2e/requirements.txt
target/e2e-venv/bin/python -m pytest -q e2e "$@"

venv_for target/e2e-venv-mlflow2 e2e/requirements-mlflow2.txt
target/e2e-venv-mlflow2/bin/python -m pytest -q e2e/mlflow "$@"
