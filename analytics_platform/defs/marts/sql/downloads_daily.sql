-- downloads_daily: one row per day, file extension and file (CONTRACT §5): the `download`
-- events of the day's sessions (props.file is a path without query or fragment, CONTRACT §2).
-- reads:  e (the day's session_events)
-- writes: downloads_daily/date=…/part.parquet
SELECT session_date AS date, lower(props::JSON->>'ext') AS ext,
       coalesce(props::JSON->>'file', '(unknown)') AS file,
       count(*) AS downloads,
       count(DISTINCT session_id) AS sessions,
       count(DISTINCT visitor_key) AS visitors
FROM e
WHERE event_type = 'download'
GROUP BY ALL
ORDER BY downloads DESC, ext, file
