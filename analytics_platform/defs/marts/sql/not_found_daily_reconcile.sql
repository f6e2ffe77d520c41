-- not_found_daily_reconcile (check): the hits add up to the day's `not_found` events, and no
-- row has more sessions than hits or more visitors than sessions (none: passed).
-- reads:  m (the day's not_found_daily partition, just written), e (the day's session_events)
-- writes: nothing (the rows that break the check)
SELECT * FROM (
    SELECT (SELECT coalesce(sum(hits), 0) FROM m) AS hits,
           (SELECT count(*) FROM e WHERE event_type = 'not_found') AS day_not_found_events,
           (SELECT count(*) FROM m WHERE sessions > hits OR visitors > sessions) AS bad_rows
)
WHERE hits <> day_not_found_events OR bad_rows > 0
