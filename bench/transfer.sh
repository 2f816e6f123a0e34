#!/usr/bin/env bash
# Large transfers through the resumable paths, against the release binary:
#   1. a tus upload (`modelyard push`, one file, 64 MiB chunks) vs a plain PUT of a file of the
#      same size (curl --upload-file)                                   target >= 0.7x
#   2. `modelyard pull` of a 3-file version vs reading the same files from disk   target >= 0.8x
# Sizes: UPLOAD_MIB (default 5120) and PULL_FILE_MIB (default 1024, three files).
# Prints one table with MB/s and ratios. Works in target/bench-transfer (same disk as the data dir).
set -euo pipefail
cd "$(dirname "$0")/.."
UPLOAD_MIB=${UPLOAD_MIB:-5120}
PULL_FILE_MIB=${PULL_FILE_MIB:-1024}
cargo build --release --locked --quiet
BIN="$PWD/target/release/modelyard"
WORK="$PWD/target/bench-transfer"
rm -rf "$WORK"
mkdir -p "$WORK/data" "$WORK/src" "$WORK/version" "$WORK/pulled"
chmod 700 "$WORK/data"
TOKEN="bench-$(date +%s)"

make_file() { # path MiB seed: fast incompressible bytes
  (set +o pipefail; openssl enc -aes-128-ctr -pass "pass:$3" -nosalt -pbkdf2 </dev/zero 2>/dev/null \
    | head -c $(($2 * 1048576)) >"$1")
}
now() { date +%s.%N; }
mbps() { python3 -c "print(f'{$1 / 1e6 / ($3 - $2):.0f}')"; }
drop_caches() { sync; (echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null || true; }

make_file "$WORK/src/put.bin" "$UPLOAD_MIB" put
make_file "$WORK/src/tus.bin" "$UPLOAD_MIB" tus
for i in 1 2 3; do make_file "$WORK/version/part-$i.bin" "$PULL_FILE_MIB" "pull$i"; done

MODELYARD_ROOT_TOKEN=$TOKEN MODELYARD_LOG=warn "$BIN" serve --listen 127.0.0.1:0 \
  --data-dir "$WORK/data" --max-file-size $((20 << 30)) --max-model-file-size $((20 << 30)) \
  >"$WORK/server.out" 2>"$WORK/server.err" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q 'listening on' "$WORK/server.out" 2>/dev/null && break; sleep 0.1; done
HOST=$(sed -n 's/^modelyard listening on //p' "$WORK/server.out")
curl -sf -o /dev/null -H "PRIVATE-TOKEN: $TOKEN" -H 'Content-Type: application/json' \
  -d '{"name":"bench","visibility":"private"}' "$HOST/api/v4/projects"
export MODELYARD_URL=$HOST MODELYARD_TOKEN=$TOKEN
BYTES=$((UPLOAD_MIB * 1048576))

# 1. PUT vs tus (both files start cold-ish: written just before, so mostly in the page cache)
t0=$(now)
curl -sf -o /dev/null -H "PRIVATE-TOKEN: $TOKEN" --upload-file "$WORK/src/put.bin" \
  "$HOST/api/v4/projects/root%2Fbench/packages/generic/put/1.0.0/put.bin"
t1=$(now)
mkdir -p "$WORK/tusdir" && ln -f "$WORK/src/tus.bin" "$WORK/tusdir/tus.bin"
"$BIN" push --project root/bench --model tus --version 1.0.0 --chunk-mib 64 --parallel 1 \
  "$WORK/tusdir" >/dev/null
t2=$(now)
PUT=$(mbps "$BYTES" "$t0" "$t1")
TUS=$(mbps "$BYTES" "$t1" "$t2")

# 2. pull of a 3-file version vs reading the files
"$BIN" push --project root/bench --model pulled --version 1.0.0 --parallel 3 "$WORK/version" >/dev/null
PULL_BYTES=$((3 * PULL_FILE_MIB * 1048576))
drop_caches
t3=$(now)
cat "$WORK"/version/part-*.bin >/dev/null
t4=$(now)
drop_caches
"$BIN" pull --project root/bench --model pulled --version '^1.0' --parallel 3 "$WORK/pulled" >/dev/null
t5=$(now)
READ=$(mbps "$PULL_BYTES" "$t3" "$t4")
PULL=$(mbps "$PULL_BYTES" "$t4" "$t5")

ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
printf '%-52s %10s %8s %8s\n' figure MB/s ratio target
printf '%-52s %10s %8s %8s\n' "plain PUT of ${UPLOAD_MIB} MiB (curl)" "$PUT" "" ""
printf '%-52s %10s %8s %8s\n' "tus upload of ${UPLOAD_MIB} MiB, 64 MiB chunks (push)" "$TUS" "$(ratio "$TUS" "$PUT")" ">=0.70"
printf '%-52s %10s %8s %8s\n' "disk read of 3 x ${PULL_FILE_MIB} MiB (cat)" "$READ" "" ""
printf '%-52s %10s %8s %8s\n' "pull of 3 x ${PULL_FILE_MIB} MiB (verified)" "$PULL" "$(ratio "$PULL" "$READ")" ">=0.80"
echo "page cache dropped between the read and the pull: $( (echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null && echo yes || echo no)"
echo "cores: $(nproc)"
