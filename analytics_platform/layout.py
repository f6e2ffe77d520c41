"""The transformed lake's folder names: made and parsed here, nowhere else.

Under ``$ANALYTICS_DATA_DIR/lake``::

    <table>/hour=2026-02-01T13/part.parquet     hourly tables: events, quarantine (the raw hour)
    <table>/date=2026-02-01/part.parquet        daily tables: sessions, session_events, daily marts
    <table>/all/part.parquet                    tables over all history
    late_events/ts_date=2026-02-01/hour=2026-02-03T05.parquet
                                                events of 1 Feb that arrived late, in raw hour
                                                3 Feb 05:00 (bookkeeping: not published)
    <table>/_published/<gen>/<partition>.parquet
                                                hard links to the files a warehouse snapshot's
                                                views read (storage.publish_warehouse)
    _tmp/                                       files being written or downloaded, renamed
                                                into place (leftovers of a killed process:
                                                removed after a while, storage._prune_leftovers)
    _locks/<n>.lock                             what orders a file's changes here and in S3
                                                between processes (storage.Lake._lock)

(The *raw* lake's ``year=/month=/day=/hour=/`` keys are Firehose's and live in ``lake.py``.)
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

# Hour folders use "T" and no ":" (not allowed in file names everywhere). DuckDB's strftime
# takes the same codes, so SQL that names a folder uses this format too.
HOUR_FORMAT = "%Y-%m-%dT%H"
DAY_FORMAT = "%Y-%m-%d"
HOUR = "hour"
DAY = "date"
LATE_DAY = "ts_date"
ALL = "all"
# Tables that are the pipeline's own bookkeeping, never a warehouse view.
LATE_EVENTS = "late_events"
INTERNAL = frozenset({LATE_EVENTS})
# Inside a table's folder: the snapshots the warehouse's views read (never a partition).
PUBLISHED = "_published"
# Under ``lake/``: files being written or downloaded; the lock files (never tables: a name
# that starts with "_" is none).
TMP = "_tmp"
LOCKS = "_locks"


def hour_folder(hour: datetime) -> str:
    """``hour=2026-02-01T13``: the folder of an hourly partition."""
    return f"{HOUR}={hour:{HOUR_FORMAT}}"


def hour_of_folder(name: str) -> datetime:
    """Inverse of :func:`hour_folder` (UTC)."""
    return datetime.strptime(name, f"{HOUR}={HOUR_FORMAT}").replace(tzinfo=UTC)


def day_folder(day: date | datetime) -> str:
    """``date=2026-02-01``: the folder of a daily partition."""
    return f"{DAY}={day:{DAY_FORMAT}}"


def late_folder(ts_date: date | datetime | str) -> str:
    """``ts_date=2026-02-01``: where the late events of one UTC date of ``ts`` are filed."""
    text = ts_date if isinstance(ts_date, str) else f"{ts_date:{DAY_FORMAT}}"
    return f"{LATE_DAY}={text}"


def hour_name(hour_text: str) -> str:
    """``hour=<text>`` for an hour already formatted with :data:`HOUR_FORMAT` (by SQL)."""
    return f"{HOUR}={hour_text}"


def is_table(name: str) -> bool:
    """Whether a folder under ``lake/`` is a table the warehouse publishes (its name is then
    the view's: a plain SQL identifier)."""
    return re.fullmatch(r"[a-z][a-z0-9_]*", name) is not None and name not in INTERNAL
