-- Data-triggered jobs (`on_inputs`), with their watermark: resources written before it were
-- looked at already.
SELECT id, inputs, timezone, inputs_seen_at
  FROM sisyphus.jobs
 WHERE on_inputs AND NOT paused
 ORDER BY id
