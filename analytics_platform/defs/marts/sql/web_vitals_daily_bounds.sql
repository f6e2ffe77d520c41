-- web_vitals_daily_bounds (check): the samples add up to the day's `web_vitals` events; each
-- metric has no more samples than its row, a 75th percentile within its samples' range and a
-- "good" share between 0 and 1 exactly when it has samples (none: passed).
-- reads:  m (the day's web_vitals_daily partition, just written), e (the day's session_events)
-- writes: nothing (the rows that break the check)
WITH total AS (
    SELECT (SELECT coalesce(sum(samples), 0) FROM m) AS samples,
           (SELECT count(*) FROM e WHERE event_type = 'web_vitals') AS events
),
metrics AS (
    UNPIVOT (SELECT page_path, samples,
                    {'n': lcp_samples, 'p75': lcp_p75, 'good': lcp_good} AS lcp,
                    {'n': inp_samples, 'p75': inp_p75, 'good': inp_good} AS inp,
                    {'n': cls_samples, 'p75': cls_p75, 'good': cls_good} AS cls,
                    {'n': ttfb_samples, 'p75': ttfb_p75, 'good': ttfb_good} AS ttfb FROM m)
    ON lcp, inp, cls, ttfb INTO NAME metric VALUE v
)
SELECT 'total' AS what, NULL AS page_path, samples, events AS detail FROM total
WHERE samples <> events
UNION ALL
SELECT metric, page_path, samples, v.n FROM metrics
WHERE v.n > samples OR (v.n = 0) <> (v.p75 IS NULL) OR (v.n = 0) <> (v.good IS NULL)
   OR v.good NOT BETWEEN 0 AND 1 OR v.p75 < 0
