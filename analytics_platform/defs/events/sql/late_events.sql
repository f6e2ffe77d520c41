-- Events filed apart by the UTC date of ts, so a later re-materialisation of their sessions still
-- finds them without reading every hour since (CONTRACT §4, late events): every event that
-- arrived after the window of the day *before* its own (window_end, duck.py), since a session of
-- that day counts its events of the next day too. More than the late events (is_late).
-- reads:  batch_events (the events just written); $late_hours; {hour_format}: layout.HOUR_FORMAT
-- writes: the temp table `late`, then late_events/ts_date=…/hour=….parquet (one file per ts_date
--         and part, each sorted by ts, event_id: running an hour again writes the same bytes)
SELECT *, strftime(raw_hour, {hour_format}) AS part, CAST(ts AS DATE) AS ts_date
FROM batch_events
WHERE raw_hour > window_end(CAST(ts AS DATE) - 1, $late_hours)
