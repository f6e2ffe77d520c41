"""Alerts and the weekly report, received by real servers on 127.0.0.1: a webhook receiver, an
SMTP server (aiosmtpd) and a Slack Web API server that the real slack_sdk client talks to.

A simulated spike, a simulated outage and a real failed run each produce exactly one message
per channel, with numbers the test knows from the data it wrote, however many times the sensor
ticks; then one recovery message. The weekly report's numbers are held to the marts, summed
here in Python, and to the sessions table.
"""

from __future__ import annotations

import email
import gzip
import json
import re
import socket
import statistics
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import dagster as dg
import duckdb
import pytest
from aiosmtpd.controller import Controller

from analytics_platform.backfill import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from analytics_platform.defs.alerts import report
from analytics_platform.defs.alerts.resources import AlertsResource
from analytics_platform.defs.alerts.sensors import alerts_sensor
from analytics_platform.lake import floor_hour, open_raw_lake, partition_key
from analytics_platform.resources import LakeResource, PipelineSettings

UA = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
      "Version/18.1 Safari/605.1.15")
NORMAL_REFERRERS = ["https://www.google.com/", "https://duckduckgo.com/", "https://www.bing.com/"]
PAGES = ["/", "/pricing", "/blog/duckdb-in-production", "/contact"]


# --- the servers -------------------------------------------------------------------------------


class Received:
    """What one server received, in order."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def add(self, item: dict[str, Any]) -> None:
        with self.lock:
            self.items.append(item)

    def take(self) -> list[dict[str, Any]]:
        with self.lock:
            out, self.items = self.items, []
        return out


def _serve(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


@pytest.fixture()
def webhook() -> Iterator[tuple[str, Received]]:
    """A webhook receiver: every POST's JSON body."""
    got = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.add({"path": self.path, "content_type": self.headers["Content-Type"],
                     "json": json.loads(body)})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server, url = _serve(Handler)
    yield f"{url}/hooks/analytics", got
    server.shutdown()


@pytest.fixture()
def slack() -> Iterator[tuple[str, Received]]:
    """A Slack Web API on 127.0.0.1 for the real slack_sdk WebClient: chat.postMessage and the
    three steps of files_upload_v2 (get an upload URL, upload the bytes, complete)."""
    got = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            auth = self.headers.get("Authorization")
            base = f"http://127.0.0.1:{self.server.server_port}"
            if self.path.startswith("/upload/"):
                got.add({"method": "upload", "file_id": self.path.rsplit("/", 1)[1],
                         "bytes": body})
                self._reply(200, b"OK - %d" % len(body), "text/plain")
                return
            method = self.path.removeprefix("/api/")
            if "json" in (self.headers.get("Content-Type") or ""):
                args = json.loads(body)
            else:
                args = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            got.add({"method": method, "auth": auth, "args": args})
            if auth != "Bearer xoxb-test-token":
                answer: dict[str, Any] = {"ok": False, "error": "invalid_auth"}
            elif method == "chat.postMessage":
                answer = {"ok": True, "channel": args["channel"], "ts": "1700000000.000100"}
            elif method == "files.getUploadURLExternal":
                answer = {"ok": True, "upload_url": f"{base}/upload/F0001", "file_id": "F0001"}
            elif method == "files.completeUploadExternal":
                answer = {"ok": True, "files": [{"id": "F0001"}]}
            else:
                answer = {"ok": False, "error": "unknown_method"}
            self._reply(200, json.dumps(answer).encode(), "application/json")

        do_GET = do_POST

        def _reply(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server, url = _serve(Handler)
    yield f"{url}/api/", got
    server.shutdown()


@pytest.fixture()
def smtp() -> Iterator[tuple[int, Received]]:
    """An SMTP server (aiosmtpd): every message, parsed."""
    got = Received()

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            got.add({"from": envelope.mail_from, "to": envelope.rcpt_tos,
                     "message": email.message_from_bytes(envelope.content,
                                                         policy=policy.default)})
            return "250 OK"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    yield port, got
    controller.stop()


@pytest.fixture()
def channels(webhook: tuple[str, Received], slack: tuple[str, Received],
             smtp: tuple[int, Received]) -> tuple[AlertsResource, dict[str, Received]]:
    alerts = AlertsResource(
        config_file=None, webhook_url=webhook[0], slack_token="xoxb-test-token",
        slack_channel="C0ALERTS", slack_api_url=slack[0], smtp_host="127.0.0.1",
        smtp_port=smtp[0], smtp_security="none", email_from="analytics@example.com",
        email_to="owner@example.com, ops@example.com",
        dashboard_url="https://analytics.example.com", dagster_url="https://dagster.example.com")
    return alerts, {"webhook": webhook[1], "slack": slack[1], "email": smtp[1]}


# --- data and ticks ----------------------------------------------------------------------------


def write_hour(raw: Path, hour: datetime, n: int, referrer: str | None = None) -> datetime:
    """``n`` page views of distinct visitors arriving during ``hour``, through the raw lake's
    API; returns the newest arrival time written."""
    records = []
    for i in range(n):
        ts = hour + timedelta(seconds=1 + i * 3500 / n)
        records.append({
            "event_type": "page_view", "event_id": str(uuid.uuid4()),
            "session_id": str(uuid.uuid4()), "visitor_id": str(uuid.uuid4()),
            "page_path": PAGES[i % len(PAGES)], "page_host": "www.brightpath.example",
            "page_title": "BrightPath", "referrer": referrer or NORMAL_REFERRERS[i % 3],
            "screen_width": 1440, "screen_height": 900,
            "event_ts": f"{ts:%Y-%m-%dT%H:%M:%S}.000Z",
            "sent_ts": f"{ts + timedelta(seconds=1):%Y-%m-%dT%H:%M:%S}.000Z",
            "ingest_ts": f"{ts + timedelta(seconds=1.5):%Y-%m-%dT%H:%M:%S.%f}"[:-3] + "Z",
            "user_agent": UA, "props": {}, "schema_version": 1})
    body = b"".join(json.dumps(r).encode() + b"\n" for r in records)
    open_raw_lake(raw).write_records(hour, gzip.compress(body))
    return hour + timedelta(seconds=1 + (n - 1) * 3500 / n + 1.5)


def materialise(instance: dg.DagsterInstance, first: datetime, last: datetime | None = None,
                ok: bool = True) -> None:
    """Run events_job (with its checks) over the raw hours ``first``…``last``, in process."""
    from analytics_platform.definitions import defs

    job = defs().resolve_job_def("events_job")
    tags = ({PARTITION_RANGE_START_TAG: partition_key(first),
             PARTITION_RANGE_END_TAG: partition_key(last)} if last else {})
    result = job.execute_in_process(instance=instance, tags=tags, raise_on_error=False,
                                    partition_key=None if last else partition_key(first))
    assert result.success is ok


class Ticks:
    """The sensor's ticks, the cursor carried from one to the next as the daemon does."""

    def __init__(self, instance: dg.DagsterInstance, alerts: AlertsResource, data: Path,
                 freshness_hours: float) -> None:
        self.instance, self.cursor = instance, None
        self.resources = {"alerts": alerts, "lake": LakeResource(data_dir=str(data)),
                          "pipeline": PipelineSettings(freshness_hours=freshness_hours)}

    def tick(self) -> str:
        ctx = dg.build_sensor_context(instance=self.instance, cursor=self.cursor,
                                      resources=self.resources)
        result = alerts_sensor(ctx)
        self.cursor = ctx.cursor
        return result.skip_message


def one_each(received: dict[str, Received]) -> dict[str, Any]:
    """Exactly one message on every channel since the last call: the webhook's JSON, the
    e-mail, and Slack's chat.postMessage arguments."""
    hooks, mails, calls = (received[k].take() for k in ("webhook", "email", "slack"))
    assert len(hooks) == 1 and len(mails) == 1, (hooks, mails)
    posts = [c for c in calls if c["method"] == "chat.postMessage"]
    assert len(posts) == 1 and posts[0]["args"]["channel"] == "C0ALERTS", calls
    mail = mails[0]
    assert mail["to"] == ["owner@example.com", "ops@example.com"]
    text = mail["message"].get_body(("plain",)).get_content().replace("\r\n", "\n")
    hook = hooks[0]["json"]
    # one message, three renderings of the same words
    assert hook["text"].strip() == text.strip() == posts[0]["args"]["text"].strip()
    assert hook["title"] == mail["message"]["Subject"]
    return {"hook": hook, "mail": mail["message"], "text": text, "slack": posts[0]["args"]}


def nothing(received: dict[str, Received]) -> None:
    assert {k: r.take() for k, r in received.items()} == {k: [] for k in received}


# --- alerts ------------------------------------------------------------------------------------


BASE = [100, 96, 104, 90, 110, 98, 102]  # the same hour on each of the 7 days before


def test_a_spike_is_told_once_then_its_end(
    tmp_path: Path, channels: tuple[AlertsResource, dict[str, Received]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alerts, received = channels
    data = tmp_path / "data"
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(data))
    raw = data / "raw"
    now_hour = floor_hour(datetime.now(UTC))
    usual, spike, after = (now_hour - timedelta(hours=k) for k in (3, 2, 1))
    for latest, n in ((usual, 101), (spike, 310), (after, 99)):
        for d, base in enumerate(BASE, start=1):
            write_hour(raw, latest - timedelta(days=d), base)
        write_hour(raw, latest, n, "https://news.ycombinator.com/item?id=42"
                   if latest == spike else None)
    with dg.DagsterInstance.ephemeral() as instance:
        materialise(instance, usual - timedelta(days=7), usual)
        ticks = Ticks(instance, alerts, data, freshness_hours=48)
        for _ in range(2):
            assert "0 message(s) sent; open incidents: none" in ticks.tick()
        nothing(received)

        materialise(instance, spike)  # the spike hour reaches the lake
        assert "1 message(s) sent; open incidents: traffic" in ticks.tick()
        got = one_each(received)
        for _ in range(3):  # the incident goes on: no repeat
            assert "0 message(s) sent; open incidents: traffic" in ticks.tick()
        nothing(received)

        # the numbers, as the test knows them: 310 written, the median of BASE
        lake_count = duckdb.sql(
            f"SELECT count(*) FROM read_parquet('{data}/lake/events/"
            f"hour={spike:%Y-%m-%dT%H}/*.parquet')").fetchall()[0][0]
        assert lake_count == 310
        median = statistics.median(BASE)
        assert median == 100
        numbers = got["hook"]["numbers"]
        assert (numbers["events"], numbers["median_same_hour_7d"], numbers["pageviews"],
                numbers["sessions"], numbers["top_source"], numbers["top_source_sessions"],
                numbers["top_source_pageviews"]) == (
            310, 100, 310, 310, "news.ycombinator.com", 310, 310)
        assert got["hook"]["kind"] == "anomaly" and got["hook"]["status"] == "open"
        span = f"{spike:%H:00}–{spike + timedelta(hours=1):%H:00} UTC"
        assert (f"Events {spike:%A} {spike.day} {spike:%B %Y}, {span}: 310 (page views 310, "
                "sessions 310), "
                f"about {310 / median:.1f} times a usual day at that hour "
                "(median 100 over the 7 days before); top source"
                in got["text"])
        assert ("top source: news.ycombinator.com (310 sessions, 310 page views)"
                in got["text"])
        assert "https://analytics.example.com" in got["text"]
        assert got["mail"]["Subject"].startswith("Traffic spike: 310 events")

        materialise(instance, after)  # the next hour is usual again
        assert "1 message(s) sent; open incidents: none" in ticks.tick()
        back = one_each(received)
        assert back["hook"]["status"] == "resolved"
        assert (f"{after:%H:00}–{after + timedelta(hours=1):%H:00} UTC: 99, about as usual at "
                "that hour (median 100 over the 7 days before)") in back["text"]
        assert f"began with {spike:%A} {spike.day}" in back["text"]
        assert "(310 events) and lasted 1 hour" in back["text"]
        for _ in range(2):
            ticks.tick()
        nothing(received)


def test_an_outage_is_told_once_then_data_flowing_again(
    tmp_path: Path, channels: tuple[AlertsResource, dict[str, Received]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alerts, received = channels
    data = tmp_path / "data"
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(data))
    now_hour = floor_hour(datetime.now(UTC))
    # data until five hours ago, then nothing: the collector or Firehose stopped
    write_hour(data / "raw", now_hour - timedelta(hours=6), 40)
    newest = write_hour(data / "raw", now_hour - timedelta(hours=5), 40)
    with dg.DagsterInstance.ephemeral() as instance:
        materialise(instance, now_hour - timedelta(hours=6), now_hour - timedelta(hours=5))
        ticks = Ticks(instance, alerts, data, freshness_hours=2)
        assert "1 message(s) sent; open incidents: freshness" in ticks.tick()
        got = one_each(received)
        age = (datetime.now(UTC) - newest).total_seconds() / 3600
        numbers = got["hook"]["numbers"]
        assert numbers["newest_ingest_ts"].startswith(f"{newest:%Y-%m-%dT%H:%M:%S}")
        assert abs(numbers["age_hours"] - age) < 0.02 and numbers["threshold_hours"] == 2
        assert (f"No new data: the newest event arrived {newest:%A} {newest.day} "
                f"{newest:%B %Y} at {newest:%H:%M} UTC, {numbers['age_hours']:.1f} hours ago "
                "(alert after 2 hours)") in got["text"]
        assert "https://dagster.example.com/runs" in got["text"]
        for _ in range(3):
            assert "0 message(s) sent; open incidents: freshness" in ticks.tick()
        nothing(received)

        # the pipeline gets data again
        fresh = write_hour(data / "raw", now_hour - timedelta(hours=1), 40)
        materialise(instance, now_hour - timedelta(hours=1))
        assert "1 message(s) sent; open incidents: none" in ticks.tick()
        back = one_each(received)
        assert back["hook"]["status"] == "resolved"
        assert (f"Data is flowing again: the newest event arrived at {fresh:%H:%M} UTC"
                in back["text"])
        assert f"no new event since {newest:%H:%M} UTC" in back["text"]
        ticks.tick()
        nothing(received)


def test_a_failed_run_is_told_once_then_its_success(
    tmp_path: Path, channels: tuple[AlertsResource, dict[str, Received]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alerts, received = channels
    data = tmp_path / "data"
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(data))
    hour = floor_hour(datetime.now(UTC)) - timedelta(hours=1)
    write_hour(data / "raw", hour, 30)
    # a real fault: where the events table's folder should be there is a file
    (data / "lake").mkdir(parents=True)
    (data / "lake" / "events").write_text("not a folder")
    with dg.DagsterInstance.ephemeral() as instance:
        ticks = Ticks(instance, alerts, data, freshness_hours=48)
        materialise(instance, hour, ok=False)
        failed = instance.get_run_records(limit=1)[0].dagster_run
        # two incidents at once: no events in the lake at all, and the failed run
        assert "2 message(s) sent; open incidents: freshness, run:events_job" in ticks.tick()
        hooks = received["webhook"].take()
        assert sorted(h["json"]["kind"] for h in hooks) == ["freshness", "run_failure"]
        run_hook = next(h["json"] for h in hooks if h["json"]["kind"] == "run_failure")
        assert run_hook["title"] == "Pipeline run failed: events_job"
        assert run_hook["link"] == f"https://dagster.example.com/runs/{failed.run_id}"
        assert f"(partition {partition_key(hour)})" in run_hook["text"]
        assert re.search(r"events: .*(NotADirectory|FileExists|Not a directory|exists)",
                         run_hook["text"]), run_hook["text"]
        received["email"].take()
        received["slack"].take()
        materialise(instance, hour, ok=False)  # failing again: the same incident
        ticks.tick()
        nothing(received)

        (data / "lake" / "events").unlink()
        materialise(instance, hour)
        ticks.tick()
        kinds = sorted((h["json"]["kind"], h["json"]["status"])
                       for h in received["webhook"].take())
        assert kinds == [("freshness", "resolved"), ("run_failure", "resolved")]
        ticks.tick()
        received["email"].take()
        received["slack"].take()
        nothing(received)


def finished_run(instance: dg.DagsterInstance, assets: set[str], tags: dict[str, str],
                 ok: bool) -> dg.DagsterRun:
    """A finished run started from the asset graph (job __ASSET_JOB: the UI's Materialize, an
    asset backfill, `dagster asset materialize`) of ``assets``, as the instance records it."""
    from dagster._core.remote_origin import (  # what a run launched from the daemon carries
        RegisteredCodeLocationOrigin,
        RemoteJobOrigin,
        RemoteRepositoryOrigin,
    )

    job = "__ASSET_JOB"
    origin = RemoteJobOrigin(RemoteRepositoryOrigin(
        RegisteredCodeLocationOrigin("analytics_platform"), "__repository__"), job)
    run = dg.DagsterRun(job_name=job, run_id=str(uuid.uuid4()), remote_job_origin=origin,
                        status=dg.DagsterRunStatus.NOT_STARTED, tags=tags,
                        asset_selection=frozenset(dg.AssetKey(a) for a in assets))
    instance.add_run(run)
    end = dg.DagsterEventType.RUN_SUCCESS if ok else dg.DagsterEventType.RUN_FAILURE
    for event in (dg.DagsterEventType.RUN_START, end):
        instance.report_dagster_event(dg.DagsterEvent(event.value, job_name=job), run.run_id)
    return run


def test_asset_runs_are_told_apart_by_their_assets() -> None:
    """Runs from the asset graph all have the job __ASSET_JOB: each selection of assets is an
    incident of its own, named by its assets, and it ends when what the failed run was to
    write has been written since (by any run). Before: one `run:__ASSET_JOB` incident, which
    an unrelated asset's successful run ended."""
    from analytics_platform.defs.alerts import incidents

    hour = "2026-03-02-10:00"
    links = incidents.Links("https://dash.example.com", "https://dagster.example.com")
    with dg.instance_for_test() as instance:
        failed = finished_run(instance, {"quarantine", "events"},
                              {PARTITION_RANGE_START_TAG: "2026-03-02-09:00",
                               PARTITION_RANGE_END_TAG: hour}, ok=False)
        finished_run(instance, {"kpis_daily"}, {"dagster/partition": "2026-03-02"}, ok=True)
        seen = {o.key: o for o in incidents.observe_runs(instance)}
        events = seen["run:assets:events,quarantine"]
        assert events.bad and events.facts["run_id"] == failed.run_id
        assert not seen["run:assets:kpis_daily"].bad
        message = incidents.opened(events, links)
        assert message.title == "Pipeline run failed: events, quarantine"
        assert "A run of events, quarantine (partitions 2026-03-02-09:00 … 2026-03-02-10:00)" \
            in message.text and "__ASSET_JOB" not in message.text
        # events_job writes one of the two hours again: not enough
        for key in ("events", "quarantine"):
            instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=hour))
        assert {o.key: o for o in incidents.observe_runs(instance)}[
            "run:assets:events,quarantine"].bad
        # and the other: over
        for key in ("events", "quarantine"):
            instance.report_runless_asset_event(dg.AssetMaterialization(
                key, partition="2026-03-02-09:00"))
        events = {o.key: o for o in incidents.observe_runs(instance)}[
            "run:assets:events,quarantine"]
        assert not events.bad
        text = incidents.resolved(events, seen["run:assets:events,quarantine"].facts, links).text
        assert text.startswith("events, quarantine written again: "), text


def test_no_channel_no_message_and_the_sensor_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, webhook: tuple[str, Received]
) -> None:
    from analytics_platform.defs.alerts.resources import alert_resources, configured_at_load

    for name in ("ANALYTICS_ALERTS_FILE", "ANALYTICS_ALERT_WEBHOOK_URL", "ANALYTICS_SLACK_TOKEN",
                 "ANALYTICS_SLACK_WEBHOOK_URL", "ANALYTICS_SMTP_HOST"):
        monkeypatch.delenv(name, raising=False)
    assert not configured_at_load()
    with dg.DagsterInstance.ephemeral() as instance:
        ticks = Ticks(instance, AlertsResource(), tmp_path, freshness_hours=1)
        assert ticks.tick().startswith("no alert channel configured")
    assert webhook[1].take() == []
    # a YAML file configures the channels; a variable that is set wins over it
    f = tmp_path / "alerts.yaml"
    f.write_text(f"webhook_url: {webhook[0]}\nemail_to: [a@example.com, b@example.com]\n"
                 "smtp_host: mail.example.com\nemail_from: x@example.com\n")
    monkeypatch.setenv("ANALYTICS_ALERTS_FILE", str(f))
    monkeypatch.setenv("ANALYTICS_SMTP_HOST", "smtp.example.com")
    assert configured_at_load()
    resource = alert_resources().resources["alerts"]
    ch = resource.process_config_and_initialize().channels()
    assert ch.names() == ["webhook", "email"]
    assert (ch.webhook_url, ch.smtp_host, ch.email_to) == (
        webhook[0], "smtp.example.com", ("a@example.com", "b@example.com"))
    f.write_text("webhook_ur1: http://typo\n")
    with pytest.raises(ValueError, match="unknown keys"):
        AlertsResource(config_file=str(f)).channels()


# --- the weekly report -------------------------------------------------------------------------

WEEK = date(2026, 3, 9)  # a Monday; the week before starts on 2 March


@pytest.fixture(scope="module")
def marts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two simulated weeks, backfilled through Dagster into the marts."""
    from analytics_platform.backfill import run_backfill
    from analytics_platform.simulate import SimConfig, generate, write_traffic

    data = tmp_path_factory.mktemp("weekly") / "data"
    write_traffic(generate(SimConfig(days=14, visitors_per_day=250, start=WEEK - timedelta(7),
                                     seed=20)), open_raw_lake(data / "raw"), progress=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ANALYTICS_DATA_DIR", str(data))
        mp.setenv("ANALYTICS_LATE_ARRIVAL_HOURS", "4")
        mp.delenv("ANALYTICS_RAW_URL", raising=False)
        with dg.DagsterInstance.ephemeral() as instance:
            assert run_backfill(WEEK - timedelta(7), WEEK + timedelta(6), instance=instance,
                                log=lambda _: None).success
    return data


def expected_week(data: Path, start: date) -> dict[str, Any]:
    """The week's numbers summed here in Python from the marts' rows, and checked against the
    sessions table."""
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    end = start + timedelta(days=7)

    def rows(q: str) -> list[tuple]:
        return con.execute(q, {"a": start, "b": end}).fetchall()

    kpis = rows("SELECT visitors, sessions, pageviews, conversions FROM kpis_daily "
                "WHERE date >= $a AND date < $b")
    sessions = rows("SELECT count(*), count(*) FILTER (converted) FROM sessions "
                    "WHERE session_date >= $a AND session_date < $b")[0]
    sources: dict[str, int] = {}
    for s, n in rows("SELECT source, sessions FROM attribution_daily "
                     "WHERE date >= $a AND date < $b"):
        sources[s] = sources.get(s, 0) + n
    pages: dict[str, int] = {}
    for p, n in rows("SELECT page_path, pageviews FROM pages_daily WHERE date >= $a AND date < $b"):
        pages[p] = pages.get(p, 0) + n
    con.close()
    out = {"days": len(kpis), "visitors": sum(r[0] for r in kpis),
           "sessions": sum(r[1] for r in kpis), "pageviews": sum(r[2] for r in kpis),
           "conversions": sum(r[3] for r in kpis)}
    assert (out["sessions"], out["conversions"]) == sessions  # the marts agree with sessions
    out["conversion_rate"] = out["conversions"] / out["sessions"]
    top = lambda d: sorted(d.items(), key=lambda kv: (-kv[1], kv[0]))[:5]  # noqa: E731
    out["sources"], out["pages"] = top(sources), top(pages)
    return out


def test_the_weekly_report_holds_the_marts_numbers_on_every_channel(
    marts: Path, channels: tuple[AlertsResource, dict[str, Received]]
) -> None:
    alerts, received = channels
    this, before = expected_week(marts, WEEK), expected_week(marts, WEEK - timedelta(7))
    assert this["days"] == before["days"] == 7 and this["sessions"] > 1000

    # the schedule asks for the last full week
    ctx = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 3, 16, 8, tzinfo=UTC))
    request = report.weekly_report_schedule(ctx)
    assert request.run_config == {"ops": {"send_weekly_report": {"config": {
        "week_start": "2026-03-09"}}}}
    result = report.weekly_report_job.execute_in_process(
        run_config=request.run_config,
        resources={"alerts": alerts, "lake": LakeResource(data_dir=str(marts))})
    assert result.success

    hook = received["webhook"].take()
    assert len(hook) == 1
    n = hook[0]["json"]["numbers"]
    for week, want in (("this_week", this), ("week_before", before)):
        got = n[week]
        assert {k: got[k] for k in ("days", "visitors", "sessions", "pageviews",
                                    "conversions")} == {
            k: want[k] for k in ("days", "visitors", "sessions", "pageviews", "conversions")}
        assert got["conversion_rate"] == pytest.approx(want["conversion_rate"])
    assert [(s["source"], s["sessions"]) for s in n["top_sources"]] == this["sources"]
    assert [(p["page"], p["pageviews"]) for p in n["top_pages"]] == this["pages"]
    before_sources = dict(expected_week(marts, WEEK - timedelta(7))["sources"])
    for s in n["top_sources"]:
        if s["source"] in before_sources:
            assert s["week_before"] == before_sources[s["source"]]

    # the e-mail: text, HTML with the chart inline by Content-ID
    mails = received["email"].take()
    assert len(mails) == 1
    msg = mails[0]["message"]
    text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert f"Visitors: {this['visitors']:,} (week before {before['visitors']:,}" in text
    assert f"Conversion rate: {this['conversion_rate']:.1%}" in text
    html_part = msg.get_body(("html",))
    assert 'src="cid:chart@analytics-platform"' in html_part.get_content()
    images = [p for p in msg.walk() if p.get_content_type() == "image/png"]
    assert len(images) == 1 and images[0]["Content-ID"] == "<chart@analytics-platform>"
    png = images[0].get_payload(decode=True)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000

    # Slack: blocks with the numbers, then the chart uploaded by files_upload_v2
    calls = received["slack"].take()
    assert [c["method"] for c in calls] == ["chat.postMessage", "files.getUploadURLExternal",
                                            "upload", "files.completeUploadExternal"]
    blocks = calls[0]["args"]["blocks"]
    fields = [f["text"] for f in blocks[1]["fields"]]
    assert fields[0].startswith(f"*Visitors*\n{this['visitors']:,} (")
    assert calls[2]["bytes"] == png
    assert calls[3]["args"]["channel_id"] == "C0ALERTS"


def test_the_weekly_report_fails_loudly_on_a_week_without_data(
    marts: Path, channels: tuple[AlertsResource, dict[str, Received]]
) -> None:
    alerts, received = channels
    result = report.weekly_report_job.execute_in_process(
        run_config={"ops": {"send_weekly_report": {"config": {"week_start": "2026-06-01"}}}},
        resources={"alerts": alerts, "lake": LakeResource(data_dir=str(marts))},
        raise_on_error=False)
    assert not result.success
    nothing(received)


def test_an_asset_job_incident_of_the_cursor_before_is_dropped() -> None:
    """The cursor of a sensor before runs from the asset graph were told apart held them as one
    incident, ``run:__ASSET_JOB``, which nothing looks at now: it would stay open for ever (found
    in the diff's review). It is dropped as the cursor is read; the others are kept."""
    from analytics_platform.defs.alerts.incidents import State

    facts = {"run_id": "abc", "reason": "events: boom"}
    for cursor in ({"v": 2, "open": {"run:__ASSET_JOB": facts, "run:events_job": facts,
                                     "traffic": {"events": 3}}, "outbox": {}},
                   {"run:__ASSET_JOB": facts, "run:events_job": facts, "traffic": {"events": 3}}):
        state = State.from_cursor(json.dumps(cursor))
        assert set(state.open) == {"run:events_job", "traffic"}
        assert state.outbox == {}
