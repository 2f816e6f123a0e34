#!/usr/bin/env bash
# Installs Debian's skopeo for the OCI suite (e2e/oci), once.
set -euo pipefail

if [ -x /usr/bin/skopeo ]; then
  exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq skopeo >/dev/null
/usr/bin/skopeo --version
