#!/usr/bin/env bash
# Install the Debian packages a group of tests needs, when an ensure-*.sh script found them
# missing: `apt-install.sh "<which tests>" PACKAGE...`. With apt-get on a Debian machine (as root
# or through sudo); elsewhere say so, and those tests skip with their stated reason.
set -euo pipefail
what=$1
shift
if command -v apt-get >/dev/null 2>&1 && [ -r /etc/debian_version ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "Installing $* (Debian packages) for $what…"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
else
  echo "$* not installed and this is not Debian: $what will be skipped." >&2
fi
