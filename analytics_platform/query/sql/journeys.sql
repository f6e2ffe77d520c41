-- The Journeys view: the published paths (each day's rows already hold k visitors or more,
-- CONTRACT §5) from one entry page, summed over the range.
-- reads:  journeys_daily ($start, $end: session dates, inclusive; $entry: the entry page)
SELECT steps, path, sum(sessions)::BIGINT AS sessions, count(DISTINCT date) AS days
FROM journeys_daily
WHERE date BETWEEN $start AND $end AND entry_page = $entry
GROUP BY steps, path ORDER BY steps, sessions DESC, path
