-- The process ids of those of runs $1 that are running with a process, by run id.
SELECT pid FROM sisyphus.runs
 WHERE id = ANY($1) AND status = 'running' AND pid IS NOT NULL
 ORDER BY id
