-- Human events with their parsed user agent, one row per event_id within each hour: the human
-- rows (human.sql) less the later copies (later_copies.sql, a temp table of their rowids).
-- Each hour's COPY (hour_events.sql) runs this over `checked` with its hour's filter: the rows
-- are not gathered into a table of the batch's events first, which cost ~0.2 CPU-s per 190k
-- events and then had to be read again (docs/BENCHMARKS.md).
-- reads:  human (human.sql), later_copies
-- writes: nothing (a SELECT)
SELECT event_id, event_type, ts, ingest_ts, event_ts, session_id, visitor_id, visitor_hash,
       consent, page_path, page_host, page_title, referrer_host, utm_source, utm_medium,
       utm_campaign, utm_content, utm_term, screen_width, screen_height, browser, os, device_type,
       country, country_source, props, raw_hour, obj, raw_pos
FROM human
WHERE rid NOT IN (SELECT rid FROM later_copies)
