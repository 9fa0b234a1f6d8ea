//! The bench's statements (`sql/bench/`): fixtures (databases, jobs, runs, resources written in
//! bulk), the probes it measures with (counts, percentiles, statistics), and the baselines it
//! compares with (a `SELECT 1`, single-statement updates, a `COPY`, a NOTIFY round trip).
//!
//! These write the tables the way no daemon does (thousands of rows in one statement, statuses
//! set by hand, triggers switched off): they are for `sisyphus-bench` only, on its own
//! databases.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use sqlx::migrate::Migrator;
use sqlx::{Connection as _, PgConnection, PgExecutor, PgPool};

use sisyphus_model::{RunId, RunStatus};
use sisyphus_notify::Notification;

use crate::Result;

/// Runs a statement of `sql/bench/` that returns nothing.
macro_rules! execute {
    ($db:expr, $file:literal $(, $bind:expr)*) => {{
        sqlx::query(include_str!(concat!("../../sql/bench/", $file)))
            $(.bind($bind))*
            .execute($db)
            .await?;
        Result::<()>::Ok(())
    }};
}

/// Runs a statement of `sql/bench/` that returns one value.
macro_rules! scalar {
    ($db:expr, $file:literal $(, $bind:expr)*) => {
        Result::<_>::Ok(
            sqlx::query_scalar(include_str!(concat!("../../sql/bench/", $file)))
                $(.bind($bind))*
                .fetch_one($db)
                .await?,
        )
    };
}

/// Run ids as the statements bind them (`bigint[]`).
fn ids(runs: &[RunId]) -> Vec<i64> {
    runs.iter().map(|r| r.0).collect()
}

// Connections and databases.

/// A plain connection to `url`, outside any pool: the ticks, baselines and fixtures use one.
pub async fn connect(url: &str) -> Result<PgConnection> {
    Ok(PgConnection::connect(url).await?)
}

/// Drops database `name` if it exists (on a connection to another database of the cluster).
pub async fn drop_database(admin: &mut PgConnection, name: &str) -> Result<()> {
    let statement: String = scalar!(&mut *admin, "drop_database.sql", name)?;
    sqlx::query(&statement).execute(admin).await?;
    Ok(())
}

/// Creates database `name` (on a connection to another database of the cluster).
pub async fn create_database(admin: &mut PgConnection, name: &str) -> Result<()> {
    let statement: String = scalar!(&mut *admin, "create_database.sql", name)?;
    sqlx::query(&statement).execute(admin).await?;
    Ok(())
}

/// The embedded migrations ([`crate::MIGRATOR`]) up to and including `version`: the schema as
/// it was before the later ones (the access bench compares with a database migrated through
/// 10, before access control).
pub fn migrator_through(version: i64) -> Migrator {
    Migrator {
        migrations: Cow::Owned(
            crate::MIGRATOR
                .iter()
                .filter(|m| m.version <= version)
                .cloned()
                .collect(),
        ),
        ignore_missing: crate::MIGRATOR.ignore_missing,
        locking: crate::MIGRATOR.locking,
        no_tx: crate::MIGRATOR.no_tx,
    }
}

/// Migrates the database at `url` through migration `version` only, the way [`crate::migrate`]
/// migrates through all of them (schema `sisyphus`, its bookkeeping inside). Returns the schema
/// version reached.
pub async fn migrate_through(url: &str, version: i64) -> Result<i64> {
    let mut conn = connect(url).await?;
    crate::run_migrations(&mut conn, &migrator_through(version)).await?;
    let reached: Option<i64> = sqlx::query_scalar(include_str!("../../sql/schema/version.sql"))
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    Ok(reached.unwrap_or(0))
}

/// Gives a database migrated through 0010 ([`migrate_through`]) the columns later migrations
/// added that today's statements read (0013: `runs.rerun_of`, `runs.params`, `jobs.params`; 0016: `runs.yielded_to`),
/// empty and without indexes, triggers or policies, and the functions the claim calls after
/// claiming (`claimed_params`, without its check) and the outcome batch calls (`finish_runs`,
/// 0020, as finish_run per outcome): the same statements then run on the old schema and the
/// new.
pub async fn add_later_columns(conn: &mut PgConnection) -> Result<()> {
    execute!(&mut *conn, "later_run_columns.sql")?;
    execute!(&mut *conn, "later_job_columns.sql")?;
    execute!(&mut *conn, "later_claimed_params.sql")?;
    execute!(&mut *conn, "later_finish_runs.sql")
}

/// A table the bench vacuums after filling it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Jobs,
    Runs,
    RunLogs,
    Resources,
}

/// `VACUUM ANALYZE` of one of Sisyphus's tables, as autovacuum would do in production.
pub async fn vacuum_analyze<'e>(db: impl PgExecutor<'e>, table: Table) -> Result<()> {
    match table {
        Table::Jobs => execute!(db, "vacuum_jobs.sql"),
        Table::Runs => execute!(db, "vacuum_runs.sql"),
        Table::RunLogs => execute!(db, "vacuum_run_logs.sql"),
        Table::Resources => execute!(db, "vacuum_resources.sql"),
    }
}

// Baselines.

/// One `SELECT 1`: the smallest round trip.
pub async fn select_one<'e>(db: impl PgExecutor<'e>) -> Result<()> {
    execute!(db, "select_one.sql")
}

/// Turns JIT compilation off for this session, as the dashboard does in its transactions.
pub async fn jit_off(conn: &mut PgConnection) -> Result<()> {
    execute!(conn, "jit_off.sql")
}

/// Creates the round-trip baseline's table of counters, if it is not there.
pub async fn create_counters(conn: &mut PgConnection) -> Result<()> {
    execute!(conn, "create_counter.sql")
}

/// Fills the round-trip baseline's table with its 1,000 counters, at 0.
pub async fn fill_counters(conn: &mut PgConnection) -> Result<()> {
    execute!(conn, "fill_counter.sql")
}

/// One single-statement transaction of the round-trip baseline: adds one to counter `id`.
pub async fn bump_counter(conn: &mut PgConnection, id: i32) -> Result<()> {
    execute!(conn, "bump_counter.sql", id)
}

/// Creates the COPY baseline's table, shaped like `run_logs`.
pub async fn create_copy_table(conn: &mut PgConnection) -> Result<()> {
    execute!(conn, "create_copy_table.sql")
}

/// Gives the COPY baseline's table `run_logs`' primary key.
pub async fn key_copy_table(conn: &mut PgConnection) -> Result<()> {
    execute!(conn, "key_copy_table.sql")
}

/// The COPY baseline: `data` (tab-separated run id, seq, stream, text, one line each) into its
/// table, in one COPY.
pub async fn copy_lines(conn: &mut PgConnection, data: &[u8]) -> Result<()> {
    let mut copy = conn
        .copy_in_raw(include_str!("../../sql/bench/copy_lines.sql"))
        .await?;
    copy.send(data).await?;
    copy.finish().await?;
    Ok(())
}

/// The channel of the NOTIFY round-trip baseline: the bench LISTENs on it (a
/// [`crate::Listener`]) and [`notify_floor`] NOTIFYs it.
pub const FLOOR_CHANNEL: &str = "bench_floor";

/// NOTIFYs [`FLOOR_CHANNEL`]: the NOTIFY half of the round-trip baseline.
pub async fn notify_floor<'e>(db: impl PgExecutor<'e>) -> Result<()> {
    execute!(db, "notify_floor.sql")
}

// Jobs and resources.

/// Defines `n` jobs running every minute, none due for ten years.
pub async fn define_cron_jobs(conn: &mut PgConnection, n: i64) -> Result<()> {
    execute!(conn, "define_cron_jobs.sql", n)
}

/// Defines `per_project` jobs `P<p>/job<i>` in each of `projects` projects `P0`, `P1`, …, run
/// only when asked, with unlimited concurrency and a day's TTL.
pub async fn define_project_jobs<'e>(
    db: impl PgExecutor<'e>,
    projects: i64,
    per_project: i64,
) -> Result<()> {
    execute!(db, "define_project_jobs.sql", projects, per_project)
}

/// Defines the job `Quiet/job0`, which has no runs.
pub async fn define_quiet_job<'e>(db: impl PgExecutor<'e>) -> Result<()> {
    execute!(db, "define_quiet_job.sql")
}

/// Makes `due` of the `defined` jobs due at `at`, spread over their ids.
pub async fn make_due(
    conn: &mut PgConnection,
    at: DateTime<Utc>,
    defined: i64,
    due: i64,
) -> Result<()> {
    execute!(conn, "make_due.sql", at, defined, due)
}

/// Defines `idle` data-triggered jobs whose inputs are never written and `active` ones whose
/// inputs [`write_day_inputs`] writes.
pub async fn define_data_jobs(conn: &mut PgConnection, idle: i64, active: i64) -> Result<()> {
    execute!(conn, "define_data_jobs.sql", idle, active)
}

/// Writes `n` resources no job reads, an hour ago.
pub async fn write_other_resources(conn: &mut PgConnection, n: i64) -> Result<()> {
    execute!(conn, "write_other_resources.sql", n)
}

/// Writes day `day`'s inputs of the `active` data-triggered jobs.
pub async fn write_day_inputs(
    conn: &mut PgConnection,
    day: DateTime<Utc>,
    active: i64,
) -> Result<()> {
    execute!(conn, "write_day_inputs.sql", day, active)
}

/// Empties the data triggers' queue of full looks.
pub async fn clear_full_look_queue(conn: &mut PgConnection) -> Result<()> {
    execute!(conn, "clear_full_look_queue.sql")
}

/// Moves the global data-trigger watermark to now.
pub async fn mark_inputs_seen(conn: &mut PgConnection) -> Result<()> {
    execute!(conn, "mark_inputs_seen.sql")
}

// Runs.

/// Queues `n` runs of every job, due now (the drain benches define one job).
pub async fn insert_pending_runs(pool: &PgPool, n: i64) -> Result<()> {
    execute!(pool, "insert_pending_runs.sql", n)
}

/// Queues `count` runs of job `Bench/<job>` due in `delay_ms` milliseconds; their ids. The
/// guardians are not woken: that is the caller's, in the same transaction.
pub async fn insert_due_runs(
    conn: &mut PgConnection,
    job: &str,
    count: i64,
    delay_ms: f64,
) -> Result<Vec<RunId>> {
    let ids: Vec<i64> = sqlx::query_scalar(include_str!("../../sql/bench/insert_due_runs.sql"))
        .bind(job)
        .bind(count)
        .bind(delay_ms)
        .fetch_all(conn)
        .await?;
    Ok(ids.into_iter().map(RunId).collect())
}

/// Inserts `n` successful runs, round-robin over the `P…` jobs of [`define_project_jobs`], two
/// seconds apart up to now.
pub async fn insert_finished_runs<'e>(db: impl PgExecutor<'e>, n: i64) -> Result<()> {
    execute!(db, "insert_finished_runs.sql", n)
}

/// Inserts `n` ended runs as a fleet's history, round-robin over the `P…` jobs of
/// [`define_project_jobs`], two seconds apart up to now, each made when it was due; one in
/// `fail_every` failed, the others successful.
pub async fn insert_history<'e>(db: impl PgExecutor<'e>, n: i64, fail_every: i64) -> Result<()> {
    execute!(db, "insert_history.sql", n, fail_every)
}

/// Inserts one successful run of `project/name` that ran the last ten minutes; its id.
pub async fn insert_log_run<'e>(
    db: impl PgExecutor<'e>,
    project: &str,
    name: &str,
) -> Result<RunId> {
    let id: i64 = scalar!(db, "insert_log_run.sql", project, name)?;
    Ok(RunId(id))
}

/// Gives `run` a log of `lines` lines written over the last moments.
pub async fn insert_log_lines<'e>(db: impl PgExecutor<'e>, run: RunId, lines: i32) -> Result<()> {
    execute!(db, "insert_log_lines.sql", run.0, lines)
}

/// How many runs have status `status`.
pub async fn count_runs_with_status<'e>(db: impl PgExecutor<'e>, status: RunStatus) -> Result<i64> {
    scalar!(db, "count_runs_with_status.sql", status.as_str())
}

/// Forgets the control request waiting for `run`, as its guardian does once it has acted.
pub async fn clear_requested<'e>(db: impl PgExecutor<'e>, run: RunId) -> Result<()> {
    execute!(db, "clear_requested.sql", run.0)
}

/// Audit rows of control actions on runs (terminate, suspend, resume).
pub async fn count_run_audit<'e>(db: impl PgExecutor<'e>) -> Result<i64> {
    scalar!(db, "count_run_audit.sql")
}

/// Whether any run is pending, running or suspended.
pub async fn runs_busy(pool: &PgPool) -> Result<bool> {
    scalar!(pool, "runs_busy.sql")
}

/// How many of `runs` are not ended yet (by primary key).
pub async fn unfinished(pool: &PgPool, runs: &[RunId]) -> Result<i64> {
    scalar!(pool, "unfinished.sql", ids(runs))
}

/// The process ids of those of `runs` that are running with a process, in the order of their
/// run ids.
pub async fn running_pids(pool: &PgPool, runs: &[RunId]) -> Result<Vec<i32>> {
    Ok(
        sqlx::query_scalar(include_str!("../../sql/bench/running_pids.sql"))
            .bind(ids(runs))
            .fetch_all(pool)
            .await?,
    )
}

/// Ends `runs` as failed, now.
pub async fn fail_runs(pool: &PgPool, runs: &[RunId]) -> Result<()> {
    execute!(pool, "fail_runs.sql", ids(runs))
}

/// Gives run `run` the outcome `status`, started and finished now.
pub async fn finish_run(pool: &PgPool, run: RunId, status: RunStatus) -> Result<()> {
    execute!(pool, "finish_run.sql", run.0, status.as_str())
}

/// Deletes every run that is not pending.
pub async fn delete_finished_runs(pool: &PgPool) -> Result<()> {
    execute!(pool, "delete_finished_runs.sql")
}

/// Runs that did not end successful or uneventful.
pub async fn unsuccessful_runs(pool: &PgPool) -> Result<i64> {
    scalar!(pool, "unsuccessful_runs.sql")
}

/// Percentiles of how long runs waited to start, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pickup {
    pub p50: f64,
    pub p99: f64,
}

/// The 50th and 99th percentiles of the runs' start times measured from `since`.
pub async fn pickup(pool: &PgPool, since: DateTime<Utc>) -> Result<Pickup> {
    let (p50, p99) = sqlx::query_as(include_str!("../../sql/bench/pickup_percentiles.sql"))
        .bind(since)
        .fetch_one(pool)
        .await?;
    Ok(Pickup { p50, p99 })
}

/// A latency probe: when it was due and what it printed.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeStart {
    /// The run's due time, in seconds since the epoch.
    pub due: f64,
    /// Its stdout line: the probe's own start time.
    pub printed: String,
}

/// Each of `runs`' due time and stdout lines.
pub async fn probe_starts(pool: &PgPool, runs: &[RunId]) -> Result<Vec<ProbeStart>> {
    let rows: Vec<(f64, String)> = sqlx::query_as(include_str!("../../sql/bench/probe_starts.sql"))
        .bind(ids(runs))
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(due, printed)| ProbeStart { due, printed })
        .collect())
}

/// The lines `run` printed on stdout, as stored.
pub async fn stdout_lines(pool: &PgPool, run: RunId) -> Result<i64> {
    scalar!(pool, "stdout_lines.sql", run.0)
}

/// A run once it ended, as the bench reads it back.
#[derive(Debug, Clone, PartialEq)]
pub struct Ended {
    pub status: String,
    pub summary: Option<String>,
    /// Seconds from its due time to its outcome recorded (the database's clock).
    pub due_to_recorded: f64,
    /// Seconds its process ran.
    pub ran: f64,
    /// Lines of the job itself (`sdk`: protocol records, ll.sisyphus lines) stored.
    pub job_lines: i64,
}

/// Run `run` if it has ended; None while it has not.
pub async fn run_ended(pool: &PgPool, run: RunId) -> Result<Option<Ended>> {
    let row: Option<(String, Option<String>, f64, f64, i64)> =
        sqlx::query_as(include_str!("../../sql/bench/run_ended.sql"))
            .bind(run.0)
            .fetch_optional(pool)
            .await?;
    Ok(
        row.map(|(status, summary, due_to_recorded, ran, job_lines)| Ended {
            status,
            summary,
            due_to_recorded,
            ran,
            job_lines,
        }),
    )
}

// Notifications.

/// Turns the notification trigger on runs' outcomes on or off.
pub async fn set_outcome_trigger(pool: &PgPool, enabled: bool) -> Result<()> {
    if enabled {
        execute!(pool, "enable_outcome_trigger.sql")
    } else {
        execute!(pool, "disable_outcome_trigger.sql")
    }
}

/// Notifications in the outbox, in any state.
pub async fn count_outbox(pool: &PgPool) -> Result<i64> {
    scalar!(pool, "count_outbox.sql")
}

/// Deletes every notification.
pub async fn empty_outbox(pool: &PgPool) -> Result<()> {
    execute!(pool, "empty_outbox.sql")
}

/// One notification of the outbox, any; a payload that is not a [`Notification`] is a decode
/// error.
pub async fn any_notification(pool: &PgPool) -> Result<Notification> {
    let payload: serde_json::Value = scalar!(pool, "any_payload.sql")?;
    serde_json::from_value(payload).map_err(|e| crate::Error::from(sqlx::Error::Decode(e.into())))
}

// Statistics.

/// Drops this session's cached statistics, so that the next read is fresh.
pub async fn clear_stats_snapshot(pool: &PgPool) -> Result<()> {
    execute!(pool, "clear_stats_snapshot.sql")
}

/// Transactions committed in this database so far.
pub async fn committed_transactions(pool: &PgPool) -> Result<i64> {
    scalar!(pool, "committed_transactions.sql")
}

/// Dead tuples in `runs` and in `run_logs`' partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadTuples {
    pub runs: i64,
    pub run_logs: i64,
}

/// Dead tuples in `runs` and in all of `run_logs`' partitions, from the statistics.
pub async fn dead_tuples(pool: &PgPool) -> Result<DeadTuples> {
    let (runs, run_logs) = sqlx::query_as(include_str!("../../sql/bench/dead_tuples.sql"))
        .fetch_one(pool)
        .await?;
    Ok(DeadTuples { runs, run_logs })
}

/// One statement's share of a profile (pg_stat_statements).
#[derive(Debug, Clone)]
pub struct StatementCost {
    pub calls: i64,
    pub total_ms: f64,
    pub rows: i64,
    /// Sent by a client (not run inside a function or trigger).
    pub toplevel: bool,
    pub query: String,
}

/// Makes pg_stat_statements' view available in this database and forgets what it counted.
pub async fn statements_reset(conn: &mut PgConnection) -> Result<()> {
    execute!(&mut *conn, "statements_extension.sql")?;
    execute!(&mut *conn, "statements_reset.sql")
}

/// The `n` statements of this database with the most execution time since the reset.
pub async fn statements_top(conn: &mut PgConnection, n: i64) -> Result<Vec<StatementCost>> {
    let rows: Vec<(i64, f64, i64, bool, String)> =
        sqlx::query_as(include_str!("../../sql/bench/statements_top.sql"))
            .bind(n)
            .fetch_all(conn)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(calls, total_ms, rows, toplevel, query)| StatementCost {
            calls,
            total_ms,
            rows,
            toplevel,
            query,
        })
        .collect())
}

/// The active sessions of this database now: (wait event or `CPU`, start of the statement).
pub async fn active_waits(conn: &mut PgConnection) -> Result<Vec<(String, String)>> {
    Ok(
        sqlx::query_as(include_str!("../../sql/bench/active_waits.sql"))
            .fetch_all(conn)
            .await?,
    )
}

/// A session holding a REPEATABLE READ snapshot open: vacuum can remove no row version deleted
/// after it until [`HeldSnapshot::release`].
pub struct HeldSnapshot(PgConnection);

/// Connects to `url` and takes a REPEATABLE READ snapshot, held until released.
pub async fn hold_snapshot(url: &str) -> Result<HeldSnapshot> {
    let mut conn = connect(url).await?;
    execute!(&mut conn, "snapshot_begin.sql")?;
    execute!(&mut conn, "snapshot_take.sql")?;
    Ok(HeldSnapshot(conn))
}

impl HeldSnapshot {
    /// Ends the transaction that held the snapshot.
    pub async fn release(mut self) -> Result<()> {
        execute!(&mut self.0, "snapshot_release.sql")
    }
}

// Clocks.

/// The start of today, by the database's clock.
pub async fn today(conn: &mut PgConnection) -> Result<DateTime<Utc>> {
    scalar!(conn, "today.sql")
}

/// The start of the current minute a day from now, by the database's clock.
pub async fn minute_tomorrow(conn: &mut PgConnection) -> Result<DateTime<Utc>> {
    scalar!(conn, "minute_tomorrow.sql")
}

/// Gives every `step`-th job's neighbours calendars (`freeze`, `holidays`) and overlap `skip`
/// (sql/bench/use_calendars_and_skip.sql: 20% each).
pub async fn use_calendars_and_skip(conn: &mut PgConnection, step: i64) -> Result<()> {
    execute!(conn, "use_calendars_and_skip.sql", step)
}

/// Gives every job with overlap `skip` a running run, so its due slots are skipped.
pub async fn occupy_skip_jobs(conn: &mut PgConnection) -> Result<()> {
    execute!(conn, "occupy_skip_jobs.sql")
}

/// Ends every due pending scheduled run as successful, as guardians would between ticks.
pub async fn finish_pending_runs(conn: &mut PgConnection) -> Result<()> {
    execute!(conn, "finish_pending_runs.sql")
}

// The fleet bench: statements counted by pg_stat_statements, connections.

/// Creates pg_stat_statements in this database (the cluster must preload it).
pub async fn statements_extension(conn: &mut PgConnection) -> Result<()> {
    execute!(conn, "statements_extension.sql")
}

/// Forgets the statements counted so far.
pub async fn statements_forget(pool: &PgPool) -> Result<()> {
    let _: String = scalar!(pool, "statements_reset.sql")?;
    Ok(())
}

/// One statement's count: its text (shortened), calls, total time in ms.
#[derive(Debug, Clone, PartialEq)]
pub struct StatementCalls {
    pub query: String,
    pub calls: i64,
    pub total_ms: f64,
}

/// The `limit` most called top-level statements of this database since the last reset.
pub async fn statement_calls(pool: &PgPool, limit: i64) -> Result<Vec<StatementCalls>> {
    let rows: Vec<(String, i64, f64)> =
        sqlx::query_as(include_str!("../../sql/bench/statement_calls.sql"))
            .bind(limit)
            .fetch_all(pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(query, calls, total_ms)| StatementCalls {
            query,
            calls,
            total_ms,
        })
        .collect())
}

/// Client connections to this database by application name.
pub async fn connections_by_application(pool: &PgPool) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(include_str!(
        "../../sql/bench/connections_by_application.sql"
    ))
    .fetch_all(pool)
    .await?)
}

/// How many of `runs` have started, and the longest creation → start among them (ms).
pub async fn runs_started(pool: &PgPool, runs: &[RunId]) -> Result<(i64, Option<f64>)> {
    Ok(
        sqlx::query_as(include_str!("../../sql/bench/runs_started.sql"))
            .bind(ids(runs))
            .fetch_one(pool)
            .await?,
    )
}
