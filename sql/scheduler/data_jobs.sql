-- The data-triggered jobs (`on_inputs`) that may have new inputs, in one statement whose cost
-- grows with what was written, not with the jobs defined (migrations/0010_data_triggers.sql):
-- - jobs whose input keys match a resource written since the global watermark (less a minute:
--   a writer's transaction may commit after a later one, with an earlier `now()`), written
--   since the job's own watermark `inputs_seen_at` (less the same minute) — the GIN index
--   `jobs_input_keys`;
-- - jobs queued for a full look (new, inputs changed, resumed, mark cleared), taken off the queue;
-- - jobs marked with a scheduler error whose hold-back has passed (`jobs_marked_on_inputs`).
-- Jobs marked after $1 are held back (migrations/0008_isolation.sql); `marked` says whether to
-- clear the mark on success. The global watermark moves to this statement's start: a write not
-- visible to it has not committed yet, so it carries a later `written_at` less the minute.
-- $1: marks older than this are tried again.
WITH state AS (
    SELECT coalesce(seen_until, '-infinity') - interval '1 minute' AS since
      FROM sisyphus.data_trigger_state
), recent AS (
    SELECT sisyphus.lineage_name(r.name) AS key, r.written_at
      FROM sisyphus.resources r
     WHERE r.written_at > (SELECT since FROM state)
), moved AS (
    UPDATE sisyphus.data_trigger_state SET seen_until = statement_timestamp()
), queued AS (
    DELETE FROM sisyphus.data_trigger_queue RETURNING job_id
), candidates AS (
    SELECT j.id
      FROM sisyphus.jobs j
     WHERE j.on_inputs AND NOT j.paused
       AND sisyphus.input_keys(j.inputs) && (SELECT array_agg(DISTINCT key) FROM recent)
       AND EXISTS (SELECT 1 FROM recent r
                    WHERE r.key = ANY (sisyphus.input_keys(j.inputs))
                      AND r.written_at > coalesce(j.inputs_seen_at, '-infinity') - interval '1 minute')
    UNION
    SELECT job_id FROM queued
    UNION
    SELECT j.id
      FROM sisyphus.jobs j
     WHERE j.on_inputs AND NOT j.paused AND j.scheduler_error IS NOT NULL
       AND j.scheduler_error_at <= $1
)
SELECT j.id, j.inputs, j.timezone, j.inputs_seen_at, j.scheduler_error IS NOT NULL AS marked
  FROM sisyphus.jobs j
 -- By primary key, candidate by candidate, whatever the planner guesses of the queue's size.
 WHERE j.id = ANY (ARRAY(SELECT id FROM candidates))
   AND j.on_inputs AND NOT j.paused
   AND (j.scheduler_error_at IS NULL OR j.scheduler_error_at <= $1)
 ORDER BY j.id
