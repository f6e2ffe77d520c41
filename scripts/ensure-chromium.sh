#!/usr/bin/env bash
# The browser tests drive Debian's Chromium with Playwright's Python package (never
# `playwright install`). Install it when it is missing on a Debian machine; elsewhere say so and
# let the browser tests skip with their stated reason.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ -r /etc/debian_version ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "Installing Chromium (Debian package) for the browser tests…"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
else
  echo "Chromium is not installed and this is not Debian: the browser tests will be skipped." >&2
fi
