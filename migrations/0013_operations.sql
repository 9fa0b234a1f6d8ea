-- Everyday operation (issue 19): run a run again, pause a job with a reason and an end, give a
-- run parameters.
--
-- Rerun: a new run of the same job and slot (the next attempt number of that slot, so the slot's
-- attempts read in order and one-run-per-slot still holds), trigger `rerun`, linked to the run it
-- repeats by `rerun_of` — not a foreign key: a rerun outlives its original's retention.
--
-- Pause: who paused a job, when, why and until when. The scheduler resumes a job whose
-- `paused_until` has passed (as a person's resume: the catch-up policy applies), as its own login
-- and with an audit row that says so.

-- Usable once this migration has committed (ALTER TYPE … ADD VALUE): only function bodies below
-- name it.
ALTER TYPE sisyphus.run_trigger ADD VALUE IF NOT EXISTS 'rerun';

ALTER TABLE sisyphus.runs ADD COLUMN rerun_of bigint;

-- Parameters: what a job declares ({"date": {"default": "{yesterday}"}, "full": {"default":
-- "false", "choices": ["true", "false"]}}, checked by `sisyphus_model::params`), and the values
-- of each run (NULL for a job that declares none).
ALTER TABLE sisyphus.jobs
    ADD COLUMN params jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(params) = 'object');
ALTER TABLE sisyphus.runs ADD COLUMN params jsonb;

-- A run's values: the given ones (each declared, text, one of its choices if it has any) over
-- the defaults, whose placeholders are those of resource names, resolved at the slot in the
-- job's zone. A parameter with neither is refused; so is an unknown one. NULL when the job
-- declares none and none is given.
CREATE FUNCTION sisyphus.run_params(p_declared jsonb, p_given jsonb, p_slot timestamptz,
                                    p_zone text)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    k text;
    spec jsonb;
    v text;
    resolved jsonb := '{}';
BEGIN
    p_given := coalesce(p_given, '{}');
    IF p_declared = '{}' AND p_given = '{}' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(p_given) <> 'object' THEN
        RAISE EXCEPTION 'parameters must be a JSON object of names and text values, not %', p_given
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR k IN SELECT jsonb_object_keys(p_given) LOOP
        IF NOT p_declared ? k THEN
            RAISE EXCEPTION 'unknown parameter `%`: the job declares %', k,
                coalesce((SELECT string_agg('`' || x || '`', ', ' ORDER BY x)
                            FROM jsonb_object_keys(p_declared) x), 'none')
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF jsonb_typeof(p_given -> k) <> 'string' THEN
            RAISE EXCEPTION 'parameter `%`: the value must be text, not %', k, p_given -> k
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF length(p_given ->> k) > 4096 THEN
            RAISE EXCEPTION 'parameter `%`: the value is longer than 4096 characters', k
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
    FOR k, spec IN SELECT * FROM jsonb_each(p_declared) LOOP
        IF p_given ? k THEN
            v := p_given ->> k;
            IF spec ? 'choices' AND NOT (spec -> 'choices') ? v THEN
                RAISE EXCEPTION 'parameter `%`: `%` is not one of %', k, v,
                    (SELECT string_agg(c, ', ') FROM jsonb_array_elements_text(spec -> 'choices') c)
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
        ELSIF spec ? 'default' THEN
            v := sisyphus.resource_name(spec ->> 'default', p_slot, p_zone);
        ELSE
            RAISE EXCEPTION 'parameter `%` is required (it has no default): give it a value, e.g. --param %=VALUE', k, k
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        resolved := resolved || jsonb_build_object(k, v);
    END LOOP;
    RETURN resolved;
END $$;

-- The parameters of runs just claimed, for their guardian, read in a statement of its own: the
-- claim's caller cannot join `runs` in the claiming statement, whose snapshot is older than
-- the claim's (a run inserted in between is claimed but not seen, and would be lost to its
-- guardian). Only runs on the caller's hosts.
CREATE FUNCTION sisyphus.claimed_params(p_runs bigint[])
RETURNS TABLE (id bigint, params jsonb)
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
    SELECT r.id, r.params FROM sisyphus.runs r
     WHERE r.id = ANY (p_runs) AND r.params IS NOT NULL
       AND sisyphus.may_act_as(r.host)
$$;

-- A retry takes its first attempt's values (finish_run inserts it without them).
CREATE FUNCTION sisyphus.retry_takes_params() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
BEGIN
    NEW.params := (SELECT r.params FROM sisyphus.runs r
                    WHERE r.job_id = NEW.job_id AND r.slot = NEW.slot
                      AND r.attempt = NEW.attempt - 1
                      AND r.target_host IS NOT DISTINCT FROM NEW.target_host);
    RETURN NEW;
END $$;
CREATE TRIGGER runs_retry_params BEFORE INSERT ON sisyphus.runs
    FOR EACH ROW WHEN (NEW.trigger = 'retry' AND NEW.params IS NULL)
    EXECUTE FUNCTION sisyphus.retry_takes_params();

-- Running a job now with parameters: `sisyphus.run_now(project, name, params => '{...}')`. The
-- values are checked and resolved before anything is written; the audit row names them.
CREATE FUNCTION sisyphus.run_now(p_project text, p_name text, params jsonb,
                                 p_by text DEFAULT session_user)
RETURNS SETOF bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
DECLARE
    ids bigint[];
    j sisyphus.jobs;
    resolved jsonb;
BEGIN
    PERFORM sisyphus.require(p_project, 'operator', 'run jobs of');
    j := sisyphus.find_job(p_project, p_name);
    resolved := sisyphus.run_params(j.params, params, now(), j.timezone);
    SELECT array_agg(id) INTO ids FROM sisyphus.run_now_unchecked(p_project, p_name, p_by) id;
    IF resolved IS NOT NULL THEN
        UPDATE sisyphus.runs SET params = resolved WHERE id = ANY (ids);
    END IF;
    PERFORM sisyphus.audit_write('run.now', p_project, p_project || '/' || p_name,
                                 jsonb_build_object('runs', to_jsonb(ids))
                                 || coalesce(jsonb_build_object('params', resolved), '{}'));
    RETURN QUERY SELECT unnest(ids);
END $$;

-- Without parameters: the defaults (0011's wrapper, now through the one above).
CREATE OR REPLACE FUNCTION sisyphus.run_now(p_project text, p_name text,
                                            p_by text DEFAULT session_user)
RETURNS SETOF bigint LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
    SELECT sisyphus.run_now(p_project, p_name, params => '{}'::jsonb, p_by => p_by)
$$;

ALTER TABLE sisyphus.jobs
    ADD COLUMN pause_reason text CHECK (length(pause_reason) <= 1000),
    ADD COLUMN paused_by name,
    ADD COLUMN paused_at timestamptz,
    ADD COLUMN paused_until timestamptz;
CREATE INDEX jobs_pause_ends ON sisyphus.jobs (paused_until) WHERE paused;

-- The audit log shows the pause's reason and end with the pause itself; who and when are the
-- audit row's own actor and time.
CREATE OR REPLACE FUNCTION sisyphus.audit_definition(j sisyphus.jobs) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT to_jsonb(j)
           - '{id,next_slot,fired,inputs_seen_at,overdue_since,scheduler_error,scheduler_error_at,created_at,updated_at,paused_by,paused_at}'::text[]
           || jsonb_build_object('env', (SELECT coalesce(jsonb_object_agg(k, '***'), '{}')
                                           FROM jsonb_object_keys(j.env) k))
$$;

-- 0011's audit trigger, with a pause or resume that also sets or clears its reason and end still
-- called a pause or a resume.
CREATE OR REPLACE FUNCTION sisyphus.jobs_audit() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
DECLARE
    before jsonb;
    after jsonb;
    changed jsonb;
    pausing constant text[] := '{paused,pause_reason,paused_until}';
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM sisyphus.audit_write('job.create', NEW.project, NEW.project || '/' || NEW.name,
                                     sisyphus.audit_definition(NEW));
        RETURN NULL;
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM sisyphus.audit_write('job.remove', OLD.project, OLD.project || '/' || OLD.name,
                                     NULL);
        RETURN NULL;
    END IF;
    before := sisyphus.audit_definition(OLD);
    after := sisyphus.audit_definition(NEW);
    IF before = after AND OLD.env IS NOT DISTINCT FROM NEW.env THEN
        RETURN NULL;
    END IF;
    SELECT coalesce(jsonb_object_agg(k, jsonb_build_object('before', before -> k,
                                                           'after', after -> k)), '{}')
      INTO changed
      FROM jsonb_object_keys(before || after) k
     WHERE before -> k IS DISTINCT FROM after -> k;
    IF OLD.env IS DISTINCT FROM NEW.env THEN
        changed := changed || jsonb_build_object('env', jsonb_build_object(
            'changed', (SELECT coalesce(jsonb_agg(k ORDER BY k), '[]')
                          FROM jsonb_object_keys(OLD.env || NEW.env) k
                         WHERE OLD.env -> k IS DISTINCT FROM NEW.env -> k)));
    END IF;
    PERFORM sisyphus.audit_write(
        CASE WHEN changed - pausing = '{}'::jsonb AND NEW.paused AND NOT OLD.paused THEN 'job.pause'
             WHEN changed - pausing = '{}'::jsonb AND NOT NEW.paused AND OLD.paused THEN 'job.resume'
             ELSE 'job.update' END,
        NEW.project, NEW.project || '/' || NEW.name, changed);
    RETURN NULL;
END $$;

DROP TRIGGER jobs_audit ON sisyphus.jobs;
CREATE TRIGGER jobs_audit AFTER INSERT OR DELETE OR UPDATE OF
    project, name, command, shell, env, workdir, cron, every, at, timezone, starts_at, ends_at,
    iterations, ttl, catchup, jitter, maxtime, retries, retry_backoff, concurrency, target_all,
    target_pool, userdata, run_as, keep_logs, compress_logs, compress_mode, inputs, outputs,
    lock_lease, lock_wait, outputs_expire, on_inputs, max_health_age, notify, warn_after,
    min_duration, memory_max, cpu_weight, paused, pause_reason, paused_until, params
    ON sisyphus.jobs FOR EACH ROW EXECUTE FUNCTION sisyphus.jobs_audit();

-- Pausing with a reason and an optional end, in one change (one audit row). The two-argument
-- pause is this one without either.
DROP FUNCTION sisyphus.pause_job(text, text);
ALTER FUNCTION sisyphus.pause_job_unchecked(text, text) RENAME TO pause_job_unchecked_old;
DROP FUNCTION sisyphus.pause_job_unchecked_old(text, text);
CREATE FUNCTION sisyphus.pause_job_unchecked(p_project text, p_name text, p_reason text,
                                             p_until timestamptz)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    j sisyphus.jobs := sisyphus.find_job(p_project, p_name);
    first_taken timestamptz;
BEGIN
    IF p_until IS NOT NULL AND p_until <= now() THEN
        RAISE EXCEPTION 'pause of %/% until % ends in the past', p_project, p_name, p_until
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE sisyphus.jobs
       SET paused = true, pause_reason = nullif(p_reason, ''), paused_by = session_user,
           paused_at = now(), paused_until = p_until, updated_at = now()
     WHERE id = j.id AND NOT paused;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    first_taken := sisyphus.take_back_future_runs_unchecked(j.id);
    UPDATE sisyphus.jobs SET next_slot = least(next_slot, first_taken)
     WHERE id = j.id AND first_taken IS NOT NULL;
    UPDATE sisyphus.runs
       SET status = 'cancelled', finished_at = clock_timestamp(), error = 'job paused before the run started'
     WHERE job_id = j.id AND status = 'pending';
    RETURN true;
END $$;

CREATE FUNCTION sisyphus.pause_job(p_project text, p_name text, p_reason text,
                                   p_until timestamptz)
RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
BEGIN
    PERFORM sisyphus.require(p_project, 'operator', 'pause jobs of');
    RETURN sisyphus.pause_job_unchecked(p_project, p_name, p_reason, p_until);
END $$;

CREATE FUNCTION sisyphus.pause_job(p_project text, p_name text) RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
    SELECT sisyphus.pause_job(p_project, p_name, NULL, NULL)
$$;

-- A resume clears the pause's note.
CREATE OR REPLACE FUNCTION sisyphus.resume_job_unchecked(p_project text, p_name text)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    j sisyphus.jobs := sisyphus.find_job(p_project, p_name);
BEGIN
    UPDATE sisyphus.jobs
       SET paused = false, pause_reason = NULL, paused_by = NULL, paused_at = NULL,
           paused_until = NULL, updated_at = now()
     WHERE id = j.id AND paused;
    RETURN FOUND;
END $$;

-- The scheduler's resume of the pauses whose end has passed, each with an audit row (actor: the
-- scheduler's login; reason: the pause's end). Returns how many it resumed.
CREATE FUNCTION sisyphus.resume_ended_pauses() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
DECLARE
    j record;
    n integer := 0;
BEGIN
    FOR j IN SELECT project, name, paused_until FROM sisyphus.jobs
              WHERE paused AND paused_until <= now() ORDER BY id FOR UPDATE SKIP LOCKED LOOP
        PERFORM set_config('sisyphus.reason',
            'paused until ' || to_char(j.paused_until AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS"Z"'),
            true);
        IF sisyphus.resume_job_unchecked(j.project, j.name) THEN
            n := n + 1;
        END IF;
    END LOOP;
    PERFORM set_config('sisyphus.reason', '', true);
    RETURN n;
END $$;

-- A run again: same job, slot, target host and parameters; the slot's next attempt.
CREATE FUNCTION sisyphus.rerun_unchecked(p_run bigint, p_by text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    r sisyphus.runs;
    j sisyphus.jobs;
    t timestamptz := clock_timestamp();
    id bigint;
BEGIN
    SELECT * INTO r FROM sisyphus.runs WHERE runs.id = p_run;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'run % does not exist', p_run USING ERRCODE = 'no_data_found';
    END IF;
    SELECT * INTO j FROM sisyphus.jobs WHERE jobs.id = r.job_id;
    INSERT INTO sisyphus.runs (job_id, slot, attempt, scheduled_for, expires_at, target_host,
                               trigger, created_by, rerun_of, params)
    SELECT r.job_id, r.slot,
           (SELECT max(x.attempt) + 1 FROM sisyphus.runs x
             WHERE x.job_id = r.job_id AND x.slot = r.slot
               AND x.target_host IS NOT DISTINCT FROM r.target_host),
           t, t + j.ttl, r.target_host, 'rerun', p_by, r.id, r.params
    RETURNING runs.id INTO id;
    PERFORM pg_notify('sisyphus_runs', '');
    RETURN id;
END $$;

CREATE FUNCTION sisyphus.rerun(p_run bigint, p_by text DEFAULT session_user) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
DECLARE
    p text;
    job text;
    id bigint;
BEGIN
    SELECT j.project, j.project || '/' || j.name INTO p, job
      FROM sisyphus.runs r JOIN sisyphus.jobs j ON j.id = r.job_id
     WHERE r.id = p_run;
    IF p IS NOT NULL THEN
        PERFORM sisyphus.require(p, 'operator', 'run jobs of');
    END IF;
    id := sisyphus.rerun_unchecked(p_run, p_by);
    PERFORM sisyphus.audit_write('run.rerun', p, job,
                                 jsonb_build_object('run', id, 'rerun_of', p_run));
    RETURN id;
END $$;

-- job_status (0008) gains the pause's note (columns appended).
CREATE OR REPLACE VIEW sisyphus.job_status WITH (security_invoker = true) AS
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
       j.scheduler_error_at,
       j.pause_reason,
       j.paused_by,
       j.paused_at,
       j.paused_until
  FROM sisyphus.jobs j
  LEFT JOIN LATERAL (
        SELECT r.id, r.status, r.finished_at, r.summary
          FROM sisyphus.runs r
         WHERE r.job_id = j.id AND r.status NOT IN ('pending', 'running', 'suspended', 'cancelled')
         ORDER BY r.id DESC
         LIMIT 1) last ON true
  CROSS JOIN LATERAL (SELECT sisyphus.health_reason(j.id) AS text) reason;

-- Who may call what (0011, 0012): people call the checking actions; the scheduler ends pauses.
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA sisyphus FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    sisyphus.pause_job(text, text), sisyphus.pause_job(text, text, text, timestamptz),
    sisyphus.rerun(bigint, text), sisyphus.run_now(text, text, jsonb, text)
    TO sisyphus_viewer;
GRANT EXECUTE ON FUNCTION sisyphus.claimed_params(bigint[]) TO sisyphus_guardian;
GRANT EXECUTE ON FUNCTION sisyphus.resume_ended_pauses(),
    sisyphus.run_params(jsonb, jsonb, timestamptz, text)
    TO sisyphus_scheduler;
-- The scheduler's column grants on jobs (0012) do not include the pause's: it changes them only
-- through resume_ended_pauses.
