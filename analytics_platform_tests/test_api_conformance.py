"""Plausible's Stats API v2 request examples (rewritten as data/plausible_v2_examples.json)
against ``POST /api/v2/query`` served by uvicorn on 127.0.0.1: each answer is structurally
Plausible's, and its numbers are the oracle's, computed here with pandas from the lake's Parquet
files (sessions and session_events), never through the query layer.

No Plausible client package that speaks v2 exists on PyPI or npm (plausible-mcp, kctl-plausible
and airbyte-source-plausible call the v1 endpoints); the documented requests stand in for one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd
import pytest

from analytics_platform.api.app import create_app
from analytics_platform.api.keys import KeyStore, RateLimiter
from analytics_platform.api.openapi import document
from analytics_platform_tests.apidata import NOW, lake_table, post, serve, warehouse_dir

EXAMPLES = json.loads((Path(__file__).parent / "data" / "plausible_v2_examples.json")
                      .read_text())["examples"]
TODAY = NOW.date()
LAST_7D = (TODAY - timedelta(days=7), TODAY - timedelta(days=1))


def half_up(x: float, digits: int = 0) -> float:
    f = 10 ** digits
    return math.floor(x * f + 0.5) / f


class Lake:
    """The oracle's view of the lake: sessions, their events and each session's touch."""

    def __init__(self, data: Path) -> None:
        self.s = lake_table(data, "sessions")
        self.e = lake_table(data, "session_events")
        e = self.e.assign(not_pv=self.e.event_type != "page_view")
        touch = e.sort_values(["session_id", "not_pv", "ts", "event_id"]).drop_duplicates(
            "session_id").set_index("session_id")
        for col in ("utm_source", "utm_medium", "utm_campaign"):
            self.s[f"touch_{col}"] = self.s.session_id.map(touch[col])

    def sessions(self, first: date, last: date) -> pd.DataFrame:
        return self.s[(self.s.session_date >= first) & (self.s.session_date <= last)]

    def events(self, first: date, last: date) -> pd.DataFrame:
        return self.e[(self.e.session_date >= first) & (self.e.session_date <= last)]


def not_set(v: Any) -> str:
    return "(not set)" if v is None or (isinstance(v, float) and pd.isna(v)) or v == "" else v


def rows(groups: dict[tuple, list], n_dims: int, order: Callable | None = None) -> list[dict]:
    """Plausible's rows, by default the first metric descending then the dimensions."""
    out = [{"metrics": m, "dimensions": list(k)} for k, m in groups.items()]
    return sorted(out, key=order or (lambda r: (-r["metrics"][0], *r["dimensions"])))


def utm(lake: Lake) -> list[dict]:
    s = lake.sessions(*LAST_7D)
    ev = lake.events(*LAST_7D).groupby("session_id").size()
    groups: dict[tuple, list] = {}
    for key, g in s.groupby([s.touch_utm_medium.map(not_set), s.touch_utm_source.map(not_set)]):
        groups[key] = [g.visitor_key.nunique(), int(g.session_id.map(ev).sum()),
                       int(g.pageviews.sum())]
    return rows(groups, 2)


def goal_name(e: pd.DataFrame) -> pd.Series:
    custom = e.props.map(lambda p: json.loads(p).get("name") if isinstance(p, str) else None)
    return e.event_type.where(e.event_type != "custom", custom).where(
        e.event_type != "page_view", None)


def oracle(name: str, lake: Lake) -> list[dict]:
    first_day = lake.s.session_date.min()
    if name in ("aggregate",):
        return [{"metrics": [lake.sessions(*LAST_7D).visitor_key.nunique(),
                             len(lake.events(*LAST_7D))], "dimensions": []}]
    if name == "curl-example":
        return [{"metrics": [lake.sessions(*LAST_7D).visitor_key.nunique()], "dimensions": []}]
    if name == "custom-date-range":
        return [{"metrics": [lake.sessions(date(2026, 3, 2), date(2026, 3, 3))
                             .visitor_key.nunique()], "dimensions": []}]
    if name == "timeseries":
        s = lake.sessions(*LAST_7D)
        s = s[s.os.isin(["Linux", "Mac OS X"])]
        ev = lake.events(*LAST_7D).groupby("session_id").size()
        return rows({(d.isoformat(),): [g.visitor_key.nunique(), int(g.session_id.map(ev).sum())]
                     for d, g in s.groupby("session_date")}, 1,
                    lambda r: r["dimensions"])
    if name == "utm":
        return utm(lake)
    if name == "pagination":
        return utm(lake)[1:4]
    if name == "time-labels":
        s = lake.sessions(TODAY, TODAY)
        hour = pd.to_datetime(s.session_start).dt.floor("h").dt.strftime("%Y-%m-%d %H:%M:%S")
        return rows({(h,): [g.visitor_key.nunique()] for h, g in s.groupby(hour)}, 1,
                    lambda r: r["dimensions"])
    if name == "custom-properties":
        e = lake.events(*LAST_7D)
        variant = e.props.map(lambda p: (json.loads(p).get("variant") or "(none)")
                              if isinstance(p, str) else "(none)")
        groups = {(d.isoformat(), v): [g.visitor_key.nunique()]
                  for (d, v), g in e.groupby([e.session_date, variant])}
        out = rows(groups, 2, lambda r: r["dimensions"][1])
        out.reverse()  # event:props:variant descending…
        return sorted(out, key=lambda r: r["dimensions"][0])  # …within each day (stable)
    if name == "filtering-basics":
        e = lake.events(*LAST_7D)
        s = lake.s.set_index("session_id")
        campaign = e.session_id.map(s.touch_utm_campaign).fillna("")
        source = e.session_id.map(s.source)
        keep = (e.page_path.str.contains("/blog", regex=False)
                | e.page_path.str.contains("/pricing", regex=False)) & (
            (campaign != "Referral") | source.isin(["google", "bing"]))
        return [{"metrics": [e[keep].visitor_key.nunique()], "dimensions": []}]
    if name == "filtering-case-insensitive":
        e = lake.events(*LAST_7D)
        return [{"metrics": [e[e.page_path.str.lower().str.contains("blog")]
                             .visitor_key.nunique()], "dimensions": []}]
    if name == "behavioral-filters":
        e = lake.events(first_day, TODAY)
        pricing = set(e[e.page_path == "/pricing"].session_id)
        hits = e[(goal_name(e) == "form_submit") & e.session_id.isin(pricing)]
        return [{"metrics": [hits.visitor_key.nunique()], "dimensions": []}]
    if name == "imports":
        s = lake.sessions(first_day, TODAY)
        return rows({(k,): [g.visitor_key.nunique()] for k, g in s.groupby("source")}, 1)
    if name == "goal-conversions":
        e = lake.events(first_day, TODAY)
        total = lake.sessions(first_day, TODAY).visitor_key.nunique()
        goal = goal_name(e)
        groups = {(k,): [g.visitor_key.nunique(), len(g),
                         half_up(g.visitor_key.nunique() / total * 100, 2)]
                  for k, g in e[goal.notna()].groupby(goal[goal.notna()])}
        return rows(groups, 1)
    if name == "session-metrics":
        s = lake.sessions(date(2026, 3, 2), date(2026, 3, 4))
        s = s[s.source != "(direct)"]
        return [{"metrics": [len(s), int(s.pageviews.sum()),
                             half_up(s.pageviews.sum() / len(s), 2),
                             int(half_up(s.is_bounce.mean() * 100)),
                             int(half_up(s.duration_s.mean()))], "dimensions": []}]
    if name == "session-metrics-of-a-page":
        # visitors who had an event on a /pricing page; the session metrics of their visits
        e = lake.events(*LAST_7D)
        e = e[e.page_path.str.contains("/pricing", regex=False)]
        s = lake.sessions(*LAST_7D)
        s = s[s.session_id.isin(set(e.session_id))]
        source = e.session_id.map(s.set_index("session_id").source)
        return rows({(k,): [g.visitor_key.nunique(),
                            int(half_up(s[s.source == k].is_bounce.mean() * 100)),
                            int(half_up(s[s.source == k].duration_s.mean()))]
                     for k, g in e.groupby(source)}, 1)
    if name == "percentage-by-device":
        s = lake.sessions(date(2026, 3, 1), date(2026, 3, 31))
        total = s.visitor_key.nunique()
        return rows({(k,): [g.visitor_key.nunique(), half_up(g.visitor_key.nunique() / total
                                                              * 100, 2)]
                     for k, g in s.groupby(s.device_type.map(not_set))}, 1)
    raise AssertionError(f"no oracle for {name}")


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, Lake]:
    data = warehouse_dir()
    keys = KeyStore(tmp_path_factory.mktemp("keys") / "api_keys.json")
    _, secret = keys.create("conformance")
    app = create_app(data, keys, RateLimiter(per_hour=1e6, burst=1000), now=lambda: NOW)
    with serve(app) as url:
        yield url, secret, Lake(data)


@pytest.mark.parametrize("example", EXAMPLES, ids=[e["name"] for e in EXAMPLES])
def test_plausible_example(api: tuple[str, str, Lake], example: dict[str, Any]) -> None:
    url, key, lake = api
    status, body, _ = post(f"{url}/api/v2/query", example["query"], key)
    if example["expect"] == "error":
        assert status == 400, body
        assert set(body) == {"error"} and example["error"] in body["error"], body
        return
    assert status == 200, body
    jsonschema.validate(body, document()["components"]["schemas"]["QueryResult"])
    q = example["query"]
    assert set(body["query"]) == {"site_id", "metrics", "date_range", "filters", "dimensions",
                                  "order_by", "include", "pagination"}
    assert body["query"]["metrics"] == q["metrics"]
    assert body["query"]["dimensions"] == q.get("dimensions", [])
    assert body["query"]["filters"] == q.get("filters", [])
    for r in body["results"]:
        assert len(r["metrics"]) == len(q["metrics"])
        assert len(r["dimensions"]) == len(q.get("dimensions", []))
    want = oracle(example["name"], lake)
    assert want, "the oracle found nothing: the example would prove nothing"
    assert body["results"] == want
    include = q.get("include", {})
    if include.get("total_rows"):
        assert body["meta"]["total_rows"] == len(utm(lake))
    if include.get("time_labels"):
        assert body["meta"]["time_labels"] == [f"{TODAY} {h:02d}:00:00" for h in range(24)]
        assert {r["dimensions"][0] for r in body["results"]} <= set(body["meta"]["time_labels"])
    if include.get("imports"):
        assert body["meta"]["imports_included"] is False
    if q["date_range"] == "7d":
        assert body["query"]["date_range"] == [f"{LAST_7D[0]}T00:00:00+00:00",
                                               f"{LAST_7D[1]}T23:59:59+00:00"]
