"""Ready-to-run queries for the SQL playground: the questions a site owner asks."""

EXAMPLES: dict[str, str] = {
    "Which sources convert best": """\
SELECT source, medium,
       count(*) AS sessions,
       count(*) FILTER (converted) AS conversions,
       round(avg(converted::INTEGER), 4) AS conversion_rate
FROM sessions
GROUP BY source, medium
HAVING count(*) >= 20
ORDER BY conversion_rate DESC""",
    "Do people read to the end (by page)": """\
SELECT page_path,
       sum(pageviews) AS pageviews,
       round(sum(avg_max_scroll_depth * pageviews) / sum(pageviews), 1) AS avg_max_scroll_depth
FROM pages_daily
GROUP BY page_path
HAVING sum(pageviews) >= 50
ORDER BY avg_max_scroll_depth DESC""",
    "Daily KPIs": "SELECT * FROM kpis_daily ORDER BY date",
    "Where the booking funnel leaks": """\
SELECT step, any_value(step_name) AS step_name, sum(sessions) AS sessions
FROM funnel_daily
WHERE funnel = 'book_call'
GROUP BY step
ORDER BY step""",
    "Who comes back (weekly cohorts)": """\
SELECT cohort_week, week_offset, cohort_size, visitors, round(retention, 3) AS retention
FROM cohort_retention
ORDER BY cohort_week, week_offset""",
    # from the sessions, not attribution_daily: its visitors are per day, and a sum over days
    # counts a visitor who came back on another day once per day
    "Which campaigns bring visitors": """\
SELECT campaign, source, count(*) AS sessions, count(DISTINCT visitor_key) AS visitors,
       count(*) FILTER (converted) AS conversions
FROM sessions
WHERE campaign <> '(none)'
GROUP BY ALL
ORDER BY sessions DESC""",
    "Experiment results": "SELECT * FROM experiments",
    "Quarantined records by reason": """\
SELECT reason, count(*) AS records
FROM quarantine
GROUP BY reason
ORDER BY records DESC""",
}
