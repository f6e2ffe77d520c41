"""The weekly report: last week's visitors, sessions, conversion rate, top sources and pages
against the week before, and a chart, to the alert channels (Mondays 08:00 UTC by default,
``$ANALYTICS_WEEKLY_REPORT_CRON``).

The numbers are read from the daily marts (``kpis_daily``, ``attribution_daily``,
``pages_daily``) with DuckDB; the chart is drawn with matplotlib (Agg, no display, no
browser) as a PNG, inline in the e-mail and uploaded to Slack when a token is configured.
"""

import html
import io
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import dagster as dg
import duckdb

from analytics_platform import settings, sql
from analytics_platform.defs.alerts.channels import CHART_CID, Message, slack_code
from analytics_platform.defs.alerts.resources import AlertsResource, configured_at_load
from analytics_platform.layout import day_folder
from analytics_platform.resources import LakeResource
from analytics_platform.storage import Lake

TOP = 5


@dataclass
class Week:
    """One week's numbers (``None`` where the week has no day in the marts)."""

    days: int = 0  # the days the pipeline processed (with a kpis_daily row or not)
    visitors: int = 0
    sessions: int = 0
    pageviews: int = 0
    conversions: int = 0
    conversion_rate: float | None = None
    bounce_rate: float | None = None


@dataclass
class WeeklyNumbers:
    start: date  # the Monday
    this: Week
    before: Week
    sources: list[tuple[str, int, int]]  # name, sessions this week, the week before
    pages: list[tuple[str, int, int]]  # path, page views this week, the week before
    daily: list[tuple[date, int]] = field(default_factory=list)  # visitors per day, both weeks
    # the days of both weeks the pipeline processed: those with a kpis_daily row, and those
    # without one that it materialised (a day without sessions has no row, CONTRACT §5)
    processed: frozenset[date] = frozenset()

    @property
    def end(self) -> date:
        return self.start + timedelta(days=6)

    @property
    def partial(self) -> bool:
        """Whether either week misses days the pipeline has not processed: then the changes
        compare daily averages, since a week of 6 days against one of 7 reads as a drop that
        never was."""
        return self.this.days < 7 or self.before.days < 7

    def missing_days(self) -> list[date]:
        """The days of both weeks the pipeline has not processed (no kpis_daily row, and no
        materialisation of the day)."""
        have = self.processed | {d for d, _ in self.daily}
        first = self.start - timedelta(days=7)
        return [d for d in (first + timedelta(days=i) for i in range(14)) if d not in have]


def report_week(sent: datetime | date) -> date:
    """The Monday of the last full week (Monday–Sunday) before the day the report is sent."""
    day = sent.date() if isinstance(sent, datetime) else sent
    return day - timedelta(days=day.weekday() + 7)


def processed_days(instance: dg.DagsterInstance) -> set[date]:
    """The days whose ``kpis_daily`` partition the pipeline materialised: a day it processed,
    with a row or, without sessions, none (CONTRACT §5)."""
    return {date.fromisoformat(key) for key in
            instance.get_materialized_partitions(dg.AssetKey("kpis_daily"))}


def weekly_numbers(lake: Lake, start: date, top: int = TOP,
                   processed: Collection[date] = ()) -> WeeklyNumbers:
    """Read the week starting on ``start`` and the week before from the marts. A day counts as
    processed when it has a kpis_daily row or is in ``processed`` (:func:`processed_days`); a
    processed day without a row is a day without sessions: zero, not missing. Without
    ``processed`` only the days with a row count, the marts being all there is to go on."""
    if start.weekday() != 0:
        raise ValueError(f"a report week starts on a Monday, not on {start:%A} {start}")
    prev, end = start - timedelta(days=7), start + timedelta(days=7)
    folders = [day_folder(datetime(d.year, d.month, d.day))
               for d in (prev + timedelta(days=i) for i in range(14))]
    params = {"week_start": start, "prev_start": prev, "week_end": end}
    con = duckdb.connect()
    weeks = {True: Week(), False: Week()}
    kpis = lake.existing("kpis_daily", folders)
    if kpis:
        cur = con.execute(sql.load("alerts/weekly_kpis"), {"files": kpis, **params})
        cols = [d[0] for d in cur.description]
        for row in cur.fetchall():
            values = dict(zip(cols, row, strict=True))
            this_week = values.pop("this_week")
            weeks[this_week] = Week(**values)
    daily = (con.execute(sql.load("alerts/weekly_daily"),
                         {"files": kpis, "prev_start": prev, "week_end": end}).fetchall()
             if kpis else [])

    def ranked(mart: str, label: str, measure: str) -> list[tuple[str, int, int]]:
        files = lake.existing(mart, folders)
        if not files:
            return []
        return con.execute(sql.load("alerts/weekly_top", label=label, measure=measure),
                           {"files": files, "top": top, **params}).fetchall()

    # a week's days: those processed, whether a row says so or the instance does (a tiny
    # site's quiet day has none: counted as missing, its week read as incomplete, and a week
    # without any visitor failed the report instead of saying 0)
    done = frozenset({d for d in processed if prev <= d < end} | {d for d, _ in daily})
    for this_week, week in weeks.items():
        first = start if this_week else prev
        week.days = sum(first <= d < first + timedelta(days=7) for d in done)
    numbers = WeeklyNumbers(start, weeks[True], weeks[False],
                            ranked("attribution_daily", "source", "sessions"),
                            ranked("pages_daily", "page_path", "pageviews"), daily, done)
    con.close()
    return numbers


# --- rendering ---------------------------------------------------------------------------------


def _change(now: float, before: float, days: tuple[int, int] = (7, 7)) -> str:
    """The change from ``before`` to ``now``, of the daily averages when ``days`` (this week's,
    the week before's) are not both 7; "–" when the week before has no day to compare with."""
    this_days, before_days = days
    if this_days == 0 or before_days == 0:
        return "–"
    now, before = now / this_days * 7, before / before_days * 7
    if not before:
        return "new" if now else "no change"
    pct = (now - before) / before
    per_day = " per day" if days != (7, 7) else ""
    return f"{pct:+.0%}{per_day}" if abs(pct) >= 0.005 else f"no change{per_day}"


def _rate(r: float | None) -> str:
    return "–" if r is None else f"{r:.1%}"


def _rate_change(now: float | None, before: float | None) -> str:
    if now is None or before is None:
        return "–"
    return f"{(now - before) * 100:+.1f} points"


def headline_rows(n: WeeklyNumbers) -> list[tuple[str, str, str, str]]:
    """(what, this week, the week before, change) for the headline numbers."""
    t, b, days = n.this, n.before, (n.this.days, n.before.days)

    def total(v: int, week: Week) -> str:
        # a week's total says over how many days when that is not 7; none: no number at all
        if not week.days:
            return "–"
        return f"{v:,}" if week.days == 7 else f"{v:,} in {week.days} day{'s' * (week.days != 1)}"

    return [
        (what, total(getattr(t, k), t), total(getattr(b, k), b),
         _change(getattr(t, k), getattr(b, k), days))
        for what, k in (("Visitors", "visitors"), ("Sessions", "sessions"),
                        ("Page views", "pageviews"))
    ] + [("Conversion rate", _rate(t.conversion_rate), _rate(b.conversion_rate),
          _rate_change(t.conversion_rate, b.conversion_rate))]


def _partial_note(n: WeeklyNumbers) -> str | None:
    """The sentence that says a week is incomplete, and how the report compares it."""
    if not n.partial:
        return None
    weeks = [f"{label} has {f'only {w.days}' if w.days else 'none'} of its 7 days"
             for label, w in (("this week", n.this), ("the week before", n.before))
             if w.days < 7]
    missing = ", ".join(f"{d:%a %d %b}" for d in n.missing_days())
    how = ("there is nothing to compare with" if n.before.days == 0
           else "changes compare daily averages")
    return f"Incomplete data: {' and '.join(weeks)} in kpis_daily (missing: {missing}), so {how}."


def chart_png(n: WeeklyNumbers) -> bytes:
    """Visitors per day, this week against the week before, by day of the week (PNG)."""
    by_day = dict(n.daily)
    labels = [(n.start + timedelta(days=i)).strftime("%a") for i in range(7)]
    this = [by_day.get(n.start + timedelta(days=i), 0) for i in range(7)]
    before = [by_day.get(n.start - timedelta(days=7 - i), 0) for i in range(7)]
    # imported here, not with the module: matplotlib took 0.6 s of the 2.7 s every process
    # spends loading the definitions (the CLI, each run's process, the code server), for a
    # chart drawn once a week (2026-12-07, `python -X importtime`)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 3.2), dpi=100)  # no pyplot: no global state, no display
    ax = fig.subplots()
    x = range(7)
    ax.bar([i - 0.2 for i in x], before, width=0.4, color="#c7cdd6", label="week before")
    ax.bar([i + 0.2 for i in x], this, width=0.4, color="#3b6fd8", label="this week")
    ax.set_xticks(list(x), labels)
    ax.set_ylabel("visitors")
    ax.set_title(f"Visitors per day, week of {n.start:%d %b %Y}", fontsize=11)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(frameon=False, fontsize=9, ncols=2, loc="upper center",
              bbox_to_anchor=(0.5, -0.12))  # below the bars, never over them
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _before(before: int, days: tuple[int, int]) -> str:
    """A top row's number of the week before: "–" when that week has no processed day (not a
    0 it never counted)."""
    return f"{before:,}" if days[1] else "–"


def _top_lines(rows: list[tuple[str, int, int]], days: tuple[int, int]) -> list[str]:
    return [f"  {name}: {now:,} (week before {_before(before, days)}, "
            f"{_change(now, before, days)})" for name, now, before in rows] or ["  (none)"]


def _html_table(head: list[str], rows: list[tuple[Any, ...]]) -> str:
    th = "".join(f'<th style="text-align:left;padding:4px 12px 4px 0">{html.escape(h)}</th>'
                 for h in head)
    body = "".join("<tr>" + "".join(f'<td style="padding:4px 12px 4px 0">{html.escape(str(c))}'
                                    "</td>" for c in r) + "</tr>" for r in rows)
    return f"<table style=\"border-collapse:collapse\"><tr>{th}</tr>{body}</table>"


def weekly_message(n: WeeklyNumbers, dashboard_url: str) -> Message:
    """The report as one message: text, HTML (chart inline), Slack blocks, the numbers."""
    span = f"{n.start:%a %d %b} – {n.end:%a %d %b %Y}"
    days = (n.this.days, n.before.days)
    note = _partial_note(n)
    title = (f"Weekly report, {span}{' (incomplete data)' if note else ''}: "
             f"{n.this.visitors:,} visitors ({_change(n.this.visitors, n.before.visitors, days)})")
    heads = headline_rows(n)
    text = "\n".join([
        f"Week of {span} (UTC), against the week before:",
        *([note] if note else []),
        *[f"  {w}: {now} (week before {before}, {ch})" for w, now, before, ch in heads],
        "Top sources (sessions):", *_top_lines(n.sources, days),
        "Top pages (page views):", *_top_lines(n.pages, days),
        "Visitors are daily unique visitors summed over the week.",
        f"Dashboard: {dashboard_url}",
    ])
    png = chart_png(n)
    body = (f"<h2 style=\"font-family:sans-serif\">{html.escape(title)}</h2>"
            f"<div style=\"font-family:sans-serif\">"
            f"<p>Week of {html.escape(span)} (UTC), against the week before.</p>"
            + (f"<p><strong>{html.escape(note)}</strong></p>" if note else "")
            + _html_table(["", "This week", "Week before", "Change"], heads)
            + f'<p><img src="cid:{CHART_CID}" alt="Visitors per day" width="640"></p>'
            "<h3>Top sources (sessions)</h3>"
            + _html_table(["Source", "This week", "Week before", "Change"],
                          [(s, f"{a:,}", _before(b, days), _change(a, b, days))
                           for s, a, b in n.sources])
            + "<h3>Top pages (page views)</h3>"
            + _html_table(["Page", "This week", "Week before", "Change"],
                          [(p, f"{a:,}", _before(b, days), _change(a, b, days))
                           for p, a, b in n.pages])
            + "<p style=\"color:#666\">Visitors are daily unique visitors summed over the "
            f"week.</p><p><a href=\"{html.escape(dashboard_url)}\">Open the dashboard</a></p>"
            "</div>")

    def mrkdwn_top(rows: list[tuple[str, int, int]]) -> str:
        # a source (utm_source) or a page path is whatever a visitor sent: as inline code,
        # escaped, so it can neither mention nor link nor end the code span
        return "\n".join(f"• {slack_code(name)} {now:,} ({_change(now, before, days)})"
                         for name, now, before in rows) or "(none)"

    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": f"Weekly report, {span}"}},
        *([{"type": "section", "text": {"type": "mrkdwn", "text": f"*{note}*"}}] if note
          else []),
        {"type": "section", "fields": [
            {"type": "mrkdwn", "text": f"*{w}*\n{now} ({ch}; week before {before})"}
            for w, now, before, ch in heads]},
        {"type": "section", "text": {"type": "mrkdwn",
                                     "text": "*Top sources (sessions)*\n" + mrkdwn_top(n.sources)}},
        {"type": "section", "text": {"type": "mrkdwn",
                                     "text": "*Top pages (page views)*\n" + mrkdwn_top(n.pages)}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text":
            f"Visitors: daily unique visitors summed. <{dashboard_url}|Open the dashboard>"}]},
    ]
    numbers = {
        "week_start": n.start.isoformat(), "week_end": n.end.isoformat(),
        "complete": not n.partial, "missing_days": [d.isoformat() for d in n.missing_days()],
        "this_week": vars(n.this), "week_before": vars(n.before),
        "top_sources": [{"source": s, "sessions": a, "week_before": b} for s, a, b in n.sources],
        "top_pages": [{"page": p, "pageviews": a, "week_before": b} for p, a, b in n.pages],
    }
    return Message("weekly_report", "report", title, text, dashboard_url, numbers, html=body,
                   image=png, image_name=f"visitors-{n.start}.png", blocks=blocks)


# --- the job and its schedule ------------------------------------------------------------------


class WeeklyReportConfig(dg.Config):
    week_start: str  # the Monday, YYYY-MM-DD


@dg.op(description="Reads the week's numbers from the marts, draws the chart, sends the report "
       "to every configured channel.")
def send_weekly_report(context: dg.OpExecutionContext, config: WeeklyReportConfig,
                       alerts: AlertsResource, lake: LakeResource) -> None:
    channels = alerts.channels()
    start = date.fromisoformat(config.week_start)
    numbers = weekly_numbers(lake.open(), start, processed=processed_days(context.instance))
    if numbers.this.days == 0:  # a processed day without sessions is a 0, reported
        raise dg.Failure(f"the pipeline has processed no day of the week {start} – "
                         f"{numbers.end} (kpis_daily): backfill it first "
                         "(analytics-platform backfill)")
    message = weekly_message(numbers, alerts.dashboard_url)
    context.log.info(message.text)
    if not channels.names():
        context.log.warning("no alert channel configured: the report was not sent")
        return
    outcome = channels.send(message, context.log.warning)
    if not outcome.delivered:
        raise dg.Failure(f"the weekly report reached no channel: {outcome.errors}")


@dg.job(description="The weekly report (docs/ALERTS.md).", tags={"analytics/stage": "report"})
def weekly_report_job() -> None:
    send_weekly_report()


@dg.schedule(
    job=weekly_report_job,
    cron_schedule=settings.weekly_report_cron(),
    execution_timezone="UTC",
    default_status=(dg.DefaultScheduleStatus.RUNNING if configured_at_load()
                    else dg.DefaultScheduleStatus.STOPPED),
    description="Sends the weekly report of the last full week (Monday–Sunday) "
    "($ANALYTICS_WEEKLY_REPORT_CRON, default Mondays 08:00 UTC). Starts RUNNING when an alert "
    "channel is configured.",
)
def weekly_report_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    start = report_week(context.scheduled_execution_time)
    return dg.RunRequest(
        run_key=f"weekly-report-{start}",
        run_config={"ops": {"send_weekly_report": {"config": {"week_start": str(start)}}}},
        tags={"analytics/report_week": str(start)})
