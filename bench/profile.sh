#!/usr/bin/env bash
# CPU profiles of the server during a 1 GiB upload and a cold 1 GiB download (perf record -g),
# top symbols printed; the perf.data files stay in target/bench-profile/. Needs perf and root
# (to drop the page cache). See bench/profiles/*.txt for what past runs showed.
#   bench/profile.sh [--top N]
set -euo pipefail
cd "$(dirname "$0")/.."
top=10
[ "${1:-}" = --top ] && top=$2
command -v perf >/dev/null || { echo "perf is not installed" >&2; exit 2; }
cargo build --release --locked --quiet
bin=$PWD/target/release/modelyard
work=$PWD/target/bench-profile
rm -rf "$work"; mkdir -p "$work"
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work/data" "$work/one-gib.bin"' EXIT

dd if=/dev/urandom of="$work/one-gib.bin" bs=16M count=64 iflag=fullblock status=none
token=profile-$RANDOM$RANDOM
MODELYARD_ROOT_TOKEN=$token MODELYARD_LOG=warn "$bin" serve --listen 127.0.0.1:0 --data-dir "$work/data" >"$work/server.log" &
server=$!
until grep -q "listening on" "$work/server.log"; do sleep 0.01; done
base=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$work/server.log")
H="PRIVATE-TOKEN: $token"
curl -sf -H "$H" -X POST "$base/api/v4/projects" -d name=profile >/dev/null
url=$base/api/v4/projects/root%2Fprofile/packages/generic/big/1.0.0/one-gib.bin

record() {  # name, then the command to profile
  local name=$1; shift
  perf record -F 1999 -g --call-graph dwarf,16384 -o "$work/$name.data" -p "$server" 2>"$work/$name.log" &
  local perf_pid=$!
  sleep 0.5
  local t0 t1; t0=$(date +%s.%N); "$@"; t1=$(date +%s.%N)
  kill -INT "$perf_pid"; wait "$perf_pid" || true
  echo "== $name: $(python3 -c "print(f'{(1 << 30) / 1e6 / ($t1 - $t0):.0f}')") MB/s, $(grep -o '[0-9]* samples' "$work/$name.log")"
  perf report -i "$work/$name.data" --no-children --sort symbol --stdio -g none 2>/dev/null \
    | grep -v '^#' | grep -v '^$' | head -n "$top" | sed 's/ *- *- *$//' || true
}
record upload curl -sf -H "$H" --upload-file "$work/one-gib.bin" "$url" -o /dev/null
sync; echo 3 > /proc/sys/vm/drop_caches
record download curl -sf -H "$H" -o /dev/null "$url"
