-- Drops this session's cached statistics, so that the next read of pg_stat_* is fresh.
SELECT pg_stat_clear_snapshot()
