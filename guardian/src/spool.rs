//! The local spool: outcomes and log lines that could not be written because the database was
//! unreachable wait here, on disk, and are written when it is back — also after a restart of the
//! guardian (invariant `no-lost-outcome`).
//!
//! One file per batch, named by a sequence of time so that replay keeps the order in which things
//! happened: a run's log lines before its outcome. Replaying is idempotent: log lines are keyed by
//! (run, seq) and outcomes are compare-and-set, so a file written twice changes nothing the
//! second time.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use sisyphus_db::{logs, PgPool};
use sisyphus_model::views::LogRow;

use crate::metrics::Metrics;
use crate::outcome::{write_outcomes, Outcome};
use crate::recorder::{is_refusal, Writer};

#[derive(Serialize, Deserialize)]
enum Entry {
    Logs(Vec<LogRow>),
    Outcome(Outcome),
}

/// The spool directory (0700, files 0600: outcomes and lines are the runs' output).
#[derive(Clone, Debug)]
pub struct Spool {
    dir: PathBuf,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// Where entries the database refused for good are kept, beside the spool.
const QUARANTINE: &str = "quarantine";

impl Spool {
    /// Opens (creating) the spool directory, readable by its owner alone.
    /// A directory that exists already keeps its mode (a `--spool-dir /var/spool` is not made
    /// private); the spool's own files are 0600 in any case.
    pub fn open(dir: &Path) -> std::io::Result<Spool> {
        if !dir.is_dir() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
            // The umask may have taken bits away; the mode is exact.
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
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

    /// Keeps an outcome the database refused even as a failure, beside the spool, for a person.
    pub fn quarantine_outcome(&self, outcome: &Outcome, why: &str) {
        let dir = self.dir.join(QUARANTINE);
        let name = format!("{}-run-{}.json", unique_name(), outcome.run);
        let entry = Entry::Outcome(outcome.clone());
        if let Err(e) = write_file(&dir, &name, &entry) {
            tracing::error!(
                "cannot quarantine the outcome of run {} ({why}): {e}",
                outcome.run
            );
        }
    }

    fn save(&self, entry: &Entry) {
        let name = format!("{}.json", unique_name());
        if let Err(e) = write_file(&self.dir, &name, entry) {
            // Nowhere left to keep it: say so loudly; this is the one way to lose data here.
            tracing::error!("cannot spool to {}: {e}", self.dir.display());
        }
    }

    /// Moves a spool file the database refuses (or that cannot be read) aside, for a person.
    fn quarantine_file(&self, file: &Path, why: &str, metrics: &Metrics) {
        let dir = self.dir.join(QUARANTINE);
        let moved = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .and_then(|()| match file.file_name() {
                Some(name) => std::fs::rename(file, dir.join(name)),
                None => Ok(()),
            });
        metrics.quarantined.inc();
        match moved {
            Ok(()) => tracing::error!(
                "spool file {} quarantined in {}: {why}",
                file.display(),
                dir.display()
            ),
            Err(e) => {
                tracing::error!(
                    "cannot quarantine spool file {}: {e}; removing it ({why})",
                    file.display()
                );
                let _ = std::fs::remove_file(file);
            }
        }
    }

    /// Whether anything waits.
    pub fn is_empty(&self) -> bool {
        self.files().is_empty()
    }

    /// How many entries wait.
    pub fn files_waiting(&self) -> usize {
        self.files().len()
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

    /// Writes everything that waits, oldest first; stops at the first failure of the database
    /// (it is still away). An entry the database refuses never blocks the rest: lines it refuses
    /// are replaced by a line saying so, an outcome it refuses is recorded as an explained
    /// failure, and what it refuses even so is quarantined. Returns how many entries were written.
    ///
    /// With `budget`, replay stops once that much time has passed (the heartbeat replays within
    /// half its interval, so a long spool never delays the renewal of leases); the rest waits.
    pub async fn replay(
        &self,
        pool: &PgPool,
        metrics: &Arc<Metrics>,
        budget: Option<std::time::Duration>,
    ) -> usize {
        let deadline = budget.map(|b| std::time::Instant::now() + b);
        let mut writer = Writer::new(pool.clone(), self.clone(), metrics.clone());
        let mut done = 0;
        for file in self.files() {
            let entry: Entry = match std::fs::read(&file)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            {
                Ok(e) => e,
                Err(e) => {
                    self.quarantine_file(&file, &format!("unreadable: {e}"), metrics);
                    continue;
                }
            };
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                // The rest waits for the next heartbeat: leases must be renewed meanwhile.
                break;
            }
            let entry = match entry {
                Entry::Outcome(o) => Entry::Outcome(writer.with_damage(o)),
                logs => logs,
            };
            let written = match pool.acquire().await {
                Ok(mut conn) => match &entry {
                    Entry::Logs(rows) => logs::insert(&mut conn, rows).await,
                    Entry::Outcome(o) => write_outcomes(&mut conn, std::slice::from_ref(o)).await,
                },
                Err(e) => Err(e.into()),
            };
            let settled = match written {
                Ok(()) => true,
                Err(e) if is_refusal(&e) => match entry {
                    // A run some of whose lines were refused fails when its outcome is replayed.
                    Entry::Logs(rows) => writer.write_lines_isolated(&rows).await.is_ok(),
                    Entry::Outcome(o) => {
                        // Written (as a failure or to the quarantine), or spooled anew.
                        let written = writer.write_outcome_alone(o, &e).await;
                        if !written {
                            let _ = std::fs::remove_file(&file);
                        }
                        written
                    }
                },
                Err(_) => false,
            };
            if !settled {
                break;
            }
            let _ = std::fs::remove_file(&file);
            done += 1;
        }
        done
    }
}

/// A file name that sorts in the order entries were made.
fn unique_name() -> String {
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or(0);
    format!(
        "{nanos:020}-{:06}",
        SEQ.fetch_add(1, Ordering::SeqCst) % 1_000_000
    )
}

/// Writes `entry` as `dir/name`, atomically (a temporary file renamed), readable by its owner only.
fn write_file(dir: &Path, name: &str, entry: &Entry) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let bytes = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(&bytes)?;
    drop(file);
    std::fs::rename(&tmp, dir.join(name))
}
