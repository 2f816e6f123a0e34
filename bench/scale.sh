#!/usr/bin/env bash
# The scale benchmark of issue #11: fills a fresh server through the HTTP APIs (1 model with N
# versions, 1,000 models, 1,000 generic package versions, 1 experiment with N runs), then prints
# p50/p99 of the reads, the create rates at 1k and at N, and the server's RSS, each against its
# target. Not a timed test. See bench/README.md.
#   bench/scale.sh                          # N = 100,000 against target/release/modelyard (built)
#   bench/scale.sh --bin PATH --n 3000      # any build of the server, a smaller N
#   bench/scale.sh --save                   # also write the table to bench/profiles/scale-<date>.txt
# Options: --n, --models, --packages, --clients (8), --requests (200), --work DIR, --keep,
#   --perf DIR (perf-record each one-client timed create window; a report per window in DIR).
# Needs only python3 (standard library: http.client keep-alive connections).
set -euo pipefail
cd "$(dirname "$0")/.."

has_bin=0
for a in "$@"; do case "$a" in --bin|--bin=*) has_bin=1 ;; -h|--help) has_bin=1 ;; esac; done
if [ "$has_bin" = 0 ]; then
  cargo build --release --locked --quiet
fi
exec python3 -u bench/scale.py "$@"
