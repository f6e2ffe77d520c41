-- The Behaviour view's outbound links: clicks and sessions per link host (CONTRACT §5
-- outbound_daily), summed over the range. {rows}: outbound_daily, or its own SQL over the
-- filtered sessions' events (dashboard/queries.py `report`). Visitors are left out: a range's
-- distinct visitors are not the sum of its days'.
-- reads:  outbound_daily ($start, $end: session dates, inclusive)
SELECT host, sum(clicks)::BIGINT AS clicks, sum(sessions)::BIGINT AS sessions
FROM {rows}
WHERE date BETWEEN $start AND $end
GROUP BY host
ORDER BY clicks DESC, host
