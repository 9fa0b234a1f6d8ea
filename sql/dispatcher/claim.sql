-- Takes up to $1 due notifications for this dispatcher's transaction; rows another dispatcher
-- holds are skipped, not waited for (several dispatchers share the outbox).
SELECT id, channel, payload, attempts, parts_done
  FROM sisyphus.outbox
 WHERE state = 'pending' AND next_attempt_at <= now()
 ORDER BY next_attempt_at, id
 LIMIT $1
   FOR UPDATE SKIP LOCKED
