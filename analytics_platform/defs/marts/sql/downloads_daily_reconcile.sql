-- downloads_daily_reconcile (check): the downloads add up to the day's `download` events, and
-- no file has more sessions than downloads or more visitors than sessions (none: passed).
-- reads:  m (the day's downloads_daily partition, just written), e (the day's session_events)
-- writes: nothing (the rows that break the check)
SELECT * FROM (
    SELECT (SELECT coalesce(sum(downloads), 0) FROM m) AS downloads,
           (SELECT count(*) FROM e WHERE event_type = 'download') AS day_download_events,
           (SELECT count(*) FROM m WHERE sessions > downloads OR visitors > sessions) AS bad_rows
)
WHERE downloads <> day_download_events OR bad_rows > 0
