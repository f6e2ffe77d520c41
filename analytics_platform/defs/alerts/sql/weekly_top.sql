-- The weekly report's top rows of a daily mart (sources of attribution_daily by sessions, pages of
-- pages_daily by page views), with the week before's number for each.
-- reads:  $files (the mart's date=… files of both weeks), $week_start, $prev_start, $week_end,
--         $top; {label} and {measure}: the mart's column to rank and the number to sum
-- writes: nothing (the report's numbers)
WITH rows AS (
    SELECT {label} AS name, date >= $week_start AS this_week, {measure} AS n
    FROM read_parquet($files, hive_partitioning = false)
    WHERE date >= $prev_start AND date < $week_end
)
SELECT name,
       coalesce(sum(n) FILTER (this_week), 0)::BIGINT AS this_week,
       coalesce(sum(n) FILTER (NOT this_week), 0)::BIGINT AS week_before
FROM rows
GROUP BY name
HAVING sum(n) FILTER (this_week) > 0
ORDER BY this_week DESC, name
LIMIT $top
