-- The dashboard's country filter choices (a warehouse whose sessions have a country, CONTRACT §4).
-- reads:  sessions
SELECT list(DISTINCT country ORDER BY country) AS countries FROM sessions WHERE country IS NOT NULL
