//! The local spool: outcomes and log lines that could not be written because the database was
//! unreachable wait here, on disk, and are written when it is back — also after a restart of the
//! guardian (invariant 5: no outcome is lost).
//!
//! One file per batch, named by a sequence of time so that replay keeps the order in which things
//! happened: a run's log lines before its outcome. Replaying is idempotent: log lines are keyed by
//! (run, seq) and outcomes are compare-and-set, so a file written twice changes nothing the
//! second time.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sisyphus_client::db::logs::{self, LogRow};
use sisyphus_client::RunId;
use sqlx::{PgConnection, PgPool};

const FINISH_MANY: &str = include_str!("../../sql/guardian/finish_many.sql");

/// How a run ended, as the guardian records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub run: RunId,
    pub status: sisyphus_client::RunStatus,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub summary: Option<String>,
    pub error: Option<String>,
    pub finished_at: DateTime<Utc>,
}

/// Records outcomes in one statement (compare-and-set each, retries as `finish_run` does). An
/// outcome whose run had already ended otherwise (e.g. the scheduler declared it lost) changes
/// nothing and is logged. The one way outcomes are written: by the recorder and by spool replay.
pub async fn write_outcomes(conn: &mut PgConnection, outcomes: &[Outcome]) -> sqlx::Result<()> {
    if outcomes.is_empty() {
        return Ok(());
    }
    let o = outcomes;
    let applied: Vec<(i64, bool)> = sqlx::query_as(FINISH_MANY)
        .bind(o.iter().map(|x| x.run.0).collect::<Vec<_>>())
        .bind(o.iter().map(|x| x.status.as_str()).collect::<Vec<_>>())
        .bind(o.iter().map(|x| x.exit_code).collect::<Vec<_>>())
        .bind(o.iter().map(|x| x.signal).collect::<Vec<_>>())
        .bind(o.iter().map(|x| x.summary.clone()).collect::<Vec<_>>())
        .bind(o.iter().map(|x| x.error.clone()).collect::<Vec<_>>())
        .bind(o.iter().map(|x| x.finished_at).collect::<Vec<_>>())
        .fetch_all(conn)
        .await?;
    for (run, recorded) in applied {
        if !recorded {
            tracing::warn!(
                run,
                "outcome not recorded: the run had already ended otherwise"
            );
        }
    }
    Ok(())
}

#[derive(Serialize, Deserialize)]
enum Entry {
    Logs(Vec<LogRow>),
    Outcome(Outcome),
}

/// The spool directory.
#[derive(Clone, Debug)]
pub struct Spool {
    dir: PathBuf,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

impl Spool {
    pub fn open(dir: &Path) -> std::io::Result<Spool> {
        std::fs::create_dir_all(dir)?;
        Ok(Spool {
            dir: dir.to_path_buf(),
        })
    }

    pub fn save_logs(&self, rows: &[LogRow]) {
        self.save(&Entry::Logs(rows.to_vec()));
    }

    pub fn save_outcome(&self, outcome: &Outcome) {
        self.save(&Entry::Outcome(outcome.clone()));
    }

    fn save(&self, entry: &Entry) {
        let nanos = Utc::now().timestamp_nanos_opt().unwrap_or(0);
        let name = format!(
            "{nanos:020}-{:06}.json",
            SEQ.fetch_add(1, Ordering::SeqCst) % 1_000_000
        );
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let result = serde_json::to_vec(entry)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, self.dir.join(&name)));
        if let Err(e) = result {
            // Nowhere left to keep it: say so loudly; this is the one way to lose data here.
            tracing::error!("cannot spool to {}: {e}", self.dir.display());
        }
    }

    /// Whether anything waits.
    pub fn is_empty(&self) -> bool {
        self.files().is_empty()
    }

    fn files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files
    }

    /// Writes everything that waits, oldest first; stops at the first failure (the database is
    /// still away). Returns how many entries were written.
    pub async fn replay(&self, pool: &PgPool) -> usize {
        let mut done = 0;
        for file in self.files() {
            let entry: Entry = match std::fs::read(&file)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            {
                Ok(e) => e,
                Err(e) => {
                    tracing::error!(
                        "unreadable spool file {}: {e}; moving it aside",
                        file.display()
                    );
                    let _ = std::fs::rename(&file, file.with_extension("bad"));
                    continue;
                }
            };
            let written = match pool.acquire().await {
                Ok(mut conn) => match &entry {
                    Entry::Logs(rows) => logs::insert(&mut conn, rows).await,
                    Entry::Outcome(o) => write_outcomes(&mut conn, std::slice::from_ref(o)).await,
                },
                Err(e) => Err(e),
            };
            match written {
                Ok(()) => {
                    let _ = std::fs::remove_file(&file);
                    done += 1;
                }
                Err(_) => break,
            }
        }
        done
    }
}
