//! The `sisyphus.run_logs` table: appending lines in batches, reading them back.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use crate::model::RunId;

const INSERT: &str = include_str!("../../../sql/logs/insert.sql");
const LIST: &str = include_str!("../../../sql/logs/list.sql");

/// Where a line came from. Mirrors `sisyphus.log_stream`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
    /// Structured records from a job written with the job SDK.
    Sdk,
    /// Lines Sisyphus itself writes about the run.
    Sisyphus,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
            Stream::Sdk => "sdk",
            Stream::Sisyphus => "sisyphus",
        }
    }
}

impl TryFrom<String> for Stream {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        match s.as_str() {
            "stdout" => Ok(Stream::Stdout),
            "stderr" => Ok(Stream::Stderr),
            "sdk" => Ok(Stream::Sdk),
            "sisyphus" => Ok(Stream::Sisyphus),
            _ => Err(format!("`{s}` is not a log stream")),
        }
    }
}

/// One stored log line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct LogRow {
    pub run_id: RunId,
    /// 1, 2, 3… within the run.
    pub seq: i32,
    pub at: DateTime<Utc>,
    #[sqlx(try_from = "String")]
    pub stream: Stream,
    pub tags: Vec<String>,
    /// The task path (job SDK), e.g. `[3/226] module sys`.
    pub task: Option<String>,
    pub text: String,
}

/// Appends lines (of any runs) in one statement; lines stored already are skipped.
pub async fn insert(conn: &mut PgConnection, rows: &[LogRow]) -> sqlx::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    // Tags are identifiers; commas would split them, so they become `_`.
    let tags: Vec<String> = rows
        .iter()
        .map(|r| {
            r.tags
                .iter()
                .map(|t| t.replace(',', "_"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    sqlx::query(INSERT)
        .bind(rows.iter().map(|r| r.run_id.0).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.seq).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.at).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.stream.as_str()).collect::<Vec<_>>())
        .bind(tags)
        .bind(rows.iter().map(|r| r.task.clone()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.text.clone()).collect::<Vec<_>>())
        .execute(conn)
        .await?;
    Ok(())
}

/// A run's lines after `after_seq`, in order.
pub async fn list(
    conn: &mut PgConnection,
    run: RunId,
    after_seq: i32,
    tag: Option<&str>,
    limit: i64,
) -> sqlx::Result<Vec<LogRow>> {
    sqlx::query_as(LIST)
        .bind(run)
        .bind(after_seq)
        .bind(tag)
        .bind(limit)
        .fetch_all(conn)
        .await
}
