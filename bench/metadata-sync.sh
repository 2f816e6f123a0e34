#!/usr/bin/env bash
# The cost of durable metadata: bench/run.sh's log-metric figure (wrk, 8 connections, 10 s, one
# run), the same with one connection (every request waits for its own flush), and the log-batch
# figure, for each binary given, on a fresh data dir in target/bench-sync/;
# and with --strace, the sync system calls the server makes for one acknowledged upload.
#   bench/metadata-sync.sh [--strace] [BINARY ...]     # default: target/release/modelyard
# Needs curl, wrk and python3 (strace for --strace). See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

trace=0
if [ "${1:-}" = --strace ]; then trace=1; shift; fi
bins=("$@")
[ ${#bins[@]} -gt 0 ] || { cargo build --release --locked --quiet; bins=("$PWD/target/release/modelyard"); }
command -v wrk >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null; }
[ "$trace" = 0 ] || command -v strace >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q strace >/dev/null; }

work=$PWD/target/bench-sync
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

start() {  # start BINARY [strace args...]: a server on a fresh data dir; sets $server and $base
  local bin=$1; shift
  rm -rf "$work"; mkdir -p "$work"
  MODELYARD_ROOT_TOKEN=$token MODELYARD_LOG=warn "$@" "$bin" serve --listen 127.0.0.1:0 \
    --data-dir "$work/data" >"$work/server.log" 2>"$work/server.err" &
  server=$!
  until grep -qs "listening on" "$work/server.log"; do sleep 0.01; done
  base=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$work/server.log")
}
stop() { kill -TERM "$server"; wait "$server" || true; server=""; }

token=bench-$RANDOM$RANDOM
H="PRIVATE-TOKEN: $token"
json() { curl -sf -H "$H" -H 'Content-Type: application/json' -X POST "$1" -d "$2"; }

if [ "$trace" = 1 ]; then
  start "${bins[0]}" strace -f -tt -e trace=fsync,fdatasync,sync_file_range,openat -o "$work/strace.log"
  curl -sf -H "$H" -X POST "$base/api/v4/projects" -d name=sync >/dev/null
  head -c 4096 /dev/urandom >"$work/one.bin"
  mark=$(wc -l <"$work/strace.log")
  curl -sf -H "$H" --upload-file "$work/one.bin" "$base/api/v4/projects/root%2Fsync/packages/generic/one/1.0.0/one.bin" >/dev/null
  tracee=$(pgrep -P "$server")
  window=$(tail -n +"$((mark + 1))" "$work/strace.log" | sed -E 's/^[0-9]+ +//')
  echo "sync calls during one acknowledged upload (${bins[0]}):"
  grep -E 'fsync|fdatasync|sync_file_range|openat\(.*data/(meta|blobs|tmp)' <<<"$window" | grep -v ENOENT
  echo "file descriptors synced but opened before the upload:"
  for fd in $(grep -oE '(fsync|fdatasync|sync_file_range)\([0-9]+' <<<"$window" | grep -oE '[0-9]+$' | sort -un); do
    target=$(readlink "/proc/$tracee/fd/$fd" 2>/dev/null || true)
    case "$target" in */meta/*) echo "  $fd -> ${target#"$work/"}" ;; esac
  done
  kill -TERM "$tracee"; wait "$server" || true; server=""
  exit 0
fi

printf '%-48s %18s %18s %16s\n' "binary" "log-metric c=8 r/s" "log-metric c=1 r/s" "log-batch m/s"
for bin in "${bins[@]}"; do
  start "$bin"
  tracking=$base/api/v4/projects/root%2Fbench/ml/mlflow/api/2.0/mlflow
  curl -sf -H "$H" -X POST "$base/api/v4/projects" -d name=bench >/dev/null
  experiment=$(json "$tracking/experiments/create" '{"name": "bench"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["experiment_id"])')
  run=$(json "$tracking/runs/create" "{\"experiment_id\": \"$experiment\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["run"]["info"]["run_id"])')
  cat >"$work/log-metric.lua" <<LUA
counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"run_id":"$run","key":"loss","value":%d.5,"timestamp":%d,"step":%d}', counter, 1700000000000 + counter, counter)
  return wrk.format("POST", nil, {["Content-Type"]="application/json", ["PRIVATE-TOKEN"]="$token"}, body)
end
LUA
  rps=$(wrk -t2 -c8 -d10s -s "$work/log-metric.lua" "$tracking/runs/log-metric" | awk '/Requests\/sec/ {printf "%.0f", $2}')
  rps1=$(wrk -t1 -c1 -d5s -s "$work/log-metric.lua" "$tracking/runs/log-metric" | awk '/Requests\/sec/ {printf "%.0f", $2}')
  mps=$(python3 - "$tracking" "$token" "$run" <<'PY'
import json, sys, time, urllib.request
tracking, token, run = sys.argv[1:4]
headers = {"Content-Type": "application/json", "PRIVATE-TOKEN": token}
calls, per = 20, 1000
start = time.time()
for c in range(calls):
    metrics = [{"key": f"m{i % 10}", "value": i * 0.5, "timestamp": 1700000000000 + c * per + i, "step": c * per + i} for i in range(per)]
    body = json.dumps({"run_id": run, "metrics": metrics}).encode()
    urllib.request.urlopen(urllib.request.Request(tracking + "/runs/log-batch", body, headers)).read()
print(f"{calls * per / (time.time() - start):.0f}")
PY
)
  printf '%-48s %18s %18s %16s\n' "$bin" "$rps" "$rps1" "$mps"
  stop
done
