-- What the Run page shows beyond a run's row of runs/one.sql: $1 the run. Its pid, signal, who
-- asked for it, a pending control request, when it was suspended, its deadline, its job's id.
SELECT r.pid, r.signal, r.created_by, r.requested, r.suspended_at, r.expires_at,
       r.lease_expires_at, r.job_id
  FROM sisyphus.runs r
 WHERE r.id = $1
