#!/usr/bin/env bash
# One upload figure, local blobs against S3 blobs (s3s-fs on 127.0.0.1, installed by
# scripts/s3.sh): the same file PUT to a generic package of each server, MB/s side by side.
#   bench/s3_upload.sh [MiB]      # default 512
# s3s-fs writes to the same disk, so the S3 figure includes a second copy (staging -> address).
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-512}
scripts/s3.sh
cargo build --release --locked --quiet
bin=$PWD/target/release/modelyard
work=$(mktemp -d "$PWD/target/bench-s3.XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

mkdir -p "$work/s3root/mlreg"
s3port=$(free_port)
s3s-fs --host 127.0.0.1 --port "$s3port" --access-key benchkey --secret-key benchsecret "$work/s3root" >/dev/null 2>&1 &
pids+=($!)
export AWS_ACCESS_KEY_ID=benchkey AWS_SECRET_ACCESS_KEY=benchsecret
token=bench-root-token-0123456789
start_server() {  # name, extra flags...
  local name=$1; shift
  MODELYARD_ROOT_TOKEN=$token MODELYARD_LOG=warn "$bin" serve --listen 127.0.0.1:0 \
    --data-dir "$work/$name" "$@" >"$work/$name.out" 2>"$work/$name.err" &
  pids+=($!)
  for _ in $(seq 100); do grep -q "listening on" "$work/$name.out" 2>/dev/null && break; sleep 0.1; done
  sed -n 's/^modelyard listening on //p' "$work/$name.out"
}
local_url=$(start_server local)
s3_url=$(start_server s3 --blobs s3://mlreg/bench --s3-endpoint "http://127.0.0.1:$s3port" \
  --s3-region us-east-1 --s3-path-style --s3-allow-http)
head -c $((mib * 1024 * 1024)) /dev/urandom >"$work/file.bin"
upload() {  # base url → MB/s
  local base=$1
  curl -sS -o /dev/null -H "PRIVATE-TOKEN: $token" -H "Content-Type: application/json" -d '{"name":"bench"}' "$base/api/v4/projects"
  curl -sf -o /dev/null -w '%{speed_upload}' -H "PRIVATE-TOKEN: $token" -T "$work/file.bin" \
    "$base/api/v4/projects/root%2Fbench/packages/generic/bench/1.0.0/file.bin" |
    python3 -c 'import sys; print(f"{float(sys.stdin.read()) / 1e6:.0f}")'
}
l=$(upload "$local_url"); s=$(upload "$s3_url")
echo "upload of $mib MiB: local $l MB/s, S3 (s3s-fs) $s MB/s, ratio $(python3 -c "print(f'{$s / $l:.2f}')")"
