-- The weekly report's headline numbers, the week and the week before. Visitors are the daily
-- unique visitors summed over the days (kpis_daily's grain); the conversion rate is the week's
-- conversions over its sessions.
-- reads:  $files (kpis_daily/date=… of both weeks), $week_start, $prev_start, $week_end
-- writes: nothing (the report's numbers)
SELECT date >= $week_start AS this_week,
       count(*) AS days,
       sum(visitors)::BIGINT AS visitors,
       sum(sessions)::BIGINT AS sessions,
       sum(pageviews)::BIGINT AS pageviews,
       sum(conversions)::BIGINT AS conversions,
       sum(conversions) / nullif(sum(sessions), 0) AS conversion_rate,
       sum(bounce_rate * sessions) / nullif(sum(sessions), 0) AS bounce_rate
FROM read_parquet($files, hive_partitioning = false)
WHERE date >= $prev_start AND date < $week_end
GROUP BY ALL
