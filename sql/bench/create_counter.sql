-- The round-trip baseline's table (pgbench's simple-update style): counters by id.
CREATE TABLE IF NOT EXISTS bench_counter (id int PRIMARY KEY, v bigint NOT NULL)
