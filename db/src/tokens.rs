//! The `sisyphus.tokens` table: the personal tokens people sign in to the dashboard with. Only
//! a token's SHA-256 reaches the database (`migrations/0018_web.sql`).

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, Row};

use sisyphus_model::access::TokenInfo;

const CREATE: &str = include_str!("../../sql/tokens/create.sql");
const REVOKE: &str = include_str!("../../sql/tokens/revoke.sql");
const LIST: &str = include_str!("../../sql/tokens/list.sql");

/// Stores a new token's hash for `login`; its id. The caller's own, or anyone's for admins.
pub async fn create<'e>(
    db: impl PgExecutor<'e>,
    login: &str,
    hash: &[u8; 32],
    expires_at: Option<DateTime<Utc>>,
    label: Option<&str>,
) -> crate::Result<i64> {
    sqlx::query_scalar(CREATE)
        .bind(login)
        .bind(hash.as_slice())
        .bind(expires_at)
        .bind(label)
        .fetch_one(db)
        .await
        .map_err(crate::Error::from)
}

/// Revokes token `id`; false when there is no such live token.
pub async fn revoke<'e>(db: impl PgExecutor<'e>, id: i64) -> crate::Result<bool> {
    sqlx::query_scalar(REVOKE)
        .bind(id)
        .fetch_one(db)
        .await
        .map_err(crate::Error::from)
}

/// The tokens the caller may see, newest first.
pub async fn list<'e>(db: impl PgExecutor<'e>) -> crate::Result<Vec<TokenInfo>> {
    sqlx::query(LIST)
        .try_map(|row: sqlx::postgres::PgRow| {
            Ok(TokenInfo {
                id: row.try_get("id")?,
                login: row.try_get("login")?,
                label: row.try_get("label")?,
                created_at: row.try_get("created_at")?,
                created_by: row.try_get("created_by")?,
                expires_at: row.try_get("expires_at")?,
                revoked_at: row.try_get("revoked_at")?,
                last_used_at: row.try_get("last_used_at")?,
            })
        })
        .fetch_all(db)
        .await
        .map_err(crate::Error::from)
}
