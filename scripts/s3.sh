#!/usr/bin/env bash
# Installs s3s-fs, the S3-compatible server the tests run S3 blob stores against (tests start
# their own on a free port; see tests/common/s3.rs). A no-op when this version is installed;
# ~3 minutes on 2 cores otherwise. 0.15+ needs a newer rustc.
set -euo pipefail
if command -v s3s-fs >/dev/null && s3s-fs --version 2>/dev/null | grep -q '0\.14\.1'; then
  exit 0
fi
cargo install s3s-fs --version 0.14.1 --features binary --locked
