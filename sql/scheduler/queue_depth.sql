-- Pending runs (the queue depth), through the partial index runs_pending_due.
SELECT count(*) FROM sisyphus.runs WHERE status = 'pending'
