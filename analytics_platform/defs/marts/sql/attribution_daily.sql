-- attribution_daily: one row per day and source / medium / campaign.
-- reads:  s (the day's sessions)
-- writes: attribution_daily/date=…/part.parquet
SELECT session_date AS date, source, medium, campaign,
       count(*) AS sessions,
       count(DISTINCT visitor_key) AS visitors,
       sum(pageviews)::BIGINT AS pageviews,
       count(*) FILTER (is_bounce) AS bounces,
       count(*) FILTER (converted) AS conversions,
       avg(converted::INTEGER) AS conversion_rate
FROM s
GROUP BY ALL
ORDER BY sessions DESC, source, medium, campaign
