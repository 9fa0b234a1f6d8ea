-- The processes of started runs. $1 runs, $2 pids.
UPDATE sisyphus.runs r SET pid = t.pid
  FROM unnest($1::bigint[], $2::integer[]) AS t(run, pid)
 WHERE r.id = t.run
