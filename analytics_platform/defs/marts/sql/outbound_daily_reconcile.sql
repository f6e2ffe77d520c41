-- outbound_daily_reconcile (check): the clicks add up to the day's `outbound` events, and no
-- host has more sessions than clicks or more visitors than sessions (none: passed).
-- reads:  m (the day's outbound_daily partition, just written), e (the day's session_events)
-- writes: nothing (the rows that break the check)
SELECT * FROM (
    SELECT (SELECT coalesce(sum(clicks), 0) FROM m) AS clicks,
           (SELECT count(*) FROM e WHERE event_type = 'outbound') AS day_outbound_events,
           (SELECT count(*) FROM m WHERE sessions > clicks OR visitors > sessions) AS bad_rows
)
WHERE clicks <> day_outbound_events OR bad_rows > 0
