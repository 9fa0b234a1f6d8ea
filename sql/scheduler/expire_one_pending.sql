-- One pending run past its TTL becomes `missed` (see expire_pending.sql). $1: now, $2: run.
UPDATE sisyphus.runs
   SET status = 'missed', finished_at = $1,
       error = 'its TTL passed before any guardian could start it'
 WHERE id = $2 AND status = 'pending' AND expires_at <= $1
