"""Edges of the pipeline a review found broken: the hourly volume check after an hour lost its
events file, step 1 of a funnel no session reached, a day whose sessions partition holds no
session, and raw lines of whitespace alone."""

from __future__ import annotations

import gzip
import json
import statistics
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from analytics_platform.backfill import run_backfill
from analytics_platform.config import Funnel, FunnelStep
from analytics_platform.defs.events import reader
from analytics_platform.defs.events.checks import events_hourly_volume
from analytics_platform.lake import open_raw_lake, partition_key
from analytics_platform.mart_logic import funnels_sql
from analytics_platform.resources import LakeResource, PipelineSettings

HOUR = datetime(2026, 2, 10, 9, tzinfo=UTC)
UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/124.0.0.0 Safari/537.36")


def record(n: int, ts: datetime, **extra: object) -> dict:
    """A page view that meets the contract (CONTRACT §1-2), the n-th of its session."""
    iso = ts.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return {"event_type": "page_view", "event_id": f"00000000-0000-4000-8000-{n:012d}",
            "session_id": f"10000000-0000-4000-8000-{n:012d}",
            "visitor_id": f"20000000-0000-4000-8000-{n:012d}", "consent": True,
            "page_path": "/", "page_host": "www.site.example", "event_ts": iso,
            "ingest_ts": iso, "user_agent": UA, "schema_version": 1, **extra}


def run_events(hour: datetime, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    from analytics_platform.definitions import defs

    return defs().resolve_job_def("events_job").execute_in_process(
        instance=instance, partition_key=partition_key(hour), raise_on_error=False)


@pytest.fixture()
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("ANALYTICS_RAW_URL", raising=False)
    monkeypatch.delenv("ANALYTICS_LAKE_URL", raising=False)
    return tmp_path


# --- events_hourly_volume: the newest hour that still has a file --------------------------------

def events_file(data: Path, hour: datetime, n: int) -> None:
    """An events file of ``n`` rows of ``hour``: all the check reads of it is raw_hour."""
    folder = data / "lake" / "events" / f"hour={hour:%Y-%m-%dT%H}"
    folder.mkdir(parents=True)
    duckdb.execute(f"COPY (SELECT $h::TIMESTAMP AS raw_hour FROM range({n})) "
                   f"TO '{folder / 'part.parquet'}' (FORMAT parquet)",
                   {"h": hour.replace(tzinfo=None)})


def _volume_check(data: Path) -> dg.AssetCheckResult:
    return events_hourly_volume(lake=LakeResource(data_dir=str(data)),
                                pipeline=PipelineSettings(anomaly_threshold=3.5))


def test_volume_check_judges_the_newest_hour_that_still_has_a_file(data: Path) -> None:
    """Hour 10's file is gone (its raw object was erased and the hour run again), its folder
    stays: the check judges hour 9 against hour 9 of the 7 days before, as if hour 10 had never
    been there (it failed: read_parquet of a list without the latest hour's file)."""
    counts = {HOUR - timedelta(days=d): n
              for d, n in enumerate([100, 90, 95, 100, 105, 110, 80, 300])}
    for hour, n in counts.items():
        events_file(data, hour, n)
    (data / "lake" / "events" / f"hour={HOUR + timedelta(hours=1):%Y-%m-%dT%H}").mkdir()
    result = _volume_check(data)
    history = [n for h, n in counts.items() if h != HOUR]
    median = statistics.median(history)
    mad = statistics.median(abs(n - median) for n in history)
    z = abs(counts[HOUR] - median) / (1.4826 * mad)
    meta = {k: v.value for k, v in result.metadata.items()}
    assert meta["hour"] == f"{HOUR:%Y-%m-%d %H:00}"
    assert meta["events"] == counts[HOUR]
    assert meta["median_same_hour_7d"] == median
    assert meta["mad"] == mad
    assert meta["robust_z"] == round(z, 2)
    assert meta["comparable_hours"] == 7
    assert result.passed is (z <= 3.5)


def test_volume_check_passes_when_no_folder_has_a_file(data: Path) -> None:
    (data / "lake" / "events" / f"hour={HOUR:%Y-%m-%dT%H}").mkdir(parents=True)
    result = _volume_check(data)
    assert result.passed
    assert result.metadata["note"].value == "no complete hour yet"


def test_an_hour_run_again_after_its_raw_object_was_erased_keeps_events_job_green(
        data: Path) -> None:
    """The reviewer's case: hours 9 and 10 have one event each; hour 10's raw object is deleted
    and the hour run again, which removes its events file and leaves its folder."""
    raw = open_raw_lake(data / "raw")
    objects = {h: raw.write_records(h, gzip.compress(
        (json.dumps(record(n, h + timedelta(minutes=5))) + "\n").encode()), object_id="o")
        for n, h in enumerate([HOUR, HOUR + timedelta(hours=1)])}
    with dg.DagsterInstance.ephemeral() as instance:
        for h in objects:
            assert run_events(h, instance).success
        hour_dir = data / "lake" / "events" / f"hour={HOUR + timedelta(hours=1):%Y-%m-%dT%H}"
        assert (hour_dir / "part.parquet").exists()
        (data / "raw" / objects[HOUR + timedelta(hours=1)].key).unlink()
        result = run_events(HOUR + timedelta(hours=1), instance)
    assert result.success
    assert hour_dir.is_dir() and not (hour_dir / "part.parquet").exists()
    [check] = [e.event_specific_data for e in result.all_events
               if e.event_type_value == "ASSET_CHECK_EVALUATION"
               and e.event_specific_data.check_name == "events_hourly_volume"]
    assert check.passed
    # hour 9 alone, no same hour on the days before
    assert check.metadata["note"].value == "0 comparable hours: too few to judge"


# --- funnel_daily: pct_of_previous of step 1 ---------------------------------------------------

FUNNEL = Funnel("f", (FunnelStep("Viewed", "page_view"), FunnelStep("Scrolled", "scroll_depth"),
                      FunnelStep("Submitted", "form_submit"), FunnelStep("Clicked", "cta_click"),
                      FunnelStep("Left", "outbound")))


@pytest.mark.parametrize("sessions", [
    # no session reached step 1 (a custom event only): step 1 is still 1 of its previous
    {"a": ["custom"]},
    # 3 → 2 → 1 → 0 → 0: a step after one nobody reached is 0
    {"a": ["page_view", "scroll_depth", "form_submit"], "b": ["page_view", "scroll_depth"],
     "c": ["page_view", "custom"]},
], ids=["step-1-unreached", "steps-thinning-out"])
def test_funnel_pct_of_previous_follows_the_contract(sessions: dict[str, list[str]]) -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE e (session_id VARCHAR, ts TIMESTAMP, event_type VARCHAR, "
                "page_path VARCHAR, props VARCHAR)")
    for sid, types in sessions.items():
        for k, t in enumerate(types):
            con.execute("INSERT INTO e VALUES (?, ?, ?, '/', NULL)",
                        [sid, datetime(2026, 2, 10, 9, k), t])
    got = con.execute(f"SELECT step, sessions, pct_of_start, pct_of_previous FROM "
                      f"({funnels_sql([FUNNEL], HOUR)})").fetchall()
    # CONTRACT §5, step by step: the events of each session are in the steps' order, so a
    # session reaches step k when its first k types are the funnel's first k
    steps = [s.event_type for s in FUNNEL.steps]
    reached = [sum(1 for types in sessions.values()
                   if [t for t in types if t in steps][:k + 1] == steps[:k + 1])
               for k in range(len(steps))]
    want = [(k + 1, n, n / reached[0] if reached[0] else 0.0,
             1.0 if k == 0 else (n / reached[k - 1] if reached[k - 1] else 0.0))
            for k, n in enumerate(reached)]
    assert got == want


# --- the daily marts: a day whose sessions partition holds no session ------------------------

def test_a_day_whose_sessions_partition_is_empty_has_no_row_in_any_daily_mart(
        data: Path) -> None:
    """The reviewer's case: page views on 03-01 and 03-03 only, a backfill of 03-01 … 03-03.
    03-02's sessions partition is written (its window reads 03-03's event) and holds no row:
    that day has no sessions (CONTRACT §5), so no daily mart has a row or a file for it
    (funnel_daily had one row per step, all 0, where kpis_daily had none)."""
    days = [date(2026, 3, 1), date(2026, 3, 3)]
    raw = open_raw_lake(data / "raw")
    for n, d in enumerate(days):
        ts = datetime(d.year, d.month, d.day, 10, tzinfo=UTC)
        raw.write_records(ts, gzip.compress((json.dumps(record(n, ts)) + "\n").encode()),
                          object_id=f"o{n}")
    with dg.DagsterInstance.ephemeral() as instance:
        report = run_backfill(days[0], days[-1], instance=instance, log=lambda _: None)
    assert report.success
    lake = data / "lake"
    empty = lake / "sessions" / "date=2026-03-02" / "part.parquet"
    assert duckdb.execute(f"SELECT count(*) FROM '{empty}'").fetchall() == [(0,)]  # the edge
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        def dates(table: str) -> set[date]:
            return {d for (d,) in con.execute(f"SELECT DISTINCT date FROM {table}").fetchall()}

        assert dates("funnel_daily") == dates("kpis_daily") == set(days)
    finally:
        con.close()
    daily = sorted(p.parent.parent.name for p in lake.glob("*/date=2026-03-01/part.parquet")
                   if p.parent.parent.name not in ("sessions", "session_events"))
    assert {"kpis_daily", "funnel_daily", "goals_daily", "journeys_daily"} <= set(daily)
    # every daily mart: a partition for each day with sessions, none for 03-02
    assert {m: sorted(p.parent.name for p in (lake / m).glob("date=*/part.parquet"))
            for m in daily} == {m: ["date=2026-03-01", "date=2026-03-03"] for m in daily}


# --- the reader: lines of whitespace alone are blank lines --------------------------------------

BLANKS = [b"   ", b"\r", b"\t \r", b" \t"]


def test_read_lines_drops_whitespace_lines_and_keeps_the_others_numbers(tmp_path: Path) -> None:
    """Lines of JSON whitespace alone go like empty lines (CONTRACT §2); every other line keeps
    its number in the object (raw_pos is line number × 1000, blank lines counted), whatever it
    starts or ends with."""
    raw = open_raw_lake(tmp_path / "raw")
    body = (b'{"a":1}\r\n' + b"\n".join(BLANKS) + b'\n\n {"b":2}\r\n{"c":3} \n\t{"d":4}\t\n'
            b"x\r\n" + b" " * 70 + b"\r")  # the last line has no newline
    raw.write_records(HOUR, gzip.compress(body), object_id="o")
    got = reader.read_lines(raw, raw.list_hour(HOUR))
    lines = body.split(b"\n")
    want = [(0, pos, line + b"\n") for pos, line in enumerate(lines)
            if line.strip(b" \t\r")]
    assert list(zip(*got.lines.to_pydict().values(), strict=True)) == want
    assert [pos for _, pos, _ in want] == [0, 6, 7, 8, 9]


def test_whitespace_lines_are_not_quarantined_and_the_records_keep_their_raw_pos(
        data: Path) -> None:
    """The reviewer's object: CRLF records, a line of spaces, a bare "\\r", two records glued
    with "}{" (one with "}{" in a string), an empty line and a last record without newline."""
    r = [record(n, HOUR + timedelta(minutes=n)) for n in range(4)]
    r[2]["page_title"] = "a}{b"
    lines = [json.dumps(r[0]) + "\r", "   ", "\r", json.dumps(r[1]) + json.dumps(r[2]), "",
             json.dumps(r[3])]
    open_raw_lake(data / "raw").write_records(HOUR, gzip.compress("\n".join(lines).encode()),
                                              object_id="o")
    with dg.DagsterInstance.ephemeral() as instance:
        assert run_events(HOUR, instance).success
    lake = data / "lake"
    assert not list(lake.glob("quarantine/*/*.parquet"))
    got = duckdb.execute(f"SELECT event_id, raw_pos FROM '{lake}/events/*/*.parquet' "
                         "ORDER BY raw_pos").fetchall()
    # line number × 1000, plus 1, 2 for the pieces of the glued line (CONTRACT §3.1)
    assert got == [(r[0]["event_id"], 0), (r[1]["event_id"], 3001), (r[2]["event_id"], 3002),
                   (r[3]["event_id"], 5000)]
