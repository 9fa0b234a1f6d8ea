-- Dead tuples in runs and in all of run_logs' partitions (statistics, flushed lazily).
SELECT coalesce(sum(n_dead_tup) FILTER (WHERE relname = 'runs'), 0)::bigint,
       coalesce(sum(n_dead_tup) FILTER (WHERE relname LIKE 'run\_logs%'), 0)::bigint
  FROM pg_stat_user_tables WHERE schemaname = 'sisyphus'
