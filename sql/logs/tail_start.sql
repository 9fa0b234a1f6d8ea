-- Where the last N lines of a run's log (optionally only those with a tag) begin: the seq of
-- the line just before them, or NULL when the log has N lines or fewer.
-- $1 run, $2 tag or NULL, $3 N.
SELECT seq
  FROM sisyphus.run_logs
 WHERE run_id = $1 AND ($2::text IS NULL OR $2 = ANY (tags))
 ORDER BY seq DESC
OFFSET $3
 LIMIT 1
