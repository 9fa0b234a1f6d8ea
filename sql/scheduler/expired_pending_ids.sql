-- Pending runs past their TTL with their jobs, as `expire_pending.sql` would take them: used to
-- expire them one by one when the batch failed. $1: now, $2: batch.
SELECT id, job_id FROM sisyphus.runs
 WHERE status = 'pending' AND expires_at <= $1
 ORDER BY expires_at
 LIMIT $2
