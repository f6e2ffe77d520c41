-- not_found_daily: one row per day, missing page and referring page (CONTRACT §5): the
-- `not_found` events of the day's sessions. The referrer is the same site's page that linked
-- to it (props.from, a path), else the other site's host, else (direct).
-- reads:  e (the day's session_events)
-- writes: not_found_daily/date=…/part.parquet
SELECT session_date AS date, page_path,
       coalesce(nullif(props::JSON->>'from', ''), referrer_host, '(direct)') AS referrer,
       count(*) AS hits,
       count(DISTINCT session_id) AS sessions,
       count(DISTINCT visitor_key) AS visitors
FROM e
WHERE event_type = 'not_found'
GROUP BY ALL
ORDER BY hits DESC, page_path, referrer
