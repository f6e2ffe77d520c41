-- The Journeys view's entry pages: those with a published path in the range, most taken first.
-- reads:  journeys_daily ($start, $end)
SELECT entry_page, sum(sessions)::BIGINT AS sessions FROM journeys_daily
WHERE date BETWEEN $start AND $end AND steps = 2
GROUP BY entry_page ORDER BY sessions DESC, entry_page
