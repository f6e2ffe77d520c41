-- The Goals view from its mart (when only dates and source / medium / campaign are filtered):
-- conversions and rate per goal and source over the range. $sources, $mediums, $campaigns:
-- lists, empty for all.
-- reads:  goals_daily ($start, $end)
SELECT goal, source, sum(sessions)::BIGINT AS sessions, sum(conversions)::BIGINT AS conversions,
       sum(events)::BIGINT AS events, sum(conversions) / sum(sessions) AS conversion_rate
FROM goals_daily
WHERE date BETWEEN $start AND $end
  AND (len($sources) = 0 OR list_contains($sources, source))
  AND (len($mediums) = 0 OR list_contains($mediums, medium))
  AND (len($campaigns) = 0 OR list_contains($campaigns, campaign))
GROUP BY goal, source
