-- engagement_daily: one row per day and page (CONTRACT §5): each session's engaged seconds on
-- the page (the sum of its `engagement` events there: each the visible seconds since the page
-- view's previous one), then their total, mean and median over the sessions.
-- reads:  e (the day's session_events)
-- writes: engagement_daily/date=…/part.parquet
WITH per_session AS (
    SELECT session_date, page_path, session_id, any_value(visitor_key) AS visitor_key,
           sum(try_cast(props::JSON->>'seconds' AS DOUBLE)) AS engaged_s
    FROM e
    WHERE event_type = 'engagement'
    GROUP BY ALL
)
SELECT session_date AS date, page_path,
       count(*) AS sessions,
       count(DISTINCT visitor_key) AS visitors,
       sum(engaged_s) AS total_engaged_s,
       avg(engaged_s) AS avg_engaged_s,
       quantile_cont(engaged_s, 0.5) AS median_engaged_s
FROM per_session
GROUP BY ALL
ORDER BY sessions DESC, page_path
