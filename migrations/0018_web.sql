-- The web dashboard (issue 16): the server signs people in and acts as them, so the database
-- decides what a page shows and what a button may do.
--
-- The authenticator pattern (PostgREST's): the dashboard logs in as a login of kind `web`, a
-- direct member of `sisyphus_web`. Per request it opens a transaction, names the person
-- (`sisyphus.on_behalf_of`) and switches to the person's role (`SET LOCAL ROLE`), so grants and
-- row-level security apply as in that person's own psql session. `sisyphus_web` is a member of
-- every person login that may sign in (granted when a token is made or a proxy names them), which
-- is what lets the web login switch to them; `sisyphus_web` is NOINHERIT, so the web login itself
-- inherits none of their rights — outside a person's transaction it may only sign people in.
--
-- Who is acting: until now the checking functions asked `session_user`. They now ask
-- `sisyphus.person()`: the session's login, or, for a web login, the person it names — and for a
-- web login that names nobody, nobody (NULL: not an admin, no grant).

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sisyphus_web') THEN
        CREATE ROLE sisyphus_web NOLOGIN NOINHERIT;
    END IF;
END $$;
GRANT USAGE ON SCHEMA sisyphus TO sisyphus_web;
GRANT SELECT ON sisyphus._sqlx_migrations TO sisyphus_web;

-- Whether the session's login is a web server: a direct member of `sisyphus_web` (direct, so a
-- superuser, who is a member of everything, is not taken for one).
CREATE FUNCTION sisyphus.session_is_web() RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM pg_auth_members m
                     JOIN pg_roles w ON w.oid = m.roleid AND w.rolname = 'sisyphus_web'
                     JOIN pg_roles s ON s.oid = m.member AND s.rolname = session_user);
END $$;

CREATE FUNCTION sisyphus.person() RETURNS name
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
BEGIN
    IF sisyphus.session_is_web() THEN
        RETURN nullif(current_setting('sisyphus.on_behalf_of', true), '')::name;
    END IF;
    RETURN session_user;
END $$;

CREATE OR REPLACE FUNCTION sisyphus.is_admin() RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
DECLARE
    p name := sisyphus.person();
BEGIN
    IF p IS NULL THEN
        RETURN false;
    END IF;
    RETURN p = sisyphus.owner()
        OR coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = p), false)
        OR pg_has_role(p, 'sisyphus_admin', 'MEMBER');
END $$;

CREATE OR REPLACE FUNCTION sisyphus.may(p_project text, p_level text) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM sisyphus.grants g
                    WHERE g.login = sisyphus.person()
                      AND sisyphus.level_rank(g.level) >= sisyphus.level_rank(p_level)
                      AND sisyphus.pattern_matches(g.pattern, p_project))
        OR sisyphus.is_admin();
END $$;

CREATE OR REPLACE FUNCTION sisyphus.require(p_project text, p_level text, p_what text)
RETURNS void LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
DECLARE
    held text;
BEGIN
    IF sisyphus.may(p_project, p_level) THEN
        RETURN;
    END IF;
    SELECT string_agg(g.level || ' of ' || g.pattern, ', ' ORDER BY g.pattern) INTO held
      FROM sisyphus.grants g
     WHERE g.login = sisyphus.person() AND sisyphus.pattern_matches(g.pattern, p_project);
    RAISE EXCEPTION '% (%) may not % %: needs %', coalesce(sisyphus.person(), session_user),
        coalesce(held, 'no grant on ' || p_project), p_what, p_project, p_level
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE OR REPLACE FUNCTION sisyphus.require_admin(p_what text) RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
BEGIN
    IF NOT sisyphus.is_admin() THEN
        RAISE EXCEPTION '% may not %: needs admin', coalesce(sisyphus.person(), session_user), p_what
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END $$;

CREATE OR REPLACE FUNCTION sisyphus.my_patterns(p_level text) RETURNS text[]
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
    SELECT coalesce(array_agg(g.pattern), '{}') FROM sisyphus.grants g
     WHERE g.login = sisyphus.person()
       AND sisyphus.level_rank(g.level) >= sisyphus.level_rank(p_level)
$$;

ALTER POLICY own_grants ON sisyphus.grants
    USING (login = (SELECT sisyphus.person()) OR (SELECT sisyphus.is_admin()));
ALTER POLICY people_read ON sisyphus.audit
    USING ((SELECT sisyphus.is_admin()) OR actor = session_user
           OR on_behalf_of = (SELECT sisyphus.person())
           OR (project IS NOT NULL
               AND sisyphus.matches_any((SELECT sisyphus.my_patterns('viewer')), project)));

-- Who paused a job: the person, also through the dashboard.
CREATE OR REPLACE FUNCTION sisyphus.pause_job_unchecked(p_project text, p_name text, p_reason text,
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
       SET paused = true, pause_reason = nullif(p_reason, ''),
           paused_by = coalesce(sisyphus.person(), session_user),
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

-- Personal API tokens: a person signs in to the dashboard with one. Only the SHA-256 of a token
-- is kept (the token is made and hashed by the client and shown once); a token ends when it
-- expires or is revoked, at once for every session signed in with it (each request asks again).
CREATE TABLE sisyphus.tokens (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    login           name NOT NULL,
    hash            bytea NOT NULL UNIQUE CHECK (length(hash) = 32),
    label           text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      name NOT NULL,
    expires_at      timestamptz,
    revoked_at      timestamptz,
    last_used_at    timestamptz
);
CREATE INDEX tokens_login ON sisyphus.tokens (login);

-- Row-level security by person (a token belongs to a login, not to a project): people see their
-- own tokens, admins all; nobody sees a hash; only the functions below write.
ALTER TABLE sisyphus.tokens ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_tokens ON sisyphus.tokens FOR SELECT TO sisyphus_viewer
    USING (login = (SELECT sisyphus.person()) OR (SELECT sisyphus.is_admin()));
GRANT SELECT (id, login, label, created_at, created_by, expires_at, revoked_at, last_used_at)
    ON sisyphus.tokens TO sisyphus_viewer;

-- Whether `p_login` is a person who may sign in to the dashboard: a login that is not the
-- owner, not a superuser and not a daemon.
CREATE FUNCTION sisyphus.is_person(p_login name) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM pg_roles r
                    WHERE r.rolname = p_login AND r.rolcanlogin AND NOT r.rolsuper
                      AND r.rolname <> sisyphus.owner()
                      AND NOT EXISTS (SELECT 1 FROM pg_auth_members m
                                        JOIN pg_roles d ON d.oid = m.roleid
                                       WHERE m.member = r.oid
                                         AND d.rolname IN ('sisyphus_guardian', 'sisyphus_scheduler',
                                                           'sisyphus_dispatcher', 'sisyphus_web')));
END $$;

-- Lets the web logins switch to `p_login` (see the top of this file).
CREATE FUNCTION sisyphus.web_enable(p_login name) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
BEGIN
    IF NOT sisyphus.is_person(p_login) THEN
        RAISE EXCEPTION '% is not a person''s login (sisyctl user add): it cannot sign in to the dashboard',
            p_login USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT pg_has_role('sisyphus_web', p_login, 'MEMBER') THEN
        EXECUTE format('GRANT %I TO sisyphus_web', p_login);
    END IF;
END $$;

-- A new token for `p_login` (a person may make their own; admins anyone's). Audited without
-- the hash.
CREATE FUNCTION sisyphus.create_token(p_login name, p_hash bytea, p_expires timestamptz,
                                      p_label text)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
DECLARE
    new_id bigint;
BEGIN
    IF p_login IS DISTINCT FROM sisyphus.person() THEN
        PERFORM sisyphus.require_admin('make tokens for others');
    END IF;
    IF p_expires IS NOT NULL AND p_expires <= now() THEN
        RAISE EXCEPTION 'a token that expires at % would never work', p_expires
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM sisyphus.web_enable(p_login);
    INSERT INTO sisyphus.tokens (login, hash, label, created_by, expires_at)
    VALUES (p_login, p_hash, nullif(p_label, ''), coalesce(sisyphus.person(), session_user), p_expires)
    RETURNING id INTO new_id;
    PERFORM sisyphus.audit_write('token.create', NULL, p_login,
                                 jsonb_build_object('id', new_id, 'expires_at', p_expires,
                                                    'label', p_label));
    RETURN new_id;
END $$;

-- Revokes a token (one's own, or anyone's for admins); false when there is no such live token.
CREATE FUNCTION sisyphus.revoke_token(p_id bigint) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
DECLARE
    owner_login name := (SELECT login FROM sisyphus.tokens WHERE id = p_id);
BEGIN
    IF owner_login IS NULL THEN
        RETURN false;
    END IF;
    IF owner_login IS DISTINCT FROM sisyphus.person() THEN
        PERFORM sisyphus.require_admin('revoke tokens of others');
    END IF;
    UPDATE sisyphus.tokens SET revoked_at = now() WHERE id = p_id AND revoked_at IS NULL;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM sisyphus.audit_write('token.revoke', NULL, owner_login, jsonb_build_object('id', p_id));
    RETURN true;
END $$;

-- The web server's sign-in check: the person a token hash belongs to, or an error that does not
-- tell a wrong token from a revoked or expired one (28000). Web logins only.
CREATE FUNCTION sisyphus.web_sign_in(p_hash bytea) RETURNS name
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
DECLARE
    t sisyphus.tokens;
BEGIN
    IF NOT sisyphus.session_is_web() THEN
        RAISE EXCEPTION '% is not a web login', session_user USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT * INTO t FROM sisyphus.tokens
     WHERE hash = p_hash AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now());
    IF NOT FOUND OR NOT sisyphus.is_person(t.login) THEN
        RAISE EXCEPTION 'unknown, expired or revoked token' USING ERRCODE = 'invalid_authorization_specification';
    END IF;
    -- At most one write a minute per token, not one per request.
    UPDATE sisyphus.tokens SET last_used_at = now()
     WHERE id = t.id AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute');
    RETURN t.login;
END $$;

-- The web server's check of a person named by a trusted proxy's header. Web logins only.
CREATE FUNCTION sisyphus.web_proxy_person(p_login name) RETURNS name
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
BEGIN
    IF NOT sisyphus.session_is_web() THEN
        RAISE EXCEPTION '% is not a web login', session_user USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT sisyphus.is_person(p_login) THEN
        RAISE EXCEPTION 'the proxy named %, who has no login here', p_login
            USING ERRCODE = 'invalid_authorization_specification';
    END IF;
    PERFORM sisyphus.web_enable(p_login);
    RETURN p_login;
END $$;

-- Logins: a web login (kind `web`) is a member of `sisyphus_web`.
CREATE OR REPLACE FUNCTION sisyphus.add_login(p_login name, p_password text, p_kind text, p_hosts text[])
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
BEGIN
    PERFORM sisyphus.require_admin('add logins');
    IF p_kind NOT IN ('user', 'admin', 'guardian', 'scheduler', 'dispatcher', 'web') THEN
        RAISE EXCEPTION 'unknown kind of login %: user, admin, guardian, scheduler, dispatcher or web', p_kind
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

-- Live pages: one NOTIFY per statement that changes runs or adds log lines, on the channel the
-- dashboard's one LISTEN connection hears (`sisyphus_web`). The payload is a hint, never data:
-- `runs`, or `log <run ids>` (`log *` when the ids would not fit); pages fetch what changed
-- under the person's own role. PostgreSQL folds equal notifications of one transaction.
CREATE FUNCTION sisyphus.web_notify_runs() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('sisyphus_web', 'runs');
    RETURN NULL;
END $$;

CREATE FUNCTION sisyphus.web_notify_lines() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ids text := (SELECT string_agg(DISTINCT run_id::text, ',') FROM new_lines);
BEGIN
    IF ids IS NOT NULL THEN
        PERFORM pg_notify('sisyphus_web', 'log ' || CASE WHEN length(ids) > 7000 THEN '*' ELSE ids END);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER runs_web_notify_insert AFTER INSERT ON sisyphus.runs
    FOR EACH STATEMENT EXECUTE FUNCTION sisyphus.web_notify_runs();
CREATE TRIGGER runs_web_notify_update AFTER UPDATE OF status, requested, suspended_at ON sisyphus.runs
    FOR EACH STATEMENT EXECUTE FUNCTION sisyphus.web_notify_runs();
CREATE TRIGGER run_logs_web_notify AFTER INSERT ON sisyphus.run_logs
    REFERENCING NEW TABLE AS new_lines
    FOR EACH STATEMENT EXECUTE FUNCTION sisyphus.web_notify_lines();

-- Who may call what: the web logins sign people in; people manage their tokens.
REVOKE EXECUTE ON FUNCTION sisyphus.session_is_web(), sisyphus.person(), sisyphus.is_person(name),
    sisyphus.web_enable(name), sisyphus.create_token(name, bytea, timestamptz, text),
    sisyphus.revoke_token(bigint), sisyphus.web_sign_in(bytea), sisyphus.web_proxy_person(name),
    sisyphus.web_notify_runs(), sisyphus.web_notify_lines() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sisyphus.session_is_web(), sisyphus.person()
    TO sisyphus_viewer, sisyphus_guardian, sisyphus_scheduler, sisyphus_dispatcher, sisyphus_web;
GRANT EXECUTE ON FUNCTION sisyphus.create_token(name, bytea, timestamptz, text),
    sisyphus.revoke_token(bigint) TO sisyphus_viewer;
GRANT EXECUTE ON FUNCTION sisyphus.web_sign_in(bytea), sisyphus.web_proxy_person(name)
    TO sisyphus_web;

-- The Overview reads the runs of the last day (today's counts, what needs attention). A BRIN
-- index on `created_at` (runs are appended in time order) finds them by block range at the cost
-- of a few pages, where a B-tree would cost every claim and outcome an index update.
CREATE INDEX runs_created_brin ON sisyphus.runs USING brin (created_at) WITH (autosummarize = on);
