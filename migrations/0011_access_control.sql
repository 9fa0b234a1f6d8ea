-- Access control (issue 15): roles for people and for each daemon, per-project grants enforced
-- by row-level security, the control paths as SECURITY DEFINER functions that check the caller,
-- and an append-only audit log written in the same transaction as the change.
--
-- Who is who: the login is `session_user` (inside a SECURITY DEFINER function `current_user` is
-- the schema's owner, `session_user` still the person or daemon that connected). The schema's
-- owner and members of `sisyphus_admin` may do everything; everyone else needs a grant.
--
-- Roles are cluster-wide, so they are created only where missing (several databases of one
-- cluster share them); the migrating login needs CREATEROLE once. Nothing is granted to PUBLIC.

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['sisyphus_viewer', 'sisyphus_operator', 'sisyphus_editor',
                             'sisyphus_admin', 'sisyphus_guardian', 'sisyphus_scheduler',
                             'sisyphus_dispatcher'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
END $$;

GRANT sisyphus_viewer TO sisyphus_operator;
GRANT sisyphus_operator TO sisyphus_editor;
GRANT sisyphus_editor TO sisyphus_admin;

REVOKE ALL ON SCHEMA sisyphus FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA sisyphus FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA sisyphus FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA sisyphus FROM PUBLIC;
REVOKE EXECUTE ON ALL PROCEDURES IN SCHEMA sisyphus FROM PUBLIC;
-- Functions the migrating role creates from now on (the rest of this migration, later ones)
-- are not callable by PUBLIC either. Global, not `IN SCHEMA`: per-schema default privileges
-- only add to the global ones and cannot take PUBLIC's EXECUTE away.
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
GRANT USAGE ON SCHEMA sisyphus
    TO sisyphus_viewer, sisyphus_guardian, sisyphus_scheduler, sisyphus_dispatcher;
-- Every entry point checks the schema's version before it does anything.
GRANT SELECT ON sisyphus._sqlx_migrations
    TO sisyphus_viewer, sisyphus_guardian, sisyphus_scheduler, sisyphus_dispatcher;

-- Who may do what to which projects. `pattern` is a project (`ACME.FooBar`), a prefix with `.*`
-- (`ACME.*`: ACME and every project under it) or `*` (every project).
CREATE TABLE sisyphus.grants (
    login       name NOT NULL,
    level       text NOT NULL CHECK (level IN ('viewer', 'operator', 'editor')),
    pattern     text NOT NULL CHECK (pattern ~ '^(\*|[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*(\.\*)?)$'),
    granted_by  name NOT NULL DEFAULT session_user,
    granted_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (login, pattern)
);

-- The host names a guardian login may register and act as.
CREATE TABLE sisyphus.service_hosts (
    login   name NOT NULL,
    host    text NOT NULL,
    PRIMARY KEY (login, host)
);

-- Every change, who made it, through what, and why. Written only by the functions and triggers
-- below (as the owner); nobody else may insert, change or delete a row.
CREATE TABLE sisyphus.audit (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor           name NOT NULL DEFAULT session_user,
    -- A service acting for a person (the dashboard) names the person per transaction.
    on_behalf_of    text DEFAULT nullif(current_setting('sisyphus.on_behalf_of', true), ''),
    channel         text DEFAULT nullif(current_setting('application_name', true), ''),
    action          text NOT NULL,
    project         text,
    target          text,
    diff            jsonb,
    reason          text DEFAULT nullif(current_setting('sisyphus.reason', true), '')
);

CREATE INDEX audit_at ON sisyphus.audit (at);
CREATE INDEX audit_target ON sisyphus.audit (project, target);

-- The schema's owner: the one login every check lets through.
CREATE FUNCTION sisyphus.owner() RETURNS name
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
    SELECT nspowner::regrole::name FROM pg_namespace WHERE nspname = 'sisyphus'
$$;

-- Whether the login may do everything (the owner, a superuser, or an admin).
CREATE FUNCTION sisyphus.is_admin() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
    SELECT session_user = sisyphus.owner()
        OR coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = session_user), false)
        OR pg_has_role(session_user, 'sisyphus_admin', 'MEMBER')
$$;

CREATE FUNCTION sisyphus.level_rank(p_level text) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_level WHEN 'viewer' THEN 1 WHEN 'operator' THEN 2 WHEN 'editor' THEN 3 END
$$;

CREATE FUNCTION sisyphus.pattern_matches(p_pattern text, p_project text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT p_pattern = '*'
        OR p_pattern = p_project
        OR (p_pattern LIKE '%.*'
            AND (p_project = left(p_pattern, -2)
                 OR starts_with(p_project, left(p_pattern, -1))))
$$;

-- Whether the login holds `p_level` (or more) on `p_project`. What row-level security asks.
CREATE FUNCTION sisyphus.may(p_project text, p_level text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
    SELECT sisyphus.is_admin()
        OR EXISTS (SELECT 1 FROM sisyphus.grants g
                    WHERE g.login = session_user
                      AND sisyphus.level_rank(g.level) >= sisyphus.level_rank(p_level)
                      AND sisyphus.pattern_matches(g.pattern, p_project))
$$;

-- As `may`, raising insufficient_privilege (42501) with who, what and which grant is missing:
-- "alice (operator of ACME.*) may not edit jobs of ACME.FooBar: needs editor".
CREATE FUNCTION sisyphus.require(p_project text, p_level text, p_what text) RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
DECLARE
    held text;
BEGIN
    IF sisyphus.may(p_project, p_level) THEN
        RETURN;
    END IF;
    SELECT string_agg(g.level || ' of ' || g.pattern, ', ' ORDER BY g.pattern) INTO held
      FROM sisyphus.grants g
     WHERE g.login = session_user AND sisyphus.pattern_matches(g.pattern, p_project);
    RAISE EXCEPTION '% (%) may not % %: needs %', session_user,
        coalesce(held, 'no grant on ' || p_project), p_what, p_project, p_level
        USING ERRCODE = 'insufficient_privilege';
END $$;

-- The admin-only actions' check.
CREATE FUNCTION sisyphus.require_admin(p_what text) RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
BEGIN
    IF NOT sisyphus.is_admin() THEN
        RAISE EXCEPTION '% may not %: needs admin', session_user, p_what
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END $$;

-- The host names this login may act as (a guardian login's binding); NULL for the owner and
-- admins, who may act as any.
CREATE FUNCTION sisyphus.my_hosts() RETURNS text[]
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
    SELECT CASE WHEN sisyphus.is_admin() THEN NULL
                ELSE coalesce((SELECT array_agg(host) FROM sisyphus.service_hosts
                                WHERE login = session_user), '{}') END
$$;

CREATE FUNCTION sisyphus.may_act_as(p_host text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT sisyphus.my_hosts() IS NULL OR p_host = ANY (sisyphus.my_hosts())
$$;

-- One audit row.
CREATE FUNCTION sisyphus.audit_write(p_action text, p_project text, p_target text, p_diff jsonb)
RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
    INSERT INTO sisyphus.audit (action, project, target, diff)
    VALUES (p_action, p_project, p_target, p_diff)
$$;

-- A definition as the audit log shows it: environment values never (a key's value may be a
-- secret or a secret's reference; the log says only that it changed).
CREATE FUNCTION sisyphus.audit_definition(j sisyphus.jobs) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT to_jsonb(j)
           - '{id,next_slot,fired,inputs_seen_at,overdue_since,scheduler_error,scheduler_error_at,created_at,updated_at}'::text[]
           || jsonb_build_object('env', (SELECT coalesce(jsonb_object_agg(k, '***'), '{}')
                                           FROM jsonb_object_keys(j.env) k))
$$;

-- Job rows: an editor's check before any direct write (inside the checking functions below the
-- caller is the owner, and they check themselves), and one audit row after each change of the
-- definition — created, changed (the keys that changed, before and after), paused, resumed,
-- removed. The scheduler's own columns (next slot, counters, its error mark) are not audited.
CREATE FUNCTION sisyphus.jobs_check_edit() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_user <> sisyphus.owner() THEN
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
            PERFORM sisyphus.require(OLD.project, 'editor', 'edit jobs of');
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            PERFORM sisyphus.require(NEW.project, 'editor', 'edit jobs of');
        END IF;
    END IF;
    RETURN coalesce(NEW, OLD);
END $$;

CREATE TRIGGER jobs_check_edit BEFORE INSERT OR DELETE OR UPDATE OF
    project, name, command, shell, env, workdir, cron, every, at, timezone, starts_at, ends_at,
    iterations, ttl, catchup, jitter, maxtime, retries, retry_backoff, concurrency, target_all,
    target_pool, userdata, run_as, keep_logs, compress_logs, compress_mode, inputs, outputs,
    lock_lease, lock_wait, outputs_expire, on_inputs, max_health_age, notify, warn_after,
    min_duration, memory_max, cpu_weight, paused
    ON sisyphus.jobs FOR EACH ROW EXECUTE FUNCTION sisyphus.jobs_check_edit();

CREATE FUNCTION sisyphus.jobs_audit() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
DECLARE
    before jsonb;
    after jsonb;
    changed jsonb;
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
    -- A changed environment shows as the keys whose values changed, never the values.
    IF OLD.env IS DISTINCT FROM NEW.env THEN
        changed := changed || jsonb_build_object('env', jsonb_build_object(
            'changed', (SELECT coalesce(jsonb_agg(k ORDER BY k), '[]')
                          FROM jsonb_object_keys(OLD.env || NEW.env) k
                         WHERE OLD.env -> k IS DISTINCT FROM NEW.env -> k)));
    END IF;
    PERFORM sisyphus.audit_write(
        CASE WHEN changed - 'paused' = '{}'::jsonb AND NEW.paused THEN 'job.pause'
             WHEN changed - 'paused' = '{}'::jsonb THEN 'job.resume'
             ELSE 'job.update' END,
        NEW.project, NEW.project || '/' || NEW.name, changed);
    RETURN NULL;
END $$;

-- Only for writes that name a definition column: the scheduler's updates of its own columns
-- (every tick, every due job) never run it.
CREATE TRIGGER jobs_audit AFTER INSERT OR DELETE OR UPDATE OF
    project, name, command, shell, env, workdir, cron, every, at, timezone, starts_at, ends_at,
    iterations, ttl, catchup, jitter, maxtime, retries, retry_backoff, concurrency, target_all,
    target_pool, userdata, run_as, keep_logs, compress_logs, compress_mode, inputs, outputs,
    lock_lease, lock_wait, outputs_expire, on_inputs, max_health_age, notify, warn_after,
    min_duration, memory_max, cpu_weight, paused
    ON sisyphus.jobs FOR EACH ROW EXECUTE FUNCTION sisyphus.jobs_audit();

CREATE FUNCTION sisyphus.project_defaults_check() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_user <> sisyphus.owner() THEN
        PERFORM sisyphus.require(coalesce(NEW.project, OLD.project), 'editor',
                                 'set the defaults of');
    END IF;
    RETURN coalesce(NEW, OLD);
END $$;

CREATE TRIGGER project_defaults_check BEFORE INSERT OR UPDATE OR DELETE
    ON sisyphus.project_defaults FOR EACH ROW EXECUTE FUNCTION sisyphus.project_defaults_check();

CREATE FUNCTION sisyphus.project_defaults_audit() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
BEGIN
    PERFORM sisyphus.audit_write('project.defaults', coalesce(NEW.project, OLD.project),
        coalesce(NEW.project, OLD.project),
        jsonb_build_object('before', OLD.notify, 'after', NEW.notify));
    RETURN NULL;
END $$;

CREATE TRIGGER project_defaults_audit AFTER INSERT OR UPDATE OR DELETE
    ON sisyphus.project_defaults FOR EACH ROW EXECUTE FUNCTION sisyphus.project_defaults_audit();

-- The people's actions: each existing function keeps its body under an `_unchecked` name nobody
-- may call; the public name checks the caller's grant, writes the audit row and calls it.
ALTER FUNCTION sisyphus.run_now(text, text, text) RENAME TO run_now_unchecked;
CREATE FUNCTION sisyphus.run_now(p_project text, p_name text, p_by text DEFAULT session_user)
RETURNS SETOF bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
DECLARE
    ids bigint[];
BEGIN
    PERFORM sisyphus.require(p_project, 'operator', 'run jobs of');
    SELECT array_agg(id) INTO ids FROM sisyphus.run_now_unchecked(p_project, p_name, p_by) id;
    PERFORM sisyphus.audit_write('run.now', p_project, p_project || '/' || p_name,
                                 jsonb_build_object('runs', to_jsonb(ids)));
    RETURN QUERY SELECT unnest(ids);
END $$;

ALTER FUNCTION sisyphus.pause_job(text, text) RENAME TO pause_job_unchecked;
CREATE FUNCTION sisyphus.pause_job(p_project text, p_name text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
BEGIN
    PERFORM sisyphus.require(p_project, 'operator', 'pause jobs of');
    RETURN sisyphus.pause_job_unchecked(p_project, p_name);
END $$;

ALTER FUNCTION sisyphus.resume_job(text, text) RENAME TO resume_job_unchecked;
CREATE FUNCTION sisyphus.resume_job(p_project text, p_name text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
BEGIN
    PERFORM sisyphus.require(p_project, 'operator', 'resume jobs of');
    RETURN sisyphus.resume_job_unchecked(p_project, p_name);
END $$;

ALTER FUNCTION sisyphus.remove_job(text, text) RENAME TO remove_job_unchecked;
CREATE FUNCTION sisyphus.remove_job(p_project text, p_name text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
BEGIN
    PERFORM sisyphus.require(p_project, 'editor', 'remove jobs of');
    RETURN sisyphus.remove_job_unchecked(p_project, p_name);
END $$;

ALTER FUNCTION sisyphus.take_back_future_runs(bigint) RENAME TO take_back_future_runs_unchecked;
CREATE FUNCTION sisyphus.take_back_future_runs(p_job bigint) RETURNS timestamptz
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
DECLARE
    p text := (SELECT project FROM sisyphus.jobs WHERE id = p_job);
BEGIN
    IF p IS NOT NULL THEN
        PERFORM sisyphus.require(p, 'editor', 'edit jobs of');
    END IF;
    RETURN sisyphus.take_back_future_runs_unchecked(p_job);
END $$;
-- pause_job_unchecked calls it by its new name, as the owner.
CREATE OR REPLACE FUNCTION sisyphus.pause_job_unchecked(p_project text, p_name text)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    j sisyphus.jobs := sisyphus.find_job(p_project, p_name);
    first_taken timestamptz;
BEGIN
    UPDATE sisyphus.jobs SET paused = true, updated_at = now() WHERE id = j.id AND NOT paused;
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

ALTER FUNCTION sisyphus.request_control(bigint, text) RENAME TO request_control_unchecked;
CREATE FUNCTION sisyphus.request_control(p_run bigint, p_action text) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
DECLARE
    p text;
    job text;
    answer text;
BEGIN
    SELECT j.project, j.project || '/' || j.name INTO p, job
      FROM sisyphus.runs r JOIN sisyphus.jobs j ON j.id = r.job_id
     WHERE r.id = p_run;
    IF p IS NOT NULL THEN
        PERFORM sisyphus.require(p, 'operator', p_action || ' runs of');
    END IF;
    answer := sisyphus.request_control_unchecked(p_run, p_action);
    PERFORM sisyphus.audit_write('run.' || p_action, p, 'run ' || p_run,
                                 jsonb_build_object('job', job, 'answer', answer));
    RETURN answer;
END $$;
-- terminate/suspend/resume call request_control by name; they stay plain SQL functions.

ALTER FUNCTION sisyphus.drain_host(text, boolean) RENAME TO drain_host_unchecked;
CREATE FUNCTION sisyphus.drain_host(p_host text, p_drain boolean DEFAULT true) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
DECLARE
    done boolean;
BEGIN
    PERFORM sisyphus.require_admin(CASE WHEN p_drain THEN 'drain hosts' ELSE 'undrain hosts' END);
    done := sisyphus.drain_host_unchecked(p_host, p_drain);
    PERFORM sisyphus.audit_write(CASE WHEN p_drain THEN 'host.drain' ELSE 'host.undrain' END,
                                 NULL, p_host, NULL);
    RETURN done;
END $$;

-- Sends failed notifications again from scratch; only those of projects the caller operates.
-- Returns the ids taken back.
CREATE FUNCTION sisyphus.retry_notifications(p_ids bigint[]) RETURNS SETOF bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
DECLARE
    o record;
    taken bigint[] := '{}';
BEGIN
    FOR o IN SELECT x.id, j.project FROM sisyphus.outbox x
               LEFT JOIN sisyphus.jobs j ON j.id = x.job_id
              WHERE x.id = ANY (p_ids) AND x.state = 'failed' ORDER BY x.id LOOP
        IF o.project IS NULL THEN
            PERFORM sisyphus.require_admin('retry notifications of removed jobs');
        ELSE
            PERFORM sisyphus.require(o.project, 'operator', 'retry notifications of');
        END IF;
        taken := taken || o.id;
    END LOOP;
    UPDATE sisyphus.outbox
       SET state = 'pending', attempts = 0, next_attempt_at = now(), last_error = NULL
     WHERE id = ANY (taken);
    IF cardinality(taken) > 0 THEN
        PERFORM pg_notify('sisyphus_outbox', '');
        PERFORM sisyphus.audit_write('notification.retry', NULL, NULL,
                                     jsonb_build_object('ids', to_jsonb(taken)));
    END IF;
    RETURN QUERY SELECT unnest(taken);
END $$;

-- Grants, by admins. Each leaves an audit row.
CREATE FUNCTION sisyphus.grant_access(p_login name, p_level text, p_pattern text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
DECLARE
    old_level text;
BEGIN
    PERFORM sisyphus.require_admin('grant access');
    -- A new level on the same pattern replaces the old one, and the old level's role goes with
    -- its last grant.
    DELETE FROM sisyphus.grants WHERE login = p_login AND pattern = p_pattern
    RETURNING level INTO old_level;
    IF old_level IS NOT NULL AND old_level <> p_level
       AND NOT EXISTS (SELECT 1 FROM sisyphus.grants WHERE login = p_login AND level = old_level) THEN
        EXECUTE format('REVOKE %I FROM %I', 'sisyphus_' || old_level, p_login);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = p_login) THEN
        RAISE EXCEPTION 'login % does not exist; create it with `sisyctl user add`', p_login
            USING ERRCODE = 'undefined_object';
    END IF;
    INSERT INTO sisyphus.grants (login, level, pattern) VALUES (p_login, p_level, p_pattern)
    ON CONFLICT (login, pattern) DO UPDATE SET level = EXCLUDED.level,
        granted_by = session_user, granted_at = now();
    EXECUTE format('GRANT %I TO %I', 'sisyphus_' || p_level, p_login);
    PERFORM sisyphus.audit_write('grant.add', NULL, p_login,
                                 jsonb_build_object('level', p_level, 'pattern', p_pattern));
END $$;

CREATE FUNCTION sisyphus.revoke_access(p_login name, p_pattern text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
DECLARE
    gone sisyphus.grants;
BEGIN
    PERFORM sisyphus.require_admin('revoke access');
    DELETE FROM sisyphus.grants WHERE login = p_login AND pattern = p_pattern RETURNING * INTO gone;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    -- The role goes with the last grant of its level (the table rights and functions it gives).
    IF NOT EXISTS (SELECT 1 FROM sisyphus.grants WHERE login = p_login AND level = gone.level) THEN
        EXECUTE format('REVOKE %I FROM %I', 'sisyphus_' || gone.level, p_login);
    END IF;
    PERFORM sisyphus.audit_write('grant.remove', NULL, p_login,
                                 jsonb_build_object('level', gone.level, 'pattern', p_pattern));
    RETURN true;
END $$;

-- Logins: a person (member of the people's roles through grants) or a service (member of one
-- daemon's role; a guardian bound to host names). The owner must hold CREATEROLE.
CREATE FUNCTION sisyphus.add_login(p_login name, p_password text, p_kind text, p_hosts text[])
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
BEGIN
    PERFORM sisyphus.require_admin('add logins');
    IF p_kind NOT IN ('user', 'admin', 'guardian', 'scheduler', 'dispatcher') THEN
        RAISE EXCEPTION 'unknown kind of login %: user, admin, guardian, scheduler or dispatcher', p_kind
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_kind = 'guardian' AND coalesce(cardinality(p_hosts), 0) = 0 THEN
        RAISE EXCEPTION 'a guardian login needs the host names it may act as (--hosts)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = p_login) THEN
        EXECUTE format('CREATE ROLE %I LOGIN', p_login);
    END IF;
    IF p_password IS NOT NULL THEN
        -- Never in an error's context: the statement would quote the password.
        BEGIN
            EXECUTE format('ALTER ROLE %I PASSWORD %L', p_login, p_password);
        EXCEPTION WHEN OTHERS THEN
            RAISE EXCEPTION 'cannot set the password of %: %', p_login, SQLERRM
                USING ERRCODE = SQLSTATE;
        END;
    END IF;
    IF p_kind <> 'user' THEN
        EXECUTE format('GRANT %I TO %I', 'sisyphus_' || p_kind, p_login);
    END IF;
    INSERT INTO sisyphus.service_hosts (login, host)
    SELECT p_login, h FROM unnest(p_hosts) h WHERE p_kind = 'guardian'
    ON CONFLICT DO NOTHING;
    PERFORM sisyphus.audit_write('login.add', NULL, p_login,
                                 jsonb_build_object('kind', p_kind, 'hosts', to_jsonb(p_hosts)));
END $$;

-- Row-level security: people see the rows of projects they hold a grant on; each daemon sees
-- what its work needs. The owner is not subject to it (and owns every checking function).
ALTER TABLE sisyphus.jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE sisyphus.runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE sisyphus.run_logs ENABLE ROW LEVEL SECURITY;
ALTER TABLE sisyphus.outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE sisyphus.project_defaults ENABLE ROW LEVEL SECURITY;
ALTER TABLE sisyphus.resources ENABLE ROW LEVEL SECURITY;
ALTER TABLE sisyphus.resource_edges ENABLE ROW LEVEL SECURITY;
ALTER TABLE sisyphus.resource_holders ENABLE ROW LEVEL SECURITY;
ALTER TABLE sisyphus.resource_locks ENABLE ROW LEVEL SECURITY;
ALTER TABLE sisyphus.hosts ENABLE ROW LEVEL SECURITY;
ALTER TABLE sisyphus.grants ENABLE ROW LEVEL SECURITY;
ALTER TABLE sisyphus.service_hosts ENABLE ROW LEVEL SECURITY;
ALTER TABLE sisyphus.audit ENABLE ROW LEVEL SECURITY;

-- People.
CREATE POLICY people_read ON sisyphus.jobs FOR SELECT TO sisyphus_viewer
    USING (sisyphus.may(project, 'viewer'));
CREATE POLICY people_edit ON sisyphus.jobs FOR INSERT TO sisyphus_editor
    WITH CHECK (sisyphus.may(project, 'editor'));
CREATE POLICY people_change ON sisyphus.jobs FOR UPDATE TO sisyphus_editor
    USING (sisyphus.may(project, 'editor')) WITH CHECK (sisyphus.may(project, 'editor'));
-- A run, its lines and its notifications are visible with their job (the subquery is itself
-- filtered by the policy above, so it is one semi-join, not a check per row).
CREATE POLICY people_read ON sisyphus.runs FOR SELECT TO sisyphus_viewer
    USING (job_id IN (SELECT id FROM sisyphus.jobs));
CREATE POLICY people_read ON sisyphus.run_logs FOR SELECT TO sisyphus_viewer
    USING (run_id IN (SELECT id FROM sisyphus.runs));
CREATE POLICY people_read ON sisyphus.outbox FOR SELECT TO sisyphus_viewer
    USING (job_id IN (SELECT id FROM sisyphus.jobs) OR sisyphus.is_admin());
CREATE POLICY people_read ON sisyphus.project_defaults FOR SELECT TO sisyphus_viewer
    USING (sisyphus.may(project, 'viewer'));
CREATE POLICY people_edit ON sisyphus.project_defaults FOR ALL TO sisyphus_editor
    USING (sisyphus.may(project, 'editor')) WITH CHECK (sisyphus.may(project, 'editor'));
-- Resources written by a job are the job's project's; names written by client guards (no job)
-- are shared.
CREATE POLICY people_read ON sisyphus.resources FOR SELECT TO sisyphus_viewer
    USING (writer_job IS NULL OR writer_job IN (SELECT id FROM sisyphus.jobs));
CREATE POLICY people_read ON sisyphus.resource_edges FOR SELECT TO sisyphus_viewer
    USING (writer_job IS NULL OR writer_job IN (SELECT id FROM sisyphus.jobs));
CREATE POLICY people_read ON sisyphus.resource_holders FOR SELECT TO sisyphus_viewer
    USING (job_id IS NULL OR job_id IN (SELECT id FROM sisyphus.jobs));
CREATE POLICY people_read ON sisyphus.resource_locks FOR SELECT TO sisyphus_viewer
    USING (holder IN (SELECT holder FROM sisyphus.resource_holders));
CREATE POLICY everyone_reads ON sisyphus.hosts FOR SELECT
    TO sisyphus_viewer, sisyphus_scheduler, sisyphus_dispatcher USING (true);
CREATE POLICY own_grants ON sisyphus.grants FOR SELECT TO sisyphus_viewer
    USING (login = session_user OR sisyphus.is_admin());
CREATE POLICY admins_read ON sisyphus.service_hosts FOR SELECT TO sisyphus_viewer
    USING (sisyphus.is_admin());
-- The audit log: a person sees what happened to the projects they can see, and their own acts.
CREATE POLICY people_read ON sisyphus.audit FOR SELECT TO sisyphus_viewer
    USING (sisyphus.is_admin() OR actor = session_user
           OR (project IS NOT NULL AND sisyphus.may(project, 'viewer')));

GRANT SELECT ON sisyphus.jobs, sisyphus.runs, sisyphus.run_logs, sisyphus.outbox,
    sisyphus.project_defaults, sisyphus.resources, sisyphus.resource_edges,
    sisyphus.resource_holders, sisyphus.resource_locks, sisyphus.hosts, sisyphus.grants,
    sisyphus.service_hosts, sisyphus.audit
    TO sisyphus_viewer;
GRANT INSERT, UPDATE ON sisyphus.jobs, sisyphus.project_defaults TO sisyphus_editor;

-- The views run with the caller's rights, so the policies above hold through them too.
ALTER VIEW sisyphus.job_status SET (security_invoker = true);
ALTER VIEW sisyphus.live_hosts SET (security_invoker = true);
ALTER VIEW sisyphus.recent_runs SET (security_invoker = true);
ALTER VIEW sisyphus.resource_status SET (security_invoker = true);
GRANT SELECT ON sisyphus.job_status, sisyphus.live_hosts, sisyphus.recent_runs,
    sisyphus.resource_status TO sisyphus_viewer;

-- Belt and braces: whatever this migration created, PUBLIC calls nothing; each role gets below
-- exactly what it may call. `audit_write`, the `_unchecked` bodies, `audit_definition` and the
-- trigger functions are granted to nobody (they run as the owner, from the functions above).
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA sisyphus FROM PUBLIC;
REVOKE EXECUTE ON ALL PROCEDURES IN SCHEMA sisyphus FROM PUBLIC;

GRANT EXECUTE ON FUNCTION
    sisyphus.health_reason(bigint), sisyphus.may(text, text), sisyphus.is_admin(),
    sisyphus.require(text, text, text),
    sisyphus.level_rank(text), sisyphus.pattern_matches(text, text), sisyphus.owner(),
    sisyphus.my_hosts(), sisyphus.may_act_as(text), sisyphus.lineage_name(text),
    sisyphus.find_job(text, text)
    TO sisyphus_viewer, sisyphus_guardian, sisyphus_scheduler, sisyphus_dispatcher;
-- The actions check the caller themselves (`require`, `require_admin`), so every person may call
-- them and hear which grant is missing, rather than a bare "permission denied for function".
GRANT EXECUTE ON FUNCTION
    sisyphus.run_now(text, text, text), sisyphus.pause_job(text, text),
    sisyphus.resume_job(text, text), sisyphus.request_control(bigint, text),
    sisyphus.terminate(bigint), sisyphus.suspend(bigint), sisyphus.resume(bigint),
    sisyphus.retry_notifications(bigint[]), sisyphus.remove_job(text, text),
    sisyphus.take_back_future_runs(bigint), sisyphus.drain_host(text, boolean),
    sisyphus.grant_access(name, text, text), sisyphus.revoke_access(name, text),
    sisyphus.add_login(name, text, text, text[])
    TO sisyphus_viewer;
