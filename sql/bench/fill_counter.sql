-- The round-trip baseline's 1,000 counters, at 0.
INSERT INTO bench_counter SELECT i, 0 FROM generate_series(1, 1000) i ON CONFLICT DO NOTHING
