#!/usr/bin/env bash
# Property-based API testing of the native model registry API with schemathesis (PyPI), driven by
# the OpenAPI document the server serves. Usage: scripts/schemathesis.sh [seconds, default 600]
# Starts the release binary on a fresh data dir with a project, a model and versions to aim at.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}

venv=target/schemathesis-venv
[ -x "$venv/bin/schemathesis" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install --quiet schemathesis==4.32.5; }
cargo build --release --locked

data=$(mktemp -d)
token=root-$RANDOM$RANDOM
log=$(mktemp)
MODELYARD_ROOT_TOKEN=$token MODELYARD_LOG=warn target/release/modelyard serve --listen 127.0.0.1:0 --data-dir "$data" >"$log" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$data" "$log" "${config:-}"' EXIT
for _ in $(seq 50); do grep -q "listening on" "$log" && break; sleep 0.1; done
base=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$log" | head -1)

api() { curl -sf -H "PRIVATE-TOKEN: $token" -H 'Content-Type: application/json' "$@" >/dev/null; }
api -X POST "$base/api/v4/projects" -d '{"name": "fuzz", "visibility": "public"}'
api -X POST "$base/api/v4/projects/root%2Ffuzz/ml/models" -d '{"name": "fraud"}'
for v in 1.0.0 1.2.0 2.0.0-rc.1; do
  api -X POST "$base/api/v4/projects/root%2Ffuzz/ml/models/fraud/versions" -d "{\"version\": \"$v\"}"
done
api -X POST "$base/api/v4/projects/root%2Ffuzz/ml/experiments/1/candidates" -d '{"name": "run"}'

# Aim at the data made above: the project, model, a version and the model's experiment/candidate.
config=$(mktemp)
cat >"$config" <<TOML
[parameters]
"path.id" = "root%2Ffuzz"
"path.model" = "fraud"
"path.version" = "1.2.0"
"path.iid" = 1
TOML
"$venv/bin/schemathesis" --config-file "$config" run "$base/api/v4/ml/openapi.json" \
  --url "$base" \
  --header "PRIVATE-TOKEN: $token" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-time "$seconds" \
  --workers 2 \
  --suppress-health-check all
