-- Events that arrived after the horizon of their day's sessions, kept apart by the UTC date of
-- ts, so a later re-materialisation of those sessions still finds them without reading every
-- hour since (CONTRACT §4, late events).
-- reads:  batch_events (the events just written); $late_hours; {hour_format}: layout.HOUR_FORMAT
-- writes: late_events/ts_date=…/hour=….parquet (split by ts_date and part)
SELECT *, strftime(raw_hour, {hour_format}) AS part, CAST(ts AS DATE) AS ts_date
FROM batch_events
WHERE raw_hour >= date_trunc('day', ts) + to_hours($late_hours::BIGINT)
