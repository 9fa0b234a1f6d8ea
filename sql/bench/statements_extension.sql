-- pg_stat_statements in the bench's database (the fleet bench's cluster preloads it), to count
-- the statements a fleet of guardians sends.
CREATE EXTENSION IF NOT EXISTS pg_stat_statements
