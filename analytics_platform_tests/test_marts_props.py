"""A goal's or funnel step's ``prop`` with ``equals`` or ``min`` (CONTRACT §5, funnel_daily):
numbers are compared as numbers, whatever JSON or YAML spelling they have (a prop ``2.0``
equals ``equals: "2"``, ``50.0`` equals ``50``, ``7`` equals ``equals: 7.0``), text as text.

The rule lives in ``mart_logic.step_condition``, which the marts, the dashboard's goal and funnel
panels and the query layer's goal filter all run: a matrix of props against configured values
checks it against the oracle's own predicates below (plain Python), then a backfill checks
``goals_daily``, ``funnel_daily`` and the dashboard's queries over the warehouse."""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from analytics_platform.backfill import run_backfill
from analytics_platform.config import ConfigError, FunnelStep, load_goals
from analytics_platform.dashboard import queries as Q
from analytics_platform.lake import open_raw_lake
from analytics_platform.mart_logic import step_condition
from analytics_platform.query.warehouse import Warehouse

# --- the oracle: CONTRACT §5's rule, in Python ---------------------------------------------------

# "decimal text": ASCII digits, an optional sign, point and exponent (not "NaN", "inf", "1_000",
# " 15", which Python's float() or DuckDB's cast would take)
DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def configured_number(eq: Any) -> Decimal | None:
    """The value of a configured ``equals`` when it is a number or numeric text."""
    if is_number(eq):
        return Decimal(eq)
    if isinstance(eq, str) and DECIMAL.fullmatch(eq):
        return Decimal(eq)
    return None


def text(v: Any) -> str:
    return ("true" if v else "false") if isinstance(v, bool) else str(v)


def equals_matches(props: dict[str, Any], key: str, eq: Any) -> bool:
    """A JSON number against a number (or numeric text): integers exactly, other numbers as
    doubles; anything else as text."""
    if key not in props or props[key] is None:
        return False
    v = props[key]
    if is_number(v):
        n = configured_number(eq)
        if n is None:
            return False
        return n == v if isinstance(v, int) else float(n) == v
    return text(v) == text(eq)


def min_matches(props: dict[str, Any], key: str, least: float) -> bool:
    v = props.get(key)
    if is_number(v):
        return v >= least
    return isinstance(v, str) and DECIMAL.fullmatch(v) is not None and float(v) >= least


# --- the matrix ----------------------------------------------------------------------------------

# the JSON text of each prop value, as a record may carry it
VALUES = ['2', '2.0', '"2"', '"2.0"', '2.5', '-0.0', '0', '7', '7.0', '"7"', '50', '50.0', '"50"',
          '1e2', '100', 'true', 'false', '"true"', '"abc"', '9007199254740993',
          '9007199254740992', '18446744073709551615', '"NaN"', '"inf"', '" 15"', '"15"',
          '"1_000"', '15.5', '0.5', 'null']
EQUALS: list[Any] = ["2", 2, 2.0, "2.0", "2.00", "+2", 7.0, "7", 50, "50", "abc", True, False,
                     "true", 9007199254740993, "9007199254740992", "1e2", 100, 0, "-0",
                     18446744073709551615, 2.5, "2.5", "15", ".5", "1e400"]
MINS = [10, 2, 100, 15.5]


@pytest.fixture(scope="module")
def events() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE TABLE e (n INTEGER, event_type VARCHAR, page_path VARCHAR, "
                "props VARCHAR)")
    con.executemany("INSERT INTO e VALUES (?, 'custom', '/', ?)",
                    [[n, f'{{"name":"x","k":{v}}}'] for n, v in enumerate(VALUES)]
                    + [[len(VALUES), '{"name":"x"}']])  # the key absent
    return con


def matched(con: duckdb.DuckDBPyConnection, step: FunnelStep) -> set[str]:
    rows = con.execute(f"SELECT props FROM e WHERE {step_condition(step)}").fetchall()
    return {p for (p,) in rows}


@pytest.mark.parametrize("eq", EQUALS, ids=[f"{type(v).__name__}:{v}" for v in EQUALS])
def test_equals_compares_numbers_as_numbers_and_text_as_text(
        events: duckdb.DuckDBPyConnection, eq: Any) -> None:
    want = {p for (p,) in events.execute("SELECT props FROM e").fetchall()
            if equals_matches(json.loads(p), "k", eq)}
    assert matched(events, FunnelStep("s", "custom", prop="k", equals=eq)) == want


def test_the_reviewers_cases_match(events: duckdb.DuckDBPyConnection) -> None:
    """The review's cases, spelled out: 2.0 equals "2", 50.0 equals "50", 7 equals 7.0; a
    string prop is text ("2.0" is not "2")."""
    def values(eq: Any) -> set[str]:
        return {json.dumps(json.loads(p)["k"]) for p in matched(
            events, FunnelStep("s", "custom", prop="k", equals=eq))}

    assert values("2") == {"2", "2.0", '"2"'}
    assert values("50") == {"50", "50.0", '"50"'}
    assert values(7.0) == {"7", "7.0"}
    assert values(True) == {"true", '"true"'}


def test_decimal_text_past_what_a_decimal_holds_matches_no_number(
        events: duckdb.DuckDBPyConnection) -> None:
    """An exponent past Python's Decimal (it raised InvalidOperation): no JSON number is that."""
    for eq in ("1e99999999999999999999", "-1e-99999999999999999999"):
        assert matched(events, FunnelStep("s", "custom", prop="k", equals=eq)) == set()


@pytest.mark.parametrize("least", MINS)
def test_min_takes_numbers_and_decimal_text(events: duckdb.DuckDBPyConnection,
                                            least: float) -> None:
    """``min``: a JSON number, or a string of decimal text ("15" meets 10); "NaN", "inf",
    "1_000" and " 15" are not numbers (DuckDB's cast took them: "NaN" met every min)."""
    want = {p for (p,) in events.execute("SELECT props FROM e").fetchall()
            if min_matches(json.loads(p), "k", least)}
    assert matched(events, FunnelStep("s", "custom", prop="k", min=least)) == want


# --- the loader: what ``equals`` and ``min`` may be -------------------------------------------

@pytest.mark.parametrize(("value", "why"), [
    ("", "'equals' must be text, a number or true / false"),  # YAML null
    ("[1, 2]", "'equals' must be text, a number or true / false"),
    ("{a: 1}", "'equals' must be text, a number or true / false"),
    ("2026-03-01", "'equals' must be text, a number or true / false"),  # a YAML date
    (".nan", "'equals' must be a finite number"),
    (".inf", "'equals' must be a finite number"),
])
def test_a_goal_whose_equals_is_not_a_value_is_refused(tmp_path: Path, value: str,
                                                        why: str) -> None:
    path = tmp_path / "goals.yaml"
    path.write_text(f"goals:\n  - {{name: g, event_type: custom, prop: k, equals: {value}}}\n")
    with pytest.raises(ConfigError, match=re.escape(why)):
        load_goals(path)


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_a_min_that_is_not_finite_is_refused(tmp_path: Path, value: str) -> None:
    path = tmp_path / "goals.yaml"
    path.write_text(f"goals:\n  - {{name: g, event_type: custom, prop: k, min: {value}}}\n")
    with pytest.raises(ConfigError, match="'min' must be a finite number"):
        load_goals(path)


# --- the marts and the dashboard, end to end ---------------------------------------------------

DAY = date(2026, 3, 2)
UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/124.0.0.0 Safari/537.36")
GOALS_FILE = """\
goals:
  - {name: Two, event_type: custom, prop: qty, equals: "2"}
  - {name: Fifty, event_type: custom, prop: score, equals: 50}
  - {name: Seven, event_type: custom, prop: code, equals: 7.0}
  - {name: Ten or more, event_type: custom, prop: amount, min: 10}
"""
GOALS = {"Two": ("qty", "2"), "Fifty": ("score", 50), "Seven": ("code", 7.0)}
FUNNELS_FILE = """\
funnels:
  - name: two
    steps:
      - {event_type: page_view}
      - {event_type: custom, prop: qty, equals: "2"}
      - {event_type: custom, prop: code, equals: 7.0}
"""
# each session: a page view, then a custom event with these props (the JSON as sent)
PROPS = ['{"name":"a","qty":2.0,"score":50.0,"code":7}',
         '{"name":"b","qty":"2","score":"50","code":"7"}',
         '{"name":"c","qty":2,"score":50,"code":7.0,"amount":"15"}',
         '{"name":"d","qty":"2.0","score":"50.0","amount":"NaN"}',
         '{"name":"e","qty":3,"code":7,"amount":15}']


def record(n: int, k: int, ts: datetime, **extra: object) -> dict:
    iso = ts.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return {"event_type": "page_view", "event_id": f"00000000-0000-4000-8000-{n:06d}{k:06d}",
            "session_id": f"10000000-0000-4000-8000-{n:012d}",
            "visitor_id": f"20000000-0000-4000-8000-{n:012d}", "consent": True,
            "page_path": "/", "page_host": "www.site.example", "event_ts": iso,
            "ingest_ts": iso, "user_agent": UA, "schema_version": 1, **extra}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("marts-props")
    data = base / "data"
    raw = open_raw_lake(data / "raw")
    for n in range(len(PROPS)):
        t = datetime(DAY.year, DAY.month, DAY.day, 10, n, tzinfo=UTC)
        # the props' JSON exactly as PROPS spells it (7 and 7.0, "2" and 2)
        body = (json.dumps(record(n, 0, t)) + "\n" + json.dumps(record(
            n, 1, t + timedelta(seconds=5), event_type="custom", props="P"))
            .replace('"P"', PROPS[n]) + "\n")
        raw.write_records(t, gzip.compress(body.encode()), object_id=f"o{n}")
    (base / "goals.yaml").write_text(GOALS_FILE)
    (base / "funnels.yaml").write_text(FUNNELS_FILE)
    env = {"ANALYTICS_DATA_DIR": str(data), "ANALYTICS_GOALS_FILE": str(base / "goals.yaml"),
           "ANALYTICS_FUNNELS_FILE": str(base / "funnels.yaml")}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        mp.delenv("ANALYTICS_RAW_URL", raising=False)
        mp.delenv("ANALYTICS_LAKE_URL", raising=False)
        with dg.DagsterInstance.ephemeral() as instance:
            report = run_backfill(DAY, DAY, instance=instance, log=lambda _: None)
    assert report.success
    return {"data": data, "env": env}


def want_goals() -> dict[str, int]:
    props = [json.loads(p) for p in PROPS]
    want = {name: sum(equals_matches(p, key, eq) for p in props)
            for name, (key, eq) in GOALS.items()}
    want["Ten or more"] = sum(min_matches(p, "amount", 10) for p in props)
    # spelled out: 2.0, "2", 2 | 50.0, "50", 50 | 7, 7.0, 7 | "15", 15
    assert want == {"Two": 3, "Fifty": 3, "Seven": 3, "Ten or more": 2}
    return want


def want_funnel() -> list[int]:
    props = [json.loads(p) for p in PROPS]
    two = [p for p in props if equals_matches(p, "qty", "2")]
    return [len(props), len(two), sum(equals_matches(p, "code", 7.0) for p in two)]


def test_goals_daily_and_funnel_daily_follow_the_rule(world: dict[str, Any]) -> None:
    con = duckdb.connect(str(world["data"] / "warehouse.duckdb"), read_only=True)
    try:
        goals = dict(con.execute("SELECT goal, sum(conversions)::INT FROM goals_daily "
                                 "GROUP BY goal").fetchall())
        funnel = [n for (n,) in con.execute("SELECT sessions FROM funnel_daily WHERE funnel = "
                                            "'two' ORDER BY step").fetchall()]
    finally:
        con.close()
    assert goals == want_goals()
    assert funnel == want_funnel() == [5, 3, 2]


def test_the_dashboard_and_the_goal_filter_follow_the_rule(
        world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The dashboard's goal and funnel panels and the "completed goal" filter run the same
    condition (mart_logic.step_condition) over the warehouse."""
    for k, v in world["env"].items():
        monkeypatch.setenv(k, v)
    wh = Warehouse(world["data"] / "warehouse.duckdb")
    f = Q.Filters(DAY, DAY)
    goals = wh.df(*Q.goals(f)).groupby("goal").conversions.sum().to_dict()
    assert goals == want_goals()
    [(name, sql, params, setup)] = Q.funnels(f)
    assert name == "two"
    assert list(wh.df(sql, params, setup).sessions) == want_funnel()
    for goal, n in want_goals().items():
        assert Q.table(wh, Q.kpis(replace(f, goal=goal))).iloc[0].sessions == n, goal
