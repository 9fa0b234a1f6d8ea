-- Gives every job with overlap `skip` a run that is still going (started an hour ago, its lease
-- good for a day), so each of its slots that comes due is skipped.
INSERT INTO sisyphus.runs (job_id, slot, scheduled_for, trigger, status, host, started_at,
                           lease_expires_at)
SELECT id, now() - interval '1 hour', now() - interval '1 hour', 'manual', 'running', 'bench',
       now() - interval '1 hour', now() + interval '1 day'
  FROM sisyphus.jobs
 WHERE overlap = 'skip'
