#!/usr/bin/env bash
# End-to-end suites with real clients against target/release/modelyard.
# Installs Debian's chromium + chromedriver for the browser suite (scripts/install-browser.sh)
# and Debian's skopeo for the OCI suite (scripts/install-skopeo.sh).
# Creates (or reuses) Python venvs under target/ with the pinned client versions:
#   target/e2e-venv          e2e/requirements.txt          (python-gitlab, MLflow 3, browser driver, oras)
#   target/e2e-venv-mlflow2  e2e/requirements-mlflow2.txt  (MLflow 2, runs e2e/mlflow only)
#
#   scripts/e2e.sh [pytest args]             # every server on the embedded default
#   scripts/e2e.sh --scaleout [pytest args]  # every server on PostgreSQL + S3: a fresh database of
#                                            # MODELYARD_TEST_POSTGRES_URL each, and a prefix each
#                                            # in the bucket of an s3s-fs started here
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--scaleout" ]; then
  shift
  : "${MODELYARD_TEST_POSTGRES_URL:?--scaleout needs MODELYARD_TEST_POSTGRES_URL (eval \"\$(scripts/postgres.sh start)\")}"
  scripts/s3.sh
  s3_dir=$(mktemp -d "${TMPDIR:-/tmp}/modelyard-e2e-s3.XXXXXX")
  mkdir "$s3_dir/mlreg"
  s3_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  export AWS_ACCESS_KEY_ID=modelyard-e2e-key AWS_SECRET_ACCESS_KEY="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
  s3s_fs=$(command -v s3s-fs || echo "${CARGO_HOME:-$HOME/.cargo}/bin/s3s-fs")
  "$s3s_fs" --host 127.0.0.1 --port "$s3_port" --access-key "$AWS_ACCESS_KEY_ID" \
    --secret-key "$AWS_SECRET_ACCESS_KEY" "$s3_dir" >"$s3_dir.log" 2>&1 &
  s3_pid=$!
  trap 'kill "$s3_pid" 2>/dev/null; rm -rf "$s3_dir" "$s3_dir.log"' EXIT
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$s3_port") 2>/dev/null && break
    sleep 0.1
  done
  export MODELYARD_E2E_STORES=scaleout MODELYARD_E2E_S3_ENDPOINT="http://127.0.0.1:$s3_port" MODELYARD_E2E_S3_BUCKET=mlreg
  echo "e2e on PostgreSQL + S3 (s3s-fs on 127.0.0.1:$s3_port)" >&2
fi

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
