//! The notification tables as people use them: projects' default rules, the outbox listing and
//! sending failed notifications again. (The dispatcher's own statements live with the dispatcher's.)

use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor};

use sisyphus_model::notifications::{OutboxEntry, OutboxState, ProjectDefaults};
use sisyphus_model::JobId;

const SET_PROJECT: &str = include_str!("../../sql/notifications/set_project.sql");
const LIST: &str = include_str!("../../sql/notifications/list.sql");
const RETRY: &str = include_str!("../../sql/notifications/retry.sql");
const PROJECTS: &str = include_str!("../../sql/notifications/projects.sql");

/// Sets a project's default notification rules.
pub async fn set_project(conn: &mut PgConnection, defaults: &ProjectDefaults) -> crate::Result<()> {
    sqlx::query(SET_PROJECT)
        .bind(&defaults.project)
        .bind(Json(&defaults.notify))
        .execute(conn)
        .await?;
    Ok(())
}

/// These projects' stored default rules, as the JSON `set_project` wrote (projects without a row
/// are left out).
pub async fn projects(
    conn: &mut PgConnection,
    projects: &[String],
) -> crate::Result<Vec<(String, serde_json::Value)>> {
    sqlx::query_as::<_, (String, Json<serde_json::Value>)>(PROJECTS)
        .bind(projects)
        .fetch_all(conn)
        .await
        .map(|rows| rows.into_iter().map(|(p, Json(v))| (p, v)).collect())
        .map_err(crate::Error::from)
}

/// The outbox, newest first: every notification, or those in one `state`, or one job's.
pub async fn list<'e>(
    db: impl PgExecutor<'e>,
    state: Option<OutboxState>,
    job: Option<JobId>,
    limit: i64,
) -> crate::Result<Vec<OutboxEntry>> {
    sqlx::query(LIST)
        .bind(state.map(OutboxState::as_str))
        .bind(job.map(|j| j.0))
        .bind(limit)
        .try_map(crate::decode::outbox_entry)
        .fetch_all(db)
        .await
        .map_err(crate::Error::from)
}

/// Sends failed notifications again; returns the ids taken back (failed ones only).
pub async fn retry<'e>(db: impl PgExecutor<'e>, ids: &[i64]) -> crate::Result<Vec<i64>> {
    sqlx::query_scalar(RETRY)
        .bind(ids)
        .fetch_all(db)
        .await
        .map_err(crate::Error::from)
}
