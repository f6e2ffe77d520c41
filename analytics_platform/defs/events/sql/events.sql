-- Human events with their parsed user agent, one row per event_id within each hour: the checked
-- rows less the bots and the later copies (later_copies.sql, a temp table of their rowids).
-- Each hour's COPY (hour_events.sql) runs this over `checked` with its hour's filter: the rows
-- are not gathered into a table of the batch's events first, which cost ~0.2 CPU-s per 190k
-- events and then had to be read again (docs/BENCHMARKS.md).
-- reads:  checked, user_agents (Arrow: user_agent, is_bot, browser, os, device_type),
--         later_copies
-- writes: nothing (a SELECT)
SELECT c.event_id, c.event_type, c.ts, c.ingest_ts, c.event_ts, c.session_id, c.visitor_id,
       c.visitor_hash, c.consent, c.page_path, c.page_host, c.page_title, c.referrer_host, c.utm_source, c.utm_medium,
       c.utm_campaign, c.utm_content, c.utm_term, c.screen_width, c.screen_height,
       ua.browser, ua.os, ua.device_type, c.country, c.country_source, c.props, c.raw_hour,
       c.obj, c.raw_pos
FROM checked c JOIN user_agents ua USING (user_agent)
WHERE c.reason IS NULL AND NOT ua.is_bot AND c.rowid NOT IN (SELECT rid FROM later_copies)
