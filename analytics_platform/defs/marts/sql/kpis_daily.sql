-- kpis_daily: one row per day. Visitors: distinct visitor_key (duck.py's visitor_of: the consented
-- visitor_id, else the day's visitor_hash); consented_sessions: the sessions with a consented
-- visitor_id, the coverage of cohorts, retention and first-touch attribution (CONTRACT §5).
-- reads:  s (the day's sessions)
-- writes: kpis_daily/date=…/part.parquet
SELECT session_date AS date,
       count(DISTINCT visitor_key) AS visitors,
       count(*) AS sessions,
       count(*) FILTER (visitor_id IS NOT NULL) AS consented_sessions,
       sum(pageviews)::BIGINT AS pageviews,
       sum(events)::BIGINT AS events,
       avg(is_bounce::INTEGER) AS bounce_rate,
       avg(duration_s) AS avg_duration_s,
       count(*) FILTER (converted) AS conversions,
       avg(converted::INTEGER) AS conversion_rate
FROM s
GROUP BY session_date
