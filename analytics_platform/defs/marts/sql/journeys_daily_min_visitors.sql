-- journeys_daily_min_visitors (check): no row of the day's journeys_daily has fewer than
-- $min_visitors distinct visitors (the privacy threshold k, CONTRACT §5); the rows that do.
-- reads:  m (the day's journeys_daily partition, just written); $min_visitors
-- writes: nothing (the rows that break the check)
SELECT path, sessions, visitors FROM m WHERE visitors < $min_visitors
