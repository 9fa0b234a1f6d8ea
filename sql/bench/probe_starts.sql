-- For each of runs $1: its due time (seconds since the epoch) and what it printed on stdout
-- (the latency probe prints its own start time).
SELECT extract(epoch FROM r.scheduled_for)::float8, l.text
  FROM sisyphus.runs r JOIN sisyphus.run_logs l ON l.run_id = r.id AND l.stream = 'stdout'
 WHERE r.id = ANY($1)
