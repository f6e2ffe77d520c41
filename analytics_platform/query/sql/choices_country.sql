-- The dashboard's country filter choices (a warehouse whose sessions have a country, CONTRACT §4).
-- Coalesced to []: list() of no row is NULL, and no session has a country until a visitor with a
-- known time zone (or CloudFront's header) comes; a site on Plausible's /api/event has none.
-- reads:  sessions
SELECT coalesce(list(DISTINCT country ORDER BY country), []) AS countries
FROM sessions WHERE country IS NOT NULL
