-- engagement_daily_reconcile (check): the engaged seconds add up to the day's `engagement`
-- events' seconds; on each row visitors ≤ sessions and the median lies between 0 and the total
-- (none: passed).
-- reads:  m (the day's engagement_daily partition, just written), e (the day's session_events)
-- writes: nothing (the rows that break the check)
SELECT * FROM (
    SELECT (SELECT coalesce(sum(total_engaged_s), 0) FROM m) AS total,
           (SELECT coalesce(sum(try_cast(props::JSON->>'seconds' AS DOUBLE)), 0)
            FROM e WHERE event_type = 'engagement') AS day_seconds,
           (SELECT count(*) FROM m WHERE visitors > sessions
               OR NOT median_engaged_s BETWEEN 0 AND total_engaged_s) AS bad_rows
)
WHERE abs(total - day_seconds) > 1e-6 * greatest(1, day_seconds) OR bad_rows > 0
