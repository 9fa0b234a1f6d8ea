-- Calendars and blackouts (issue 18, item 2): named sets of days or time ranges in a zone, and
-- the job keys `skip_on` and `only_on` that name them. A slot a job's calendars exclude is
-- recorded by the scheduler as a `skipped` run with the calendar's name in `error` (0015).
--
-- Calendars are global: one name space shared by every project, because a calendar such as
-- "nl-holidays" is the same for all of them. Every person (any grant) and the scheduler read
-- them; only admins write them, through `set_calendar` and `remove_calendar`, which check the
-- caller and leave an audit row. No role may write the tables directly.
--
-- `entries` is the parsed form (`sisyphus_model::calendar::Entry` as JSON, tagged by `kind`),
-- which the scheduler reads; `source` is the file as it was given, kept to be shown again.

CREATE TABLE sisyphus.calendars (
    name        text PRIMARY KEY
                CONSTRAINT calendars_name_check CHECK (name ~ '^[A-Za-z0-9_.-]{1,200}$'),
    zone        text NOT NULL,
    format      text NOT NULL CONSTRAINT calendars_format_check CHECK (format IN ('ics', 'toml')),
    source      text NOT NULL,
    entries     jsonb NOT NULL CONSTRAINT calendars_entries_check
                CHECK (jsonb_typeof(entries) = 'array'),
    description text,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  name NOT NULL DEFAULT session_user
);

-- One row: a counter bumped by every change of `calendars`. The scheduler keeps the calendars
-- in memory and reads this one row (only in ticks whose due jobs use calendars) to know whether
-- to read them again, so a tick's cost still grows with due jobs, not with calendars
-- (invariant `tick-cost-by-due-jobs`).
CREATE TABLE sisyphus.calendar_state (
    one         boolean PRIMARY KEY DEFAULT true CHECK (one),
    version     bigint NOT NULL DEFAULT 0
);
INSERT INTO sisyphus.calendar_state DEFAULT VALUES;

CREATE FUNCTION sisyphus.calendars_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE sisyphus.calendar_state SET version = version + 1;
    RETURN NULL;
END $$;

CREATE TRIGGER calendars_changed AFTER INSERT OR UPDATE OR DELETE ON sisyphus.calendars
    FOR EACH STATEMENT EXECUTE FUNCTION sisyphus.calendars_changed();

ALTER TABLE sisyphus.jobs
    ADD COLUMN skip_on text[] NOT NULL DEFAULT '{}',
    ADD COLUMN only_on text[] NOT NULL DEFAULT '{}';

-- A job names only calendars that exist. The calendars it names are locked (KEY SHARE) until
-- its transaction ends, so `remove_calendar` (which locks the row before it looks for users)
-- waits for it and then sees it: no job is left naming a removed calendar. SQLSTATE 23514 with
-- the column, which `sisyphus-db` turns into a field error naming the key.
CREATE FUNCTION sisyphus.jobs_check_calendars() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
DECLARE
    key text;
    wanted text[];
    missing text;
BEGIN
    FOREACH key IN ARRAY ARRAY['skip_on', 'only_on'] LOOP
        wanted := CASE key WHEN 'skip_on' THEN NEW.skip_on ELSE NEW.only_on END;
        IF cardinality(wanted) = 0 THEN
            CONTINUE;
        END IF;
        PERFORM 1 FROM sisyphus.calendars WHERE name = ANY (wanted) FOR KEY SHARE;
        SELECT w INTO missing FROM unnest(wanted) w
         WHERE NOT EXISTS (SELECT 1 FROM sisyphus.calendars c WHERE c.name = w)
         LIMIT 1;
        IF missing IS NOT NULL THEN
            RAISE EXCEPTION 'unknown calendar `%` in %', missing, key
                USING ERRCODE = 'check_violation', COLUMN = key,
                      HINT = 'define it with `sisyctl calendar set`';
        END IF;
    END LOOP;
    RETURN NEW;
END $$;

CREATE TRIGGER jobs_check_calendars BEFORE INSERT OR UPDATE OF skip_on, only_on
    ON sisyphus.jobs FOR EACH ROW
    WHEN (cardinality(NEW.skip_on) + cardinality(NEW.only_on) > 0)
    EXECUTE FUNCTION sisyphus.jobs_check_calendars();

-- Sets (creates or replaces) a calendar; admins only. Returns whether it was new. The audit row
-- (`calendar.set`) holds the zone, format, description and entries before and after.
CREATE FUNCTION sisyphus.set_calendar(p_name text, p_zone text, p_format text, p_source text,
                                      p_entries jsonb, p_description text DEFAULT NULL)
RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
DECLARE
    old sisyphus.calendars;
BEGIN
    PERFORM sisyphus.require_admin('set calendars');
    IF NOT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = p_zone) THEN
        RAISE EXCEPTION 'unknown time zone %', p_zone USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO old FROM sisyphus.calendars WHERE name = p_name FOR UPDATE;
    INSERT INTO sisyphus.calendars (name, zone, format, source, entries, description)
    VALUES (p_name, p_zone, p_format, p_source, p_entries, p_description)
    ON CONFLICT (name) DO UPDATE SET zone = EXCLUDED.zone, format = EXCLUDED.format,
        source = EXCLUDED.source, entries = EXCLUDED.entries,
        description = EXCLUDED.description, updated_at = now(), updated_by = session_user;
    PERFORM sisyphus.audit_write('calendar.set', NULL, p_name, jsonb_build_object(
        'before', CASE WHEN old.name IS NOT NULL THEN jsonb_build_object(
                      'zone', old.zone, 'format', old.format, 'description', old.description,
                      'entries', old.entries) END,
        'after', jsonb_build_object('zone', p_zone, 'format', p_format,
                                    'description', p_description, 'entries', p_entries)));
    RETURN old.name IS NULL;
END $$;

-- Removes a calendar; admins only. Refused while a job names it (the error names the jobs).
-- Returns whether there was one. The row is locked first, so a job being applied with the name
-- (whose trigger holds a KEY SHARE lock on it) is waited for and then seen.
CREATE FUNCTION sisyphus.remove_calendar(p_name text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
DECLARE
    users text;
    old sisyphus.calendars;
BEGIN
    PERFORM sisyphus.require_admin('remove calendars');
    SELECT * INTO old FROM sisyphus.calendars WHERE name = p_name FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    SELECT string_agg(project || '/' || name, ', ' ORDER BY project, name) INTO users
      FROM sisyphus.jobs WHERE p_name = ANY (skip_on) OR p_name = ANY (only_on);
    IF users IS NOT NULL THEN
        RAISE EXCEPTION 'calendar % is used by %; take it out of their skip_on/only_on first',
            p_name, users USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    DELETE FROM sisyphus.calendars WHERE name = p_name;
    PERFORM sisyphus.audit_write('calendar.remove', NULL, p_name, jsonb_build_object(
        'before', jsonb_build_object('zone', old.zone, 'format', old.format,
                                     'description', old.description, 'entries', old.entries)));
    RETURN true;
END $$;

ALTER TABLE sisyphus.calendars ENABLE ROW LEVEL SECURITY;
ALTER TABLE sisyphus.calendar_state ENABLE ROW LEVEL SECURITY;
CREATE POLICY everyone_reads ON sisyphus.calendars FOR SELECT
    TO sisyphus_viewer, sisyphus_scheduler USING (true);
CREATE POLICY everyone_reads ON sisyphus.calendar_state FOR SELECT
    TO sisyphus_viewer, sisyphus_scheduler USING (true);
GRANT SELECT ON sisyphus.calendars, sisyphus.calendar_state TO sisyphus_viewer, sisyphus_scheduler;

REVOKE EXECUTE ON FUNCTION sisyphus.calendars_changed(), sisyphus.jobs_check_calendars(),
    sisyphus.set_calendar(text, text, text, text, jsonb, text), sisyphus.remove_calendar(text)
    FROM PUBLIC;
-- The actions check the caller themselves (`require_admin`), so every person may call them and
-- hear that admin is needed, rather than a bare "permission denied for function".
GRANT EXECUTE ON FUNCTION sisyphus.set_calendar(text, text, text, text, jsonb, text),
    sisyphus.remove_calendar(text) TO sisyphus_viewer;

-- `skip_on` and `only_on` are definition columns: an editor's check before a direct write and
-- one audit row after a change, as for every other definition column (0014's list, with 0016's
-- `overlap` and these two).
DROP TRIGGER jobs_check_edit ON sisyphus.jobs;
CREATE TRIGGER jobs_check_edit BEFORE INSERT OR DELETE OR UPDATE OF
    project, name, command, shell, env, workdir, cron, every, at, timezone, starts_at, ends_at,
    iterations, ttl, catchup, jitter, maxtime, retries, retry_backoff, concurrency, target_all,
    target_pool, userdata, run_as, keep_logs, compress_logs, compress_mode, inputs, outputs,
    lock_lease, lock_wait, outputs_expire, on_inputs, max_health_age, notify, warn_after,
    min_duration, memory_max, cpu_weight, paused, pause_reason, paused_until, params, format,
    overlap, skip_on, only_on
    ON sisyphus.jobs FOR EACH ROW EXECUTE FUNCTION sisyphus.jobs_check_edit();

DROP TRIGGER jobs_audit ON sisyphus.jobs;
CREATE TRIGGER jobs_audit AFTER INSERT OR DELETE OR UPDATE OF
    project, name, command, shell, env, workdir, cron, every, at, timezone, starts_at, ends_at,
    iterations, ttl, catchup, jitter, maxtime, retries, retry_backoff, concurrency, target_all,
    target_pool, userdata, run_as, keep_logs, compress_logs, compress_mode, inputs, outputs,
    lock_lease, lock_wait, outputs_expire, on_inputs, max_health_age, notify, warn_after,
    min_duration, memory_max, cpu_weight, paused, pause_reason, paused_until, params, format,
    overlap, skip_on, only_on
    ON sisyphus.jobs FOR EACH ROW EXECUTE FUNCTION sisyphus.jobs_audit();
