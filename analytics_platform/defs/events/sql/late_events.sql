-- Events filed apart by the UTC date of ts, so a later re-materialisation of their sessions still
-- finds them without reading every hour since (CONTRACT §4, late events): every event that
-- arrived after the window of the day *before* its own (window_end, duck.py), since a session of
-- that day counts its events of the next day too. More than the late events (is_late).
-- reads:  batch_events (the events just written); $late_hours; {hour_format}: layout.HOUR_FORMAT
-- writes: late_events/ts_date=…/hour=….parquet (split by ts_date and part), in a stable order so
--         that running an hour again writes the same bytes (like events/)
SELECT *, strftime(raw_hour, {hour_format}) AS part, CAST(ts AS DATE) AS ts_date
FROM batch_events
WHERE raw_hour > window_end(CAST(ts AS DATE) - 1, $late_hours)
ORDER BY ts, event_id
