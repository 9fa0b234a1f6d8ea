-- Least privilege for the daemons (issue 15): what `sisyphus_guardian`, `sisyphus_scheduler` and
-- `sisyphus_dispatcher` may read and write, so that each daemon works under its own login and
-- nothing more. 0011 created the roles and gave them nothing.
--
-- A guardian speaks only for the host names its login is bound to (`service_hosts`,
-- `sisyctl service add guardian LOGIN --hosts web-1`): it registers and beats only as those,
-- claims only for those, sees and changes only the runs on those (and the pending runs it may
-- claim), writes lines only for those runs, and ends them only through `finish_run`. It cannot
-- write a job, undrain itself, or set a run's final status by hand.
-- The scheduler plans: it reads every job and writes only its own columns of them, creates and
-- expires runs, raises notifications and keeps the partitions and retention (as the owner, through
-- two functions only it may call). It cannot change a definition, write the audit log or grant.
-- The dispatcher reads and settles the outbox, and nothing else.
--
-- Policies that compare with the login's host names read them once per statement
-- (`(SELECT sisyphus.my_hosts())` is an init plan), not once per row.

-- Which host names the login may act as, or a named refusal (42501):
-- "g_web (bound to web-1) may not act as host web-2".
CREATE FUNCTION sisyphus.require_host(p_host text) RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
DECLARE
    mine text[] := sisyphus.my_hosts();
BEGIN
    IF mine IS NULL OR p_host = ANY (mine) THEN
        RETURN;
    END IF;
    RAISE EXCEPTION '% (%) may not act as host %', session_user,
        CASE WHEN cardinality(mine) = 0
             THEN 'bound to no host name; sisyctl service add guardian ' || session_user || ' --hosts NAME'
             ELSE 'bound to ' || array_to_string(mine, ', ') END,
        coalesce(p_host, '(none)')
        USING ERRCODE = 'insufficient_privilege';
END $$;

-- A guardian's checks on a run: the run must be on one of its hosts. Other callers reach the
-- functions below only through the owner's checked functions (people) or are the scheduler.
CREATE FUNCTION sisyphus.require_run_host(p_run bigint) RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
DECLARE
    h text;
BEGIN
    IF NOT pg_has_role(session_user, 'sisyphus_guardian', 'MEMBER')
       OR pg_has_role(session_user, 'sisyphus_scheduler', 'MEMBER') THEN
        RETURN;
    END IF;
    SELECT host INTO h FROM sisyphus.runs WHERE id = p_run;
    IF NOT FOUND THEN
        RETURN;  -- nothing to touch; the body says so
    END IF;
    IF h IS NULL THEN
        RAISE EXCEPTION '% may not act on run %: it is on no host', session_user, p_run
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM sisyphus.require_host(h);
END $$;

-- Claiming: only for a host name the login is bound to.
ALTER FUNCTION sisyphus.claim_runs(text, text[], integer, interval) RENAME TO claim_runs_unchecked;
CREATE FUNCTION sisyphus.claim_runs(p_host text, p_pools text[], p_limit integer, p_lease interval)
RETURNS TABLE (id bigint, job_id bigint, attempt integer, scheduled_for timestamptz, project text,
               name text, command text[], shell boolean, env jsonb, workdir text, maxtime interval,
               run_as text, userdata jsonb, keep_logs interval, compress_logs interval,
               compress_mode text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
BEGIN
    PERFORM sisyphus.require_host(p_host);
    RETURN QUERY SELECT * FROM sisyphus.claim_runs_unchecked(p_host, p_pools, p_limit, p_lease);
END $$;


-- Outcomes: a guardian ends only runs on its hosts; the scheduler ends lost ones.
ALTER FUNCTION sisyphus.finish_run(bigint, sisyphus.run_status[], sisyphus.run_status, integer,
    integer, text, text, timestamptz) RENAME TO finish_run_unchecked;
CREATE FUNCTION sisyphus.finish_run(
    p_run bigint, p_from sisyphus.run_status[], p_status sisyphus.run_status,
    p_exit integer, p_signal integer, p_summary text, p_error text, p_finished timestamptz)
RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
BEGIN
    PERFORM sisyphus.require_run_host(p_run);
    RETURN sisyphus.finish_run_unchecked(p_run, p_from, p_status, p_exit, p_signal, p_summary,
                                         p_error, p_finished);
END $$;

-- A run's resource locks: only for a run on the guardian's hosts.
ALTER FUNCTION sisyphus.lock_run_resources(bigint, text[], text[])
    RENAME TO lock_run_resources_unchecked;
CREATE FUNCTION sisyphus.lock_run_resources(p_run bigint, p_inputs text[] DEFAULT '{}',
                                            p_outputs text[] DEFAULT '{}',
                                            OUT granted boolean, OUT waitable boolean,
                                            OUT reason text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
BEGIN
    PERFORM sisyphus.require_run_host(p_run);
    SELECT l.granted, l.waitable, l.reason INTO granted, waitable, reason
      FROM sisyphus.lock_run_resources_unchecked(p_run, p_inputs, p_outputs) l;
END $$;

-- Taking name locks in the one order reads holders of any project: as the owner.
ALTER FUNCTION sisyphus.serialise_run_names(bigint[])
    SECURITY DEFINER SET search_path = pg_catalog, sisyphus;

-- A direct call of take_back_future_runs (pause_job calls the unchecked body) leaves its audit row.
CREATE OR REPLACE FUNCTION sisyphus.take_back_future_runs(p_job bigint) RETURNS timestamptz
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
DECLARE
    j sisyphus.jobs := (SELECT x FROM sisyphus.jobs x WHERE x.id = p_job);
    first_taken timestamptz;
BEGIN
    IF j.id IS NOT NULL THEN
        PERFORM sisyphus.require(j.project, 'editor', 'edit jobs of');
    END IF;
    first_taken := sisyphus.take_back_future_runs_unchecked(p_job);
    IF j.id IS NOT NULL THEN
        PERFORM sisyphus.audit_write('job.take_back', j.project, j.project || '/' || j.name,
                                     jsonb_build_object('first_slot_taken', first_taken));
    END IF;
    RETURN first_taken;
END $$;

-- The side effects of a run's end (notifications, the next interval slot, releasing its names)
-- and of a job's change (its data trigger) are the owner's, whoever ended or changed it.
ALTER FUNCTION sisyphus.run_ended_notify() SECURITY DEFINER SET search_path = pg_catalog, sisyphus;
ALTER FUNCTION sisyphus.reschedule_interval_job()
    SECURITY DEFINER SET search_path = pg_catalog, sisyphus;
ALTER FUNCTION sisyphus.release_run_resources()
    SECURITY DEFINER SET search_path = pg_catalog, sisyphus;

-- A notification's payload quotes the run's last lines: built as the owner, whoever raised it
-- (the scheduler's alerts; the end of a run through finish_run).
ALTER FUNCTION sisyphus.enqueue_notifications(bigint, bigint, sisyphus.notify_event, text)
    SECURITY DEFINER SET search_path = pg_catalog, sisyphus;

-- Partitions are DDL, retention deletes across tables: the owner's, at the scheduler's call.
ALTER FUNCTION sisyphus.ensure_log_partitions(date, integer)
    SECURITY DEFINER SET search_path = pg_catalog, sisyphus;
ALTER FUNCTION sisyphus.prune(interval, interval, integer)
    SECURITY DEFINER SET search_path = pg_catalog, sisyphus;

-- The audit log's retention (the scheduler's housekeeping): rows older than `p_keep`, at most
-- `p_batch` at once. The only way any row of it is ever deleted.
CREATE FUNCTION sisyphus.prune_audit(p_keep interval, p_batch integer DEFAULT 10000)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
DECLARE
    n bigint;
BEGIN
    DELETE FROM sisyphus.audit
     WHERE id IN (SELECT id FROM sisyphus.audit WHERE at < now() - p_keep ORDER BY id LIMIT p_batch);
    GET DIAGNOSTICS n = ROW_COUNT;
    -- The pruning itself is on record: who (the scheduler's login), how many, how old.
    IF n > 0 THEN
        PERFORM sisyphus.audit_write('audit.prune', NULL, 'audit',
                                     jsonb_build_object('deleted', n, 'older_than', p_keep::text));
    END IF;
    RETURN n;
END $$;

-- Guardian: its hosts' rows.
CREATE POLICY guardian_own ON sisyphus.hosts FOR ALL TO sisyphus_guardian
    USING ((SELECT sisyphus.my_hosts()) IS NULL OR name = ANY ((SELECT sisyphus.my_hosts())::text[]))
    WITH CHECK ((SELECT sisyphus.my_hosts()) IS NULL OR name = ANY ((SELECT sisyphus.my_hosts())::text[]));
-- The same check before the policy's, for a refusal that names the binding rather than "new row
-- violates row-level security policy".
CREATE FUNCTION sisyphus.hosts_check_guardian() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF pg_has_role(current_user, 'sisyphus_guardian', 'MEMBER') THEN
        PERFORM sisyphus.require_host(NEW.name);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER hosts_check_guardian BEFORE INSERT OR UPDATE ON sisyphus.hosts
    FOR EACH ROW EXECUTE FUNCTION sisyphus.hosts_check_guardian();
GRANT SELECT, INSERT ON sisyphus.hosts TO sisyphus_guardian;
-- Not `draining`: a guardian cannot undrain itself.
GRANT UPDATE (pools, capacity, pid, version, instance, started_at, last_heartbeat, isolation)
    ON sisyphus.hosts TO sisyphus_guardian;

-- Its runs, and the pending runs it may claim (to know when the next one is due).
CREATE POLICY guardian_read ON sisyphus.runs FOR SELECT TO sisyphus_guardian
    USING (status = 'pending'
           OR (SELECT sisyphus.my_hosts()) IS NULL OR host = ANY ((SELECT sisyphus.my_hosts())::text[]));
-- Suspending and resuming, pids, leases: of its runs, and never to a final status (that is
-- finish_run's, which writes the outcome and its side effects).
CREATE POLICY guardian_change ON sisyphus.runs FOR UPDATE TO sisyphus_guardian
    USING ((SELECT sisyphus.my_hosts()) IS NULL OR host = ANY ((SELECT sisyphus.my_hosts())::text[]))
    WITH CHECK (((SELECT sisyphus.my_hosts()) IS NULL OR host = ANY ((SELECT sisyphus.my_hosts())::text[]))
                AND status IN ('running', 'suspended'));
GRANT SELECT ON sisyphus.runs TO sisyphus_guardian;
GRANT UPDATE (pid, lease_expires_at, status, suspended_at, requested)
    ON sisyphus.runs TO sisyphus_guardian;

-- The lines of its runs. A line of a run that is gone passes here and meets the foreign key
-- (23503), as it does for the owner: the guardian tells "gone" (dropped for good) from "not
-- yours" (42501, kept in its spool). The run is looked up as the owner, since a run of another
-- host is invisible to the guardian; the host names come in once per statement.
CREATE FUNCTION sisyphus.run_writable(p_run bigint, p_hosts text[]) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
    SELECT p_hosts IS NULL
        OR NOT EXISTS (SELECT 1 FROM sisyphus.runs r
                        WHERE r.id = p_run AND (r.host IS NULL OR NOT r.host = ANY (p_hosts)))
$$;
CREATE POLICY guardian_write ON sisyphus.run_logs FOR INSERT TO sisyphus_guardian
    WITH CHECK (sisyphus.run_writable(run_id, (SELECT sisyphus.my_hosts())));
CREATE POLICY guardian_read ON sisyphus.run_logs FOR SELECT TO sisyphus_guardian
    USING (EXISTS (SELECT 1 FROM sisyphus.runs r
                    WHERE r.id = run_id
                      AND ((SELECT sisyphus.my_hosts()) IS NULL
                           OR r.host = ANY ((SELECT sisyphus.my_hosts())::text[]))));
GRANT SELECT, INSERT ON sisyphus.run_logs TO sisyphus_guardian;

-- The leases of its runs' resource locks (renewed with the heartbeat).
CREATE POLICY guardian_own ON sisyphus.resource_holders FOR ALL TO sisyphus_guardian
    USING (EXISTS (SELECT 1 FROM sisyphus.runs r
                    WHERE r.id = run_id
                      AND ((SELECT sisyphus.my_hosts()) IS NULL
                           OR r.host = ANY ((SELECT sisyphus.my_hosts())::text[]))));
GRANT SELECT ON sisyphus.resource_holders TO sisyphus_guardian;
GRANT UPDATE (lease_until) ON sisyphus.resource_holders TO sisyphus_guardian;

-- Definitions, read: what a claimed run runs. (A host sees every job's command and plain env
-- values, never a secret's value: those are only on the hosts that resolve them.)
CREATE POLICY guardian_read ON sisyphus.jobs FOR SELECT TO sisyphus_guardian USING (true);
GRANT SELECT ON sisyphus.jobs TO sisyphus_guardian;

GRANT EXECUTE ON FUNCTION
    sisyphus.require_host(text), sisyphus.claim_runs(text, text[], integer, interval),
    sisyphus.finish_run(bigint, sisyphus.run_status[], sisyphus.run_status, integer, integer,
                        text, text, timestamptz),
    sisyphus.lock_run_resources(bigint, text[], text[]), sisyphus.serialise_run_names(bigint[]),
    sisyphus.run_writable(bigint, text[])
    TO sisyphus_guardian;

-- Scheduler: every job, run and notification; its own columns of jobs only.
CREATE POLICY scheduler_all ON sisyphus.jobs FOR ALL TO sisyphus_scheduler USING (true)
    WITH CHECK (true);
CREATE POLICY scheduler_all ON sisyphus.runs FOR ALL TO sisyphus_scheduler USING (true)
    WITH CHECK (true);
CREATE POLICY scheduler_all ON sisyphus.outbox FOR ALL TO sisyphus_scheduler USING (true)
    WITH CHECK (true);
CREATE POLICY scheduler_read ON sisyphus.project_defaults FOR SELECT TO sisyphus_scheduler
    USING (true);
CREATE POLICY scheduler_read ON sisyphus.resources FOR SELECT TO sisyphus_scheduler USING (true);
CREATE POLICY scheduler_read ON sisyphus.resource_edges FOR SELECT TO sisyphus_scheduler
    USING (true);
CREATE POLICY scheduler_read ON sisyphus.resource_holders FOR SELECT TO sisyphus_scheduler
    USING (true);
CREATE POLICY scheduler_read ON sisyphus.resource_locks FOR SELECT TO sisyphus_scheduler
    USING (true);
GRANT SELECT ON sisyphus.jobs, sisyphus.runs, sisyphus.outbox, sisyphus.project_defaults,
    sisyphus.resources, sisyphus.resource_edges, sisyphus.resource_holders,
    sisyphus.resource_locks, sisyphus.hosts, sisyphus.live_hosts, sisyphus.job_status
    TO sisyphus_scheduler;
GRANT UPDATE (next_slot, fired, inputs_seen_at, overdue_since, scheduler_error,
              scheduler_error_at)
    ON sisyphus.jobs TO sisyphus_scheduler;
GRANT INSERT, UPDATE ON sisyphus.runs TO sisyphus_scheduler;
GRANT INSERT, UPDATE, DELETE ON sisyphus.outbox TO sisyphus_scheduler;
-- The data triggers' watermark and queue (0010: no policy, so far only the owner's).
CREATE POLICY scheduler_all ON sisyphus.data_trigger_state FOR ALL TO sisyphus_scheduler
    USING (true) WITH CHECK (true);
CREATE POLICY scheduler_all ON sisyphus.data_trigger_queue FOR ALL TO sisyphus_scheduler
    USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON sisyphus.data_trigger_state, sisyphus.data_trigger_queue
    TO sisyphus_scheduler;
GRANT EXECUTE ON FUNCTION
    sisyphus.ensure_log_partitions(date, integer), sisyphus.prune(interval, interval, integer),
    sisyphus.prune_audit(interval, integer),
    sisyphus.finish_run(bigint, sisyphus.run_status[], sisyphus.run_status, integer, integer,
                        text, text, timestamptz),
    sisyphus.serialise_run_names(bigint[]), sisyphus.raise_alerts(boolean),
    sisyphus.mark_scheduler_error(bigint, text), sisyphus.input_keys(text[]),
    sisyphus.input_key(text), sisyphus.resource_name(text, timestamptz, text),
    sisyphus.enqueue_notifications(bigint, bigint, sisyphus.notify_event, text),
    sisyphus.notification_payload(bigint, bigint, sisyphus.notify_event, text, integer, jsonb),
    sisyphus.notify_rules(bigint)
    TO sisyphus_scheduler;

-- Dispatcher: the outbox only.
CREATE POLICY dispatcher_all ON sisyphus.outbox FOR ALL TO sisyphus_dispatcher USING (true)
    WITH CHECK (true);
GRANT SELECT ON sisyphus.outbox TO sisyphus_dispatcher;
GRANT UPDATE (state, attempts, next_attempt_at, last_error, parts_done, delivered_at)
    ON sisyphus.outbox TO sisyphus_dispatcher;

-- The cost of the checks (measured by `sisyphus-bench access`): SQL functions that are SECURITY
-- DEFINER with a `SET search_path` are never inlined and plan their body on every call, and
-- 0011's policies called `may` once per row — a viewer's `sisyctl runs` over a million runs
-- took 240 times the owner's. The checking functions become plpgsql (plans kept per session),
-- a guardian's binding is read before the admin check it rarely needs, and the people's
-- policies read the login's patterns once per statement and match them inline.
CREATE OR REPLACE FUNCTION sisyphus.owner() RETURNS name
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
BEGIN
    RETURN (SELECT nspowner::regrole::name FROM pg_namespace WHERE nspname = 'sisyphus');
END $$;

CREATE OR REPLACE FUNCTION sisyphus.is_admin() RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
BEGIN
    RETURN session_user = sisyphus.owner()
        OR coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = session_user), false)
        OR pg_has_role(session_user, 'sisyphus_admin', 'MEMBER');
END $$;

CREATE OR REPLACE FUNCTION sisyphus.may(p_project text, p_level text) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM sisyphus.grants g
                    WHERE g.login = session_user
                      AND sisyphus.level_rank(g.level) >= sisyphus.level_rank(p_level)
                      AND sisyphus.pattern_matches(g.pattern, p_project))
        OR sisyphus.is_admin();
END $$;

-- A login bound to host names speaks for those (an admin's binding too); one bound to none: for
-- every name if an admin, else none.
CREATE OR REPLACE FUNCTION sisyphus.my_hosts() RETURNS text[]
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
DECLARE
    bound text[] := (SELECT array_agg(host) FROM sisyphus.service_hosts
                      WHERE login = session_user);
BEGIN
    IF bound IS NOT NULL THEN
        RETURN bound;
    END IF;
    RETURN CASE WHEN sisyphus.is_admin() THEN NULL ELSE '{}'::text[] END;
END $$;

-- The patterns the login holds at `p_level` or more: what the policies below read once per
-- statement.
CREATE FUNCTION sisyphus.my_patterns(p_level text) RETURNS text[]
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
    SELECT coalesce(array_agg(g.pattern), '{}') FROM sisyphus.grants g
     WHERE g.login = session_user
       AND sisyphus.level_rank(g.level) >= sisyphus.level_rank(p_level)
$$;

-- Whether one of the patterns covers the project. Plain SQL, so the planner inlines it.
CREATE FUNCTION sisyphus.matches_any(p_patterns text[], p_project text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT EXISTS (SELECT 1 FROM unnest(p_patterns) p
                    WHERE p = '*' OR p = p_project
                       OR (p LIKE '%.*' AND (p_project = left(p, -2)
                                             OR starts_with(p_project, left(p, -1)))))
$$;

ALTER POLICY people_read ON sisyphus.jobs
    USING ((SELECT sisyphus.is_admin())
           OR sisyphus.matches_any((SELECT sisyphus.my_patterns('viewer')), project));
ALTER POLICY people_edit ON sisyphus.jobs
    WITH CHECK ((SELECT sisyphus.is_admin())
                OR sisyphus.matches_any((SELECT sisyphus.my_patterns('editor')), project));
ALTER POLICY people_change ON sisyphus.jobs
    USING ((SELECT sisyphus.is_admin())
           OR sisyphus.matches_any((SELECT sisyphus.my_patterns('editor')), project))
    WITH CHECK ((SELECT sisyphus.is_admin())
                OR sisyphus.matches_any((SELECT sisyphus.my_patterns('editor')), project));
ALTER POLICY people_read ON sisyphus.project_defaults
    USING ((SELECT sisyphus.is_admin())
           OR sisyphus.matches_any((SELECT sisyphus.my_patterns('viewer')), project));
ALTER POLICY people_edit ON sisyphus.project_defaults
    USING ((SELECT sisyphus.is_admin())
           OR sisyphus.matches_any((SELECT sisyphus.my_patterns('editor')), project))
    WITH CHECK ((SELECT sisyphus.is_admin())
                OR sisyphus.matches_any((SELECT sisyphus.my_patterns('editor')), project));
ALTER POLICY people_read ON sisyphus.outbox
    USING ((SELECT sisyphus.is_admin()) OR job_id IN (SELECT id FROM sisyphus.jobs));
ALTER POLICY own_grants ON sisyphus.grants
    USING (login = session_user OR (SELECT sisyphus.is_admin()));
ALTER POLICY admins_read ON sisyphus.service_hosts USING ((SELECT sisyphus.is_admin()));
ALTER POLICY people_read ON sisyphus.audit
    USING ((SELECT sisyphus.is_admin()) OR actor = session_user
           OR (project IS NOT NULL
               AND sisyphus.matches_any((SELECT sisyphus.my_patterns('viewer')), project)));

GRANT EXECUTE ON FUNCTION sisyphus.my_patterns(text), sisyphus.matches_any(text[], text)
    TO sisyphus_viewer, sisyphus_guardian, sisyphus_scheduler, sisyphus_dispatcher;
