-- Records what the claimed attempts did. Per row: $1 id, $2 new state (pending again,
-- delivered, skipped or failed), $3 requests done, $4 error, $5 seconds until the next attempt,
-- $6 the attempt number the claim gave it (a row claimed again since is left alone).
UPDATE sisyphus.outbox o
   SET state = t.state::sisyphus.outbox_state,
       parts_done = t.parts_done,
       last_error = t.error,
       next_attempt_at = now() + make_interval(secs => t.delay),
       delivered_at = CASE WHEN t.state IN ('delivered', 'skipped') THEN now() END
  FROM unnest($1::bigint[], $2::text[], $3::integer[], $4::text[], $5::float8[], $6::integer[])
       AS t(id, state, parts_done, error, delay, attempt)
 WHERE o.id = t.id AND o.attempts = t.attempt AND o.state = 'pending'
