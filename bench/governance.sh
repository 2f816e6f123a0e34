#!/usr/bin/env bash
# The cost of usage counting and of the audit log with the webhook outbox (issue #17):
#   downloads (wrk c=8, GET of a 4 KiB generic file) with --usage-counting on vs off, and
#   runs/log-metric (wrk c=8, as in bench/run.sh) with the audit log on and a webhook on the
#   project (the outbox) vs --audit off and no hook. Each pair runs twice, alternating; the
#   table prints every figure and the ratio of the medians. Targets: downloads >= 0.95,
#   log-metric >= 0.9. See bench/README.md.
#   bench/governance.sh [--seconds 10] [--rounds 2]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=10; rounds=2
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
command -v wrk >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null; }
cargo build --release --locked --quiet
bin=$PWD/target/release/modelyard
work=$PWD/target/bench-governance
rm -rf "$work"; mkdir -p "$work"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
token=bench-$RANDOM$RANDOM
H="PRIVATE-TOKEN: $token"

# A receiver for the webhook: answers 204 to everything.
python3 - "$work/receiver.port" <<'PY' &
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(204); self.end_headers()
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1], "w").write(str(s.server_port))
s.serve_forever()
PY
pids+=("$!")
until [ -s "$work/receiver.port" ]; do sleep 0.01; done
receiver="http://127.0.0.1:$(cat "$work/receiver.port")/hook"

start() {  # $1 name, rest: flags → sets $base and $server
  local dir=$work/$1; rm -rf "$dir"; mkdir -p "$dir"; chmod 700 "$dir"
  MODELYARD_ROOT_TOKEN=$token MODELYARD_LOG=warn "$bin" serve --listen 127.0.0.1:0 --data-dir "$dir/data" \
    --webhook-allow-private "${@:2}" >"$dir/server.log" &
  server=$!; pids+=("$server")
  until grep -q "listening on" "$dir/server.log"; do sleep 0.005; done
  base=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$dir/server.log")
  until curl -sf "$base/-/health" >/dev/null; do sleep 0.005; done
  project=$(curl -sf -H "$H" -X POST "$base/api/v4/projects" -d name=bench | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
}
stop() { kill "$server"; wait "$server" 2>/dev/null || true; }

downloads() {  # $1 on|off → req/s
  start "dl-$1" --usage-counting "$1"
  head -c 4096 /dev/urandom > "$work/file.bin"
  curl -sf -H "$H" -T "$work/file.bin" "$base/api/v4/projects/$project/packages/generic/m/1.0.0/w.bin" >/dev/null
  wrk -t2 -c8 -d"${seconds}s" -H "$H" "$base/api/v4/projects/$project/packages/generic/m/1.0.0/w.bin" \
    | awk '/Requests\/sec/ {printf "%.0f", $2}'
  stop
}

log_metric() {  # $1 on|off → req/s
  if [ "$1" = on ]; then start "lm-on" --audit on; else start "lm-off" --audit off; fi
  local tracking=$base/api/v4/projects/$project/ml/mlflow/api/2.0/mlflow experiment run
  if [ "$1" = on ]; then
    curl -sf -H "$H" -H 'Content-Type: application/json' -X POST "$base/api/v4/projects/$project/hooks" \
      -d "{\"url\": \"$receiver\", \"run_events\": true, \"model_events\": true}" >/dev/null
  fi
  experiment=$(curl -sf -H "$H" -H 'Content-Type: application/json' -X POST "$tracking/experiments/create" -d '{"name": "bench"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["experiment_id"])')
  run=$(curl -sf -H "$H" -H 'Content-Type: application/json' -X POST "$tracking/runs/create" -d "{\"experiment_id\": \"$experiment\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["run"]["info"]["run_id"])')
  cat > "$work/log-metric.lua" <<LUA
counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"run_id":"$run","key":"loss","value":%d.5,"timestamp":%d,"step":%d}', counter, 1700000000000 + counter, counter)
  return wrk.format("POST", nil, {["Content-Type"]="application/json", ["PRIVATE-TOKEN"]="$token"}, body)
end
LUA
  wrk -t2 -c8 -d"${seconds}s" -s "$work/log-metric.lua" "$tracking/runs/log-metric" | awk '/Requests\/sec/ {printf "%.0f", $2}'
  stop
}

median() { python3 -c "import statistics,sys; print(f'{statistics.median(map(float, sys.argv[1:])):.0f}')" "$@"; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
dl_on=(); dl_off=(); lm_on=(); lm_off=()
for _ in $(seq "$rounds"); do
  dl_off+=("$(downloads off)"); dl_on+=("$(downloads on)")
  lm_off+=("$(log_metric off)"); lm_on+=("$(log_metric on)")
done
printf '%-58s %20s %8s %s\n' "figure" "req/s (each run)" "ratio" "target"
printf '%-58s %20s\n' "downloads, 4 KiB, wrk c=8, --usage-counting off" "${dl_off[*]}"
printf '%-58s %20s %8s %s\n' "downloads, 4 KiB, wrk c=8, --usage-counting on" "${dl_on[*]}" \
  "$(ratio "$(median "${dl_on[@]}")" "$(median "${dl_off[@]}")")" "on / off (medians) >= 0.95"
printf '%-58s %20s\n' "runs/log-metric, wrk c=8, --audit off, no webhook" "${lm_off[*]}"
printf '%-58s %20s %8s %s\n' "runs/log-metric, wrk c=8, audit on + webhook (outbox)" "${lm_on[*]}" \
  "$(ratio "$(median "${lm_on[@]}")" "$(median "${lm_off[@]}")")" "on / off (medians) >= 0.9"
