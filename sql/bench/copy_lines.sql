-- The COPY baseline: log lines as tab-separated text (run id, seq, stream, text).
COPY bench_copy (run_id, seq, stream, text) FROM STDIN
