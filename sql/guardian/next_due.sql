-- When the next pending run this host could take falls due, if in the future (to sleep exactly
-- that long). Runs already due but not claimable (their job is at its concurrency) are not
-- waited for here: a NOTIFY from `finish_run` wakes the guardian when a slot frees.
-- $1 host, $2 pools.
SELECT min(r.scheduled_for)
  FROM sisyphus.runs r
  JOIN sisyphus.jobs j ON j.id = r.job_id
 WHERE r.status = 'pending' AND r.scheduled_for > now()
   AND (r.target_host = $1
        OR (r.target_host IS NULL AND NOT j.target_all
            AND (j.target_pool IS NULL OR j.target_pool = ANY ($2))))
