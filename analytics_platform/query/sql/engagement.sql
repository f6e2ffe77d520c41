-- Engaged time per page for the Overview's pages table (CONTRACT §5 engagement_daily), summed
-- over the range: the mean is total / sessions (a range's median is not its days' medians, so
-- it is not shown). {rows}: engagement_daily, or its own SQL over the filtered sessions' events
-- (dashboard/queries.py `report`).
-- reads:  engagement_daily ($start, $end: session dates, inclusive)
SELECT page_path, sum(sessions)::BIGINT AS engaged_sessions,
       sum(total_engaged_s) AS total_engaged_s,
       sum(total_engaged_s) / sum(sessions) AS avg_engaged_s
FROM {rows}
WHERE date BETWEEN $start AND $end
GROUP BY page_path
ORDER BY page_path
