-- goals_daily_reconcile (check): for each goal of the day's goals_daily, the sessions add up to
-- the day's sessions, and conversions ≤ sessions, converted visitors ≤ conversions and
-- conversions ≤ events (a converting session has at least one matching event); a row per goal
-- that breaks it (none: passed).
-- reads:  m (the day's goals_daily partition, just written), s (the day's sessions)
-- writes: nothing (the rows that break the check)
WITH day AS (SELECT count(*) AS sessions FROM s)
SELECT m.goal, sum(m.sessions) AS sessions, any_value(day.sessions) AS day_sessions,
       sum(m.conversions) AS conversions, sum(m.events) AS events
FROM m CROSS JOIN day
GROUP BY m.goal
HAVING sum(m.sessions) <> any_value(day.sessions)
    OR bool_or(m.conversions > m.sessions OR m.converted_visitors > m.conversions
               OR m.conversions > m.events OR m.visitors > m.sessions)
