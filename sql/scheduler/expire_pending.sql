-- Pending runs whose TTL has passed become `missed` (invariant `no-late-start`: a run never starts after its
-- deadline; guardians also refuse to claim them). Served by the partial index
-- `runs_pending_expiry`. $1: now, $2: batch.
WITH expired AS (
    SELECT id FROM sisyphus.runs
     WHERE status = 'pending' AND expires_at <= $1
     ORDER BY expires_at
     LIMIT $2
       FOR UPDATE SKIP LOCKED)
UPDATE sisyphus.runs r
   SET status = 'missed', finished_at = $1,
       error = 'its TTL passed before any guardian could start it'
  FROM expired
 WHERE r.id = expired.id AND r.status = 'pending'
