-- The Behaviour view's downloads: per file (and its extension), summed over the range
-- (CONTRACT §5 downloads_daily). {rows}: downloads_daily, or its own SQL over the filtered
-- sessions' events (dashboard/queries.py `report`).
-- reads:  downloads_daily ($start, $end: session dates, inclusive)
SELECT ext, file, sum(downloads)::BIGINT AS downloads, sum(sessions)::BIGINT AS sessions
FROM {rows}
WHERE date BETWEEN $start AND $end
GROUP BY ext, file
ORDER BY downloads DESC, ext, file
