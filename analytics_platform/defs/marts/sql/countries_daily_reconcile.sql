-- countries_daily_reconcile (check): the day's rows add up to the day's sessions, pageviews,
-- bounces and conversions, and their visitors lie between the largest row's and the sum; one
-- row when they do not (none: passed).
-- reads:  m (the day's countries_daily partition, just written), s (the day's sessions)
-- writes: nothing (the rows that break the check)
WITH day AS (
    SELECT count(*) AS sessions, sum(pageviews) AS pageviews,
           count(*) FILTER (is_bounce) AS bounces, count(*) FILTER (converted) AS conversions,
           count(DISTINCT visitor_key) AS visitors
    FROM s
),
rows AS (
    SELECT sum(sessions) AS sessions, sum(pageviews) AS pageviews, sum(bounces) AS bounces,
           sum(conversions) AS conversions, max(visitors) AS max_visitors,
           sum(visitors) AS sum_visitors
    FROM m
)
SELECT r.*, d.sessions AS day_sessions, d.pageviews AS day_pageviews
FROM rows r, day d
WHERE r.sessions IS DISTINCT FROM d.sessions OR r.pageviews IS DISTINCT FROM d.pageviews
   OR r.bounces IS DISTINCT FROM d.bounces OR r.conversions IS DISTINCT FROM d.conversions
   OR NOT d.visitors BETWEEN r.max_visitors AND r.sum_visitors
