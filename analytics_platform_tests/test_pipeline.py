"""The whole pipeline against an independent oracle (oracle.py), on two simulated days plus
hand-made trouble: malformed records, a truncated gzip object, concatenated records, bots,
e-mail and IP addresses. Every column of `sessions` and every mart must match."""

from __future__ import annotations

import gzip
import json
import math
import re
import shutil
import threading
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from analytics_platform.backfill import run_backfill
from analytics_platform.lake import hour_of_partition_key, object_key, open_raw_lake
from analytics_platform.simulate import SimConfig, generate, write_traffic
from analytics_platform.storage import FIRST_COPY_ORDER
from analytics_platform_tests import oracle as o

DAY1, DAY2 = date(2026, 3, 2), date(2026, 3, 3)  # a Monday and a Tuesday
HOST = "www.brightpath.example"


def rec(**fields: Any) -> dict[str, Any]:
    base = {
        "event_type": "page_view", "page_path": "/", "page_host": HOST,
        "event_ts": "2026-03-02T10:00:00.000Z", "sent_ts": "2026-03-02T10:00:01.000Z",
        "ingest_ts": "2026-03-02T10:00:01.200Z", "schema_version": 1,
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def uid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def line(r: dict[str, Any]) -> bytes:
    return json.dumps(r, ensure_ascii=False).encode()


def hand_made_objects(root: Path) -> dict[str, Any]:
    """Write the troublesome objects; return what the test expects of them."""
    lake = open_raw_lake(root)
    at = datetime(2026, 3, 2, 10, 0, 1, tzinfo=UTC)
    # 1. malformed records around a good one: the good one survives
    good = rec(event_id=uid(1), session_id=uid(101), visitor_id=uid(201),
               page_path="/contact?email=jane.doe@example.org#form",
               referrer="http://192.168.0.7/admin?user=bob@example.com",
               utm_source=" Newsletter ", utm_medium="EMAIL", utm_term="jane.doe@example.org",
               props={"note": "call 10.1.2.3 or mail joe@example.net"})
    bad_lines = [
        b'{"event_type": "page_view", "event_id": ',
        line(rec(session_id=uid(102), event_id=None)),
        line(rec(event_id=uid(2), session_id=uid(102), screen_width="1920")),
        line(rec(event_id=uid(3), session_id=uid(102), event_type="click")),
        b'\xff\xfe{"event_type": "page_view"}',
        line(rec(event_id=uid(4), session_id=uid(102), ingest_ts=None)),
        line(rec(event_id=uid(5), session_id=uid(102), schema_version=2)),
    ]
    body = b"\n".join([bad_lines[0], line(good), *bad_lines[1:]]) + b"\n"
    k1 = lake.write_records(at, gzip.compress(body), object_id="malformed").key
    # 2. an object cut short (its gzip trailer and last byte gone): its one record decompresses
    #    whole and is kept; the unreadable rest is one corrupt_object row
    k2 = lake.write_records(at + timedelta(seconds=5),
                            gzip.compress(line(rec(event_id=uid(6), session_id=uid(103))))[:-9],
                            object_id="truncated").key
    # 3. records written back to back with no newline (a converting session)
    conc = [
        rec(event_id=uid(7), session_id=uid(104), visitor_id=uid(204), page_path="/services",
            referrer="https://news.ycombinator.com/item?id=1",
            event_ts="2026-03-02T10:10:00.000Z", sent_ts="2026-03-02T10:10:00.500Z",
            ingest_ts="2026-03-02T10:10:01.000Z"),
        rec(event_id=uid(8), session_id=uid(104), visitor_id=uid(204), page_path="/services",
            event_type="scroll_depth", props={"depth": 75},
            event_ts="2026-03-02T10:10:20.000Z", sent_ts="2026-03-02T10:10:20.500Z",
            ingest_ts="2026-03-02T10:10:21.000Z"),
        rec(event_id=uid(9), session_id=uid(104), visitor_id=uid(204), page_path="/services",
            event_type="cta_click", props={"cta": "book_call"},
            event_ts="2026-03-02T10:10:40.000Z", sent_ts="2026-03-02T10:10:40.500Z",
            ingest_ts="2026-03-02T10:10:41.000Z"),
    ]
    k3 = lake.write_records(at + timedelta(minutes=10),
                            gzip.compress(b"".join(line(r) for r in conc)),
                            object_id="concatenated").key
    # 4. a bot with a user agent the simulator never uses, and one with none at all
    bots = [rec(event_id=uid(10), session_id=uid(105), user_agent="Wget/1.21.4"),
            rec(event_id=uid(11), session_id=uid(106), user_agent=None)]
    lake.write_records(at + timedelta(minutes=20),
                       gzip.compress(b"\n".join(line(r) for r in bots) + b"\n"),
                       object_id="bots")
    return {
        "quarantine": sorted([
            (k1, "invalid_json"), (k1, "missing:event_id"), (k1, "wrong_type:screen_width"),
            (k1, "unknown_event_type:event_type"), (k1, "invalid_json:utf8"),
            (k1, "missing:ingest_ts"), (k1, "out_of_range:schema_version"),
            (k2, "corrupt_object"),
        ]),
        "concatenated_key": k3,
        "extra_bots": {"Wget/1.21.4"},
        "attribution": {
            ("https://news.ycombinator.com/item?id=1", None): ("hacker news", "social", "(none)"),
        },
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    data = tmp_path_factory.mktemp("pipeline") / "data"
    raw = data / "raw"
    traffic = generate(SimConfig(days=2, visitors_per_day=700, start=DAY1, seed=5))
    write_traffic(traffic, open_raw_lake(raw), progress=False)
    expected = hand_made_objects(raw)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ANALYTICS_DATA_DIR", str(data))
        mp.delenv("ANALYTICS_RAW_URL", raising=False)
        with dg.DagsterInstance.ephemeral() as instance:
            report = run_backfill(DAY1, DAY2, instance=instance, log=lambda _: None)
    # The oracle reads the raw hours the backfill covers (the late-arrival horizon of DAY2).
    events_phase = report.phases[0]
    orc = o.Oracle.for_simulation(expected["extra_bots"], expected["attribution"])
    orc.read_lake(raw, hour_of_partition_key(events_phase.first),
                  hour_of_partition_key(events_phase.last))
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    yield {"data": data, "raw": raw, "report": report, "oracle": orc, "expected": expected,
           "sessions": orc.sessions({DAY1, DAY2}), "con": con}
    con.close()


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    cur = con.execute(sql)
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def close(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)
    return a == b


def test_the_data_set_has_the_trouble_it_claims(world: dict[str, Any]) -> None:
    sessions = world["sessions"]
    assert len(sessions) > 1000
    assert any(s["session_start"].date() != s["session_end"].date() for s in sessions.values())
    assert any(s["session_start"].hour != s["session_end"].hour for s in sessions.values())
    late = [e for e in world["oracle"].events.values()
            if e["_order"][0] - e["ts"] > timedelta(hours=1)]
    assert late, "late events (1–3 h)"
    assert world["oracle"].bots > 0


def test_the_backfill_publishes_the_warehouse_once(world: dict[str, Any]) -> None:
    """The backfill publishes once, after its three runs, not after each run or each of their
    steps (storage.publish_once): one warehouse file for the backfill, its publish timed in the
    report and counted in its seconds."""
    report = world["report"]
    made = {f.stem for f in (world["data"] / ".warehouse").iterdir()
            if f.suffix in (".duckdb", ".retired")}
    assert len(report.phases) == 3 and all(p.success for p in report.phases)
    assert len(made) == 1
    assert report.publish_seconds > 0
    assert math.isclose(report.seconds,
                        sum(p.seconds for p in report.phases) + report.publish_seconds)


def test_quarantine_has_every_bad_record_with_its_reason(world: dict[str, Any]) -> None:
    quarantine = rows(world["con"], "SELECT * FROM quarantine")
    got = sorted((r["raw_key"], r["reason"]) for r in quarantine)
    assert got == world["expected"]["quarantine"]
    assert sorted(world["oracle"].quarantine) == got
    texts = [r["raw_text"] for r in rows(world["con"], "SELECT raw_text FROM quarantine")]
    assert all(t is not None and len(t) <= 4096 for t in texts)


def test_bots_are_counted_and_dropped(world: dict[str, Any]) -> None:
    assert world["report"].phases[0].metadata["run_bot_events"] == world["oracle"].bots
    assert world["con"].execute(
        "SELECT count(*) FROM events WHERE session_id IN ($a, $b)",
        {"a": uid(105), "b": uid(106)}).fetchall()[0][0] == 0


def test_events_view_holds_each_human_event_once(world: dict[str, Any]) -> None:
    got = {r["event_id"]: r for r in rows(world["con"], "SELECT * FROM events")}
    want = world["oracle"].events
    assert set(got) == set(want)
    for eid, w in want.items():
        g = got[eid]
        assert g["ts"] == o.utc(w["ts"]), eid
        assert (g["event_type"], g["session_id"], g["visitor_id"], g["page_path"]) == (
            w["event_type"], w["session_id"], w["visitor_id"], w["page_path"])


def test_event_files_are_sorted_and_name_the_record_each_row_came_from(
    world: dict[str, Any],
) -> None:
    """Each hour's file is in (ts, event_id) order, and every kept event's (raw_key, raw_pos)
    is the object and line the oracle read it from (the asset carries each row's object number
    through the sort and looks the key up afterwards: a wrong lookup or a lost order fails
    here)."""
    con = duckdb.connect()
    files = sorted(str(p) for p in (world["data"] / "lake" / "events").rglob("*.parquet"))
    assert len(files) > 24
    for f in files:
        order = con.execute("SELECT ts, event_id FROM read_parquet($f)", {"f": f}).fetchall()
        assert order == sorted(order), f
    kept = {eid: (key, pos) for eid, key, pos in con.execute(
        "SELECT event_id, raw_key, raw_pos FROM read_parquet($f) QUALIFY row_number() OVER ("
        f"PARTITION BY event_id ORDER BY {FIRST_COPY_ORDER}) = 1",
        {"f": files}).fetchall()}
    assert kept == {eid: e["_order"][2:] for eid, e in world["oracle"].events.items()}
    assert len({key for key, _ in kept.values()}) > 24


SESSION_COLUMNS = ["session_start", "session_end", "session_date", "duration_s", "visitor_id",
                   "visitor_key", "events", "pageviews", "entry_page", "exit_page",
                   "max_scroll_depth", "max_time_on_page", "interactions", "is_bounce",
                   "converted", "source", "medium", "campaign", "experiment", "variant"]


def test_every_column_of_sessions(world: dict[str, Any]) -> None:
    got = {r["session_id"]: r for r in rows(world["con"], "SELECT * FROM sessions")}
    want = world["sessions"]
    assert set(got) == set(want)
    mismatches = []
    for sid, w in want.items():
        for col in SESSION_COLUMNS:
            expected = w[col]
            if isinstance(expected, datetime):
                expected = o.utc(expected)
            if not close(got[sid][col], expected):
                mismatches.append((sid, col, got[sid][col], expected))
    assert mismatches == []
    for r in got.values():
        assert r["device_type"] in {"desktop", "mobile", "tablet"} and r["browser"]


def test_hand_made_sessions(world: dict[str, Any]) -> None:
    s = {r["session_id"]: r for r in rows(world["con"], "SELECT * FROM sessions")}
    concat = s[uid(104)]  # three records with no newline between them, all kept
    assert (concat["events"], concat["converted"], concat["max_scroll_depth"]) == (3, True, 75)
    assert (concat["source"], concat["medium"]) == ("hacker news", "social")
    messy = s[uid(101)]  # the good record among malformed ones
    assert (messy["source"], messy["medium"], messy["campaign"]) == ("newsletter", "email",
                                                                     "(none)")
    assert messy["entry_page"] == "/contact"


def test_kpis_daily(world: dict[str, Any]) -> None:
    want = o.kpis(world["sessions"])
    got = {r["date"]: r for r in rows(world["con"], "SELECT * FROM kpis_daily")}
    assert set(got) == set(want) == {DAY1, DAY2}
    for d, w in want.items():
        for k, v in w.items():
            assert close(got[d][k], v), (d, k, got[d][k], v)


def test_pages_daily(world: dict[str, Any]) -> None:
    want = o.pages(world["sessions"])
    got = {(r["date"], r["page_path"]): r for r in rows(world["con"], "SELECT * FROM pages_daily")}
    assert set(got) == set(want)
    for key, w in want.items():
        for k, v in w.items():
            assert close(got[key][k], v), (key, k, got[key][k], v)


def test_attribution_daily(world: dict[str, Any]) -> None:
    want = o.attribution_daily(world["sessions"])
    got = {(r["date"], r["source"], r["medium"], r["campaign"]): r
           for r in rows(world["con"], "SELECT * FROM attribution_daily")}
    assert set(got) == set(want)
    for key, w in want.items():
        for k, v in w.items():
            assert close(got[key][k], v), (key, k)
    sources = {k[1] for k in want}
    assert {"(direct)", "google", "linkedin", "twitter", "someblog.dev", "newsletter"} <= sources


def test_funnel_daily(world: dict[str, Any]) -> None:
    want = o.funnel(world["sessions"])
    got = rows(world["con"], "SELECT * FROM funnel_daily WHERE funnel = 'book_call'")
    assert {(r["date"], r["step"]): r["sessions"] for r in got} == want
    for r in got:
        start = want[(r["date"], 1)]
        prev = want[(r["date"], max(1, r["step"] - 1))]
        assert close(r["pct_of_start"], r["sessions"] / start)
        assert close(r["pct_of_previous"], r["sessions"] / prev)
    assert [r["step_name"] for r in got if r["date"] == DAY1][:2] == ["Viewed a page",
                                                                     "Read half a page"]


def test_experiments(world: dict[str, Any]) -> None:
    want = o.experiments(world["sessions"])
    got = {(r["experiment"], r["variant"]): r for r in rows(world["con"],
                                                            "SELECT * FROM experiments")}
    assert set(got) == set(want)
    for key, w in want.items():
        for k, v in w.items():
            assert close(got[key][k], v), (key, k, got[key][k], v)


def test_attribution_touch(world: dict[str, Any]) -> None:
    want = o.attribution_touch(world["sessions"])
    got = {(r["source"], r["medium"], r["campaign"]):
           (r["first_touch_conversions"], r["last_touch_conversions"])
           for r in rows(world["con"], "SELECT * FROM attribution_touch")}
    assert got == want


def test_cohort_retention(world: dict[str, Any]) -> None:
    want = o.cohorts(world["sessions"])
    got = rows(world["con"], "SELECT * FROM cohort_retention")
    assert {(r["cohort_week"], r["week_offset"]): (r["cohort_size"], r["visitors"])
            for r in got} == want
    assert all(close(r["retention"], r["visitors"] / r["cohort_size"]) for r in got)


EMAIL_OR_IP = re.compile(
    r"[A-Za-z0-9._%+\-]+(@|%40)[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"
    r"|(?<![0-9.])(\d{1,3}\.){3}\d{1,3}(?![0-9.])")


def test_no_email_or_ip_address_in_any_table(world: dict[str, Any]) -> None:
    con = world["con"]
    tables = [r[0] for r in con.execute("SELECT view_name FROM duckdb_views() "
                                        "WHERE NOT internal").fetchall()]
    assert {"events", "sessions", "quarantine", "kpis_daily", "pages_daily",
            "attribution_daily", "attribution_touch", "funnel_daily", "cohort_retention",
            "experiments"} <= set(tables)
    found = Counter()
    for t in tables:
        cur = con.execute(f"SELECT * FROM {t}")
        for row in cur.fetchall():
            for v in row:
                if isinstance(v, str) and EMAIL_OR_IP.search(v):
                    found[(t, v[:80])] += 1
    assert not found, found.most_common(5)
    # and the raw data did have them
    raw_text = b"".join(gzip.decompress(p.read_bytes()) for p in world["raw"].rglob("*.gz")
                        if "truncated" not in p.name)
    assert b"@example.org" in raw_text and b"192.168.0.7" in raw_text


def test_views_and_files_hold_only_contract_columns(world: dict[str, Any]) -> None:
    """No partition folder name leaks in as a column (DuckDB reads `hour=…` and `date=…` as
    columns unless told not to): not in a view, not in a file the pipeline wrote, bookkeeping
    included."""
    leaked = {"hour", "date", "ts_date", "part"}
    con = world["con"]
    for view in ("events", "quarantine", "sessions", "session_events"):
        cols = {r[0] for r in con.execute(f"DESCRIBE {view}").fetchall()}
        assert not cols & leaked, (view, cols & leaked)
    lake = world["data"] / "lake"
    for table in ("events", "quarantine", "sessions", "session_events", "late_events"):
        files = sorted(lake.glob(f"{table}/*/*.parquet"))
        assert files, table
        for f in files:
            cols = {r[0] for r in duckdb.execute(
                "DESCRIBE SELECT * FROM read_parquet($f, hive_partitioning = false)",
                {"f": str(f)}).fetchall()}
            assert not cols & leaked, (str(f), cols & leaked)
    # and where a mart has a `date`, it is the session_date the contract names
    assert ("date", "DATE") in {(r[0], r[1]) for r in con.execute("DESCRIBE kpis_daily").fetchall()}


def test_lake_files_are_parquet_per_partition(world: dict[str, Any]) -> None:
    lake = world["data"] / "lake"
    assert sorted(p.name for p in (lake / "sessions").iterdir()) == [
        "_published", f"date={DAY1}", f"date={DAY2}"]
    assert all(p.name == "part.parquet" for p in (lake / "events").glob("*/*.parquet"))
    assert not list((lake / "_tmp").rglob("*.parquet"))
    assert object_key(datetime(2026, 3, 2, 10, tzinfo=UTC), "x").startswith(
        "year=2026/month=03/day=02/hour=10/")


def _marts_over_three_days(world: dict[str, Any], data: Path,
                           marts: list[dg.AssetsDefinition]) -> dg.ExecuteInProcessResult:
    """``marts`` over DAY1 … the day after DAY2 (no sessions start then) in one run, on a copy
    of the world's sessions in ``data``."""
    from analytics_platform.resources import LakeResource, PipelineSettings

    for table in ("sessions", "session_events"):
        shutil.copytree(world["data"] / "lake" / table, data / "lake" / table)
    with pytest.MonkeyPatch.context() as mp, dg.DagsterInstance.ephemeral() as instance:
        mp.setenv("ANALYTICS_DATA_DIR", str(data))
        return dg.materialize(
            marts, instance=instance, raise_on_error=False,
            resources={"lake": LakeResource(data_dir=str(data)), "pipeline": PipelineSettings()},
            tags={"dagster/asset_partition_range_start": str(DAY1),
                  "dagster/asset_partition_range_end": str(DAY2 + timedelta(days=1))})


def test_a_marts_days_on_two_workers_write_what_one_at_a_time_wrote(
        world: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 21: a daily mart writes its days DAY_WORKERS at a time, each on a cursor of its own
    (marts/assets.run_daily). The files, each day's row count and the checks' results are
    those of one day at a time."""
    from analytics_platform.defs.marts import assets as marts
    from analytics_platform.defs.marts.goals import goals_daily
    from analytics_platform.defs.marts.journeys import journeys_daily

    chosen = [marts.pages_daily, marts.devices_daily, goals_daily, journeys_daily]
    got = {}
    for workers in (1, 2):
        monkeypatch.setattr(marts, "DAY_WORKERS", workers)
        data = tmp_path / str(workers)
        result = _marts_over_three_days(world, data, chosen)
        assert result.success
        files = {str(p.relative_to(data / "lake")): p.read_bytes()
                 for p in sorted((data / "lake").glob("*/date=*/*.parquet"))}
        rows = {(e.asset_key.to_user_string(), e.partition):
                e.materialization.metadata["dagster/row_count"].value
                for e in result.get_asset_materialization_events()}
        checks = sorted((c.asset_key.to_user_string(), c.check_name, c.passed,
                         c.metadata["days_checked"].value, c.metadata["failures"].value)
                        for c in result.get_asset_check_evaluations())
        got[workers] = files, rows, checks
    assert got[1] == got[2]
    files, rows, checks = got[2]
    for mart in ("pages_daily", "devices_daily", "goals_daily", "journeys_daily"):
        assert {f for f in files if f.startswith(f"{mart}/")} == {
            f"{mart}/date={d}/part.parquet" for d in (DAY1, DAY2)}
        assert rows[(mart, str(DAY1))] > 0 and rows[(mart, str(DAY2))] > 0
        assert rows[(mart, str(DAY2 + timedelta(days=1)))] == 0  # no sessions, no file
    assert len(checks) == 4 and all(c[2] and c[3] == 2 for c in checks), checks


def test_a_marts_day_that_fails_fails_its_step_with_its_own_error(
        world: dict[str, Any], tmp_path: Path) -> None:
    """A day that cannot be written (a file stands where its folder goes) fails the step with
    its own error; the other worker is stopped and waited for."""
    from analytics_platform.defs.marts import assets as marts

    data = tmp_path / "data"
    blocked = data / "lake" / "pages_daily" / f"date={DAY2}"
    blocked.parent.mkdir(parents=True)
    blocked.write_text("in the way")
    result = _marts_over_three_days(world, data, [marts.pages_daily])
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert f"date={DAY2}" in str(failure.event_specific_data.error.cause)
    assert not [t for t in threading.enumerate() if t.name.startswith("pages_daily-day")]


def test_events_past_the_horizon_count_when_their_day_is_rebuilt(world: dict[str, Any]) -> None:
    """Runs last (it changes the world): process the raw hours after the backfill's horizon,
    re-materialise the days, and the very late events now count, as late_events."""
    from analytics_platform.definitions import defs
    from analytics_platform.partitions import hourly

    d = defs()
    last = hour_of_partition_key(world["report"].phases[0].last)
    keys = [k for k in hourly.get_partition_keys(
        current_time=datetime(2026, 3, 7, tzinfo=UTC))
        if last < hour_of_partition_key(k) <= datetime(2026, 3, 6, 23, tzinfo=UTC)]
    with pytest.MonkeyPatch.context() as mp, dg.DagsterInstance.ephemeral() as instance:
        mp.setenv("ANALYTICS_DATA_DIR", str(world["data"]))
        tags = {"dagster/asset_partition_range_start": keys[0],
                "dagster/asset_partition_range_end": keys[-1]}
        assert d.resolve_job_def("events_job").execute_in_process(
            instance=instance, tags=tags).success
        result = d.resolve_job_def("daily_job").execute_in_process(
            instance=instance, tags={"dagster/asset_partition_range_start": str(DAY1),
                                     "dagster/asset_partition_range_end": str(DAY2)})
        assert result.success
    late = sum(e.materialization.metadata["late_events"].value
               for e in result.get_asset_materialization_events()
               if e.asset_key.to_user_string() == "sessions")
    full = o.Oracle.for_simulation(world["expected"]["extra_bots"],
                                   world["expected"]["attribution"])
    full.read_lake(world["raw"])
    want = full.sessions({DAY1, DAY2})
    # The warehouse as the run left it: world["con"] still holds the one it opened, and
    # duckdb.connect() of the same path in this process would hand back that database (the
    # snapshot of its time), so the new file is attached to a fresh connection instead.
    con = duckdb.connect()
    con.execute("ATTACH ? AS w (READ_ONLY)", [str(world["data"] / "warehouse.duckdb")])
    got = {r["session_id"]: r["events"] for r in rows(con, "SELECT * FROM w.sessions")}
    con.close()
    assert got == {sid: s["events"] for sid, s in want.items()}
    assert late > 0
    assert sum(got.values()) > sum(s["events"] for s in world["sessions"].values())
