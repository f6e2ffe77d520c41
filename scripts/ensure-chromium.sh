#!/usr/bin/env bash
# The browser tests drive Debian's Chromium with Playwright's Python package (never
# `playwright install`); one of them runs the collector a week in the past with libfaketime
# (Debian's `faketime`). Install what is missing (apt-install.sh).
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
compgen -G '/usr/lib/*/faketime/libfaketime.so.1' >/dev/null || missing+=(faketime)
if [ ${#missing[@]} -gt 0 ]; then
  "$(dirname "$0")/apt-install.sh" "the browser tests that need them" "${missing[@]}"
fi
