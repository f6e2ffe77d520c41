-- The Cohorts view: weekly retention as the all-history mart computed it.
-- reads:  cohort_retention
SELECT * FROM cohort_retention ORDER BY cohort_week, week_offset
