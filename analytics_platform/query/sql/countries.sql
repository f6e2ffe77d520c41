-- The Locations view: sessions per country and how it is known (CONTRACT §5 countries_daily),
-- summed over the range. {rows}: countries_daily, or its own SQL over the filtered sessions
-- (dashboard/queries.py `report`). Every column is a sum, so the two agree on any range.
-- reads:  countries_daily ($start, $end: session dates, inclusive)
SELECT country, country_source, sum(sessions)::BIGINT AS sessions,
       sum(pageviews)::BIGINT AS pageviews, sum(bounces)::BIGINT AS bounces,
       sum(conversions)::BIGINT AS conversions
FROM {rows}
WHERE date BETWEEN $start AND $end
GROUP BY country, country_source
ORDER BY sessions DESC, country, country_source
