-- pg_stat_statements' view in the bench's database: `sisyphus-bench profile` and `fleet` preload
-- the library for their own private clusters only.
CREATE EXTENSION IF NOT EXISTS pg_stat_statements
