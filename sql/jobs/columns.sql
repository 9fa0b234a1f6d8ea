-- The columns every job query returns, in the order of `JobRow` (client/src/db/jobs.rs).
SELECT id, project, name, command, shell, env, workdir, cron, every, at, timezone,
       starts_at, ends_at, iterations, ttl, catchup::text AS catchup, jitter, maxtime, retries,
       retry_backoff, concurrency, target_all, target_pool, paused, userdata, next_slot, fired,
       run_as, keep_logs, compress_logs, compress_mode, inputs, outputs, lock_lease, lock_wait,
       outputs_expire, on_inputs, max_health_age, notify, warn_after, min_duration, memory_max,
       cpu_weight, params, format, skip_on, only_on, overlap
  FROM sisyphus.jobs
