-- Per raw hour: records read, quarantined, from bots, human (before de-duplication).
-- reads:  checked, user_agents
-- writes: nothing (the asset's metadata)
SELECT raw_hour, count(*), count(*) FILTER (reason IS NOT NULL),
       count(*) FILTER (reason IS NULL AND is_bot), count(*) FILTER (reason IS NULL AND NOT is_bot)
FROM checked LEFT JOIN user_agents USING (user_agent) GROUP BY ALL
