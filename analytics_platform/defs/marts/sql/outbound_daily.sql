-- outbound_daily: one row per day and link host clicked (CONTRACT §5): the `outbound` events
-- of the day's sessions, whose props.host is the link's host only (CONTRACT §1).
-- reads:  e (the day's session_events)
-- writes: outbound_daily/date=…/part.parquet
SELECT session_date AS date, lower(props::JSON->>'host') AS host,
       count(*) AS clicks,
       count(DISTINCT session_id) AS sessions,
       count(DISTINCT visitor_key) AS visitors
FROM e
WHERE event_type = 'outbound'
GROUP BY ALL
ORDER BY clicks DESC, host
