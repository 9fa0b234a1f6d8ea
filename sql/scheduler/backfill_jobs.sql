-- Jobs with backfill slots waiting to become runs (to feed them one job at a time when feeding
-- them all at once failed).
SELECT DISTINCT job_id FROM sisyphus.backfill_queue ORDER BY job_id
