#!/usr/bin/env bash
# modelyard benchmarks: prints each figure as an absolute number and as a ratio to the machine's
# own limits (measured in the same run, on the same disk) or to a real MLflow server.
#   bench/run.sh                 # modelyard against dd, md5sum, sha256sum
#   bench/run.sh --peer mlflow   # plus the same work against MLflow (SQLite, --serve-artifacts)
#   bench/run.sh --big           # plus a 5 GiB upload with the server's peak RSS
#   bench/run.sh --scaleout      # the server on a private PostgreSQL + s3s-fs (started here)
#   bench/run.sh --both          # the embedded default, then PostgreSQL + S3: side by side
#   bench/run.sh --metadata postgres://... --blobs s3://bucket/prefix --s3-endpoint URL ...
#                                # the server's own storage options, passed on as given
# Needs curl and wrk (installed with apt-get when missing). See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/backends.sh

peer=""; big=0; scaleout=0; both=0; passed=()
while [ $# -gt 0 ]; do
  backend_option "$@"
  if [ "$BACKEND_SHIFT" -gt 0 ]; then shift "$BACKEND_SHIFT"; continue; fi
  case "$1" in
    --peer) peer=$2; passed+=("$1" "$2"); shift 2 ;;
    --big) big=1; passed+=("$1"); shift ;;
    --scaleout) scaleout=1; shift ;;
    --both) both=1; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

if [ "$both" = 1 ]; then
  # Two runs back to back, each printing its table; then the figures side by side.
  tables=$(mktemp -d)
  trap 'rm -rf "$tables"' EXIT
  BENCH_TSV=$tables/embedded.tsv bench/run.sh "${passed[@]}"
  BENCH_TSV=$tables/scaleout.tsv bench/run.sh --scaleout "${passed[@]}"
  echo
  echo "both configurations (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  python3 - "$tables/embedded.tsv" "$tables/scaleout.tsv" <<'PY'
import sys
def load(path):
    rows = [line.rstrip("\n").split("\t") for line in open(path)]
    return [(r[0], r[1], r[3] if len(r) > 3 else "") for r in rows]
emb, pg = load(sys.argv[1]), load(sys.argv[2])
pg_of = {figure: value for figure, value, _ in pg}
def target_of(figure):
    # Issue #12: uploads on PostgreSQL + S3 at least half the embedded store's.
    return ">= 0.5 x embedded" if figure.endswith("upload, curl (MB/s)") or "concurrent uploads" in figure else ""
print(f"{'figure':<52} {'embedded':>10} {'PG + S3':>10} {'ratio':>6}  target for PG + S3")
for figure, value, _ in emb:
    other = pg_of.get(figure, "")
    try:
        ratio = f"{float(other) / float(value):.2f}"
    except (ValueError, ZeroDivisionError):
        ratio = ""
    target = target_of(figure)
    verdict = ""
    if target and ratio:
        verdict = "  ok" if float(ratio) >= 0.5 else "  MISS"
    print(f"{figure:<52} {value:>10} {other:>10} {ratio:>6}  {target}{verdict}")
PY
  exit 0
fi

command -v wrk >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null; }
cargo build --release --locked --quiet
bin=$PWD/target/release/modelyard
work=$PWD/target/bench
rm -rf "$work"; mkdir -p "$work"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; backend_stop; rm -rf "$work"; }
trap cleanup EXIT
if [ "$scaleout" = 1 ]; then backend_start_scaleout "$work"; fi
echo "configuration: $BACKEND_LABEL${SERVER_FLAGS[*]:+ (${SERVER_FLAGS[*]//postgres:\/\/*@/postgres://***@})}" >&2

MiB=$((1024 * 1024))
# BENCH_MIB: the size of the "1 GiB" file (default 1024; smaller when the disk is short), the
# concurrent uploads are 8 x BENCH_MIB/8.
size_mib=${BENCH_MIB:-1024}
GiB=$((size_mib * MiB)); part_mib=$((size_mib / 8))
if [ "$size_mib" = 1024 ]; then size="1 GiB"; else size="$size_mib MiB"; fi
now() { date +%s.%N; }
rate() { python3 -c "print(f'{$1 / 1e6 / ($3 - $2):.0f}')"; }          # bytes start end → MB/s
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
tree_rss_kib() {  # a process and all its descendants
  local total=0 p
  for p in $1 $(pgrep -P "$1" || true) $(for c in $(pgrep -P "$1" || true); do pgrep -P "$c" || true; done); do
    total=$((total + $(awk '/^VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)))
  done
  echo $total
}
drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null && echo dropped || echo cached; }
rows=()
row() {
  rows+=("$(printf '%-44s %14s %-10s %s' "$1" "$2" "$3" "$4")")
  if [ -n "${BENCH_TSV:-}" ]; then printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$BENCH_TSV"; fi
}

# ---- the machine's own limits -------------------------------------------------------------
big_file=$work/one-gib.bin
t0=$(now); dd if=/dev/urandom of="$big_file" bs=1M count="$size_mib" iflag=fullblock status=none; t1=$(now)
t0=$(now); dd if="$big_file" of="$work/dd-copy.bin" bs=16M conv=fsync status=none; t1=$(now)
dd_write=$(rate $GiB "$t0" "$t1"); rm -f "$work/dd-copy.bin"
cache_state=$(drop_caches)
t0=$(now); dd if="$big_file" of=/dev/null bs=16M status=none; t1=$(now); dd_read=$(rate $GiB "$t0" "$t1")
t0=$(now); md5sum "$big_file" >/dev/null; t1=$(now); md5_speed=$(rate $GiB "$t0" "$t1")
t0=$(now); sha256sum "$big_file" >/dev/null; t1=$(now); sha_speed=$(rate $GiB "$t0" "$t1")
row "disk write, dd conv=fsync (MB/s)" "$dd_write" "" "machine"
row "disk read, dd ($cache_state) (MB/s)" "$dd_read" "" "machine"
row "md5sum (MB/s)" "$md5_speed" "" "machine"
row "sha256sum (MB/s)" "$sha_speed" "" "machine"

# ---- modelyard ------------------------------------------------------------------------------
token=bench-$RANDOM$RANDOM
t0=$(now)
MODELYARD_ROOT_TOKEN=$token MODELYARD_LOG=warn "$bin" serve --listen 127.0.0.1:0 --data-dir "$work/data" \
  ${SERVER_FLAGS[@]+"${SERVER_FLAGS[@]}"} >"$work/server.log" &
server=$!; pids+=("$server")
until grep -q "listening on" "$work/server.log"; do sleep 0.005; done
base=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$work/server.log")
until curl -sf "$base/-/health" >/dev/null; do sleep 0.005; done
t1=$(now)
health_ms=$(python3 -c "print(f'{($t1 - $t0) * 1000:.0f}')")
sleep 1; idle_rss=$(rss_kib "$server")
row "time to first /-/health (ms)" "$health_ms" "" ""
row "idle RSS (MiB)" "$((idle_rss / 1024))" "" ""

H="PRIVATE-TOKEN: $token"
curl -sf -H "$H" -X POST "$base/api/v4/projects" -d name=bench >/dev/null
api=$base/api/v4/projects/root%2Fbench
min_write_md5=$(python3 -c "print(min($dd_write, $md5_speed))")

t0=$(now); curl -sf -H "$H" --upload-file "$big_file" "$api/packages/generic/big/1.0.0/one-gib.bin" >/dev/null; t1=$(now)
up=$(rate $GiB "$t0" "$t1")
row "$size upload, curl (MB/s)" "$up" "$(ratio "$up" "$min_write_md5")" "x min(dd write, md5sum); target >= 0.8"
row "server peak RSS so far (MiB)" "$(( $(hwm_kib "$server") / 1024 ))" "" "target < 64"
drop_caches >/dev/null
t0=$(now); curl -sf -H "$H" -o /dev/null "$api/packages/generic/big/1.0.0/one-gib.bin"; t1=$(now)
down=$(rate $GiB "$t0" "$t1")
row "$size download, curl (MB/s)" "$down" "$(ratio "$down" "$dd_read")" "x dd read; target >= 0.8"

# The same GiB as an OCI layer: adopting the generic package makes it a model's version, its file
# a layer of the version's generated manifest, pulled by digest from the same blob.
curl -sf -H "$H" -H 'Content-Type: application/json' -X POST "$api/ml/models" \
  -d '{"name": "big", "adopt_generic_packages": true}' >/dev/null
big_sha=$(sha256sum "$big_file" | cut -d' ' -f1)
curl -sf -u "bench:$token" "$base/v2/root/bench/big/manifests/1.0.0" | grep -q "$big_sha"
drop_caches >/dev/null
t0=$(now); curl -sf -u "bench:$token" -o /dev/null "$base/v2/root/bench/big/blobs/sha256:$big_sha"; t1=$(now)
oci_down=$(rate $GiB "$t0" "$t1")
row "$size OCI layer pull, curl (MB/s)" "$oci_down" "$(ratio "$oci_down" "$down")" "x generic download; target >= 0.8"

head -c $((part_mib * MiB)) "$big_file" > "$work/part.bin"
t0=$(now); uploads=()
for i in 1 2 3 4 5 6 7 8; do
  # Distinct content per upload: the first 16 bytes differ.
  (printf '%016d' "$i"; tail -c +17 "$work/part.bin") | curl -sf -H "$H" --upload-file - "$api/packages/generic/parallel/1.0.$i/part.bin" >/dev/null &
  uploads+=($!)
done
wait "${uploads[@]}" 2>/dev/null || true
t1=$(now)
par=$(rate $((8 * part_mib * MiB)) "$t0" "$t1")
row "8 x $part_mib MiB concurrent uploads (MB/s)" "$par" "$(ratio "$par" "$min_write_md5")" "x min(dd write, md5sum)"
row "server peak RSS (MiB)" "$(( $(hwm_kib "$server") / 1024 ))" "" "target < 64"

for i in $(seq 1 50); do curl -sf -H "$H" --upload-file /dev/null "$api/packages/generic/small-$i/1.0.0/x" >/dev/null; done
list_rps=$(wrk -t2 -c8 -d5s -H "$H" "$api/packages?per_page=20" | awk '/Requests\/sec/ {printf "%.0f", $2}')
row "package listing, wrk c=8 (req/s)" "$list_rps" "" ""

# log-metric against a tracking server: $1 tracking base (…/api/2.0/mlflow), $2 auth header or ""
log_metric_rps() {
  local tracking=$1 auth=$2 experiment run
  experiment=$(curl -sf ${auth:+-H "$auth"} -H 'Content-Type: application/json' -X POST "$tracking/experiments/create" -d "{\"name\": \"bench-$RANDOM\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["experiment_id"])')
  run=$(curl -sf ${auth:+-H "$auth"} -H 'Content-Type: application/json' -X POST "$tracking/runs/create" -d "{\"experiment_id\": \"$experiment\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["run"]["info"]["run_id"])')
  local lua_auth=""
  [ -n "$auth" ] && lua_auth=", [\"${auth%%:*}\"]=\"${auth#*: }\""
  cat > "$work/log-metric.lua" <<LUA
counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"run_id":"$run","key":"loss","value":%d.5,"timestamp":%d,"step":%d}', counter, 1700000000000 + counter, counter)
  return wrk.format("POST", nil, {["Content-Type"]="application/json"$lua_auth}, body)
end
LUA
  wrk -t2 -c8 -d10s -s "$work/log-metric.lua" "$tracking/runs/log-metric" | awk '/Requests\/sec/ {printf "%.0f", $2}'
  echo " $run"
}
# log-batch with 1000 metrics per call: metrics per second over 20 calls
log_batch_mps() {
  local tracking=$1 auth=$2 run=$3
  python3 - "$tracking" "$auth" "$run" <<'PY'
import json, sys, time, urllib.request
tracking, auth, run = sys.argv[1:4]
headers = {"Content-Type": "application/json"}
if auth:
    k, v = auth.split(": ", 1); headers[k] = v
calls, per = 20, 1000
start = time.time()
for c in range(calls):
    metrics = [{"key": f"m{i % 10}", "value": i * 0.5, "timestamp": 1700000000000 + c * per + i, "step": c * per + i} for i in range(per)]
    body = json.dumps({"run_id": run, "metrics": metrics}).encode()
    urllib.request.urlopen(urllib.request.Request(tracking + "/runs/log-batch", body, headers)).read()
print(f"{calls * per / (time.time() - start):.0f}")
PY
}
read -r ours_rps ours_run < <(log_metric_rps "$api/ml/mlflow/api/2.0/mlflow" "$H")
ours_mps=$(log_batch_mps "$api/ml/mlflow/api/2.0/mlflow" "$H" "$ours_run")
row "runs/log-metric, wrk c=8 (req/s)" "$ours_rps" "" ""
row "log-batch, 1000 metrics/call, 1 client (metrics/s)" "$ours_mps" "" ""
# The server's own rate: pre-encoded bodies from 8 keep-alive clients (bench/log_batch.py).
if [ ${#SERVER_FLAGS[@]} -eq 0 ]; then  # it starts a server of its own, on the embedded store
  lb_mps=$(python3 bench/log_batch.py --bin "$bin" --calls 800 --clients 8 | awk '/metrics\/s/ {gsub(",", "", $1); print $1}')
  row "log-batch, 1000 metrics/call, 8 clients (metrics/s)" "$lb_mps" "$(ratio "$lb_mps" 1000000)" "x 1M metrics/s; target >= 1"
fi

if [ "$big" = 1 ]; then
  # The high-water mark includes the concurrent uploads above: sample RSS during this one alone.
  (peak=0; while kill -0 "$server" 2>/dev/null && [ ! -e "$work/big-done" ]; do
     r=$(rss_kib "$server"); [ "$r" -gt "$peak" ] && peak=$r; echo "$peak" > "$work/big-peak"; sleep 0.05
   done) &
  sampler=$!
  t0=$(now)
  head -c $((5 * GiB)) /dev/zero | tr '\0' 'm' | curl -sf -H "$H" --upload-file - "$api/packages/generic/huge/1.0.0/five-gib.bin" >/dev/null
  t1=$(now)
  touch "$work/big-done"; wait "$sampler" 2>/dev/null || true
  row "5 GiB streamed upload (MB/s)" "$(rate $((5 * GiB)) "$t0" "$t1")" "" ""
  row "server RSS during the 5 GiB upload, max (MiB)" "$(( $(cat "$work/big-peak") / 1024 ))" "" "target < 64"
fi

# ---- the peer --------------------------------------------------------------------------------
if [ "$peer" = mlflow ]; then
  venv=target/e2e-venv
  if [ ! -x "$venv/bin/mlflow" ]; then
    python3 -m venv "$venv" && "$venv/bin/pip" install --quiet -r e2e/requirements.txt
  fi
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  t0=$(now)
  "$venv/bin/mlflow" server --host 127.0.0.1 --port "$port" --workers 2 \
    --backend-store-uri "sqlite:///$work/mlflow.db" --serve-artifacts --artifacts-destination "$work/mlartifacts" \
    >"$work/mlflow.log" 2>&1 &
  mlflow_pid=$!; pids+=("$mlflow_pid")
  until curl -sf "http://127.0.0.1:$port/health" >/dev/null; do sleep 0.05; done
  t1=$(now)
  sleep 2
  ml_idle=$(tree_rss_kib "$mlflow_pid")
  tracking=http://127.0.0.1:$port/api/2.0/mlflow
  read -r ml_rps ml_run < <(log_metric_rps "$tracking" "")
  ml_mps=$(log_batch_mps "$tracking" "" "$ml_run")
  t2=$(now); curl -sf --upload-file "$big_file" "http://127.0.0.1:$port/api/2.0/mlflow-artifacts/artifacts/bench/one-gib.bin" >/dev/null; t3=$(now)
  ml_up=$(rate $GiB "$t2" "$t3")
  drop_caches >/dev/null
  t2=$(now); curl -sf -o /dev/null "http://127.0.0.1:$port/api/2.0/mlflow-artifacts/artifacts/bench/one-gib.bin"; t3=$(now)
  ml_down=$(rate $GiB "$t2" "$t3")
  row "MLflow: time to first /health (ms)" "$(python3 -c "print(f'{($t1 - $t0) * 1000:.0f}')")" "$(ratio "$(python3 -c "print(($t1 - $t0) * 1000)")" "$health_ms")" "MLflow / modelyard"
  row "MLflow: idle RSS, all processes (MiB)" "$((ml_idle / 1024))" "$(ratio "$ml_idle" "$idle_rss")" "MLflow / modelyard; target >= 10"
  row "MLflow: runs/log-metric, wrk c=8 (req/s)" "$ml_rps" "$(ratio "$ours_rps" "$ml_rps")" "modelyard / MLflow; target >= 20"
  row "MLflow: log-batch (metrics/s)" "$ml_mps" "$(ratio "$ours_mps" "$ml_mps")" "modelyard / MLflow"
  row "MLflow: $size artifact upload (MB/s)" "$ml_up" "$(ratio "$up" "$ml_up")" "modelyard / MLflow"
  row "MLflow: $size artifact download (MB/s)" "$ml_down" "$(ratio "$down" "$ml_down")" "modelyard / MLflow"
fi

echo
echo "configuration: $BACKEND_LABEL; load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-44s %14s %-10s %s\n' "figure" "value" "ratio" "ratio of"
printf '%s\n' "${rows[@]}"
