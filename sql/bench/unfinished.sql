-- How many of the runs $1 are still pending, running or suspended: by primary key, so that a
-- bench waiting for its batch does not walk the dead entries a held snapshot leaves in the
-- partial indexes of pending and active runs (as `runs_busy.sql` does).
SELECT count(*) FROM sisyphus.runs
 WHERE id = ANY ($1) AND status IN ('pending', 'running', 'suspended')
