-- Sends failed notifications again from scratch: $1 ids. Returns the ids taken back.
WITH again AS (
    UPDATE sisyphus.outbox
       SET state = 'pending', attempts = 0, next_attempt_at = now(), last_error = NULL
     WHERE id = ANY($1) AND state = 'failed'
    RETURNING id)
SELECT id FROM again, LATERAL (SELECT pg_notify('sisyphus_outbox', '')) n
