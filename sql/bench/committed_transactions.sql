-- Transactions committed in this database so far (statistics, flushed lazily).
SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()
