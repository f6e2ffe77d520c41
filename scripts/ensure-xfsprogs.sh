#!/usr/bin/env bash
# One warehouse test publishes on a small XFS file system (a loop mount of a file, as root), as
# the production data volume is XFS: Debian's `xfsprogs` makes it. Install it when it is missing
# (apt-install.sh).
set -euo pipefail
# (/usr/sbin is not on a user's PATH on Debian)
if ! command -v mkfs.xfs >/dev/null 2>&1 && [ ! -x /usr/sbin/mkfs.xfs ] && [ ! -x /sbin/mkfs.xfs ]; then
  "$(dirname "$0")/apt-install.sh" "the warehouse's XFS test" xfsprogs
fi
