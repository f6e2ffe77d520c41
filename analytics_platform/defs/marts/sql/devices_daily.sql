-- devices_daily: one row per day, dimension and value; the dimensions are device_type, browser,
-- os (of each session's first event, CONTRACT §3.2) and screen_class (of its screen_width, in
-- CSS pixels: mobile < 576 ≤ tablet < 992 ≤ laptop < 1440 ≤ desktop, CONTRACT §5). Each
-- dimension's rows add up to the day's sessions.
-- reads:  s (the day's sessions)
-- writes: devices_daily/date=…/part.parquet
WITH classed AS (
    SELECT session_date, visitor_key, pageviews, duration_s, is_bounce, converted,
           coalesce(device_type, '(unknown)') AS device_type,
           coalesce(browser, '(unknown)') AS browser,
           coalesce(os, '(unknown)') AS os,
           CASE WHEN coalesce(screen_width, 0) = 0 THEN '(unknown)'
                WHEN screen_width < 576 THEN 'mobile'
                WHEN screen_width < 992 THEN 'tablet'
                WHEN screen_width < 1440 THEN 'laptop'
                ELSE 'desktop' END AS screen_class
    FROM s
),
long AS (
    UNPIVOT classed ON device_type, browser, os, screen_class INTO NAME dimension VALUE value
)
SELECT session_date AS date, dimension, value,
       count(DISTINCT visitor_key) AS visitors,
       count(*) AS sessions,
       sum(pageviews)::BIGINT AS pageviews,
       count(*) FILTER (is_bounce) AS bounces,
       avg(is_bounce::INTEGER) AS bounce_rate,
       avg(duration_s) AS avg_duration_s,
       count(*) FILTER (converted) AS conversions,
       avg(converted::INTEGER) AS conversion_rate
FROM long
GROUP BY session_date, dimension, value
ORDER BY dimension, sessions DESC, value
