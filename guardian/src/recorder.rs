//! The recorder: every run's log lines, pids and outcomes reach the database in batches, the way
//! a database does group commit — wait for one message, take everything else already queued, and
//! write it all in one transaction (River's batching completer). Under load, batches grow by
//! themselves while the previous one is being written; when idle, nothing waits.
//!
//! A batch that cannot be written (database unreachable) goes to the spool: lines first, then the
//! outcomes, so replay keeps a run's lines before its outcome (invariant: no outcome is lost).

use sisyphus_client::db::logs::{self, LogRow};
use sisyphus_client::RunId;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

use crate::spool::{write_outcomes, Outcome, Spool};

const SET_PIDS: &str = include_str!("../../sql/guardian/set_pids.sql");

/// Messages per batch at most.
const BATCH: usize = 5000;

enum Msg {
    Line(LogRow),
    Started(RunId, i32),
    /// Answered once the outcome (and every line sent before it) is stored or spooled.
    Finished(Outcome, oneshot::Sender<()>),
}

/// The sending side, cloned into every supervisor.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Msg>,
}

impl Recorder {
    /// Starts the recorder task. It ends when every `Recorder` is dropped, after a last batch.
    pub fn start(pool: PgPool, spool: Spool) -> (Recorder, tokio::task::JoinHandle<()>) {
        // Bounded: a run that prints faster than the database takes it is slowed down (its pipe
        // fills and it blocks), instead of growing our memory.
        let (tx, rx) = mpsc::channel(2 * BATCH);
        (Recorder { tx }, tokio::spawn(run(pool, spool, rx)))
    }

    pub async fn line(&self, row: LogRow) {
        let _ = self.tx.send(Msg::Line(row)).await;
    }

    pub async fn started(&self, run: RunId, pid: u32) {
        let _ = self.tx.send(Msg::Started(run, pid as i32)).await;
    }

    /// Records the outcome after the run's lines; returns when it is stored or spooled.
    pub async fn finished(&self, outcome: Outcome) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Finished(outcome, done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

#[derive(Default)]
struct Batch {
    lines: Vec<LogRow>,
    pids: Vec<(RunId, i32)>,
    outcomes: Vec<Outcome>,
    waiting: Vec<oneshot::Sender<()>>,
}

impl Batch {
    fn add(&mut self, msg: Msg) {
        match msg {
            Msg::Line(row) => self.lines.push(row),
            Msg::Started(run, pid) => self.pids.push((run, pid)),
            Msg::Finished(outcome, done) => {
                self.outcomes.push(outcome);
                self.waiting.push(done);
            }
        }
    }

    fn len(&self) -> usize {
        self.lines.len() + self.pids.len() + self.outcomes.len()
    }
}

async fn run(pool: PgPool, spool: Spool, mut rx: mpsc::Receiver<Msg>) {
    while let Some(first) = rx.recv().await {
        let mut batch = Batch::default();
        batch.add(first);
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(msg) => batch.add(msg),
                Err(_) => break,
            }
        }
        write(&pool, &spool, &mut batch).await;
        for done in batch.waiting.drain(..) {
            let _ = done.send(());
        }
    }
}

async fn write(pool: &PgPool, spool: &Spool, batch: &mut Batch) {
    if let Err(e) = try_write(pool, batch).await {
        tracing::warn!(
            "cannot record {} line(s) and {} outcome(s) now ({e}); spooling them",
            batch.lines.len(),
            batch.outcomes.len()
        );
        if !batch.lines.is_empty() {
            spool.save_logs(&batch.lines);
        }
        for outcome in &batch.outcomes {
            spool.save_outcome(outcome);
        }
    }
}

/// One transaction: lines, pids, outcomes (outcomes last: a run's pid and lines come first).
async fn try_write(pool: &PgPool, batch: &Batch) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    logs::insert(&mut tx, &batch.lines).await?;
    // Every started run's pid is recorded, also when its outcome is in this same batch (a quick
    // run under load): the pid is part of the run's record. One statement for the batch.
    let pids = &batch.pids;
    if !pids.is_empty() {
        sqlx::query(SET_PIDS)
            .bind(pids.iter().map(|(r, _)| r.0).collect::<Vec<_>>())
            .bind(pids.iter().map(|(_, p)| *p).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
    }
    write_outcomes(&mut tx, &batch.outcomes).await?;
    tx.commit().await
}
