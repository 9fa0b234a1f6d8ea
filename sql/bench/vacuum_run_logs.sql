-- Vacuums and analyzes the log lines (every partition) after bulk inserts, as autovacuum would in
-- production.
VACUUM ANALYZE sisyphus.run_logs
