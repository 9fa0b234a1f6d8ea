-- Vacuums and analyzes the jobs table after bulk inserts, as autovacuum would in production.
VACUUM ANALYZE sisyphus.jobs
