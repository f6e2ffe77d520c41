"""A small site in the pipeline's reports: the weekly report over quiet days (no kpis_daily row:
no sessions, CONTRACT §5), the hourly-volume check on hours of one or two events, and the cost
model at no traffic."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from analytics_platform.cost import Assumptions, monthly_bill
from analytics_platform.defs.alerts import report
from analytics_platform.defs.alerts.resources import AlertsResource
from analytics_platform.defs.events.checks import events_hourly_volume
from analytics_platform.resources import LakeResource, PipelineSettings
from analytics_platform_tests.test_pipeline_edges import events_file

WEEK = date(2026, 11, 30)  # a Monday; the week before starts on 23 November


def kpis_row(data: Path, day: date, visitors: int, sessions: int, pageviews: int) -> None:
    """``day``'s kpis_daily file, with the columns the report reads."""
    folder = data / "lake" / "kpis_daily" / f"date={day}"
    folder.mkdir(parents=True)
    duckdb.execute(
        "COPY (SELECT $d::DATE AS date, $v::BIGINT AS visitors, $s::BIGINT AS sessions, "
        "$p::BIGINT AS pageviews, 0::BIGINT AS conversions, 0.5::DOUBLE AS bounce_rate) "
        f"TO '{folder / 'part.parquet'}' (FORMAT parquet)",
        {"d": day, "v": visitors, "s": sessions, "p": pageviews})


def materialised(instance: dg.DagsterInstance, days: list[date]) -> None:
    """The pipeline's record of having processed ``days`` (kpis_daily's partitions)."""
    for day in days:
        instance.report_runless_asset_event(
            dg.AssetMaterialization(asset_key="kpis_daily", partition=str(day)))


def sent_report(data: Path, instance: dg.DagsterInstance) -> tuple[bool, str]:
    """The report job's success and the report's text (logged: no channel configured)."""
    result = report.weekly_report_job.execute_in_process(
        run_config={"ops": {"send_weekly_report": {"config": {"week_start": str(WEEK)}}}},
        resources={"alerts": AlertsResource(config_file=None, dashboard_url="https://d"),
                   "lake": LakeResource(data_dir=str(data))},
        instance=instance, raise_on_error=False)
    logs = [e.user_message for e in instance.all_logs(result.run_id)]
    return result.success, next((m for m in logs if m.startswith("Week of")), "\n".join(logs))


@pytest.fixture()
def tiny(tmp_path: Path) -> Path:
    """A tiny site: 3 visitors a day the week before, then one day with sessions in the week
    (30 Nov: none; 1 Dec: 3 visitors; 2-6 Dec: none)."""
    for i in range(7):
        kpis_row(tmp_path, WEEK - timedelta(days=7 - i), 3, 3, 7)
    kpis_row(tmp_path, WEEK + timedelta(days=1), 3, 4, 14)
    return tmp_path


def test_a_week_of_quiet_days_is_complete_and_compares_weeks(tiny: Path) -> None:
    """Every day of both weeks processed, one of this week's with sessions: a complete week
    of 3 visitors against 21 (it was "incomplete data", 1 day of 7, "no change per day")."""
    with dg.DagsterInstance.ephemeral() as instance:
        materialised(instance, [WEEK - timedelta(days=7) + timedelta(days=i) for i in range(14)])
        ok, text = sent_report(tiny, instance)
    assert ok, text
    assert "Incomplete" not in text and "per day" not in text, text
    assert "Visitors: 3 (week before 21, -86%)" in text, text
    assert "Sessions: 4 (week before 21, -81%)" in text, text
    assert "Page views: 14 (week before 49, -71%)" in text, text


def test_a_week_without_any_visitor_is_reported_as_zero(tmp_path: Path) -> None:
    """Both weeks processed, no sessions at all: a report of zeros, not a failed run (and its
    alert) saying to backfill a week that was."""
    with dg.DagsterInstance.ephemeral() as instance:
        materialised(instance, [WEEK - timedelta(days=7) + timedelta(days=i) for i in range(14)])
        ok, text = sent_report(tmp_path, instance)
    assert ok, text
    assert "Visitors: 0 (week before 0, no change)" in text, text


def test_a_week_not_processed_still_fails_and_a_missing_day_is_still_missing(
        tiny: Path) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        ok, text = sent_report(tiny / "nothing", instance)  # no row, no materialisation
        assert not ok
        # this week's Thursday never processed: incomplete, 6 days, daily averages
        materialised(instance, [WEEK - timedelta(days=7) + timedelta(days=i) for i in range(14)
                                if i != 10])
        ok, text = sent_report(tiny, instance)
    assert ok, text
    assert ("Incomplete data: this week has only 6 of its 7 days in kpis_daily (missing: "
            "Thu 03 Dec), so changes compare daily averages." in text), text
    assert "Visitors: 3 in 6 days (week before 21, -83% per day)" in text, text


def test_the_week_before_without_a_day_says_none_not_zero(tiny: Path) -> None:
    """The first week of a site: the week before has no day, said as such (it read "the week
    before has only 0 of its 7 days", "week before 0 in 0 days")."""
    first = WEEK - timedelta(days=7)
    numbers = report.weekly_numbers(LakeResource(data_dir=str(tiny)).open(), first,
                                    processed=[first + timedelta(days=i) for i in range(7)])
    text = report.weekly_message(numbers, "https://d").text
    assert "the week before has none of its 7 days" in text, text
    assert "Visitors: 21 (week before –, –)" in text, text


# --- the hourly-volume check ---------------------------------------------------------------------

HOUR = datetime(2026, 2, 10, 9, tzinfo=UTC)


@pytest.mark.parametrize(("history", "n", "passed"), [
    ([1, 1, 1, 1], 2, True),  # one more visitor than usual: it was an infinite z-score
    ([2, 2, 2, 3, 2, 2, 2], 6, True),  # √2: 2.8 standard deviations
    ([1, 1, 1, 1], 20, False),  # a real spike of a small site: 19 standard deviations
    ([100, 90, 95, 100, 105, 110, 80], 300, False),  # a spike of a bigger one, as before
    ([100, 90, 95, 100, 105, 110, 80], 140, True),  # robust z 5.4, but √100: 4
])
def test_the_volume_check_has_a_poisson_floor(tmp_path: Path, history: list[int], n: int,
                                              passed: bool) -> None:
    for d, count in enumerate([n, *history]):
        if count:
            events_file(tmp_path, HOUR - timedelta(days=d), count)
    result = events_hourly_volume(lake=LakeResource(data_dir=str(tmp_path)),
                                  pipeline=PipelineSettings(anomaly_threshold=5.0))
    meta = {k: v.value for k, v in result.metadata.items()}
    assert result.passed is passed, meta


# --- the cost model ------------------------------------------------------------------------------


def line(events: int, item: str) -> tuple[str, float]:
    bill = monthly_bill(events, a=Assumptions(buffer_seconds=220, sensor_seconds=10,
                                              raw_queue=True))
    return next((usage, usd) for name, usage, usd in bill.lines if name == item)


def test_no_traffic_writes_no_firehose_object() -> None:
    """Firehose writes an object per buffer interval that received something: none at no
    traffic (it billed 11,782 objects, their GETs and SQS messages, whatever the traffic)."""
    assert line(0, "S3 PUT (Firehose objects)") == ("0 objects", 0.0)
    assert line(0, "S3 GET (pipeline reads)")[0].startswith("0 requests")
    assert line(0, "SQS (raw/ notifications)")[0].startswith("259,200 requests")  # polls
    # 1,000 events a month: 333 requests, so at most 333 objects
    assert line(1000, "S3 PUT (Firehose objects)")[0] == "333 objects"
    assert line(1000, "S3 GET (pipeline reads)")[0].startswith("333 requests")
    # 1M: more requests than intervals, one object an interval as before
    assert line(1_000_000, "S3 PUT (Firehose objects)")[0] == "11,782 objects"
