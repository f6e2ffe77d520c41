"""The CLI on wrong input or a wrong environment: one clear line and exit 1, never a traceback,
and never an emptied warehouse (found in review: a backfill of a wrong ANALYTICS_RAW_URL emptied
the day and said "Done")."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from analytics_platform.cli import main
from analytics_platform.lake import open_raw_lake
from analytics_platform.simulate import SimConfig, generate, write_traffic

DAY = date(2026, 3, 16)


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "data"
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(data))
    monkeypatch.setenv("ANALYTICS_START_DATE", "2026-03-01")
    for name in ("ANALYTICS_RAW_URL", "ANALYTICS_LAKE_URL", "DAGSTER_HOME",
                 "ANALYTICS_DUCKDB_MEMORY", "ANALYTICS_LATE_ARRIVAL_HOURS"):
        monkeypatch.delenv(name, raising=False)
    return data


def _fails_cleanly(args: list[str], says: str) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert says in result.output, result.output
    # a ClickException exits 1 through SystemExit; anything else escaping is a traceback
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output, result.output


def test_a_backfill_of_a_range_without_raw_objects_is_refused(env: Path,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    _fails_cleanly(["backfill", "--from", str(DAY), "--to", str(DAY)], "does not exist")
    assert not (env / "dagster_home").exists()  # nothing written before the check
    # a raw lake with objects on another day only
    write_traffic(generate(SimConfig(days=1, visitors_per_day=20, start=date(2026, 3, 10),
                                     seed=3, until=datetime(2026, 3, 11, tzinfo=UTC))),
                  open_raw_lake(env / "raw"), progress=False)
    _fails_cleanly(["backfill", "--from", str(DAY), "--to", str(DAY)], "has no object from")
    # on purpose: the days are emptied, and said so
    result = CliRunner().invoke(main, ["backfill", "--from", str(DAY), "--to", str(DAY),
                                       "--allow-empty"])
    assert result.exit_code == 0, result.output
    assert "0 raw records" in result.output


@pytest.mark.parametrize(("name", "value", "says"), [
    ("ANALYTICS_DUCKDB_MEMORY", "abc", "ANALYTICS_DUCKDB_MEMORY must be a size"),
    ("ANALYTICS_LATE_ARRIVAL_HOURS", "abc", "ANALYTICS_LATE_ARRIVAL_HOURS must be a whole"),
    ("ANALYTICS_LATE_ARRIVAL_HOURS", "-1", "ANALYTICS_LATE_ARRIVAL_HOURS must be a whole"),
])
def test_a_bad_setting_is_named_before_any_run(env: Path, monkeypatch: pytest.MonkeyPatch,
                                               name: str, value: str, says: str) -> None:
    monkeypatch.setenv(name, value)
    _fails_cleanly(["backfill", "--from", str(DAY), "--to", str(DAY)], says)
    assert not (env / "dagster_home").exists()


def test_export_to_a_path_that_cannot_be_written(env: Path) -> None:
    import duckdb

    env.mkdir(parents=True)
    with duckdb.connect(str(env / "warehouse.duckdb")) as con:
        con.execute("CREATE VIEW kpis_daily AS SELECT DATE '2026-03-16' AS date, 1 AS visitors")
    _fails_cleanly(["export", "--table", "kpis_daily", "--out", "/proc/nope/x.csv"],
                   "cannot write /proc/nope/x.csv")


def test_simulate_into_a_place_it_cannot_write(env: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    _fails_cleanly(["simulate", "--days", "1", "--visitors-per-day", "5", "--quiet",
                    "--raw-url", str(blocker / "raw")], "cannot write to")


@pytest.fixture()
def failing_s3() -> Iterator[str]:
    """An endpoint that answers every request with 500 (S3 having a bad moment)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Fail(BaseHTTPRequestHandler):
        def _fail(self) -> None:
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _fail

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Fail)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@pytest.mark.s3
@pytest.mark.parametrize("fault", ["no such bucket", "500"])
def test_lake_pull_when_s3_fails(env: Path, moto_endpoint: str, failing_s3: str,
                                 monkeypatch: pytest.MonkeyPatch, fault: str) -> None:
    """The one-shot `lake-pull` (found in review: a traceback of botocore's NoSuchBucket)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint if fault != "500" else failing_s3)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # botocore's retries of a 500: seconds each
    monkeypatch.setenv("ANALYTICS_LAKE_URL", "s3://no-such-bucket-here/lake")
    _fails_cleanly(["lake-pull"], "cannot pull the lake s3://no-such-bucket-here/lake/")
    assert not (env / "warehouse.duckdb").exists()


def test_a_backfill_says_which_days_of_its_range_it_leaves_out(env: Path) -> None:
    """Days before the first partition, or not begun yet, are left out of a backfill: said in a
    line of its own (found in review: only a job's line showed the range actually run)."""
    from analytics_platform.partitions import first_hour

    first = first_hour().date()
    result = CliRunner().invoke(main, ["backfill", "--from", str(first - timedelta(days=1)),
                                       "--to", str(first), "--allow-empty"])
    assert result.exit_code == 0, result.output
    assert f"the partitions begin on {first} (ANALYTICS_START_DATE)" in result.output
    today = datetime.now(UTC).date()
    result = CliRunner().invoke(main, ["backfill", "--from", str(today), "--to",
                                       str(today + timedelta(days=2)), "--allow-empty"])
    assert result.exit_code == 0, result.output
    assert (f"{today + timedelta(days=2)} has not begun yet (UTC); the backfill ends with "
            f"{today}") in result.output
