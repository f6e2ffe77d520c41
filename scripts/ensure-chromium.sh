#!/usr/bin/env bash
# The browser tests drive Debian's Chromium with Playwright's Python package (never
# `playwright install`); one of them runs the collector a week in the past with libfaketime
# (Debian's `faketime`). Install what is missing on a Debian machine; elsewhere say so and let
# those tests skip with their stated reason.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
compgen -G '/usr/lib/*/faketime/libfaketime.so.1' >/dev/null || missing+=(faketime)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ -r /etc/debian_version ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "Installing ${missing[*]} (Debian packages) for the browser tests…"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "${missing[*]} not installed and this is not Debian: the browser tests that need them will be skipped." >&2
fi
