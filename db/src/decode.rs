//! Rows into the model's types. `sisyphus-model` knows no database library, so its types cannot
//! implement sqlx's traits; each is read here column by column, enums through their `FromStr`
//! (the labels the schema test compares with PostgreSQL's), ids from their `bigint`.

use std::collections::BTreeMap;
use std::str::FromStr;

use sqlx::postgres::PgRow;
use sqlx::Row;

use sisyphus_model::access::{AuditEntry, Grant};
use sisyphus_model::notifications::OutboxEntry;
use sisyphus_model::resources::Edge;
use sisyphus_model::views::{Host, JobStatus, LogRow, Pause};
use sisyphus_model::{JobId, Run, RunId};

/// A text column read as one of the model's enums; a label the enum does not know is a decode
/// error naming the column.
pub(crate) fn label<T: FromStr<Err = String>>(row: &PgRow, column: &str) -> sqlx::Result<T> {
    let text: String = row.try_get(column)?;
    parse(column, &text)
}

/// As [`label`], for a nullable column.
pub(crate) fn label_opt<T: FromStr<Err = String>>(
    row: &PgRow,
    column: &str,
) -> sqlx::Result<Option<T>> {
    let text: Option<String> = row.try_get(column)?;
    text.map(|t| parse(column, &t)).transpose()
}

fn parse<T: FromStr<Err = String>>(column: &str, text: &str) -> sqlx::Result<T> {
    text.parse().map_err(|e: String| sqlx::Error::ColumnDecode {
        index: column.to_string(),
        source: e.into(),
    })
}

pub(crate) fn run_id(row: &PgRow, column: &str) -> sqlx::Result<RunId> {
    row.try_get(column).map(RunId)
}

pub(crate) fn run_id_opt(row: &PgRow, column: &str) -> sqlx::Result<Option<RunId>> {
    Ok(row.try_get::<Option<i64>, _>(column)?.map(RunId))
}

pub(crate) fn job_id(row: &PgRow, column: &str) -> sqlx::Result<JobId> {
    row.try_get(column).map(JobId)
}

/// A run as `sql/runs/*.sql` select it.
pub(crate) fn run(row: PgRow) -> sqlx::Result<Run> {
    Ok(Run {
        id: run_id(&row, "id")?,
        job: row.try_get("job")?,
        status: label(&row, "status")?,
        summary: row.try_get("summary")?,
        attempt: row.try_get("attempt")?,
        host: row.try_get("host")?,
        exit_code: row.try_get("exit_code")?,
        scheduled_for: row.try_get("scheduled_for")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        slot: row.try_get("slot")?,
        trigger: label(&row, "trigger")?,
        target_host: row.try_get("target_host")?,
        error: row.try_get("error")?,
        rerun_of: run_id_opt(&row, "rerun_of")?,
        yielded_to: run_id_opt(&row, "yielded_to")?,
        params: row
            .try_get::<Option<sqlx::types::Json<BTreeMap<String, String>>>, _>("params")?
            .map(|p| p.0),
    })
}

/// A row of `sisyphus.job_status` (`sql/jobs/status.sql`).
pub(crate) fn job_status(row: PgRow) -> sqlx::Result<JobStatus> {
    Ok(JobStatus {
        id: job_id(&row, "id")?,
        project: row.try_get("project")?,
        name: row.try_get("name")?,
        schedule: row.try_get("schedule")?,
        timezone: row.try_get("timezone")?,
        paused: row.try_get("paused")?,
        next_due: row.try_get("next_due")?,
        active_runs: row.try_get("active_runs")?,
        last_run_id: run_id_opt(&row, "last_run_id")?,
        last_status: label_opt(&row, "last_status")?,
        last_finished_at: row.try_get("last_finished_at")?,
        last_summary: row.try_get("last_summary")?,
        health: label(&row, "health")?,
        healthy: row.try_get("healthy")?,
        health_reason: row.try_get("health_reason")?,
        scheduler_error: row.try_get("scheduler_error")?,
        scheduler_error_at: row.try_get("scheduler_error_at")?,
        pause: if row.try_get("paused")? {
            Some(Pause {
                reason: row.try_get("pause_reason")?,
                by: row.try_get("paused_by")?,
                since: row.try_get("paused_at")?,
                until: row.try_get("paused_until")?,
            })
        } else {
            None
        },
    })
}

/// A registered guardian (`sql/hosts/list.sql`).
pub(crate) fn host(row: PgRow) -> sqlx::Result<Host> {
    Ok(Host {
        name: row.try_get("name")?,
        pools: row.try_get("pools")?,
        capacity: row.try_get("capacity")?,
        draining: row.try_get("draining")?,
        pid: row.try_get("pid")?,
        version: row.try_get("version")?,
        started_at: row.try_get("started_at")?,
        last_heartbeat: row.try_get("last_heartbeat")?,
        heartbeat_age: row.try_get("heartbeat_age")?,
        live: row.try_get("live")?,
        running: row.try_get("running")?,
        isolation: label(&row, "isolation")?,
    })
}

/// A stored log line (`sql/logs/list.sql`).
pub(crate) fn log_row(row: PgRow) -> sqlx::Result<LogRow> {
    Ok(LogRow {
        run_id: run_id(&row, "run_id")?,
        seq: row.try_get("seq")?,
        at: row.try_get("at")?,
        stream: label(&row, "stream")?,
        tags: row.try_get("tags")?,
        task: row.try_get("task")?,
        text: row.try_get("text")?,
    })
}

/// An outbox row (`sql/notifications/list.sql`).
pub(crate) fn outbox_entry(row: PgRow) -> sqlx::Result<OutboxEntry> {
    Ok(OutboxEntry {
        id: row.try_get("id")?,
        created_at: row.try_get("created_at")?,
        job: row.try_get("job")?,
        run_id: row.try_get("run_id")?,
        event: label(&row, "event")?,
        channel: row.try_get("channel")?,
        state: label(&row, "state")?,
        attempts: row.try_get("attempts")?,
        last_error: row.try_get("last_error")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        delivered_at: row.try_get("delivered_at")?,
    })
}

/// A lineage edge (`sql/resources/edges.sql`).
pub(crate) fn edge(row: PgRow) -> sqlx::Result<Edge> {
    Ok(Edge {
        source: row.try_get("source")?,
        target: row.try_get("target")?,
        writer: row.try_get("writer")?,
        times: row.try_get("times")?,
    })
}

/// A grant (`sql/access/list.sql`).
pub(crate) fn grant(row: PgRow) -> sqlx::Result<Grant> {
    Ok(Grant {
        login: row.try_get("login")?,
        level: label(&row, "level")?,
        pattern: row.try_get("pattern")?,
        granted_by: row.try_get("granted_by")?,
        granted_at: row.try_get("granted_at")?,
    })
}

/// An audit row (`sql/access/audit.sql`).
pub(crate) fn audit_entry(row: PgRow) -> sqlx::Result<AuditEntry> {
    Ok(AuditEntry {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        actor: row.try_get("actor")?,
        on_behalf_of: row.try_get("on_behalf_of")?,
        channel: row.try_get("channel")?,
        action: row.try_get("action")?,
        project: row.try_get("project")?,
        target: row.try_get("target")?,
        diff: row.try_get("diff")?,
        reason: row.try_get("reason")?,
    })
}
