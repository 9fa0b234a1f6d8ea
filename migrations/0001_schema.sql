-- Sisyphus schema, version 1: jobs, runs, hosts, run logs.
-- All objects live in schema `sisyphus`; the migrations table lives there too (see client/src/db/mod.rs).

CREATE SCHEMA IF NOT EXISTS sisyphus;

CREATE TYPE sisyphus.run_status AS ENUM (
    'pending', 'running', 'suspended',
    'successful', 'uneventful', 'failed', 'interrupted', 'timeout', 'terminated', 'lost',
    'missed', 'cancelled'
);

-- Why a run exists: its clock slot, a manual request, or a retry of a failed attempt.
CREATE TYPE sisyphus.run_trigger AS ENUM ('schedule', 'manual', 'retry');

CREATE TYPE sisyphus.catchup_policy AS ENUM ('all', 'latest', 'none');

CREATE TYPE sisyphus.log_stream AS ENUM ('stdout', 'stderr', 'sdk', 'sisyphus');

CREATE TABLE sisyphus.jobs (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project         text NOT NULL,
    name            text NOT NULL,
    command         text[] NOT NULL CHECK (cardinality(command) > 0),
    shell           boolean NOT NULL DEFAULT false,
    env             jsonb NOT NULL DEFAULT '{}',
    workdir         text,
    -- The schedule: at most one of cron / every / at. None of them: runs only when asked.
    cron            text[],
    every           interval,
    at              timestamptz,
    timezone        text NOT NULL DEFAULT 'UTC',
    starts_at       timestamptz,
    ends_at         timestamptz,
    iterations      integer CHECK (iterations > 0),
    ttl             interval NOT NULL DEFAULT '1 hour',
    catchup         sisyphus.catchup_policy NOT NULL DEFAULT 'all',
    jitter          interval NOT NULL DEFAULT '0',
    maxtime         interval CHECK (maxtime > '0'),
    retries         integer NOT NULL DEFAULT 0 CHECK (retries >= 0),
    retry_backoff   interval NOT NULL DEFAULT '10 seconds',
    concurrency     integer NOT NULL DEFAULT 1 CHECK (concurrency > 0),
    -- `any` or `all` hosts, optionally restricted to one pool.
    target_all      boolean NOT NULL DEFAULT false,
    target_pool     text,
    paused          boolean NOT NULL DEFAULT false,
    userdata        jsonb NOT NULL DEFAULT '{}',
    -- Scheduler state: the next slot to materialise (NULL: nothing to do until something
    -- changes), and how many slots have been materialised as runs (for `iterations`).
    next_slot       timestamptz,
    fired           integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project, name),
    CHECK (num_nonnulls(cron, every, at) <= 1),
    CHECK (ends_at IS NULL OR starts_at IS NULL OR ends_at > starts_at)
);

-- The scheduler's only way into `jobs`: due, unpaused jobs by due time. Its cost per tick grows
-- with the number of due jobs, never with the number of defined jobs.
CREATE INDEX jobs_due ON sisyphus.jobs (next_slot) WHERE next_slot IS NOT NULL AND NOT paused;

CREATE TABLE sisyphus.hosts (
    name            text PRIMARY KEY,
    pools           text[] NOT NULL DEFAULT '{}',
    capacity        integer NOT NULL DEFAULT 4,
    draining        boolean NOT NULL DEFAULT false,
    pid             integer,
    version         text,
    started_at      timestamptz NOT NULL DEFAULT now(),
    last_heartbeat  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sisyphus.runs (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id          bigint NOT NULL REFERENCES sisyphus.jobs (id) ON DELETE CASCADE,
    -- The nominal slot (for manual runs: when asked); with attempt and target_host it names a run.
    slot            timestamptz NOT NULL,
    attempt         integer NOT NULL DEFAULT 1 CHECK (attempt > 0),
    -- For `all` jobs: the host this copy is for. NULL: any host of the job's target may claim it.
    target_host     text,
    trigger         sisyphus.run_trigger NOT NULL DEFAULT 'schedule',
    status          sisyphus.run_status NOT NULL DEFAULT 'pending',
    -- Not to start before (slot + jitter, or a retry's backoff) nor after (TTL deadline).
    scheduled_for   timestamptz NOT NULL,
    expires_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      text,
    host            text,
    pid             integer,
    lease_expires_at timestamptz,
    started_at      timestamptz,
    suspended_at    timestamptz,
    finished_at     timestamptz,
    exit_code       integer,
    signal          integer,
    summary         text,
    error           text,
    -- A control request not yet carried out by the guardian: terminate, suspend, resume.
    requested       text CHECK (requested IN ('terminate', 'suspend', 'resume'))
);

-- Invariant 1: at most one run per (job, slot, attempt, host for `all` jobs).
CREATE UNIQUE INDEX runs_one_per_slot
    ON sisyphus.runs (job_id, slot, attempt, coalesce(target_host, ''));
-- Guardians' claim path and the scheduler's TTL sweep look only at pending runs.
CREATE INDEX runs_pending_due ON sisyphus.runs (scheduled_for, id) WHERE status = 'pending';
CREATE INDEX runs_pending_expiry ON sisyphus.runs (expires_at)
    WHERE status = 'pending' AND expires_at IS NOT NULL;
-- Concurrency checks and lease sweeps look only at active runs.
CREATE INDEX runs_active ON sisyphus.runs (job_id) WHERE status IN ('running', 'suspended');
CREATE INDEX runs_lease ON sisyphus.runs (lease_expires_at) WHERE status IN ('running', 'suspended');
-- History of one job, newest first.
CREATE INDEX runs_by_job ON sisyphus.runs (job_id, id DESC);

CREATE TABLE sisyphus.run_logs (
    run_id          bigint NOT NULL REFERENCES sisyphus.runs (id) ON DELETE CASCADE,
    seq             integer NOT NULL,
    at              timestamptz NOT NULL DEFAULT now(),
    stream          sisyphus.log_stream NOT NULL,
    tags            text[] NOT NULL DEFAULT '{}',
    task            text,
    text            text NOT NULL,
    PRIMARY KEY (run_id, seq)
);

-- Wake-ups. Statement-level so that a bulk change sends one notification, not one per row.
CREATE FUNCTION sisyphus.notify_jobs_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('sisyphus_jobs', '');
    RETURN NULL;
END $$;

CREATE TRIGGER jobs_changed AFTER INSERT OR UPDATE OR DELETE ON sisyphus.jobs
    FOR EACH STATEMENT EXECUTE FUNCTION sisyphus.notify_jobs_changed();

-- Interval jobs (ll.sisyphus' `nextrun`): the next slot is measured from the end of the previous
-- run. When a scheduled run of such a job ends (in any way: outcome, missed, cancelled, lost),
-- and no other run of it is pending or active, the next slot is set. Deferred to commit so that a
-- retry inserted in the same transaction as the outcome counts as still active.
CREATE FUNCTION sisyphus.reschedule_interval_job() RETURNS trigger LANGUAGE plpgsql AS $$
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
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER runs_interval_reschedule AFTER UPDATE OF status ON sisyphus.runs
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (OLD.status IN ('pending', 'running', 'suspended')
          AND NEW.status NOT IN ('pending', 'running', 'suspended'))
    EXECUTE FUNCTION sisyphus.reschedule_interval_job();
