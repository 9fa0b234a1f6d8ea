-- The NOTIFY half of the LISTEN/NOTIFY round-trip baseline.
SELECT pg_notify('bench_floor', '')
