-- countries_daily: one row per day, country and country source of the day's sessions (CONTRACT
-- §5): the session's country is its first event's, set at ingest from CloudFront's viewer
-- country or the browser's time zone (never from an address; CONTRACT §2).
-- reads:  s (the day's sessions)
-- writes: countries_daily/date=…/part.parquet
SELECT session_date AS date,
       coalesce(country, '(unknown)') AS country,
       CASE WHEN country IS NULL THEN '(unknown)' ELSE country_source END AS country_source,
       count(DISTINCT visitor_key) AS visitors,
       count(*) AS sessions,
       sum(pageviews)::BIGINT AS pageviews,
       count(*) FILTER (is_bounce) AS bounces,
       count(*) FILTER (converted) AS conversions
FROM s
GROUP BY ALL
ORDER BY sessions DESC, country, country_source
