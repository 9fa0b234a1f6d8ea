-- Vacuums and analyzes the resources table after bulk inserts, as autovacuum would in
-- production.
VACUUM ANALYZE sisyphus.resources
