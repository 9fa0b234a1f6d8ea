-- Notifications (issue 6): a durable outbox, filled in the same transaction as the event.
--
-- Every event a person should hear about is a change of a row that already happens in one
-- transaction: a run's status (failed, timeout, lost, missed, terminated, and after a good run
-- recovered or too_fast, plus its tagged lines), a running run passing its job's `warn_after`
-- (slow), a job going longer than `max_health_age` without a good run (missed: the dead-man's
-- switch). Triggers and one function turn those changes into `outbox` rows, so a notification
-- exists exactly when its event committed — whoever made the change (guardian, scheduler, SQL).
-- The dispatcher (`dispatcher/`) delivers the rows; it never decides what happened.
--
-- Which channels hear about what is configured per job (`jobs.notify`) or per project
-- (`project_defaults.notify`, used when the job has none): a JSON array of rules
-- `{"channel": "ops-mail", "on": ["failed", ...], "to": [...], "lines": 10}`, written by the
-- client after validation. Channels are names; what a channel is (an SMTP server, a Mattermost
-- token, a Sentry DSN, a webhook secret) lives only in the dispatcher's configuration, so no
-- secret is ever stored here.

ALTER TABLE sisyphus.jobs
    ADD COLUMN notify jsonb CHECK (notify IS NULL OR jsonb_typeof(notify) = 'array'),
    ADD COLUMN warn_after interval CHECK (warn_after IS NULL OR warn_after > interval '0'),
    ADD COLUMN min_duration interval CHECK (min_duration IS NULL OR min_duration > interval '0'),
    -- When the dead-man's switch last fired; cleared by the next good run.
    ADD COLUMN overdue_since timestamptz;

-- When the run's `slow` event was raised (once per run).
ALTER TABLE sisyphus.runs ADD COLUMN slow_at timestamptz;

CREATE TABLE sisyphus.project_defaults (
    project     text PRIMARY KEY,
    notify      jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(notify) = 'array'),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TYPE sisyphus.notify_event AS ENUM (
    'failed', 'timeout', 'lost', 'missed', 'terminated', 'recovered', 'slow', 'too_fast', 'tagged'
);

CREATE TYPE sisyphus.outbox_state AS ENUM ('pending', 'delivered', 'skipped', 'failed');

CREATE TABLE sisyphus.outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at      timestamptz NOT NULL DEFAULT now(),
    job_id          bigint REFERENCES sisyphus.jobs (id) ON DELETE SET NULL,
    -- Not a foreign key: a notification outlives its run's retention.
    run_id          bigint,
    event           sisyphus.notify_event NOT NULL,
    channel         text NOT NULL,
    -- What the senders need, built from the run (never from configuration): see
    -- `sisyphus.notification_payload` and `sisyphus_notify::Notification`.
    payload         jsonb NOT NULL,
    state           sisyphus.outbox_state NOT NULL DEFAULT 'pending',
    attempts        integer NOT NULL DEFAULT 0,
    -- A notification some channels send in several requests (one Mattermost post or Sentry
    -- event per tagged line) records how many went, so a retry does not send them again.
    parts_done      integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    delivered_at    timestamptz
);

-- The dispatchers' claim path (SKIP LOCKED) and the backlog metric look only at pending rows.
CREATE INDEX outbox_due ON sisyphus.outbox (next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX outbox_by_run ON sisyphus.outbox (run_id);
ALTER TABLE sisyphus.outbox SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_cost_delay = 0);

-- The rules that apply to a job: its own, else its project's, else none.
CREATE FUNCTION sisyphus.notify_rules(p_job bigint) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT coalesce(j.notify, d.notify, '[]'::jsonb)
      FROM sisyphus.jobs j
      LEFT JOIN sisyphus.project_defaults d ON d.project = j.project
     WHERE j.id = p_job
$$;

-- The payload of a notification: the job, the run (if any), its last `p_lines` log lines, its
-- lines tagged for notification channels (the tags of sisyphus_notify::notification::ROUTING_TAGS),
-- and why (for events that are not a run's status).
CREATE FUNCTION sisyphus.notification_payload(
    p_job bigint, p_run bigint, p_event sisyphus.notify_event, p_reason text, p_lines integer,
    p_to jsonb)
RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'v', 1,
        'event', p_event,
        'job', j.project || '/' || j.name,
        'reason', p_reason,
        'to', coalesce(p_to, '[]'::jsonb),
        'at', now(),
        'run', CASE WHEN r.id IS NOT NULL THEN jsonb_build_object(
            'id', r.id, 'status', r.status, 'attempt', r.attempt, 'trigger', r.trigger,
            'host', r.host, 'slot', r.slot, 'started_at', r.started_at,
            'finished_at', r.finished_at, 'exit_code', r.exit_code, 'signal', r.signal,
            'summary', r.summary, 'error', r.error) END,
        'lines', coalesce((
            SELECT jsonb_agg(jsonb_build_object('at', l.at, 'stream', l.stream, 'tags', l.tags,
                                                'task', l.task, 'text', l.text) ORDER BY l.seq)
              FROM (SELECT * FROM sisyphus.run_logs
                     WHERE run_id = p_run ORDER BY seq DESC LIMIT p_lines) l), '[]'::jsonb),
        'tagged', coalesce((
            SELECT jsonb_agg(jsonb_build_object('at', l.at, 'stream', l.stream, 'tags', l.tags,
                                                'task', l.task, 'text', l.text) ORDER BY l.seq)
              FROM (SELECT * FROM sisyphus.run_logs
                     WHERE run_id = p_run AND tags && '{email,mattermost,sentry,external}'
                     ORDER BY seq LIMIT 50) l), '[]'::jsonb))
      FROM sisyphus.jobs j
      LEFT JOIN sisyphus.runs r ON r.id = p_run
     WHERE j.id = p_job
$$;

-- Writes one outbox row per rule of the job that listens for `p_event`; returns how many.
CREATE FUNCTION sisyphus.enqueue_notifications(
    p_job bigint, p_run bigint, p_event sisyphus.notify_event, p_reason text DEFAULT NULL)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    INSERT INTO sisyphus.outbox (job_id, run_id, event, channel, payload)
    SELECT p_job, p_run, p_event, rule->>'channel',
           sisyphus.notification_payload(p_job, p_run, p_event, p_reason,
                                         coalesce((rule->>'lines')::integer, 10), rule->'to')
      FROM jsonb_array_elements(sisyphus.notify_rules(p_job)) rule
     WHERE rule->'on' ? p_event::text;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        PERFORM pg_notify('sisyphus_outbox', '');
    END IF;
    RETURN n;
END $$;

-- A run has ended: its status event, recovered, too_fast, tagged lines. Deferred to commit, so
-- that it sees a retry inserted in the same transaction: a failed attempt that will be retried
-- raises nothing (the last attempt speaks for the slot), as a cron monitor's users expect.
CREATE FUNCTION sisyphus.run_ended_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    rules jsonb;
    overdue boolean;
    shortest interval;
    previous sisyphus.run_status;
BEGIN
    -- One lookup for the common case (bench: `sisyphus-bench notify`).
    SELECT coalesce(j.notify, d.notify, '[]'::jsonb), j.overdue_since IS NOT NULL, j.min_duration
      INTO rules, overdue, shortest
      FROM sisyphus.jobs j
      LEFT JOIN sisyphus.project_defaults d ON d.project = j.project
     WHERE j.id = NEW.job_id;
    IF overdue AND NEW.status IN ('successful', 'uneventful') THEN
        UPDATE sisyphus.jobs SET overdue_since = NULL WHERE id = NEW.job_id;
    END IF;
    IF rules = '[]'::jsonb THEN
        RETURN NULL;  -- the common case: nobody listens
    END IF;
    IF NEW.status IN ('failed', 'timeout', 'lost', 'missed', 'terminated') THEN
        IF NOT EXISTS (SELECT 1 FROM sisyphus.runs x
                        WHERE x.job_id = NEW.job_id AND x.slot = NEW.slot
                          AND x.attempt > NEW.attempt
                          AND coalesce(x.target_host, '') = coalesce(NEW.target_host, '')) THEN
            PERFORM sisyphus.enqueue_notifications(NEW.job_id, NEW.id,
                                                   NEW.status::text::sisyphus.notify_event);
        END IF;
    ELSIF NEW.status IN ('successful', 'uneventful') THEN
        -- The job's previous outcome, not counting earlier attempts of this same slot.
        SELECT x.status INTO previous
          FROM sisyphus.runs x
         WHERE x.job_id = NEW.job_id AND x.id < NEW.id
           AND x.status NOT IN ('pending', 'running', 'suspended', 'cancelled')
           AND NOT (x.slot = NEW.slot AND x.attempt < NEW.attempt)
         ORDER BY x.id DESC
         LIMIT 1;
        IF previous IN ('failed', 'timeout', 'lost', 'missed') THEN
            PERFORM sisyphus.enqueue_notifications(NEW.job_id, NEW.id, 'recovered',
                                                   format('previous run %s', previous));
        END IF;
        IF shortest IS NOT NULL AND NEW.finished_at - NEW.started_at < shortest THEN
            PERFORM sisyphus.enqueue_notifications(NEW.job_id, NEW.id, 'too_fast',
                format('ended after %s, sooner than min_duration %s',
                       NEW.finished_at - NEW.started_at, shortest));
        END IF;
    END IF;
    IF EXISTS (SELECT 1 FROM sisyphus.run_logs l
                WHERE l.run_id = NEW.id AND l.tags && '{email,mattermost,sentry,external}') THEN
        PERFORM sisyphus.enqueue_notifications(NEW.job_id, NEW.id, 'tagged');
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER runs_ended_notify AFTER UPDATE OF status ON sisyphus.runs
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (OLD.status IN ('pending', 'running', 'suspended')
          AND NEW.status NOT IN ('pending', 'running', 'suspended', 'cancelled'))
    EXECUTE FUNCTION sisyphus.run_ended_notify();

-- The scheduler leader's alerts: runs past their job's `warn_after` (slow, once per run; each
-- tick, through the active runs), and, when `p_overdue`, jobs whose last good run is older than
-- `max_health_age` (missed: the dead-man's switch, once until the next good run). The overdue
-- check reads every watched job, so the scheduler asks for it every few seconds, not each tick
-- (invariant 8). Marks and their outbox rows commit together.
CREATE FUNCTION sisyphus.raise_alerts(p_overdue boolean, OUT slow integer, OUT overdue integer)
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
           AND x.started_at + j.warn_after < now()
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
           AND coalesce(c.good, j.created_at) < now() - j.max_health_age
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

CREATE INDEX jobs_watched ON sisyphus.jobs (id)
    WHERE max_health_age IS NOT NULL AND overdue_since IS NULL;
