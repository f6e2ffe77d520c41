"""Issue 19's marts (CONTRACT §5): devices_daily, goals_daily, journeys_daily, countries_daily,
outbound_daily, downloads_daily, not_found_daily, web_vitals_daily and engagement_daily, against
the independent oracle (oracle.py) on two simulated days plus hand-made sessions that sit on the
edges: screen widths at each breakpoint, reloads, long visits, paths taken by exactly k, by
fewer than k visitors, by one visitor k times, and by k visitors spread over two days; web
vitals on web.dev's thresholds, a browser that measures TTFB only, engaged time in two parts,
a 404 reached from the site, from another site and directly, a country known from CloudFront
and one known only from a later page view."""

from __future__ import annotations

import gzip
import json
import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from analytics_platform import settings, sql
from analytics_platform.backfill import run_backfill
from analytics_platform.config import ConfigError, Goal, load_funnels, load_goals
from analytics_platform.defs.marts.goals import goals_sql
from analytics_platform.lake import hour_of_partition_key, open_raw_lake
from analytics_platform.simulate import SimConfig, generate, write_traffic
from analytics_platform.simulate import model as m
from analytics_platform_tests import oracle as o

DAY1, DAY2 = date(2026, 3, 2), date(2026, 3, 3)
HOST = "www.brightpath.example"
UA = m.USER_AGENTS["desktop"][5]  # Firefox on Linux
K = 5  # the default threshold

GOALS_FILE = """\
goals:
  - {name: Booked a call, event_type: form_submit, prop: form, equals: book_call}
  - {name: Viewed pricing, event_type: page_view, page_path: /pricing}
  - {name: Read to the end, event_type: scroll_depth, prop: depth, min: 100}
  - {name: Any custom event, event_type: custom, prop: name}
  - {name: Opted in, event_type: custom, prop: opted_in, equals: true}
  - {name: Any CTA click, event_type: cta_click}
"""
# The same goals as the oracle's own predicates (not the pipeline's SQL).
GOALS = {
    "Booked a call": lambda e: e["event_type"] == "form_submit"
    and e["props"].get("form") == "book_call",
    "Viewed pricing": lambda e: e["event_type"] == "page_view" and e["page_path"] == "/pricing",
    "Read to the end": lambda e: e["event_type"] == "scroll_depth"
    and e["props"].get("depth", 0) >= 100,
    "Any custom event": lambda e: e["event_type"] == "custom" and "name" in e["props"],
    "Opted in": lambda e: e["event_type"] == "custom" and e["props"].get("opted_in") is True,
    "Any CTA click": lambda e: e["event_type"] == "cta_click",
}


class Writer:
    """Hand-made sessions: one object per session, in the raw hour of its first event."""

    def __init__(self, root: Path) -> None:
        self.lake = open_raw_lake(root)
        self.n = 0

    def uid(self) -> str:
        self.n += 1
        return f"00000000-0000-4000-9000-{self.n:012d}"

    def session(self, start: datetime, pages: list[str], visitor: str | None = None,
                width: int | None = 1920, extra: list[dict[str, Any]] | None = None,
                common: dict[str, Any] | None = None) -> str:
        sid, visitor = self.uid(), visitor or self.uid()
        records = []
        events = [{"event_type": "page_view", "page_path": p} for p in pages] + (extra or [])
        for i, ev in enumerate(events):
            t = start + timedelta(seconds=20 * i)
            r = {"event_id": self.uid(), "session_id": sid, "visitor_id": visitor,
                 "page_host": HOST, "event_ts": t.isoformat().replace("+00:00", "Z"),
                 "sent_ts": (t + timedelta(seconds=1)).isoformat().replace("+00:00", "Z"),
                 "ingest_ts": (t + timedelta(seconds=1, milliseconds=200)).isoformat().replace(
                     "+00:00", "Z"),
                 "schema_version": 1, "user_agent": UA, **(common or {}), **ev}
            if width is not None:
                r["screen_width"] = width
            records.append(json.dumps(r).encode())
        self.lake.write_records(start + timedelta(seconds=1),
                                gzip.compress(b"\n".join(records) + b"\n"), object_id=sid)
        return sid


def hand_made(root: Path) -> None:
    w = Writer(root)
    at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    # screen widths on every breakpoint, none and 0
    for i, width in enumerate([575, 576, 991, 992, 1439, 1440, 0, None]):
        w.session(at + timedelta(minutes=i), ["/"], width=width)
    # k visitors exactly: published; k − 1: not; one visitor k + 1 times: not
    for i in range(K):
        w.session(at + timedelta(minutes=10 + i), ["/k/entry", "/k/exactly"])
    for i in range(K - 1):
        w.session(at + timedelta(minutes=20 + i), ["/k/entry", "/k/fewer"])
    loyal = w.uid()
    for i in range(K + 1):
        w.session(at + timedelta(minutes=30 + i), ["/k/entry", "/k/one-visitor"], visitor=loyal)
    # k visitors over the two days, fewer on each: never published (a day is the unit)
    for i in range(3):
        w.session(at + timedelta(minutes=40 + i), ["/k/entry", "/k/split"])
        w.session(at + timedelta(days=1, minutes=40 + i), ["/k/entry", "/k/split"])
    # reloads count once; a visit of seven pages gives paths of 2 to 5; A → B → A stays
    for i in range(K):
        w.session(at + timedelta(minutes=50 + i), ["/r/a", "/r/a", "/r/b", "/r/b", "/r/c"])
        w.session(at + timedelta(minutes=60 + i), [f"/l/{n}" for n in range(1, 8)])
        w.session(at + timedelta(minutes=70 + i), ["/x/a", "/x/b", "/x/a"])
    issue19(w, at + timedelta(minutes=90))
    # a goal on a boolean prop: one session opts in, one does not
    for i, opted in enumerate((True, False)):
        w.session(at + timedelta(minutes=80 + i), ["/"], extra=[
            {"event_type": "custom", "page_path": "/", "props": {"name": "signup",
                                                                  "opted_in": opted}}])


def issue19(w: Writer, at: datetime) -> None:
    """Edges of the issue-19 marts, all on DAY1."""
    vitals = [{"lcp": 2500, "inp": 200, "cls": 0.1, "ttfb": 800},  # good: thresholds inclusive
              {"lcp": 2500.5, "inp": 201, "cls": 0.11, "ttfb": 800.1},  # none good
              {"ttfb": 100}]  # Safari: TTFB only
    w.session(at, ["/v/edge"], extra=[{"event_type": "web_vitals", "page_path": "/v/edge",
                                       "props": v} for v in vitals])
    w.session(at + timedelta(minutes=1), ["/o/page"], extra=[
        {"event_type": "outbound", "page_path": "/o/page", "props": {"host": "GitHub.COM"}},
        {"event_type": "download", "page_path": "/o/page", "props": {"ext": "PDF"}},
        {"event_type": "download", "page_path": "/o/page",
         "props": {"ext": "zip", "file": "/files/kit.zip"}}])
    w.session(at + timedelta(minutes=2), ["/links", "/gone"], extra=[
        {"event_type": "not_found", "page_path": "/gone", "props": {"from": "/links"}}])
    w.session(at + timedelta(minutes=3), ["/gone"], extra=[
        {"event_type": "not_found", "page_path": "/gone",
         "referrer": "https://www.Other.example:8443/x?y=1"},
        {"event_type": "not_found", "page_path": "/gone"}])
    # engaged time in two parts (the page hidden twice), and another session's
    w.session(at + timedelta(minutes=4), ["/e/page"], extra=[
        {"event_type": "engagement", "page_path": "/e/page", "props": {"seconds": 10}},
        {"event_type": "engagement", "page_path": "/e/page", "props": {"seconds": 5.5}}])
    w.session(at + timedelta(minutes=5), ["/e/page"], extra=[
        {"event_type": "engagement", "page_path": "/e/page", "props": {"seconds": 3}}])
    # the country from CloudFront; one known from the second page view only
    w.session(at + timedelta(minutes=6), ["/c/a"],
              common={"country": "CH", "country_source": "cloudfront"})
    w.session(at + timedelta(minutes=7), ["/c/a"], extra=[
        {"event_type": "page_view", "page_path": "/c/b", "country": "JP",
         "country_source": "time_zone"}])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("report-marts")
    data, raw = base / "data", base / "data" / "raw"
    write_traffic(generate(SimConfig(days=2, visitors_per_day=700, start=DAY1, seed=19)),
                  open_raw_lake(raw), progress=False)
    hand_made(raw)
    goals_file = base / "goals.yaml"
    goals_file.write_text(GOALS_FILE)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ANALYTICS_DATA_DIR", str(data))
        mp.setenv("ANALYTICS_GOALS_FILE", str(goals_file))
        mp.delenv("ANALYTICS_RAW_URL", raising=False)
        mp.delenv("ANALYTICS_JOURNEY_MIN_VISITORS", raising=False)
        with dg.DagsterInstance.ephemeral() as instance:
            report = run_backfill(DAY1, DAY2, instance=instance, log=lambda _: None)
    assert report.success
    phase = report.phases[0]
    orc = o.Oracle.for_simulation()
    orc.read_lake(raw, hour_of_partition_key(phase.first), hour_of_partition_key(phase.last))
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    yield {"data": data, "goals_file": goals_file, "sessions": orc.sessions({DAY1, DAY2}),
           "con": con}
    con.close()


def rows(con: duckdb.DuckDBPyConnection, query: str) -> list[dict[str, Any]]:
    cur = con.execute(query)
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def close(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def compare(got: dict, want: dict) -> None:
    assert set(got) == set(want), (sorted(set(got) ^ set(want), key=str)[:10])
    bad = [(key, col, got[key][col], v) for key, w in want.items() for col, v in w.items()
           if not close(got[key][col], v)]
    assert bad == []


# --- devices_daily ---------------------------------------------------------------------------

def test_devices_daily_matches_the_oracle(world: dict[str, Any]) -> None:
    got = {(r["date"], r["dimension"], r["value"]): r
           for r in rows(world["con"], "SELECT * FROM devices_daily")}
    want = o.devices(world["sessions"])
    compare(got, want)
    values = {(d, v) for (_, d, v) in got}
    assert {("screen_class", c) for c in ("mobile", "tablet", "laptop", "desktop",
                                           "(unknown)")} <= values
    assert {("device_type", "tablet"), ("browser", "Samsung Internet"), ("os", "iOS")} <= values


def test_screen_classes_break_where_the_contract_says() -> None:
    """devices_daily.sql over hand-made sessions, one per width either side of each
    breakpoint (the oracle's classes are checked against the same table)."""
    cases = {575: "mobile", 576: "tablet", 991: "tablet", 992: "laptop", 1439: "laptop",
             1440: "desktop", 20000: "desktop", 1: "mobile", 0: "(unknown)", None: "(unknown)"}
    con = duckdb.connect()
    con.execute("CREATE TABLE s (session_date DATE, visitor_key UBIGINT, pageviews INTEGER, "
                "duration_s DOUBLE, is_bounce BOOLEAN, converted BOOLEAN, device_type VARCHAR, "
                "browser VARCHAR, os VARCHAR, screen_width INTEGER)")
    devices = sql.load("marts/devices_daily")
    for width, expected in cases.items():
        con.execute("DELETE FROM s")
        con.execute("INSERT INTO s VALUES ('2026-03-02', 1, 1, 0, true, false, 'desktop', "
                    "'Firefox', 'Linux', $w)", {"w": width})
        got = con.execute(f"SELECT value FROM ({devices}) WHERE dimension = 'screen_class'"
                          ).fetchall()
        assert got == [(expected,)], width
        assert o.screen_class(width) == expected
    con.execute("DELETE FROM s")
    con.execute("INSERT INTO s VALUES ('2026-03-02', 1, 1, 0, true, false, NULL, NULL, NULL, "
                "NULL)")
    got = con.execute(f"SELECT dimension, value FROM ({devices})").fetchall()
    assert sorted(got) == [("browser", "(unknown)"), ("device_type", "(unknown)"),
                           ("os", "(unknown)"), ("screen_class", "(unknown)")]


# --- goals_daily -----------------------------------------------------------------------------

def test_goals_daily_matches_the_oracle(world: dict[str, Any]) -> None:
    got = {(r["date"], r["goal"], r["source"], r["medium"], r["campaign"]): r
           for r in rows(world["con"], "SELECT * FROM goals_daily")}
    want = o.goals(world["sessions"], GOALS)
    compare(got, want)
    total = {g: sum(w["conversions"] for k, w in want.items() if k[1] == g) for g in GOALS}
    assert all(total[g] > 0 for g in GOALS), total  # every kind of condition converts someone
    assert total["Opted in"] == 1  # true, not false
    # rows in the file's order of goals
    order = [r[0] for r in world["con"].execute(
        "SELECT goal FROM goals_daily WHERE date = $d", {"d": DAY1}).fetchall()]
    assert list(dict.fromkeys(order)) == list(GOALS)


def test_the_shipped_goals_convert_on_simulated_traffic(world: dict[str, Any]) -> None:
    """goals.yaml (what a new install has) over the world's sessions: every shipped goal has
    conversions, counted as the oracle counts them with its own reading of the same goals."""
    shipped = load_goals()
    assert [g.name for g in shipped] == ["Booked a call", 'Clicked "Book a call"',
                                         "Sent the contact form", "Viewed pricing",
                                         "Played a video"]
    predicates = {
        "Booked a call": GOALS["Booked a call"],
        'Clicked "Book a call"': lambda e: e["event_type"] == "cta_click"
        and e["props"].get("cta") == "book_call",
        "Sent the contact form": lambda e: e["event_type"] == "form_submit"
        and e["props"].get("form") == "contact",
        "Viewed pricing": GOALS["Viewed pricing"],
        "Played a video": lambda e: e["event_type"] == "custom"
        and e["props"].get("name") == "video_play",
    }
    lake = world["data"] / "lake"
    con = duckdb.connect()
    con.execute(f"CREATE VIEW s AS SELECT * FROM read_parquet('{lake}/sessions/*/*.parquet')")
    con.execute("CREATE VIEW e AS SELECT * FROM read_parquet("
                f"'{lake}/session_events/*/*.parquet')")
    got = {(r["date"], r["goal"], r["source"], r["medium"], r["campaign"]): r
           for r in rows(con, goals_sql(shipped))}
    want = o.goals(world["sessions"], predicates)
    compare(got, want)
    assert all(sum(w["conversions"] for k, w in want.items() if k[1] == g) > 0
               for g in predicates)


@pytest.mark.parametrize(("text", "message"), [
    ("funnels: []", "expected a top-level 'goals:' list"),
    ("goals: []", "expected a top-level 'goals:' list"),
    ("goals: [{event_type: page_view}]", "goal #1: needs a 'name'"),
    ("goals: [{name: a, event_type: click}]", "goal #1 (a): event_type must be one of"),
    ("goals: [{name: a, event_type: cta_click}, {name: a, event_type: cta_click}]",
     "goal #2: the name 'a' is used twice"),
    ("goals: [{name: a, event_type: scroll_depth, min: 50}]", "'min' and 'equals' need a 'prop'"),
    ("goals: [{name: a, event_type: scroll_depth, prop: depth, min: lots}]",
     "'min' must be a number"),
    ("goals: [{name: a, event_type: page_view, page: /x}]", "unknown keys ['page']"),
    ("goals: [{name: a, event_type: page_view, page_path: 7}]", "'page_path' must be a path"),
    ("goals: [oops", "cannot read goals"),
])
def test_a_bad_goals_file_is_refused_with_where_and_why(tmp_path: Path, text: str,
                                                        message: str) -> None:
    f = tmp_path / "goals.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=None) as err:
        load_goals(f)
    assert message in str(err.value) and str(f) in str(err.value)


def test_goals_and_funnel_steps_share_their_keys(tmp_path: Path) -> None:
    f = tmp_path / "goals.yaml"
    f.write_text("goals:\n  - {name: Deep read, event_type: scroll_depth, prop: depth, "
                 "min: 75}\n  - {name: Pricing, event_type: page_view, page_path: /pricing}\n")
    assert load_goals(f) == [
        Goal("Deep read", "scroll_depth", prop="depth", min=75),
        Goal("Pricing", "page_view", page_path="/pricing")]
    assert load_funnels()[0].steps[1].min == 50  # the shared parser still reads the funnels


# --- journeys_daily --------------------------------------------------------------------------

def journeys_got(con: duckdb.DuckDBPyConnection) -> dict[tuple[date, tuple[str, ...]],
                                                         tuple[int, int]]:
    return {(r["date"], tuple(r["path"])): (r["sessions"], r["visitors"])
            for r in rows(con, "SELECT * FROM journeys_daily")}


def test_journeys_daily_matches_the_oracle(world: dict[str, Any]) -> None:
    got = journeys_got(world["con"])
    assert got == o.journeys(world["sessions"], K)
    assert len(got) > 30
    for r in rows(world["con"], "SELECT * FROM journeys_daily"):
        assert r["entry_page"] == r["path"][0] and r["steps"] == len(r["path"])


def test_journeys_follow_the_definition(world: dict[str, Any]) -> None:
    got = journeys_got(world["con"])
    paths = {p for (_, p) in got}
    assert got[(DAY1, ("/k/entry", "/k/exactly"))] == (K, K)  # exactly k visitors
    assert ("/r/a", "/r/b", "/r/c") in paths and ("/r/a", "/r/a") not in paths  # reloads
    assert ("/x/a", "/x/b", "/x/a") in paths  # a page seen again later is a step
    long = sorted(p for p in paths if p[0] == "/l/1")
    assert long == [tuple(f"/l/{n}" for n in range(1, j + 1)) for j in range(2, 6)]
    assert max(len(p) for p in paths) == 5 and min(len(p) for p in paths) == 2


def test_no_published_journey_can_single_a_visitor_out(world: dict[str, Any]) -> None:
    """Every row covers at least k distinct visitors; the paths under k are absent, also the
    one a single visitor took k + 1 times and the one k visitors took over two days (fewer on
    each); and every published path's prefix is published with at least as many sessions."""
    con = world["con"]
    assert con.execute("SELECT count(*) FROM journeys_daily WHERE visitors < $k OR "
                       "sessions < $k", {"k": K}).fetchall() == [(0,)]
    got = journeys_got(con)
    paths = {p for (_, p) in got}
    for hidden in ("/k/fewer", "/k/one-visitor", "/k/split"):
        assert ("/k/entry", hidden) not in paths
    everything = o.journeys(world["sessions"], 1)  # what an unthresholded table would show
    assert everything[(DAY1, ("/k/entry", "/k/one-visitor"))] == (K + 1, 1)
    assert everything[(DAY1, ("/k/entry", "/k/split"))] == (3, 3)
    assert len(everything) > 3 * len(got)  # the long tail a small site must not show
    for (day, path), (n, v) in got.items():
        if len(path) > 2:
            pn, pv = got[(day, path[:-1])]
            assert pn >= n and pv >= v


def test_the_marts_checks_pass_and_can_fail(world: dict[str, Any],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The daily job's checks pass on the world; each check's statement, given a partition
    that breaks it, returns the offending rows (so a pass means something)."""
    from analytics_platform.definitions import defs

    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(world["data"]))
    monkeypatch.setenv("ANALYTICS_GOALS_FILE", str(world["goals_file"]))
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs().resolve_job_def("daily_job").execute_in_process(
            instance=instance, tags={"dagster/asset_partition_range_start": str(DAY1),
                                     "dagster/asset_partition_range_end": str(DAY2)})
    assert result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    for name in ("devices_daily_reconcile", "goals_daily_reconcile",
                 "journeys_daily_min_visitors", "journeys_daily_consistent",
                 "countries_daily_reconcile", "outbound_daily_reconcile",
                 "downloads_daily_reconcile", "not_found_daily_reconcile",
                 "web_vitals_daily_bounds", "engagement_daily_reconcile"):
        assert evaluations[name].passed, evaluations[name].metadata
        assert evaluations[name].metadata["days_checked"].value == 2

    lake = world["data"] / "lake"
    con = duckdb.connect()
    con.execute(f"CREATE VIEW s AS SELECT * FROM read_parquet('{lake}/sessions/date={DAY1}/*')")
    con.execute("CREATE VIEW e AS SELECT * FROM read_parquet("
                f"'{lake}/session_events/date={DAY1}/*')")

    def bad(check: str, mart: str, **params: Any) -> list[tuple]:
        def used(query: str) -> dict[str, Any]:
            return {k: v for k, v in params.items() if f"${k}" in query}

        con.execute(f"CREATE OR REPLACE TEMP TABLE m AS {mart}", used(mart))
        query = sql.load(f"marts/{check}")
        return con.execute(query, used(query)).fetchall()

    devices = sql.load("marts/devices_daily")
    assert bad("devices_daily_reconcile", devices) == []
    assert bad("devices_daily_reconcile",
               f"SELECT * FROM ({devices}) WHERE NOT (dimension = 'os' AND value = 'iOS')")
    journeys = sql.load("marts/journeys_daily")
    assert bad("journeys_daily_min_visitors", journeys, min_visitors=K) == []
    # a table built without the threshold breaks the privacy check
    assert bad("journeys_daily_min_visitors", journeys.replace("$min_visitors", "1"),
               min_visitors=K)
    assert bad("journeys_daily_consistent", journeys, min_visitors=K) == []
    assert bad("journeys_daily_consistent",
               f"SELECT * FROM ({journeys}) WHERE steps <> 3", min_visitors=K)
    # issue 19's marts: each check passes on the mart and fails on a mart missing a row
    for mart, check, drop in (
            ("countries_daily", "countries_daily_reconcile", "country = 'CH'"),
            ("outbound_daily", "outbound_daily_reconcile", "host = 'github.com'"),
            ("downloads_daily", "downloads_daily_reconcile", "ext = 'zip'"),
            ("not_found_daily", "not_found_daily_reconcile", "referrer = '/links'"),
            ("web_vitals_daily", "web_vitals_daily_bounds", "page_path = '/v/edge'"),
            ("engagement_daily", "engagement_daily_reconcile", "page_path = '/e/page'")):
        query = sql.load(f"marts/{mart}")
        assert bad(check, query) == [], mart
        assert bad(check, f"SELECT * FROM ({query}) WHERE NOT ({drop})"), mart
    vitals = sql.load("marts/web_vitals_daily")
    assert bad("web_vitals_daily_bounds",
               f"SELECT * REPLACE (lcp_good * 2 AS lcp_good) FROM ({vitals})")
    goals = goals_sql(load_goals(world["goals_file"]))
    assert bad("goals_daily_reconcile", goals) == []
    assert bad("goals_daily_reconcile",
               f"SELECT * FROM ({goals}) WHERE source <> '(direct)'")


def test_k_is_a_setting(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """ANALYTICS_JOURNEY_MIN_VISITORS is the pipeline resource's k, and k decides what
    journeys_daily publishes (runs last: it rewrites the table with k = 3)."""
    from analytics_platform.defs.marts.journeys import journeys_daily
    from analytics_platform.resources import LakeResource, PipelineSettings

    monkeypatch.setenv("ANALYTICS_JOURNEY_MIN_VISITORS", "0")
    with pytest.raises(ValueError, match="1 or more"):
        settings.journey_min_visitors()
    monkeypatch.setenv("ANALYTICS_JOURNEY_MIN_VISITORS", "3")
    pipeline = PipelineSettings()
    assert pipeline.journey_min_visitors == 3
    resources = {"lake": LakeResource(data_dir=str(world["data"])), "pipeline": pipeline}
    with dg.DagsterInstance.ephemeral() as instance:
        for day in (DAY1, DAY2):
            result = dg.materialize([journeys_daily], partition_key=str(day),
                                    resources=resources, instance=instance)
            assert result.success
        bad = dg.materialize([journeys_daily], partition_key=str(DAY1), instance=instance,
                             resources={**resources, "pipeline": PipelineSettings(
                                 journey_min_visitors=0)}, raise_on_error=False)
        assert not bad.success  # k = 0 would publish everything: refused
    con = duckdb.connect()  # the files themselves (the module's warehouse connection caches)
    con.execute("CREATE VIEW journeys_daily AS SELECT * FROM read_parquet("
                f"'{world['data']}/lake/journeys_daily/*/*.parquet')")
    got = journeys_got(con)
    assert got == o.journeys(world["sessions"], 3)
    assert (DAY1, ("/k/entry", "/k/split")) in got and (DAY1, ("/k/entry", "/k/fewer")) in got
    assert (DAY1, ("/k/entry", "/k/one-visitor")) not in got  # one visitor, however often


# --- issue 19: countries, outbound links, downloads, 404s, web vitals, engaged time ----------

def test_countries_daily_matches_the_oracle(world: dict[str, Any]) -> None:
    got = {(r["date"], r["country"], r["country_source"]): r
           for r in rows(world["con"], "SELECT * FROM countries_daily")}
    compare(got, o.countries(world["sessions"]))
    assert got[(DAY1, "CH", "cloudfront")]["sessions"] == 1
    assert (DAY1, "JP", "time_zone") in got  # from the session's second page view
    # the simulated time zones: a spread of countries, some sessions without one (Etc/UTC)
    sim = {c for (_, c, src) in got if src == "time_zone"}
    assert {"US", "GB", "DE", "IN", "CH"} <= sim and len(sim) >= 15
    assert any(c == "(unknown)" for (_, c, _) in got)


def test_outbound_and_downloads_match_the_oracle(world: dict[str, Any]) -> None:
    got = {(r["date"], r["host"]): r for r in rows(world["con"], "SELECT * FROM outbound_daily")}
    compare(got, o.outbound(world["sessions"]))
    assert got[(DAY1, "github.com")]["clicks"] > 1  # simulated + the hand-made upper case
    got = {(r["date"], r["ext"], r["file"]): r
           for r in rows(world["con"], "SELECT * FROM downloads_daily")}
    compare(got, o.downloads(world["sessions"]))
    assert got[(DAY1, "pdf", "(unknown)")]["downloads"] == 1
    assert got[(DAY1, "zip", "/files/kit.zip")]["downloads"] == 1


def test_not_found_daily_matches_the_oracle(world: dict[str, Any]) -> None:
    got = {(r["date"], r["page_path"], r["referrer"]): r
           for r in rows(world["con"], "SELECT * FROM not_found_daily")}
    compare(got, o.not_found(world["sessions"]))
    for ref in ("/links", "other.example", "(direct)"):
        assert got[(DAY1, "/gone", ref)]["hits"] == 1
    assert {p for (_, p, _) in got} >= {"/servcies", "/pricing/enterprise"}


def test_web_vitals_daily_matches_the_oracle(world: dict[str, Any]) -> None:
    got = {(r["date"], r["page_path"]): r
           for r in rows(world["con"], "SELECT * FROM web_vitals_daily")}
    compare(got, o.web_vitals(world["sessions"]))
    edge = got[(DAY1, "/v/edge")]
    assert (edge["samples"], edge["lcp_samples"], edge["ttfb_samples"]) == (3, 2, 3)
    assert edge["lcp_good"] == edge["inp_good"] == edge["cls_good"] == 0.5
    assert edge["lcp_p75"] == pytest.approx(2500.375)
    # Safari's visitors measure TTFB only: across the site fewer LCP than TTFB samples
    assert sum(r["lcp_samples"] for r in got.values()) < sum(r["ttfb_samples"]
                                                             for r in got.values())


def test_engagement_daily_matches_the_oracle(world: dict[str, Any]) -> None:
    got = {(r["date"], r["page_path"]): r
           for r in rows(world["con"], "SELECT * FROM engagement_daily")}
    compare(got, o.engagement(world["sessions"]))
    page = got[(DAY1, "/e/page")]
    assert (page["sessions"], page["total_engaged_s"], page["median_engaged_s"]) == (2, 18.5,
                                                                                      9.25)
