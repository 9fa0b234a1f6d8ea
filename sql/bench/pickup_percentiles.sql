-- The 50th and 99th percentiles of the runs' pickup, in seconds: from $1 (when the drain
-- started) to each run's start.
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - $1)),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - $1))
  FROM sisyphus.runs
