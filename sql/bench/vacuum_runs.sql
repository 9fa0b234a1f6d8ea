-- Vacuums and analyzes the runs table after bulk inserts or deletes, as autovacuum would in
-- production.
VACUUM ANALYZE sisyphus.runs
