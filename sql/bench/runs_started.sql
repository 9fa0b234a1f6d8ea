-- Of the runs $1: how many have started, and the longest time from a run's creation to its
-- start (ms; NULL before any started).
SELECT count(started_at), max(extract(epoch FROM started_at - created_at) * 1000)::float8
  FROM sisyphus.runs
 WHERE id = ANY ($1)
