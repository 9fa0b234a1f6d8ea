-- A run's process group was stopped (true) or continued (false). $1 run, $2 suspended.
UPDATE sisyphus.runs
   SET status = CASE WHEN $2 THEN 'suspended' ELSE 'running' END::sisyphus.run_status,
       suspended_at = CASE WHEN $2 THEN clock_timestamp() END,
       requested = NULL
 WHERE id = $1 AND status = CASE WHEN $2 THEN 'running' ELSE 'suspended' END::sisyphus.run_status
