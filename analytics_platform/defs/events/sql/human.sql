-- The checked rows that are people's events: valid (no reason) and not from a bot (CONTRACT §3),
-- with their rowid and parsed user agent. One definition for the later copies (later_copies.sql)
-- and the events written (events.sql), which must agree on it.
-- reads:  checked, user_agents (Arrow: user_agent, is_bot, browser, os, device_type)
-- writes: the temp view `human` (the asset creates it for each batch)
SELECT c.*, c.rowid AS rid, ua.browser, ua.os, ua.device_type
FROM checked c JOIN user_agents ua USING (user_agent)
WHERE c.reason IS NULL AND NOT ua.is_bot
