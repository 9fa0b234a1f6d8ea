-- Gives run $1 a log of $2 lines (seq 1…$2), written over the last $2 centiseconds before now,
-- on stdout; every tenth line tagged `progress`, every hundredth on stderr.
INSERT INTO sisyphus.run_logs (run_id, seq, at, stream, tags, text)
SELECT $1, i, now() - make_interval(secs => ($2::integer - i) / 100.0),
       CASE WHEN i % 100 = 0 THEN 'stderr' ELSE 'stdout' END::sisyphus.log_stream,
       CASE WHEN i % 10 = 0 THEN '{progress}'::text[] ELSE '{}'::text[] END,
       format('line %s: copied block %s of %s (%s bytes)', i, i, $2::integer, 4096 + i % 512)
  FROM generate_series(1, $2::integer) i
