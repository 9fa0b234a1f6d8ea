-- The outbox, newest first: $1 state or NULL for all, $2 job id or NULL, $3 most rows.
SELECT o.id, o.created_at, j.project || '/' || j.name AS job, o.run_id, o.event::text AS event,
       o.channel, o.state::text AS state, o.attempts, o.last_error, o.next_attempt_at,
       o.delivered_at
  FROM sisyphus.outbox o
  LEFT JOIN sisyphus.jobs j ON j.id = o.job_id
 WHERE ($1::text IS NULL OR o.state::text = $1)
   AND ($2::bigint IS NULL OR o.job_id = $2)
 ORDER BY o.id DESC
 LIMIT $3
