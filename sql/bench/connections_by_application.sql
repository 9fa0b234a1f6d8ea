-- Client connections to this database by application name (`sisyphus guardian` for the pools,
-- `sisyphus guardian (listen)` for the LISTEN connections).
SELECT coalesce(application_name, ''), count(*)
  FROM pg_stat_activity
 WHERE datname = current_database() AND backend_type = 'client backend'
 GROUP BY 1
 ORDER BY 1
