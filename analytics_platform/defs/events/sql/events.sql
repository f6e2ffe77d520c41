-- Human events with their parsed user agent, one row per event_id within each hour: the
-- earliest arrival wins (CONTRACT §3.4). Copies are rare (a retried beacon), so the window runs only
-- over the event_ids seen more than once, on narrow rows, and the copies it finds are removed
-- with an anti-join: ranking every row would move all of their columns through a sort, which
-- cost three times as much on a million-event hour (docs/BENCHMARKS.md).
-- reads:  checked, user_agents (Arrow: user_agent, is_bot, browser, os, device_type), raw_objects
-- writes: nothing (a SELECT; several hours are materialised into the temp table `deduped` first)
WITH human AS (
    SELECT c.rowid AS rid, c.raw_hour, c.event_id, c.ingest_ts, c.event_ts, c.obj, c.raw_pos
    FROM checked c JOIN user_agents ua USING (user_agent)
    WHERE c.reason IS NULL AND NOT ua.is_bot
),
copied AS (SELECT raw_hour, event_id FROM human GROUP BY ALL HAVING count(*) > 1),
later_copies AS (
    SELECT rid FROM (
        SELECT h.*, o.key AS raw_key
        FROM human h SEMI JOIN copied USING (raw_hour, event_id) JOIN raw_objects o USING (obj))
    QUALIFY row_number() OVER (PARTITION BY raw_hour, event_id ORDER BY {first_copy_order}) > 1
)
SELECT c.event_id, c.event_type, c.ts, c.ingest_ts, c.event_ts, c.session_id, c.visitor_id,
       c.visitor_hash, c.consent, c.page_path, c.page_host, c.page_title, c.referrer_host, c.utm_source, c.utm_medium,
       c.utm_campaign, c.utm_content, c.utm_term, c.screen_width, c.screen_height,
       ua.browser, ua.os, ua.device_type, c.country, c.country_source, c.props, c.raw_hour,
       c.obj, c.raw_pos
FROM checked c JOIN user_agents ua USING (user_agent)
WHERE c.reason IS NULL AND NOT ua.is_bot AND c.rowid NOT IN (SELECT rid FROM later_copies)
