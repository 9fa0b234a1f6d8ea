//! The `sisyphus.hosts` table as people see it: the guardians and draining one.

use sqlx::PgExecutor;

use sisyphus_model::views::Host;

const LIST: &str = include_str!("../../sql/hosts/list.sql");
const DRAIN: &str = include_str!("../../sql/hosts/drain.sql");

/// Registered guardians, by name.
pub async fn list<'e>(db: impl PgExecutor<'e>) -> crate::Result<Vec<Host>> {
    sqlx::query(LIST)
        .try_map(crate::decode::host)
        .fetch_all(db)
        .await
        .map_err(crate::Error::from)
}

/// Stops (or, with `drain = false`, restarts) new claims on `host`.
pub async fn drain<'e>(db: impl PgExecutor<'e>, host: &str, drain: bool) -> crate::Result<()> {
    sqlx::query(DRAIN)
        .bind(host)
        .bind(drain)
        .execute(db)
        .await?;
    Ok(())
}
