-- Claims up to $1 due notifications for $2 seconds (the lease): rows another dispatcher holds
-- are skipped, not waited for. The claim counts as an attempt, and the attempt number is the
-- claim's token: only the claimer that made it can settle the row (settle.sql). A dispatcher
-- that dies mid-pass leaves its rows to come due again when the lease ends; no transaction stays
-- open while a channel is called.
UPDATE sisyphus.outbox o
   SET attempts = o.attempts + 1,
       next_attempt_at = now() + make_interval(secs => $2)
  FROM (SELECT id FROM sisyphus.outbox
         WHERE state = 'pending' AND next_attempt_at <= now()
         ORDER BY next_attempt_at, id
         LIMIT $1
           FOR UPDATE SKIP LOCKED) due
 WHERE o.id = due.id
RETURNING o.id, o.channel, o.payload, o.attempts, o.parts_done
