//! The `sisyphus.run_logs` table: appending lines in batches, reading them back.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use sisyphus_protocol::text::{clean, clean_opt, NUL_TAG};

use crate::model::RunId;

const INSERT: &str = include_str!("../../../sql/logs/insert.sql");
const LIST: &str = include_str!("../../../sql/logs/list.sql");
const TAIL_START: &str = include_str!("../../../sql/logs/tail_start.sql");

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
///
/// The last line of defence for text: a NUL that reached here (PostgreSQL's text cannot hold it,
/// and would refuse the whole statement with every other run's lines) is replaced and the line
/// tagged, as the guardian does where output enters.
pub async fn insert(conn: &mut PgConnection, rows: &[LogRow]) -> sqlx::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut texts = Vec::with_capacity(rows.len());
    let mut tasks = Vec::with_capacity(rows.len());
    let mut tags = Vec::with_capacity(rows.len());
    for row in rows {
        let mut text = row.text.clone();
        let mut task = row.task.clone();
        let nul = clean(&mut text) | clean_opt(&mut task);
        texts.push(text);
        tasks.push(task);
        tags.push(joined_tags(&row.tags, nul));
    }
    sqlx::query(INSERT)
        .bind(rows.iter().map(|r| r.run_id.0).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.seq).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.at).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.stream.as_str()).collect::<Vec<_>>())
        .bind(tags)
        .bind(tasks)
        .bind(texts)
        .execute(conn)
        .await?;
    Ok(())
}

/// Tags as the statement takes them: one string, comma-separated. Tags are identifiers; commas
/// would split them, so they become `_`; NULs are replaced, and `nul` added when the line had one.
fn joined_tags(tags: &[String], nul: bool) -> String {
    let mut out: Vec<String> = Vec::with_capacity(tags.len() + 1);
    let mut nul = nul;
    for tag in tags {
        let mut t = tag.replace(',', "_");
        nul |= clean(&mut t);
        out.push(t);
    }
    if nul && !tags.iter().any(|t| t == NUL_TAG) {
        out.push(NUL_TAG.to_string());
    }
    out.join(",")
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

/// The `seq` after which a run's last `n` lines (with `tag`, if given) begin; `None` when it has
/// no more than `n`.
pub async fn tail_start(
    conn: &mut PgConnection,
    run: RunId,
    tag: Option<&str>,
    n: u32,
) -> sqlx::Result<Option<i32>> {
    sqlx::query_scalar(TAIL_START)
        .bind(run)
        .bind(tag)
        .bind(i64::from(n))
        .fetch_optional(conn)
        .await
}
