-- The recorded status of runs this guardian supervised (a one-shot guardian checks that each
-- outcome it decided is the one the database holds before it exits). $1: run ids.
SELECT id, status::text AS status
  FROM sisyphus.runs
 WHERE id = ANY ($1)
