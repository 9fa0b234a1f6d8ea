-- The ids `due_jobs.sql` would return and lock, without reading the definitions: used when one
-- of the rows does not read back, so that each can be read alone. $1, $2, $3 as there.
SELECT id
  FROM sisyphus.jobs
 WHERE next_slot <= $1 AND NOT paused
   AND (scheduler_error_at IS NULL OR scheduler_error_at <= $3)
 ORDER BY next_slot
 LIMIT $2
 FOR UPDATE SKIP LOCKED
