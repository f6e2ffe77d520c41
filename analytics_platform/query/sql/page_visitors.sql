-- page_visitors: per day, page and visitor, the page views (CONTRACT §6), from the stored
-- session_events rows of the days $days; the top-pages query's rows (event:page, filtered on
-- event:name pageview: stats.py), one per visitor instead of one per view.
-- reads:  {rows} (the stored session_events)
-- writes: _store.page_visitors, through page_visitors_chain.sql (storage.publish_warehouse)
SELECT session_date AS date, page_path, visitor_key, count(*)::BIGINT AS pageviews
FROM {rows}
WHERE session_date IN (SELECT unnest($days::DATE[])) AND event_type = 'page_view'
  AND page_path IS NOT NULL
GROUP BY ALL
