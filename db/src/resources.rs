//! The resource tables (`resources`, `resource_holders`, `resource_locks`, `resource_edges`):
//! calls of the lock functions of migrations/0004 — the one implementation of the lock rules,
//! shared by the guardian, client guards and SQL users — and the listings.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use super::interval;
use sisyphus_model::resources::Edge;
use sisyphus_model::{JobId, RunId};

const LIST: &str = include_str!("../../sql/resources/list.sql");
const EDGES: &str = include_str!("../../sql/resources/edges.sql");
const REQUEST: &str = include_str!("../../sql/resources/request.sql");
const TRY_LOCK: &str = include_str!("../../sql/resources/try_lock.sql");
const LOCK_RUN: &str = include_str!("../../sql/resources/lock_run.sql");
const REFRESH: &str = include_str!("../../sql/resources/refresh.sql");
const RELEASE: &str = include_str!("../../sql/resources/release.sql");

/// One lock attempt's answer.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Attempt {
    pub granted: bool,
    /// Refused for a busy name (waiting may help), not for a missing input.
    pub waitable: bool,
    pub reason: Option<String>,
}

/// Registers what a holder wants (adding to an earlier request); takes no lock.
pub async fn request<'e>(
    db: impl PgExecutor<'e>,
    holder: &str,
    owner: &str,
    inputs: &[String],
    outputs: &[String],
    lease: Duration,
    outputs_expire: Option<Duration>,
) -> crate::Result<()> {
    sqlx::query(REQUEST)
        .bind(holder)
        .bind(owner)
        .bind(inputs)
        .bind(outputs)
        .bind(interval::from_duration(lease))
        .bind(outputs_expire.map(interval::from_duration))
        .execute(db)
        .await?;
    Ok(())
}

/// One attempt to take every lock the holder wants, all or none.
pub async fn try_lock<'e>(db: impl PgExecutor<'e>, holder: &str) -> crate::Result<Attempt> {
    sqlx::query_as(TRY_LOCK)
        .bind(holder)
        .fetch_one(db)
        .await
        .map_err(crate::Error::from)
}

/// One attempt at a run's locks: its job's templates at its slot, plus `inputs` and `outputs`
/// added while it runs.
pub async fn lock_run<'e>(
    db: impl PgExecutor<'e>,
    run: RunId,
    inputs: &[String],
    outputs: &[String],
) -> crate::Result<Attempt> {
    sqlx::query_as(LOCK_RUN)
        .bind(run.0)
        .bind(inputs)
        .bind(outputs)
        .fetch_one(db)
        .await
        .map_err(crate::Error::from)
}

/// Extends the holder's leases; false when one lapsed and was taken over (or it holds nothing).
pub async fn refresh<'e>(db: impl PgExecutor<'e>, holder: &str) -> crate::Result<bool> {
    sqlx::query_scalar(REFRESH)
        .bind(holder)
        .fetch_one(db)
        .await
        .map_err(crate::Error::from)
}

/// Ends a holder; with `write`, writes its outputs. Returns how many outputs were written and,
/// when asked to write but could not, why.
pub async fn release<'e>(
    db: impl PgExecutor<'e>,
    holder: &str,
    write: bool,
) -> crate::Result<(i32, Option<String>)> {
    sqlx::query_as(RELEASE)
        .bind(holder)
        .bind(write)
        .fetch_one(db)
        .await
        .map_err(crate::Error::from)
}

/// A resource as `sisyphus.resource_status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct ResourceRow {
    pub name: String,
    /// `None`: locked but never written.
    pub written_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub writer: Option<String>,
    pub writer_run: Option<i64>,
    pub version: Option<i64>,
    /// Written and not expired: usable as an input.
    pub available: bool,
    pub readers: i64,
    pub write_holder: Option<String>,
}

/// Resources whose names start with `prefix`.
pub async fn list<'e>(db: impl PgExecutor<'e>, prefix: &str) -> crate::Result<Vec<ResourceRow>> {
    sqlx::query_as(LIST)
        .bind(prefix)
        .fetch_all(db)
        .await
        .map_err(crate::Error::from)
}

/// Lineage edges, all or those one job wrote.
pub async fn edges<'e>(db: impl PgExecutor<'e>, job: Option<JobId>) -> crate::Result<Vec<Edge>> {
    sqlx::query(EDGES)
        .bind(job.map(|j| j.0))
        .try_map(crate::decode::edge)
        .fetch_all(db)
        .await
        .map_err(crate::Error::from)
}
