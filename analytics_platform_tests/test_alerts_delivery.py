"""Alerts that must arrive once and as typed, against real servers on 127.0.0.1: a channel that
accepts and never answers, a tick cut short, a webhook that redirects, an SMTP server that
refuses a recipient, SMTP's usual ports, text from the data aimed at Slack, the top source of a
spike, and a weekly report over a week with a day missing.

The servers and helpers are test_alerts.py's.
"""

from __future__ import annotations

import email
import gzip
import html
import json
import shutil
import socket
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from email import policy
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest
from aiosmtpd.controller import Controller

from analytics_platform.defs.alerts import channels as channels_module
from analytics_platform.defs.alerts import incidents, report
from analytics_platform.defs.alerts.channels import Channels, Message
from analytics_platform.defs.alerts.resources import AlertsResource
from analytics_platform.defs.alerts.sensors import alerts_sensor
from analytics_platform.lake import floor_hour, open_raw_lake
from analytics_platform.resources import LakeResource, PipelineSettings
from analytics_platform_tests import test_alerts as shared
from analytics_platform_tests.test_alerts import (
    BASE,
    PAGES,
    UA,
    WEEK,
    Received,
    _serve,
    expected_week,
    materialise,
    write_hour,
)

# test_alerts.py's servers and marts, as fixtures of this module too
webhook, slack, smtp, channels, marts = (shared.webhook, shared.slack, shared.smtp,
                                         shared.channels, shared.marts)

SITE = "www.brightpath.example"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Blackhole:
    """A TCP server that accepts connections and never says a word (a mail server hung, or a
    firewall that accepts and drops): every SMTP client waits for its timeout."""

    def __init__(self, port: int = 0) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)  # held open, never answered

    def close(self) -> None:
        # shutdown first: a close alone leaves the accept() blocked in the thread holding the
        # listening socket, and the port busy
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        for c in self.accepted:
            c.close()


def _smtp_server(port: int, got: Received, refuse: str | None = None) -> Controller:
    class Handler:
        async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                              rcpt_options: list[str]) -> str:
            if refuse and address.startswith(refuse):
                return "550 5.1.1 mailbox unavailable"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            got.add({"to": list(envelope.rcpt_tos),
                     "message": email.message_from_bytes(envelope.content,
                                                         policy=policy.default)})
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    return controller


class DaemonTicks:
    """The sensor's ticks as the daemon runs them: the cursor a tick returns is kept only when
    the evaluation ended within ``limit`` seconds (DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS, scaled
    down here with the channels' timeout); past it the tick fails and its cursor is lost, while
    the code server still runs the function to its end."""

    def __init__(self, instance: dg.DagsterInstance, alerts: AlertsResource, data: Path,
                 limit: float) -> None:
        self.instance, self.cursor, self.limit = instance, None, limit
        self.resources = {"alerts": alerts, "lake": LakeResource(data_dir=str(data)),
                          "pipeline": PipelineSettings(freshness_hours=48)}
        self.durations: list[float] = []

    def tick(self, lose_cursor: bool = False) -> str | None:
        """One tick; ``lose_cursor``: the daemon stops before saving it (a restart, a deploy)."""
        ctx = dg.build_sensor_context(instance=self.instance, cursor=self.cursor,
                                      resources=self.resources)
        out: dict[str, Any] = {}
        started = time.monotonic()
        thread = threading.Thread(target=lambda: out.update(r=alerts_sensor(ctx)))
        thread.start()
        thread.join(self.limit)
        in_time = not thread.is_alive()
        thread.join()  # the code server carries on; the next tick starts after
        self.durations.append(time.monotonic() - started)
        if in_time and not lose_cursor:
            self.cursor = ctx.cursor
            return out["r"].skip_message
        return None


def _failed_runs(instance: dg.DagsterInstance, jobs: list[str]) -> None:
    """One real failed run of each job (an op that raises)."""
    for name in jobs:
        @dg.op(name=f"{name}_op")
        def boom() -> None:
            raise RuntimeError("disk full")

        @dg.job(name=name)
        def job() -> None:
            boom()

        assert not job.execute_in_process(instance=instance, raise_on_error=False).success


def _titles(received: Received) -> list[str]:
    return sorted(h["json"]["title"] for h in received.take())


JOBS = ["daily_job", "events_job", "history_job", "weekly_report_job"]
EXPECTED_TITLES = sorted(["No data in the lake",
                          *(f"Pipeline run failed: {j}" for j in JOBS)])


# --- 1. a slow channel, a tick cut short -------------------------------------------------------


def test_a_channel_that_never_answers_delays_its_messages_and_repeats_none(
    tmp_path: Path, webhook: tuple[str, Received], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Dagster's 60 s limit and the channels' 15 s timeout, scaled down by 15: 4 s and 1 s
    monkeypatch.setattr(channels_module, "TIMEOUT_SECONDS", 1)
    monkeypatch.setattr(incidents, "SEND_BUDGET_SECONDS", 2, raising=False)
    hole = Blackhole()
    alerts = AlertsResource(
        config_file=None, webhook_url=webhook[0], smtp_host="127.0.0.1", smtp_port=hole.port,
        smtp_security="none", email_from="a@example.com", email_to="owner@example.com",
        dashboard_url="https://analytics.example.com", dagster_url="https://dagster.example.com")
    mails = Received()
    with dg.DagsterInstance.ephemeral() as instance:
        _failed_runs(instance, JOBS)  # with the empty lake: five incidents at once
        ticks = DaemonTicks(instance, alerts, tmp_path / "data", limit=4)
        for _ in range(3):
            ticks.tick()
        # the webhook has each message once, though e-mail failed on every tick
        assert _titles(webhook[1]) == EXPECTED_TITLES
        assert all(d < 4 for d in ticks.durations), ticks.durations
        last = ticks.tick()
        assert last is not None and "waiting for email: No data in the lake" in last
        assert webhook[1].take() == []

        # the mail server comes back on the same port: e-mail gets the five, once each
        hole.close()
        controller = _smtp_server(hole.port, mails)
        try:
            assert ticks.tick() == ("5 message(s) sent; open incidents: freshness, "
                                    + ", ".join(f"run:{j}" for j in JOBS))
            ticks.tick()
        finally:
            controller.stop()
        assert sorted(m["message"]["Subject"] for m in mails.take()) == EXPECTED_TITLES
        assert webhook[1].take() == []


def test_a_tick_whose_cursor_is_lost_sends_nothing_twice(
    tmp_path: Path, webhook: tuple[str, Received]
) -> None:
    alerts = AlertsResource(config_file=None, webhook_url=webhook[0],
                            dashboard_url="https://analytics.example.com",
                            dagster_url="https://dagster.example.com")
    with dg.DagsterInstance.ephemeral() as instance:
        _failed_runs(instance, JOBS[:2])
        ticks = DaemonTicks(instance, alerts, tmp_path / "data", limit=30)
        # the daemon stops after the tick sent its messages and before it saved the cursor
        assert ticks.tick(lose_cursor=True) is None
        assert _titles(webhook[1]) == ["No data in the lake", "Pipeline run failed: daily_job",
                                       "Pipeline run failed: events_job"]
        for _ in range(2):
            msg = ticks.tick()
            assert msg is not None and msg.startswith("0 message(s) sent; open incidents: "
                                                      "freshness, run:daily_job, run:events_job")
        assert webhook[1].take() == []


# --- 5. a webhook that redirects ---------------------------------------------------------------


def test_a_webhook_that_redirects_is_not_delivered_and_says_where(tmp_path: Path) -> None:
    # the reviewer's case: 301 to another path of the same server, which answers a GET with 200
    posts: list[str] = []
    gets: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            posts.append(self.path)
            self.send_response(301)
            self.send_header("Location", "/hook/")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:  # where a followed redirect lands: a page, 200
            gets.append(self.path)
            body = b"<html>method not allowed, rendered as 200</html>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server, url = _serve(Handler)
    try:
        alerts = AlertsResource(config_file=None, webhook_url=f"{url}/hook")
        with dg.DagsterInstance.ephemeral() as instance:
            ticks = DaemonTicks(instance, alerts, tmp_path / "data", limit=30)
            msg = ticks.tick()
        assert msg == ("0 message(s) sent; open incidents: freshness; waiting for webhook: "
                       "No data in the lake")
        outcome = alerts.channels().send(
            Message("anomaly", "open", "Traffic spike", "text", "http://x"), lambda _: None)
    finally:
        server.shutdown()
    assert outcome.delivered == []
    assert outcome.errors["webhook"].startswith("RuntimeError: webhook answered 301 ")
    assert "redirecting to '/hook/'" in outcome.errors["webhook"]
    assert posts == ["/hook", "/hook"] and gets == []


# --- 6. a refused recipient --------------------------------------------------------------------


def test_a_refused_recipient_is_reported_and_the_others_get_it_once(tmp_path: Path) -> None:
    got = Received()
    port = _free_port()
    controller = _smtp_server(port, got, refuse="ops@")
    try:
        ch = Channels(smtp_host="127.0.0.1", smtp_port=port, smtp_security="none",
                      email_from="a@example.com", email_to=("owner@example.com",
                                                            "ops@example.com"))
        logged: list[str] = []
        outcome = ch.send(Message("freshness", "open", "No data in the lake", "text",
                                  "http://x"), logged.append)
        assert [m["to"] for m in got.take()] == [["owner@example.com"]]
        assert outcome.delivered == ["email"]
        assert "ops@example.com (550 5.1.1 mailbox unavailable)" in outcome.errors["email"]
        assert len(logged) == 1 and "ops@example.com (550" in logged[0]

        # through the sensor: delivered in part is delivered, not sent to owner@ again
        alerts = AlertsResource(config_file=None, smtp_host="127.0.0.1", smtp_port=port,
                                smtp_security="none", email_from="a@example.com",
                                email_to="owner@example.com, ops@example.com")
        with dg.DagsterInstance.ephemeral() as instance:
            ticks = DaemonTicks(instance, alerts, tmp_path / "data", limit=30)
            assert ticks.tick() == "1 message(s) sent; open incidents: freshness"
            assert ticks.tick() == "0 message(s) sent; open incidents: freshness"
        assert [m["to"] for m in got.take()] == [["owner@example.com"]]
    finally:
        controller.stop()


# --- 7. SMTP's usual port for each kind of security --------------------------------------------


@pytest.mark.parametrize(("security", "port"), [("ssl", 465), ("starttls", 587), ("none", 25)])
def test_smtp_without_a_port_uses_the_usual_one(security: str, port: int) -> None:
    # the well-known port itself, bound on 127.0.0.1: which one the client knocks on is seen
    try:
        hole = Blackhole(port)
    except OSError as e:  # not root, or a mail server on this machine
        pytest.skip(f"cannot listen on 127.0.0.1:{port}: {e}")
    try:
        old = channels_module.TIMEOUT_SECONDS
        channels_module.TIMEOUT_SECONDS = 1
        try:
            logged: list[str] = []
            Channels(smtp_host="127.0.0.1", smtp_security=security, email_from="a@example.com",
                     email_to=("b@example.com",)).send(
                Message("freshness", "open", "t", "text", "http://x"), logged.append)
        finally:
            channels_module.TIMEOUT_SECONDS = old
        assert len(logged) == 1 and "not delivered to email" in logged[0]  # it never answers
        deadline = time.monotonic() + 2
        while not hole.accepted and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(hole.accepted) == 1, f"nothing connected to {port} for {security}"
    finally:
        hole.close()


# --- 2. text from the data, aimed at Slack -----------------------------------------------------

EVIL = "<!channel> <https://evil.example/reset|Your password expired, sign in again> & `x`"


def _visit_records(hour: datetime, n: int, referrer: str, utm: str | None = None,
                   pages: int = 1, offset: int = 0, session: list[str] | None = None
                   ) -> list[dict[str, Any]]:
    """``n`` visits arriving during ``hour``, each ``pages`` page views: the first from
    ``referrer`` (and ``utm``), the next from the page before on the site. ``session``: their
    session and visitor ids (to continue visits begun earlier)."""
    out = []
    for i in range(n):
        sid, vid = session[i].split("|") if session else (str(uuid.uuid4()), str(uuid.uuid4()))
        for k in range(pages):
            ts = hour + timedelta(seconds=1 + i * 3000 / n + k * 20)
            first = k == 0 and offset == 0
            out.append({
                "event_type": "page_view", "event_id": str(uuid.uuid4()),
                "session_id": sid, "visitor_id": vid,
                "page_path": PAGES[(k + offset) % len(PAGES)], "page_host": SITE,
                "page_title": "BrightPath",
                "referrer": referrer if first
                else f"https://{SITE}{PAGES[(k + offset - 1) % len(PAGES)]}",
                **({"utm_source": utm} if utm and first else {}),
                "screen_width": 1440, "screen_height": 900,
                "event_ts": f"{ts:%Y-%m-%dT%H:%M:%S}.000Z",
                "sent_ts": f"{ts + timedelta(seconds=1):%Y-%m-%dT%H:%M:%S}.000Z",
                "ingest_ts": f"{ts + timedelta(seconds=1.5):%Y-%m-%dT%H:%M:%S.%f}"[:-3] + "Z",
                "user_agent": UA, "props": {}, "schema_version": 1})
    return out


def _write(raw: Path, hour: datetime, records: list[dict[str, Any]]) -> None:
    body = b"".join(json.dumps(r).encode() + b"\n" for r in records)
    open_raw_lake(raw).write_records(hour, gzip.compress(body))


def _spike(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, alerts: AlertsResource,
           records_before: list[dict[str, Any]], records: list[dict[str, Any]]) -> str:
    data = tmp_path / "data"
    monkeypatch.setenv("ANALYTICS_DATA_DIR", str(data))
    raw = data / "raw"
    spike = floor_hour(datetime.now(UTC)) - timedelta(hours=1)
    for d, base in enumerate(BASE, start=1):
        write_hour(raw, spike - timedelta(days=d), base)
    if records_before:
        _write(raw, spike - timedelta(hours=1), records_before)
    _write(raw, spike, records)
    with dg.DagsterInstance.ephemeral() as instance:
        materialise(instance, spike - timedelta(days=7), spike)
        ticks = DaemonTicks(instance, alerts, data, limit=30)
        msg = ticks.tick()
    assert msg is not None
    return msg


def test_a_source_from_the_data_reaches_slack_as_typed_and_harmless(
    tmp_path: Path, channels: tuple[AlertsResource, dict[str, Received]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alerts, received = channels
    spike = floor_hour(datetime.now(UTC)) - timedelta(hours=1)
    msg = _spike(tmp_path, monkeypatch, alerts, [],
                 _visit_records(spike, 310, "https://www.google.com/", utm=EVIL))
    assert "1 message(s) sent; open incidents: traffic" in msg
    hook = received["webhook"].take()[0]["json"]
    source = hook["numbers"]["top_source"]
    # the pipeline lower-cases utm_source; the webhook (JSON) and the e-mail (plain text) carry
    # it as stored, which is what a reader of either should see
    assert source == EVIL.lower()
    assert f"top source: {source} (" in hook["text"]
    mail = received["email"].take()[0]["message"]
    assert f"top source: {source} (" in mail.get_body(("plain",)).get_content()
    post = next(c["args"] for c in received["slack"].take()
                if c["method"] == "chat.postMessage")
    blocks = json.loads(post["blocks"]) if isinstance(post["blocks"], str) else post["blocks"]
    for text in (post["text"], blocks[1]["text"]["text"]):
        # Slack reads <…> as a mention or a link, and decodes &amp; &lt; &gt; only: no "<" or
        # ">" may be left, and decoding gives back the value as typed
        assert "<" not in text and ">" not in text, text
        assert f"top source: {source} (" in html.unescape(text)
        assert "&lt;!channel&gt;" in text and "&amp; `x`" in text


def test_a_weekly_report_name_cannot_break_out_of_its_code_span() -> None:
    name = "`*bold*` <!here> & <https://evil.example|x>\nnext line"
    numbers = report.WeeklyNumbers(
        WEEK, report.Week(days=7, visitors=700, sessions=800, pageviews=900),
        report.Week(days=7, visitors=600, sessions=700, pageviews=800),
        sources=[(name, 50, 40)], pages=[("/pricing", 30, 30)])
    message = report.weekly_message(numbers, "https://analytics.example.com")
    line = message.blocks[2]["text"]["text"].splitlines()[1]
    # one code span holding the whole name: two backticks, both at its ends
    assert line.startswith("• `") and line.count("`") == 2 and line.endswith("` 50 (+25%)")
    inside = line[len("• `"):-len("` 50 (+25%)")]
    assert "<" not in inside and ">" not in inside
    assert html.unescape(inside) == name.replace("`", "\u02cb").replace("\n", " ")
    assert "<!here>" not in message.slack_text() and "&lt;!here&gt;" in message.slack_text()
    # the e-mail's HTML escapes it too
    assert "<!here>" not in message.html and html.escape(name.split("\n")[0]) in message.html


# --- 3. the top source of a spike --------------------------------------------------------------


def test_the_top_source_is_where_the_sessions_came_from_not_the_site(
    tmp_path: Path, channels: tuple[AlertsResource, dict[str, Received]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alerts, received = channels
    spike = floor_hour(datetime.now(UTC)) - timedelta(hours=1)
    # 200 visitors from Hacker News, 3 page views each (the 2nd and 3rd referred by the site);
    # 20 from DuckDuckGo who arrived the hour before and view 2 more pages during the spike
    began = [f"{uuid.uuid4()}|{uuid.uuid4()}" for _ in range(20)]
    earlier = _visit_records(spike - timedelta(hours=1), 20, "https://duckduckgo.com/",
                             session=began)
    during = (_visit_records(spike, 200, "https://news.ycombinator.com/item?id=42", pages=3)
              + _visit_records(spike, 20, "https://duckduckgo.com/", pages=2, offset=1,
                               session=began))
    msg = _spike(tmp_path, monkeypatch, alerts, earlier, during)
    assert "1 message(s) sent; open incidents: traffic" in msg
    hook = received["webhook"].take()[0]["json"]
    n = hook["numbers"]
    assert n["top_source"] == "news.ycombinator.com"
    assert (n["top_source_sessions"], n["top_source_pageviews"]) == (200, 600)
    assert (n["events"], n["pageviews"], n["sessions"]) == (640, 640, 220)
    assert ("top source: news.ycombinator.com (200 sessions, 600 page views)"
            in hook["text"])


# --- 4. a week with a day missing --------------------------------------------------------------


def test_a_weekly_report_over_an_incomplete_week_says_so_and_compares_days(
    marts: Path, tmp_path: Path, webhook: tuple[str, Received]
) -> None:
    # the week before without its Tuesday in the marts (a day never backfilled)
    data = tmp_path / "data"
    shutil.copytree(marts, data)
    gone = WEEK - timedelta(days=6)
    assert f"{gone:%a}" == "Tue"
    for mart in ("kpis_daily", "attribution_daily", "pages_daily"):
        shutil.rmtree(data / "lake" / mart / f"date={gone}")
    this, before = expected_week(marts, WEEK), expected_week(marts, WEEK - timedelta(7))
    con = duckdb.connect(str(marts / "warehouse.duckdb"), read_only=True)
    tue = con.execute("SELECT visitors FROM kpis_daily WHERE date = $d", {"d": gone}).fetchone()
    con.close()
    before_visitors = before["visitors"] - tue[0]
    per_day = (this["visitors"] / 7) / (before_visitors / 6) - 1
    change = f"{per_day:+.0%} per day" if abs(per_day) >= 0.005 else "no change per day"
    naive = this["visitors"] / before_visitors - 1  # 7 days against 6: what was reported
    assert naive > 0.10
    alerts = AlertsResource(config_file=None, webhook_url=webhook[0],
                            dashboard_url="https://analytics.example.com")
    result = report.weekly_report_job.execute_in_process(
        run_config={"ops": {"send_weekly_report": {"config": {"week_start": str(WEEK)}}}},
        resources={"alerts": alerts, "lake": LakeResource(data_dir=str(data))})
    assert result.success
    hook = webhook[1].take()[0]["json"]
    assert hook["numbers"]["week_before"]["days"] == 6
    assert hook["title"] == (f"Weekly report, Mon 09 Mar – Sun 15 Mar 2026 (incomplete data): "
                             f"{this['visitors']:,} visitors ({change})")
    assert ("Incomplete data: the week before has only 6 of its 7 days in kpis_daily "
            "(missing: Tue 03 Mar), so changes compare daily averages." in hook["text"])
    assert (f"Visitors: {this['visitors']:,} (week before {before_visitors:,} in 6 days, "
            f"{change})" in hook["text"])
    assert f"{naive:+.0%}" not in hook["text"]
    assert hook["numbers"]["complete"] is False
    assert hook["numbers"]["missing_days"] == [str(gone)]

