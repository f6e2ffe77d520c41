#!/usr/bin/env bash
# The production-topology tests run a real PostgreSQL server (Debian's `postgresql` package),
# started by a test fixture in a temporary folder. Install it when it is missing
# (apt-install.sh).
set -euo pipefail
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  "$(dirname "$0")/apt-install.sh" "the PostgreSQL tests" postgresql
fi
