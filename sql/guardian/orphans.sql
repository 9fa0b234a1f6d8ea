-- At start: runs this host still shows as active belong to a previous life of this guardian; their
-- processes died with it (they are killed when their guardian dies). $1 host.
WITH names AS MATERIALIZED (
    SELECT sisyphus.serialise_run_names(ARRAY(
        SELECT id FROM sisyphus.runs WHERE host = $1 AND status IN ('running', 'suspended'))))
SELECT sisyphus.finish_run(id, '{running,suspended}', 'lost', NULL, NULL, NULL,
                           'its guardian restarted while it ran', clock_timestamp())
  FROM names, sisyphus.runs
 WHERE host = $1 AND status IN ('running', 'suspended')
