-- The weekly report's chart: visitors per day of both weeks.
-- reads:  $files (kpis_daily/date=… of both weeks), $prev_start, $week_end
-- writes: nothing (the chart's points)
SELECT date, visitors
FROM read_parquet($files, hive_partitioning = false)
WHERE date >= $prev_start AND date < $week_end
ORDER BY date
