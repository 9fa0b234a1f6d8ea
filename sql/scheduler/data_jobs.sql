-- Data-triggered jobs (`on_inputs`), with their watermark: resources written before it were
-- looked at already. Jobs marked with a scheduler error are held back until $1 has passed the
-- mark (migrations/0008_isolation.sql); `marked` says whether to clear the mark on success.
SELECT id, inputs, timezone, inputs_seen_at, scheduler_error IS NOT NULL AS marked
  FROM sisyphus.jobs
 WHERE on_inputs AND NOT paused
   AND (scheduler_error_at IS NULL OR scheduler_error_at <= $1)
 ORDER BY id
