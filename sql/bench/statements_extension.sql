-- pg_stat_statements' view in the bench's database (the library is preloaded by `sisyphus-bench
-- profile` for its own private cluster only).
CREATE EXTENSION IF NOT EXISTS pg_stat_statements
