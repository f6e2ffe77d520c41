-- The warehouse's tables and their columns, for the SQL playground's reference.
-- reads:  duckdb_columns()
SELECT table_name, list(column_name || ' ' || lower(data_type) ORDER BY column_index) AS column_list
FROM duckdb_columns() WHERE database_name = 'warehouse' AND NOT internal
GROUP BY table_name ORDER BY table_name
