-- A run's process group was stopped (true) or continued (false). $1 run, $2 suspended.
-- Clears the request only if it is the one carried out: a request that arrived meanwhile (a
-- terminate right after a resume, say) must survive for the next dispatch.
UPDATE sisyphus.runs
   SET status = CASE WHEN $2 THEN 'suspended' ELSE 'running' END::sisyphus.run_status,
       suspended_at = CASE WHEN $2 THEN clock_timestamp() END,
       requested = CASE WHEN requested = CASE WHEN $2 THEN 'suspend' ELSE 'resume' END
                        THEN NULL ELSE requested END
 WHERE id = $1 AND status = CASE WHEN $2 THEN 'running' ELSE 'suspended' END::sisyphus.run_status
