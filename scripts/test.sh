#!/usr/bin/env bash
# Runs every test: Rust unit and integration tests against the release binary, then the
# end-to-end suites with real clients (python-gitlab, ...), installing what they need.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked
cargo test --release --locked -- --test-threads 2
scripts/e2e.sh
