-- Active runs whose lease ran out, with their jobs, as `expire_leases.sql` would take them: used
-- to expire them one by one when the batch failed. $1: now, $2: batch.
SELECT id, job_id FROM sisyphus.runs
 WHERE status IN ('running', 'suspended') AND lease_expires_at < $1
 ORDER BY lease_expires_at
 LIMIT $2
