-- One run whose guardian stopped renewing its lease becomes `lost` (see expire_leases.sql).
-- $1: now, $2: run.
WITH names AS MATERIALIZED (SELECT sisyphus.serialise_run_names(ARRAY[$2::bigint]))
SELECT sisyphus.finish_run(id, '{running,suspended}', 'lost', NULL, NULL, NULL,
                           'guardian ' || coalesce(host, '?') || ' stopped renewing its lease', $1)
  FROM names, sisyphus.runs
 WHERE id = $2 AND status IN ('running', 'suspended') AND lease_expires_at < $1
   FOR UPDATE OF runs SKIP LOCKED
