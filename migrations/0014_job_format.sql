-- How the guardian runs a job and reads what it prints (issue 19, item 5): the key `format` of a
-- definition. `sisyphus` is what every job did before (stdout and stderr as they are, the SDK's
-- protocol records on its descriptor); `ll.sisyphus` runs an existing Python ll.sisyphus job
-- unmodified, with flags appended that make it log to stdout and write no log file, and parses
-- its log lines (tags, task stack, the result line) into `run_logs` and the run's outcome. The
-- labels are `sisyphus_model::spec::JobFormat`'s (a test compares them with this CHECK).
--
-- The guardian reads the column through the join of `sql/guardian/claim.sql`: its role reads job
-- definitions already (0012, policy `guardian_read`), and the grants on `jobs` are per table, so
-- nothing needs granting here.

ALTER TABLE sisyphus.jobs
    ADD COLUMN format text NOT NULL DEFAULT 'sisyphus'
        CONSTRAINT jobs_format_check CHECK (format IN ('sisyphus', 'll.sisyphus'));

-- `format` is a definition column: an editor's check before a direct write and one audit row
-- after its change, as for every other definition column (0011 lists them in `UPDATE OF`, which
-- a new column does not join by itself; 0013's pause note and parameters join here too). `audit_definition` takes the whole row, so the change
-- shows in the audit row's before and after without more.
DROP TRIGGER jobs_check_edit ON sisyphus.jobs;
CREATE TRIGGER jobs_check_edit BEFORE INSERT OR DELETE OR UPDATE OF
    project, name, command, shell, env, workdir, cron, every, at, timezone, starts_at, ends_at,
    iterations, ttl, catchup, jitter, maxtime, retries, retry_backoff, concurrency, target_all,
    target_pool, userdata, run_as, keep_logs, compress_logs, compress_mode, inputs, outputs,
    lock_lease, lock_wait, outputs_expire, on_inputs, max_health_age, notify, warn_after,
    min_duration, memory_max, cpu_weight, paused, pause_reason, paused_until, params, format
    ON sisyphus.jobs FOR EACH ROW EXECUTE FUNCTION sisyphus.jobs_check_edit();

DROP TRIGGER jobs_audit ON sisyphus.jobs;
CREATE TRIGGER jobs_audit AFTER INSERT OR DELETE OR UPDATE OF
    project, name, command, shell, env, workdir, cron, every, at, timezone, starts_at, ends_at,
    iterations, ttl, catchup, jitter, maxtime, retries, retry_backoff, concurrency, target_all,
    target_pool, userdata, run_as, keep_logs, compress_logs, compress_mode, inputs, outputs,
    lock_lease, lock_wait, outputs_expire, on_inputs, max_health_age, notify, warn_after,
    min_duration, memory_max, cpu_weight, paused, pause_reason, paused_until, params, format
    ON sisyphus.jobs FOR EACH ROW EXECUTE FUNCTION sisyphus.jobs_audit();
