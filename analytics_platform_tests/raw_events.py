"""Raw records as the collector stores them, for tests that write raw hours by hand."""

from __future__ import annotations

from datetime import datetime, timedelta

UA = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


def iso(t: datetime) -> str:
    """``t`` as the tracker and the collector write a time: UTC, milliseconds, ``Z``."""
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def event(n: int, session: int, ts: datetime, delay: timedelta) -> dict:
    """Page view ``n`` of session ``session`` at ``ts``, arrived ``delay`` later."""
    return {"event_type": "page_view", "event_id": f"00000000-0000-4000-8000-{n:012d}",
            "session_id": f"00000000-0000-4000-9000-{session:012d}", "page_path": f"/p{n % 3}",
            "page_host": "example.com", "utm_source": "news", "event_ts": iso(ts),
            "ingest_ts": iso(ts + delay), "schema_version": 1, "user_agent": UA}
