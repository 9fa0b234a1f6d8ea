-- Gives the COPY baseline's table run_logs' primary key.
ALTER TABLE bench_copy ADD PRIMARY KEY (run_id, seq, at)
