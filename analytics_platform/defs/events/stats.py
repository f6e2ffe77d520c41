"""What cleaning one raw hour found: shared by the ``events`` asset, which counts it, and its
checks, which judge it."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime


@dataclass
class HourStats:
    hour: datetime
    objects: int = 0
    raw_bytes: int = 0
    records: int = 0
    quarantined: int = 0
    corrupt_objects: int = 0
    bots: int = 0
    duplicates: int = 0
    events: int = 0
    late_events: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


def total(rows: list[HourStats]) -> HourStats:
    """The sum of several hours' counts (labelled with the first hour)."""
    out = HourStats(rows[0].hour)
    for s in rows:
        for f in fields(HourStats):
            if f.name not in ("hour", "reasons"):
                setattr(out, f.name, getattr(out, f.name) + getattr(s, f.name))
        for r, n in s.reasons.items():
            out.reasons[r] = out.reasons.get(r, 0) + n
    return out
