-- The Funnel view: sessions reaching each step of every funnel over a range of days.
-- reads:  funnel_daily ($start, $end: session dates, inclusive)
SELECT funnel, step, any_value(step_name) AS step_name, sum(sessions)::BIGINT AS sessions
FROM funnel_daily WHERE date BETWEEN $start AND $end
GROUP BY funnel, step ORDER BY funnel, step
