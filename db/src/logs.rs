//! The `sisyphus.run_logs` table: appending lines in batches, reading them back.

use sqlx::PgConnection;

use sisyphus_protocol::text::{clean, clean_opt, NUL_TAG};

pub use sisyphus_model::views::{LogRow, Stream};
use sisyphus_model::RunId;

const INSERT: &str = include_str!("../../sql/logs/insert.sql");
const LIST: &str = include_str!("../../sql/logs/list.sql");
const TAIL_START: &str = include_str!("../../sql/logs/tail_start.sql");

/// Appends lines (of any runs) in one statement; lines stored already are skipped.
///
/// The last line of defence for text: a NUL that reached here (PostgreSQL's text cannot hold it,
/// and would refuse the whole statement with every other run's lines) is replaced and the line
/// tagged, as the guardian does where output enters.
pub async fn insert(conn: &mut PgConnection, rows: &[LogRow]) -> crate::Result<()> {
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
) -> crate::Result<Vec<LogRow>> {
    sqlx::query(LIST)
        .bind(run.0)
        .bind(after_seq)
        .bind(tag)
        .bind(limit)
        .try_map(crate::decode::log_row)
        .fetch_all(conn)
        .await
        .map_err(crate::Error::from)
}

/// The `seq` after which a run's last `n` lines (with `tag`, if given) begin; `None` when it has
/// no more than `n`.
pub async fn tail_start(
    conn: &mut PgConnection,
    run: RunId,
    tag: Option<&str>,
    n: u32,
) -> crate::Result<Option<i32>> {
    sqlx::query_scalar(TAIL_START)
        .bind(run.0)
        .bind(tag)
        .bind(i64::from(n))
        .fetch_optional(conn)
        .await
        .map_err(crate::Error::from)
}
