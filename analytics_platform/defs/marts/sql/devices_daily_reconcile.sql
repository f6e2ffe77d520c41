-- devices_daily_reconcile (check): each dimension of the day's devices_daily adds up to the
-- day's sessions, pageviews, bounces and conversions, and its visitors lie between the largest
-- value's and the sum; a row per dimension that does not, or that is missing (none: passed).
-- reads:  m (the day's devices_daily partition, just written), s (the day's sessions)
-- writes: nothing (the rows that break the check)
WITH day AS (
    SELECT count(*) AS sessions, sum(pageviews) AS pageviews,
           count(*) FILTER (is_bounce) AS bounces, count(*) FILTER (converted) AS conversions,
           count(DISTINCT visitor_key) AS visitors
    FROM s
),
dims AS (
    SELECT dimension, sum(sessions) AS sessions, sum(pageviews) AS pageviews,
           sum(bounces) AS bounces, sum(conversions) AS conversions,
           max(visitors) AS max_visitors, sum(visitors) AS sum_visitors
    FROM m GROUP BY dimension
),
wanted(dimension) AS (VALUES ('device_type'), ('browser'), ('os'), ('screen_class'))
SELECT w.dimension, d.sessions, day.sessions AS day_sessions, d.pageviews,
       day.pageviews AS day_pageviews, d.conversions, day.conversions AS day_conversions
FROM wanted w CROSS JOIN day LEFT JOIN dims d USING (dimension)
WHERE d.dimension IS NULL OR d.sessions <> day.sessions OR d.pageviews <> day.pageviews
   OR d.bounces <> day.bounces OR d.conversions <> day.conversions
   OR NOT day.visitors BETWEEN d.max_visitors AND d.sum_visitors
