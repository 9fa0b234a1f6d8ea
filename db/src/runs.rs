//! The `sisyphus.runs` table: listing runs, and the control actions on one.

use sqlx::{PgConnection, PgExecutor};

use sisyphus_model::{ControlAction, Run, RunId, RunStatus};

use crate::decode;

const LIST: &str = include_str!("../../sql/runs/list.sql");
const ONE: &str = include_str!("../../sql/runs/one.sql");
const TERMINATE: &str = include_str!("../../sql/runs/terminate.sql");
const SUSPEND: &str = include_str!("../../sql/runs/suspend.sql");
const RESUME: &str = include_str!("../../sql/runs/resume.sql");
const RERUN: &str = include_str!("../../sql/runs/rerun.sql");

/// Which runs to list.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub project: Option<String>,
    pub name: Option<String>,
    pub status: Option<RunStatus>,
    /// At most this many, newest first (default 50).
    pub limit: Option<i64>,
    /// Only runs scheduled at or after this time.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
}

impl RunFilter {
    /// The runs of one job.
    pub fn for_job(job: &sisyphus_model::JobRef) -> RunFilter {
        RunFilter {
            project: Some(job.project.clone()),
            name: Some(job.name.clone()),
            ..RunFilter::default()
        }
    }
}

/// One run by id.
pub async fn one(conn: &mut PgConnection, id: RunId) -> crate::Result<Option<Run>> {
    sqlx::query(ONE)
        .bind(id.0)
        .try_map(decode::run)
        .fetch_optional(conn)
        .await
        .map_err(crate::Error::from)
}

pub async fn list(conn: &mut PgConnection, filter: &RunFilter) -> crate::Result<Vec<Run>> {
    sqlx::query(LIST)
        .bind(&filter.project)
        .bind(&filter.name)
        .bind(filter.status.map(RunStatus::as_str))
        .bind(filter.limit.unwrap_or(50))
        .bind(filter.since)
        .try_map(decode::run)
        .fetch_all(conn)
        .await
        .map_err(crate::Error::from)
}

/// A new run of the same job, slot and target host as `run` (trigger `rerun`, linked to it);
/// operators of its project only.
pub async fn rerun<'e>(db: impl PgExecutor<'e>, run: RunId) -> crate::Result<RunId> {
    sqlx::query_scalar(RERUN)
        .bind(run.0)
        .fetch_one(db)
        .await
        .map(RunId)
        .map_err(crate::Error::from)
}

/// Asks for a run to be terminated, suspended or resumed through the SQL function of the same
/// name. Returns `cancelled` (a pending run, ended at once) or `requested`.
pub async fn control(
    conn: &mut PgConnection,
    run: RunId,
    action: ControlAction,
) -> crate::Result<String> {
    let statement = match action {
        ControlAction::Terminate => TERMINATE,
        ControlAction::Suspend => SUSPEND,
        ControlAction::Resume => RESUME,
    };
    sqlx::query_scalar(statement)
        .bind(run.0)
        .fetch_one(conn)
        .await
        .map_err(crate::Error::from)
}
