"""Plausible's Stats API v2 (``POST /api/v2/query``): its request read into a
:class:`~analytics_platform.query.stats.Query` of the shared query layer, and the layer's rows
written back in Plausible's response shape (``results`` / ``meta`` / ``query``), with
Plausible's units (percentages, whole seconds). What is supported and what differs:
docs/API.md."""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd

from analytics_platform.query.stats import (
    METRICS,
    Query,
    QueryError,
    Result,
    check_time_labels,
    default_order,
    dimension,
    round_half_up,
    thaw,
    time_dimension,
    time_labels,
    validate,
)

KEYS = {"site_id", "metrics", "date_range", "dimensions", "filters", "order_by", "include",
        "pagination"}
INCLUDE = {"imports", "time_labels", "total_rows"}
MAX_LIMIT = 10_000
# The largest offset DuckDB's OFFSET takes (a BIGINT); past it the query failed (a 500).
MAX_OFFSET = 2**63 - 1
DATE_RANGES = ("day", "24h", "Nd (7d, 28d, 30d, 91d…)", "Nmo (6mo, 12mo)", "month", "year",
               "all", "[from, to] (dates, or date-times with an offset)")
_DAYS = re.compile(r"^([1-9][0-9]{0,3})d$")
_MONTHS = re.compile(r"^([1-9][0-9]?)mo$")


@dataclass
class Parsed:
    """A request, read: the query to run and what the response echoes and includes."""

    query: Query
    site_id: str
    date_range: list[str]
    include: dict[str, bool] = field(default_factory=dict)
    given_include: dict[str, Any] = field(default_factory=dict)


def _months_back(d: date, n: int) -> date:
    y, m = divmod(d.year * 12 + d.month - 1 - n, 12)
    return date(y, m + 1, 1)


def _end_of_month(d: date) -> date:
    return d.replace(day=calendar.monthrange(d.year, d.month)[1])


def _instant(text: str) -> datetime:
    t = datetime.fromisoformat(text)
    if t.tzinfo is None:
        raise ValueError("a date-time needs an offset")
    return t.astimezone(UTC).replace(tzinfo=None)


def parse_date_range(value: Any, now: datetime, first_day: Callable[[], date | None]
                     ) -> tuple[date, date, datetime | None, datetime | None, list[str]]:
    """First and last session date, the instants bounding the sessions' starts (date-time
    ranges only) and the range as the response echoes it. ``now``: UTC."""
    today = now.date()
    first: date
    last: date
    if value == "day":
        first = last = today
    elif value == "24h":
        t0, t1 = now - timedelta(hours=24), now
        return (t0.date(), t1.date(), t0.replace(tzinfo=None), t1.replace(tzinfo=None),
                [t0.isoformat(), t1.isoformat()])
    elif value == "month":
        first, last = today.replace(day=1), _end_of_month(today)
    elif value == "year":
        first, last = date(today.year, 1, 1), date(today.year, 12, 31)
    elif value == "all":
        first, last = first_day() or today, today
    elif isinstance(value, str) and (m := _DAYS.match(value)):
        first, last = today - timedelta(days=int(m.group(1))), today - timedelta(days=1)
    elif isinstance(value, str) and (m := _MONTHS.match(value)):
        first = _months_back(today, int(m.group(1)))
        last = _months_back(today, 1)
        last = _end_of_month(last)
    elif isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value):
        try:
            first, last = date.fromisoformat(value[0]), date.fromisoformat(value[1])
        except ValueError:
            try:
                t0, t1 = _instant(value[0]), _instant(value[1])
            # OverflowError: in UTC the instant is before year 1 or after 9999
            except (ValueError, OverflowError):
                raise QueryError(f"Invalid date_range '{value}'.") from None
            if t0 > t1:
                raise QueryError(
                    f"Invalid date_range '{value}': it ends before it starts.") from None
            return (t0.date(), t1.date(), t0, t1,
                    [t0.replace(tzinfo=UTC).isoformat(), t1.replace(tzinfo=UTC).isoformat()])
        if first > last:
            raise QueryError(f"Invalid date_range '{value}': it ends before it starts.")
    elif value in ("realtime", "30m"):
        raise QueryError(f"Invalid date_range '{value}': not supported here (the warehouse "
                         "follows the raw lake by about a minute; see the dashboard's "
                         "Realtime view).")
    else:
        raise QueryError(f"Invalid date_range '{value}'. One of: {', '.join(DATE_RANGES)}.")
    return first, last, None, None, [f"{first.isoformat()}T00:00:00+00:00",
                                      f"{last.isoformat()}T23:59:59+00:00"]


def parse(body: Any, now: datetime, first_day: Callable[[], date | None]) -> Parsed:
    """A request body, checked; :class:`QueryError` with Plausible-style messages. ``now``:
    the server's clock (naive is UTC)."""
    now = now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC)
    if not isinstance(body, dict):
        raise QueryError("Invalid request: the body must be a JSON object.")
    unknown = set(body) - KEYS
    if unknown:
        raise QueryError(f"Invalid request: unknown key(s) {', '.join(sorted(unknown))}.")
    for key in ("site_id", "metrics", "date_range"):
        if key not in body:
            raise QueryError(f"Invalid request: {key} is required.")
    if not isinstance(body["site_id"], str) or not body["site_id"]:
        raise QueryError("Invalid site_id: a string is required.")
    metrics = body["metrics"]
    if not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics):
        raise QueryError("Invalid metrics: a list of metric names is required.")
    dims = body.get("dimensions", [])
    if not isinstance(dims, list) or not all(isinstance(d, str) for d in dims):
        raise QueryError(f"Invalid dimensions '{dims}'.")
    filters = body.get("filters", [])
    if not isinstance(filters, list):
        raise QueryError("Invalid filters passed.")
    order_by = body.get("order_by")
    if order_by is not None and (not isinstance(order_by, list) or not all(
            isinstance(o, list) and len(o) == 2 and all(isinstance(x, str) for x in o)
            for o in order_by)):
        raise QueryError(f"Invalid order_by '{order_by}'.")
    include = body.get("include", {})
    if not isinstance(include, dict) or set(include) - INCLUDE or not all(
            isinstance(v, bool) for v in include.values()):
        raise QueryError(f"Invalid include '{include}': keys {', '.join(sorted(INCLUDE))}, "
                         "each true or false.")
    page = body.get("pagination", {})
    if not isinstance(page, dict) or set(page) - {"limit", "offset"} or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in page.values()):
        raise QueryError(f"Invalid pagination '{page}'.")
    limit, offset = page.get("limit", MAX_LIMIT), page.get("offset", 0)
    if not 1 <= limit <= MAX_LIMIT or not 0 <= offset <= MAX_OFFSET:
        raise QueryError(f"Invalid pagination: limit 1 to {MAX_LIMIT}, offset 0 to "
                         f"{MAX_OFFSET}.")

    first, last, t0, t1, echo = parse_date_range(body["date_range"], now, first_day)
    time = time_dimension(t0 or first, t1 or last)  # what `time` means for this range
    dims = [time if d == "time" else d for d in dims]
    order = [tuple(o) for o in order_by] if order_by else []
    order = [(time if k == "time" else k, v) for k, v in order]
    q = Query(first, last, tuple(metrics), tuple(dims), tuple(filters), tuple(order), limit,
              offset, t0, t1)
    validate(q)
    if include.get("time_labels"):
        t = next((d for d in dims if dimension(d).level == "time"), None)
        if t is None:
            raise QueryError("Invalid include.time_labels: requires a time dimension.")
        check_time_labels(t, first, last)  # before any query runs
    return Parsed(q, body["site_id"], echo, {k: bool(v) for k, v in include.items()}, include)


def _dimension_value(name: str, value: Any) -> Any:
    if name == "time:hour":
        return f"{pd.Timestamp(value):%Y-%m-%d %H:%M:%S}"
    if name.startswith("time:"):
        return f"{pd.Timestamp(value):%Y-%m-%d}"
    return None if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def metric_value(name: str, value: Any) -> int | float:
    """A raw value of the query layer in Plausible's unit: percentages for rates (bounce rate
    whole, conversion rate and percentage to two decimals), whole seconds, 0 for none."""
    if value is None or pd.isna(value):
        return 0
    unit = METRICS[name].unit
    if name == "bounce_rate":
        return int(round_half_up(float(value) * 100))
    if unit == "fraction":
        return round_half_up(float(value) * 100, 2)
    if unit == "seconds":
        return int(round_half_up(float(value)))
    if unit == "ratio":
        return round_half_up(float(value), 2)
    return int(value)


def response(p: Parsed, result: Result) -> dict[str, Any]:
    """Plausible's response body for the rows of ``p``'s query."""
    q = p.query
    df = result.rows
    results = []
    for row in df.itertuples(index=False, name=None):
        values = dict(zip(df.columns, row, strict=True))
        results.append({"metrics": [metric_value(m, values[m]) for m in q.metrics],
                        "dimensions": [_dimension_value(d, values[d]) for d in q.dimensions]})
    meta: dict[str, Any] = {}
    if p.include.get("imports"):
        meta["imports_included"] = False
        meta["imports_skip_reason"] = "no_imported_data"
        meta["imports_warning"] = "No imported data: this warehouse only has its own events."
    if p.include.get("time_labels"):
        t = next(d for d in q.dimensions if d.startswith("time:"))
        meta["time_labels"] = time_labels(t, q.start, q.end)
    if p.include.get("total_rows"):
        meta["total_rows"] = result.total_rows
    return {"results": results, "meta": meta, "query": {
        "site_id": p.site_id,
        "metrics": list(q.metrics),
        "date_range": p.date_range,
        "filters": thaw(q.filters),
        "dimensions": list(q.dimensions),
        "order_by": [list(o) for o in (q.order_by or default_order(q))],
        "include": p.given_include,
        "pagination": {"limit": q.limit, "offset": q.offset},
    }}
