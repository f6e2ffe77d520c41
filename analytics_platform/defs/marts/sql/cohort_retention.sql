-- cohort_retention: a visitor's cohort is the ISO week (Monday) of their first session. Consented
-- visitors only (visitor_id): without consent a visitor is new every day (CONTRACT §5).
-- reads:  s (every session)
-- writes: cohort_retention/all/part.parquet
WITH firsts AS (
    SELECT visitor_id, date_trunc('week', min(session_date))::DATE AS cohort_week
    FROM s WHERE visitor_id IS NOT NULL GROUP BY visitor_id
),
activity AS (
    SELECT DISTINCT s.visitor_id, f.cohort_week,
           date_diff('day', f.cohort_week, date_trunc('week', s.session_date)::DATE) // 7
               AS week_offset
    FROM s JOIN firsts f USING (visitor_id)
),
sizes AS (SELECT cohort_week, count(*) AS cohort_size FROM firsts GROUP BY cohort_week)
SELECT a.cohort_week, a.week_offset, z.cohort_size,
       count(*) AS visitors,
       count(*) / z.cohort_size AS retention
FROM activity a JOIN sizes z USING (cohort_week)
GROUP BY a.cohort_week, a.week_offset, z.cohort_size
ORDER BY a.cohort_week, a.week_offset
