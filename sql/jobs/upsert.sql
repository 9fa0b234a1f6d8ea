-- Creates or replaces a job definition (apply). Scheduler state (next_slot) is decided by the
-- caller: kept when the schedule did not change, recomputed when it did. `fired` is kept.
INSERT INTO sisyphus.jobs (
    project, name, command, shell, env, workdir, cron, every, at, timezone, starts_at, ends_at,
    iterations, ttl, catchup, jitter, maxtime, retries, retry_backoff, concurrency, target_all,
    target_pool, userdata, next_slot, run_as, keep_logs, compress_logs, compress_mode, inputs,
    outputs, lock_lease, lock_wait, outputs_expire, on_inputs, max_health_age, notify, warn_after,
    min_duration, memory_max, cpu_weight, params, format, skip_on, only_on, overlap)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,
        $13, $14, $15::sisyphus.catchup_policy, $16, $17, $18, $19, $20, $21,
        $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34, $35, $36, $37,
        $38, $39, $40, $41, $42, $43, $44, $45)
ON CONFLICT (project, name) DO UPDATE SET
    command = EXCLUDED.command, shell = EXCLUDED.shell, env = EXCLUDED.env,
    workdir = EXCLUDED.workdir, cron = EXCLUDED.cron, every = EXCLUDED.every, at = EXCLUDED.at,
    timezone = EXCLUDED.timezone, starts_at = EXCLUDED.starts_at, ends_at = EXCLUDED.ends_at,
    iterations = EXCLUDED.iterations, ttl = EXCLUDED.ttl, catchup = EXCLUDED.catchup,
    jitter = EXCLUDED.jitter, maxtime = EXCLUDED.maxtime, retries = EXCLUDED.retries,
    retry_backoff = EXCLUDED.retry_backoff, concurrency = EXCLUDED.concurrency,
    target_all = EXCLUDED.target_all, target_pool = EXCLUDED.target_pool,
    userdata = EXCLUDED.userdata, next_slot = EXCLUDED.next_slot, run_as = EXCLUDED.run_as,
    keep_logs = EXCLUDED.keep_logs, compress_logs = EXCLUDED.compress_logs,
    compress_mode = EXCLUDED.compress_mode, inputs = EXCLUDED.inputs, outputs = EXCLUDED.outputs,
    lock_lease = EXCLUDED.lock_lease, lock_wait = EXCLUDED.lock_wait,
    outputs_expire = EXCLUDED.outputs_expire, on_inputs = EXCLUDED.on_inputs,
    max_health_age = EXCLUDED.max_health_age, notify = EXCLUDED.notify,
    warn_after = EXCLUDED.warn_after, min_duration = EXCLUDED.min_duration,
    memory_max = EXCLUDED.memory_max, cpu_weight = EXCLUDED.cpu_weight, params = EXCLUDED.params,
    format = EXCLUDED.format, skip_on = EXCLUDED.skip_on, only_on = EXCLUDED.only_on,
    overlap = EXCLUDED.overlap,
    -- A changed data trigger looks at every written resource again.
    inputs_seen_at = CASE WHEN sisyphus.jobs.inputs IS DISTINCT FROM EXCLUDED.inputs
                            OR NOT sisyphus.jobs.on_inputs THEN NULL
                          ELSE sisyphus.jobs.inputs_seen_at END,
    -- Applied again: the scheduler tries it at once (migrations/0008_isolation.sql).
    scheduler_error = NULL, scheduler_error_at = NULL,
    updated_at = now()
RETURNING id
