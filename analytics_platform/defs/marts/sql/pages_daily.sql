-- pages_daily: one row per page and day.
-- reads:  s (the day's sessions), e (their events: session_events)
-- writes: pages_daily/date=…/part.parquet
WITH views AS (
    SELECT session_date, page_path, session_id, visitor_key FROM e WHERE event_type = 'page_view'
),
-- the deepest scroll each session reached on each page it viewed (0 if it never scrolled)
depth AS (
    SELECT v.session_date, v.page_path, v.session_id,
           coalesce(max(try_cast(x.props::JSON->>'depth' AS DOUBLE)), 0) AS max_depth
    FROM (SELECT DISTINCT session_date, page_path, session_id FROM views) v
    LEFT JOIN e x ON x.session_id = v.session_id AND x.page_path = v.page_path
                 AND x.event_type = 'scroll_depth'
    GROUP BY ALL
),
entries AS (SELECT entry_page AS page_path, count(*) AS n FROM s GROUP BY ALL),
exits AS (SELECT exit_page AS page_path, count(*) AS n FROM s GROUP BY ALL)
SELECT v.session_date AS date, v.page_path,
       count(*) AS pageviews,
       count(DISTINCT v.visitor_key) AS visitors,
       coalesce(any_value(en.n), 0) AS entries,
       coalesce(any_value(ex.n), 0) AS exits,
       (SELECT avg(d.max_depth) FROM depth d WHERE d.page_path = v.page_path)
           AS avg_max_scroll_depth
FROM views v
LEFT JOIN entries en ON en.page_path = v.page_path
LEFT JOIN exits ex ON ex.page_path = v.page_path
GROUP BY v.session_date, v.page_path
ORDER BY pageviews DESC, page_path
