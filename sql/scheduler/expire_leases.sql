-- Runs whose guardian stopped renewing the lease become `lost` (and are retried if the job
-- allows). A guardian that cannot renew kills its children before the lease ends (self-fencing),
-- so a replacement never overlaps the old process. $1 now, $2 batch.
-- Resource names of the runs about to be lost are serialised first (see serialise_run_names).
WITH names AS MATERIALIZED (
    SELECT sisyphus.serialise_run_names(ARRAY(
        SELECT id FROM sisyphus.runs
         WHERE status IN ('running', 'suspended') AND lease_expires_at < $1)))
SELECT sisyphus.finish_run(id, '{running,suspended}', 'lost', NULL, NULL, NULL,
                           'guardian ' || coalesce(host, '?') || ' stopped renewing its lease', $1)
  FROM names, sisyphus.runs
 WHERE status IN ('running', 'suspended') AND lease_expires_at < $1
 ORDER BY lease_expires_at
 LIMIT $2
   FOR UPDATE OF runs SKIP LOCKED
