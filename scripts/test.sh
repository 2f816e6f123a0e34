#!/usr/bin/env bash
# Runs every test: Rust unit and integration tests against the release binary, then the
# end-to-end suites with real clients (python-gitlab, ...), installing what they need.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v strace >/dev/null || { apt-get update -q && apt-get install -y -q strace; }  # tests/durable_metadata.rs
# tests/readme_snippets.rs runs the README's snippets: curl, and jq for the GitHub Actions step.
for tool in curl jq; do
  command -v "$tool" >/dev/null || { apt-get update -q && apt-get install -y -q "$tool"; }
done
scripts/s3.sh  # s3s-fs: the S3 server of the S3 blob store tests
export MODELYARD_TEST_REQUIRE_S3=1
cargo build --release --locked
# A private PostgreSQL for the metadata conformance suite and tests/postgres_meta.rs (installed
# when missing, stopped at exit); its cases fail rather than skip here.
eval "$(scripts/postgres.sh start)"
trap 'scripts/postgres.sh stop "$MODELYARD_TEST_POSTGRES_DIR"' EXIT
export MODELYARD_TEST_REQUIRE_POSTGRES=1
cargo test --release --locked -- --test-threads 2
scripts/e2e.sh
# The same integration and end-to-end suites on the scale-out stores (issue #12): every server
# on a fresh PostgreSQL database and an S3 bucket of its own (s3s-fs). Tests of the embedded
# store's own files skip themselves here, saying so.
MODELYARD_TEST_METADATA=postgres MODELYARD_TEST_BLOBS=s3 \
  cargo test --release --locked --test '*' -- --test-threads 2
scripts/e2e.sh --scaleout
