-- kpis_daily: one row per day.
-- reads:  s (the day's sessions)
-- writes: kpis_daily/date=…/part.parquet
SELECT session_date AS date,
       count(DISTINCT visitor_id) AS visitors,
       count(*) AS sessions,
       sum(pageviews)::BIGINT AS pageviews,
       sum(events)::BIGINT AS events,
       avg(is_bounce::INTEGER) AS bounce_rate,
       avg(duration_s) AS avg_duration_s,
       count(*) FILTER (converted) AS conversions,
       avg(converted::INTEGER) AS conversion_rate
FROM s
GROUP BY session_date
