-- The COPY baseline's table: shaped like run_logs, but plain (no partitions, no triggers).
CREATE TABLE bench_copy (LIKE sisyphus.run_logs INCLUDING DEFAULTS)
