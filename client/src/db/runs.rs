//! The `sisyphus.runs` table: listing runs.

use sqlx::PgConnection;

use crate::model::{Run, RunStatus};

const LIST: &str = include_str!("../../../sql/runs/list.sql");
const ONE: &str = include_str!("../../../sql/runs/one.sql");

/// Which runs to list.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub project: Option<String>,
    pub name: Option<String>,
    pub status: Option<RunStatus>,
    /// At most this many, newest first (default 50).
    pub limit: Option<i64>,
}

/// One run by id.
pub async fn one(conn: &mut PgConnection, id: crate::model::RunId) -> sqlx::Result<Option<Run>> {
    sqlx::query_as(ONE).bind(id).fetch_optional(conn).await
}

pub async fn list(conn: &mut PgConnection, filter: &RunFilter) -> sqlx::Result<Vec<Run>> {
    sqlx::query_as(LIST)
        .bind(&filter.project)
        .bind(&filter.name)
        .bind(filter.status.map(RunStatus::as_str))
        .bind(filter.limit.unwrap_or(50))
        .fetch_all(conn)
        .await
}
