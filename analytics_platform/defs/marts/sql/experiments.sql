-- experiments: sessions and conversions per experiment and variant (lift and p-value are added
-- in Python: history.compare_variants, a handful of rows).
-- reads:  s (every session)
-- writes: experiments/all/part.parquet
SELECT experiment, variant,
       count(*) AS sessions,
       count(*) FILTER (converted) AS conversions,
       avg(converted::INTEGER) AS conversion_rate
FROM s
WHERE experiment IS NOT NULL AND variant IS NOT NULL
GROUP BY experiment, variant
ORDER BY experiment, variant
