#!/usr/bin/env bash
# The production-topology tests run a real PostgreSQL server (Debian's `postgresql` package),
# started by a test fixture in a temporary folder. Install it when it is missing on a Debian
# machine; elsewhere say so and let those tests skip with their stated reason.
set -euo pipefail
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ -r /etc/debian_version ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "Installing PostgreSQL (Debian package) for the production-topology tests…"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
else
  echo "PostgreSQL is not installed and this is not Debian: the Postgres tests will be skipped." >&2
fi
