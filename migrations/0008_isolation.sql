-- Failure isolation (issue 13): one job's bad values never stop scheduling for the others
-- (invariant `bad-job-isolated`).
--
-- A job whose planning or whose runs' bookkeeping fails (an absurd interval stored behind
-- validation's back, a value that overflows a timestamp, a row that does not read back) is
-- marked with `scheduler_error`, and the tick goes on for every other job. A marked job is held
-- back: the scheduler looks at its slots again a minute after the mark, or at once when its
-- definition changes (trigger `jobs_definition_changed`) or is applied again. Planning it
-- successfully clears the mark. The mark shows in `job_status`, in `health_reason` ("scheduler
-- error: …") and as a `scheduler_error` notification, raised when the job becomes marked.
--
-- Who calls what: `mark_scheduler_error` is called by the scheduler leader (its tick) and by the
-- functions and triggers below (so by whoever finishes a run: guardians, the scheduler, SQL
-- users). The existing migrations grant nothing per role (one database role runs everything),
-- so neither does this one; the functions are meant for those callers only.

ALTER TABLE sisyphus.jobs
    ADD COLUMN scheduler_error text,
    ADD COLUMN scheduler_error_at timestamptz;

-- The last line behind validation for times the Rust side reads: chrono (and so sqlx's decoding)
-- ends in the year 262143, PostgreSQL in 294276, and `infinity` is out of its range, so a time
-- past the year 200000 written by hand or by arithmetic on an absurd interval would stop every
-- reader of the row. NOT VALID: rows already stored are not checked, new writes are.
ALTER TABLE sisyphus.jobs ADD CONSTRAINT jobs_times_in_range CHECK (
    (at IS NULL OR at BETWEEN '0001-01-01 UTC' AND '200000-01-01 UTC')
    AND (starts_at IS NULL OR starts_at BETWEEN '0001-01-01 UTC' AND '200000-01-01 UTC')
    AND (ends_at IS NULL OR ends_at BETWEEN '0001-01-01 UTC' AND '200000-01-01 UTC')
    AND (next_slot IS NULL OR next_slot BETWEEN '0001-01-01 UTC' AND '200000-01-01 UTC')) NOT VALID;
ALTER TABLE sisyphus.runs ADD CONSTRAINT runs_times_in_range CHECK (
    slot BETWEEN '0001-01-01 UTC' AND '200000-01-01 UTC'
    AND scheduled_for BETWEEN '0001-01-01 UTC' AND '200000-01-01 UTC'
    AND (expires_at IS NULL OR expires_at BETWEEN '0001-01-01 UTC' AND '200000-01-01 UTC')) NOT VALID;

-- Usable once this migration has committed (ALTER TYPE … ADD VALUE); only function bodies
-- mention it below, and they run later.
ALTER TYPE sisyphus.notify_event ADD VALUE 'scheduler_error';

-- Marks job `p_job` with a scheduler error. Returns true when the job was not marked before
-- (then, and only then, the `scheduler_error` notification is raised: a job held back and tried
-- again every minute does not notify every minute). Called by the scheduler and by finish_run.
CREATE FUNCTION sisyphus.mark_scheduler_error(p_job bigint, p_error text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    was text;
BEGIN
    SELECT scheduler_error INTO was FROM sisyphus.jobs WHERE id = p_job FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    UPDATE sisyphus.jobs
       SET scheduler_error = left(p_error, 2000), scheduler_error_at = clock_timestamp()
     WHERE id = p_job;
    IF was IS NULL THEN
        PERFORM sisyphus.enqueue_notifications(p_job, NULL, 'scheduler_error'::text::sisyphus.notify_event,
                                               left(p_error, 2000));
        RETURN true;
    END IF;
    RETURN false;
END $$;

-- A marked job whose definition is changed (by apply or by hand in SQL) is tried again at once:
-- the mark goes with the change. Scheduler state (next_slot, fired, watermarks, marks, paused)
-- is not a change of definition. Fires only for marked jobs (the WHEN clause), so the
-- scheduler's per-tick updates of unmarked jobs pay nothing.
CREATE FUNCTION sisyphus.clear_scheduler_error_on_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    state text[] := '{next_slot,fired,inputs_seen_at,overdue_since,scheduler_error,scheduler_error_at,paused,updated_at}';
BEGIN
    IF (to_jsonb(NEW) - state) IS DISTINCT FROM (to_jsonb(OLD) - state) THEN
        NEW.scheduler_error := NULL;
        NEW.scheduler_error_at := NULL;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER jobs_definition_changed BEFORE UPDATE ON sisyphus.jobs
    FOR EACH ROW
    WHEN (OLD.scheduler_error IS NOT NULL
          AND NEW.scheduler_error IS NOT DISTINCT FROM OLD.scheduler_error)
    EXECUTE FUNCTION sisyphus.clear_scheduler_error_on_change();

-- finish_run (0003_guardian.sql), changed only where a job's values enter arithmetic: the next
-- attempt's delay and deadline. An absurd retry_backoff or ttl (negative, or overflowing a
-- timestamp or the range `runs_times_in_range` allows) no longer raises — which left the run `running` and, once its lease ran out, failed
-- every scheduler tick fleet-wide. The outcome is recorded as asked, without a retry, the run's
-- error says why, and the job is marked. The backoff doubling is capped before it can overflow
-- (2^31 × anything under an hour fits an interval; the result is at most an hour, as before).
CREATE OR REPLACE FUNCTION sisyphus.finish_run(
    p_run bigint, p_from sisyphus.run_status[], p_status sisyphus.run_status,
    p_exit integer, p_signal integer, p_summary text, p_error text, p_finished timestamptz)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    r sisyphus.runs;
    j sisyphus.jobs;
    delay interval;
    retried boolean := false;
    t timestamptz := clock_timestamp();
BEGIN
    UPDATE sisyphus.runs
       SET status = p_status, exit_code = p_exit, signal = p_signal, summary = p_summary,
           error = p_error, finished_at = coalesce(p_finished, t), requested = NULL,
           lease_expires_at = NULL
     WHERE id = p_run AND status = ANY (p_from)
    RETURNING * INTO r;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF p_status IN ('failed', 'timeout', 'lost') THEN
        SELECT * INTO j FROM sisyphus.jobs WHERE id = r.job_id;
        IF r.attempt <= j.retries THEN
            BEGIN
                IF j.retry_backoff < interval '0' THEN
                    RAISE EXCEPTION 'retry_backoff % is negative', j.retry_backoff
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
                delay := CASE WHEN j.retry_backoff >= interval '1 hour' THEN interval '1 hour'
                              ELSE least(j.retry_backoff * power(2, least(r.attempt - 1, 31)),
                                         interval '1 hour') END;
                INSERT INTO sisyphus.runs (job_id, slot, attempt, target_host, trigger, scheduled_for,
                                           expires_at, created_by)
                VALUES (r.job_id, r.slot, r.attempt + 1, r.target_host, 'retry', t + delay,
                        t + delay + j.ttl, 'retry of run ' || r.id)
                ON CONFLICT DO NOTHING;
                retried := true;
            EXCEPTION WHEN data_exception OR check_violation THEN
                UPDATE sisyphus.runs
                   SET error = concat_ws('; ', error, 'not retried: ' || SQLERRM)
                 WHERE id = r.id;
                PERFORM sisyphus.mark_scheduler_error(r.job_id,
                    format('cannot retry run %s: %s', r.id, SQLERRM));
            END;
        END IF;
    END IF;
    -- Wake the guardians when a run of this job waits for the slot this one frees (the job was at
    -- its concurrency), or a retry was just added. Not otherwise: a NOTIFY per run would cost
    -- every guardian a wake-up and serialise commits.
    IF retried THEN
        PERFORM pg_notify('sisyphus_runs', '');
    ELSIF (SELECT count(*) FROM sisyphus.runs a
            WHERE a.job_id = r.job_id AND a.status IN ('running', 'suspended'))
          + 1 >= (SELECT concurrency FROM sisyphus.jobs WHERE id = r.job_id)
      AND EXISTS (SELECT 1 FROM sisyphus.runs p WHERE p.job_id = r.job_id AND p.status = 'pending') THEN
        PERFORM pg_notify('sisyphus_runs', '');
    END IF;
    RETURN true;
END $$;

-- reschedule_interval_job (0001_schema.sql): `finished_at + every` overflows for an absurd
-- `every`. It runs at commit (a deferred trigger) in whatever transaction ended the run — a
-- guardian's outcome batch, the scheduler's tick — so a raise would undo all of it. Now the job
-- is marked instead and its next slot stays unset. Jobs without `every` return after one lookup,
-- before the exception block (which costs a subtransaction).
CREATE OR REPLACE FUNCTION sisyphus.reschedule_interval_job() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    every_ interval;
BEGIN
    SELECT j.every INTO every_ FROM sisyphus.jobs j WHERE j.id = NEW.job_id;
    IF every_ IS NULL THEN
        RETURN NULL;
    END IF;
    BEGIN
        UPDATE sisyphus.jobs j
           SET next_slot = coalesce(NEW.finished_at, now()) + j.every
         WHERE j.id = NEW.job_id
           AND j.every IS NOT NULL
           AND j.next_slot IS NULL
           AND (j.iterations IS NULL OR j.fired < j.iterations)
           AND NOT EXISTS (SELECT 1 FROM sisyphus.runs r
                            WHERE r.job_id = NEW.job_id
                              AND r.status IN ('pending', 'running', 'suspended'));
    EXCEPTION WHEN data_exception OR check_violation THEN
        PERFORM sisyphus.mark_scheduler_error(NEW.job_id,
            format('cannot schedule the next run after run %s: every %s: %s', NEW.id, every_, SQLERRM));
    END;
    RETURN NULL;
END $$;

-- health_reason (0006_health.sql): a marked job is unhealthy first of all, and the comparison
-- with max_health_age no longer adds the job's interval to a timestamp (which overflows for an
-- absurd one): the age is compared as an interval.
CREATE OR REPLACE FUNCTION sisyphus.health_reason(p_job bigint) RETURNS text
LANGUAGE sql STABLE AS $$
    WITH last AS (
        SELECT r.status, r.finished_at, coalesce(r.error, r.summary, '') AS text
          FROM sisyphus.runs r
         WHERE r.job_id = p_job AND r.status NOT IN ('pending', 'running', 'suspended', 'cancelled')
         ORDER BY r.id DESC
         LIMIT 1),
    good AS (
        SELECT r.finished_at
          FROM sisyphus.runs r
         WHERE r.job_id = p_job AND r.status IN ('successful', 'uneventful')
         ORDER BY r.id DESC
         LIMIT 1)
    SELECT CASE
        WHEN j.scheduler_error IS NOT NULL THEN
            format('scheduler error: %s', j.scheduler_error)
        WHEN l.status IS NULL THEN 'never run'
        WHEN l.status NOT IN ('successful', 'uneventful') THEN
            format('last run %s at %s: %s', l.status,
                   to_char(l.finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS"Z"'), l.text)
        WHEN j.max_health_age IS NOT NULL AND now() - g.finished_at > j.max_health_age THEN
            format('last good run ended %s ago, more than max_health_age %s',
                   date_trunc('second', now() - g.finished_at), j.max_health_age)
        END
      FROM sisyphus.jobs j
      LEFT JOIN last l ON true
      LEFT JOIN good g ON true
     WHERE j.id = p_job
$$;

-- job_status (0006_health.sql) gains the mark (columns appended; `health` says
-- `scheduler-error` for a marked job that is not paused).
CREATE OR REPLACE VIEW sisyphus.job_status AS
SELECT j.id,
       j.project,
       j.name,
       j.project || '/' || j.name AS job,
       CASE WHEN j.cron IS NOT NULL THEN array_to_string(j.cron, ' | ')
            WHEN j.every IS NOT NULL THEN 'every ' || j.every::text
            WHEN j.at IS NOT NULL THEN 'at ' || j.at::text
            ELSE 'manual' END AS schedule,
       j.timezone,
       j.paused,
       j.next_slot AS next_due,
       (SELECT count(*) FROM sisyphus.runs a
         WHERE a.job_id = j.id AND a.status IN ('running', 'suspended')) AS active_runs,
       last.id AS last_run_id,
       last.status AS last_status,
       last.finished_at AS last_finished_at,
       last.summary AS last_summary,
       CASE WHEN j.paused THEN 'paused'
            WHEN j.scheduler_error IS NOT NULL THEN 'scheduler-error'
            WHEN last.id IS NULL THEN 'never-run'
            WHEN last.status IN ('successful', 'uneventful') THEN 'ok'
            WHEN last.status = 'missed' THEN 'missed'
            ELSE 'failing' END AS health,
       reason.text IS NULL AS healthy,
       reason.text AS health_reason,
       j.max_health_age,
       j.scheduler_error,
       j.scheduler_error_at
  FROM sisyphus.jobs j
  LEFT JOIN LATERAL (
        SELECT r.id, r.status, r.finished_at, r.summary
          FROM sisyphus.runs r
         WHERE r.job_id = j.id AND r.status NOT IN ('pending', 'running', 'suspended', 'cancelled')
         ORDER BY r.id DESC
         LIMIT 1) last ON true
  CROSS JOIN LATERAL (SELECT sisyphus.health_reason(j.id) AS text) reason;

-- raise_alerts (0007_notifications.sql): the same comparisons without adding a job's interval to
-- a timestamp (`started_at + warn_after`, `now() - max_health_age` overflow for absurd values,
-- and this function runs every tick for the whole fleet). Otherwise unchanged.
CREATE OR REPLACE FUNCTION sisyphus.raise_alerts(p_overdue boolean, OUT slow integer, OUT overdue integer)
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    slow := 0;
    overdue := 0;
    FOR r IN
        UPDATE sisyphus.runs x SET slow_at = now()
          FROM sisyphus.jobs j
         WHERE x.status IN ('running', 'suspended') AND x.slow_at IS NULL
           AND j.id = x.job_id AND j.warn_after IS NOT NULL
           AND now() - x.started_at > j.warn_after
        RETURNING x.id, x.job_id, j.warn_after, x.started_at
    LOOP
        PERFORM sisyphus.enqueue_notifications(r.job_id, r.id, 'slow',
            format('still running after %s (warn_after %s)',
                   date_trunc('second', now() - r.started_at), r.warn_after));
        slow := slow + 1;
    END LOOP;
    IF NOT p_overdue THEN
        RETURN;
    END IF;
    FOR r IN
        UPDATE sisyphus.jobs j SET overdue_since = now()
          FROM (SELECT c.id,
                       (SELECT g.finished_at FROM sisyphus.runs g
                         WHERE g.job_id = c.id AND g.status IN ('successful', 'uneventful')
                         ORDER BY g.id DESC LIMIT 1) AS good
                  FROM sisyphus.jobs c
                 WHERE c.max_health_age IS NOT NULL AND c.overdue_since IS NULL
                   AND NOT c.paused) c
         WHERE j.id = c.id
           AND now() - coalesce(c.good, j.created_at) > j.max_health_age
        RETURNING j.id, j.max_health_age, c.good
    LOOP
        PERFORM sisyphus.enqueue_notifications(r.id, NULL, 'missed',
            CASE WHEN r.good IS NULL
                 THEN format('no good run since the job was defined, more than max_health_age %s ago',
                             r.max_health_age)
                 ELSE format('last good run ended %s ago, more than max_health_age %s',
                             date_trunc('second', now() - r.good), r.max_health_age) END);
        overdue := overdue + 1;
    END LOOP;
END $$;

-- Who may call what (issue 13): marking a job is the scheduler's and finish_run's business, not
-- a person's. Until the roles of the access-control issue exist, only the schema's owner (which
-- every daemon logs in as today) may call it.
REVOKE EXECUTE ON FUNCTION sisyphus.mark_scheduler_error(bigint, text) FROM PUBLIC;
