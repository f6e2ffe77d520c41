-- The first and last session dates of the warehouse (the dashboard's date picker, the API's
-- "all" date range).
-- reads:  sessions
SELECT min(session_date), max(session_date) FROM sessions
