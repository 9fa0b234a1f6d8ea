-- A run's log lines after a sequence number, optionally only those with a tag.
-- $1 run, $2 after seq, $3 tag or NULL, $4 limit.
SELECT run_id, seq, at, stream::text AS stream, tags, task, text
  FROM sisyphus.run_logs
 WHERE run_id = $1 AND seq > $2 AND ($3::text IS NULL OR $3 = ANY (tags))
 ORDER BY seq
 LIMIT $4
