-- The Behaviour view's 404 pages: hits per missing page and referring page, summed over the
-- range (CONTRACT §5 not_found_daily). {rows}: not_found_daily, or its own SQL over the
-- filtered sessions' events (dashboard/queries.py `report`).
-- reads:  not_found_daily ($start, $end: session dates, inclusive)
SELECT page_path, referrer, sum(hits)::BIGINT AS hits, sum(sessions)::BIGINT AS sessions
FROM {rows}
WHERE date BETWEEN $start AND $end
GROUP BY page_path, referrer
ORDER BY hits DESC, page_path, referrer
