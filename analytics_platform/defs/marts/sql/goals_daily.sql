-- goals_daily: one row per day, goal and source / medium / campaign that had sessions (CONTRACT
-- §5); a session converts on a goal when one of its events matches the goal.
-- reads:  s (the day's sessions), e (their events); generated from the goals file
--         (defs/marts/goals.py): {goals}, a query of (goal_order, goal), one row per goal, and
--         {goal_events}, a query of (goal, session_id), one row per event matching a goal
-- writes: goals_daily/date=…/part.parquet
WITH goals AS ({goals}),
hits AS (
    SELECT goal, session_id, count(*) AS events FROM ({goal_events}) GROUP BY goal, session_id
)
SELECT s.session_date AS date, g.goal, s.source, s.medium, s.campaign,
       count(*) AS sessions,
       count(DISTINCT s.visitor_key) AS visitors,
       count(h.session_id) AS conversions,
       count(DISTINCT s.visitor_key) FILTER (h.session_id IS NOT NULL) AS converted_visitors,
       coalesce(sum(h.events), 0)::BIGINT AS events,
       count(h.session_id) / count(*) AS conversion_rate
FROM s CROSS JOIN goals g
LEFT JOIN hits h ON h.goal = g.goal AND h.session_id = s.session_id
GROUP BY s.session_date, g.goal_order, g.goal, s.source, s.medium, s.campaign
ORDER BY g.goal_order, sessions DESC, s.source, s.medium, s.campaign
