-- Queues a data-triggered job for a full look on the next tick: it had more written resources
-- to look at than one tick takes, and the rest may be older than the global watermark.
-- $1: job.
INSERT INTO sisyphus.data_trigger_queue (job_id) VALUES ($1) ON CONFLICT DO NOTHING
