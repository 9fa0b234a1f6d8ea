//! The log sink: every run's lines go to `run_logs` in batches — one statement per batch for all
//! runs together, never one round trip per line. A batch that cannot be written (database
//! unreachable) goes to the spool, to be written later (invariant 5).

use std::time::Duration;

use sisyphus_client::db::logs::{self, LogRow};
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

use crate::spool::Spool;

/// Lines per statement at most.
const BATCH: usize = 2000;
/// How long a line may wait for its batch.
const LINGER: Duration = Duration::from_millis(50);

enum Msg {
    Line(LogRow),
    /// Answered once every line sent before it is stored or spooled.
    Flush(oneshot::Sender<()>),
}

/// The sending side, cloned into every supervisor.
#[derive(Clone)]
pub struct Sink {
    tx: mpsc::Sender<Msg>,
}

impl Sink {
    /// Starts the sink task. It ends when every `Sink` is dropped, after a last flush.
    pub fn start(pool: PgPool, spool: Spool) -> (Sink, tokio::task::JoinHandle<()>) {
        // Bounded: a run that prints faster than the database takes it is slowed down (its pipe
        // fills and it blocks), instead of growing our memory.
        let (tx, rx) = mpsc::channel(4 * BATCH);
        let task = tokio::spawn(run(pool, spool, rx));
        (Sink { tx }, task)
    }

    pub async fn line(&self, row: LogRow) {
        let _ = self.tx.send(Msg::Line(row)).await;
    }

    /// Waits until every line sent so far is stored or spooled.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

async fn run(pool: PgPool, spool: Spool, mut rx: mpsc::Receiver<Msg>) {
    let mut batch: Vec<LogRow> = Vec::with_capacity(BATCH);
    let mut waiting: Vec<oneshot::Sender<()>> = Vec::new();
    loop {
        let msg = if batch.is_empty() {
            rx.recv().await
        } else {
            match tokio::time::timeout(LINGER, rx.recv()).await {
                Ok(m) => m,
                Err(_) => {
                    write(&pool, &spool, &mut batch).await;
                    continue;
                }
            }
        };
        match msg {
            Some(Msg::Line(row)) => {
                batch.push(row);
                if batch.len() >= BATCH {
                    write(&pool, &spool, &mut batch).await;
                }
            }
            Some(Msg::Flush(done)) => {
                waiting.push(done);
                // Take whatever else is queued right now into the same batch.
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(Msg::Line(row)) => batch.push(row),
                        Ok(Msg::Flush(d)) => waiting.push(d),
                        Err(_) => break,
                    }
                }
                write(&pool, &spool, &mut batch).await;
                for d in waiting.drain(..) {
                    let _ = d.send(());
                }
            }
            None => {
                write(&pool, &spool, &mut batch).await;
                return;
            }
        }
    }
}

async fn write(pool: &PgPool, spool: &Spool, batch: &mut Vec<LogRow>) {
    if batch.is_empty() {
        return;
    }
    let result = async {
        let mut conn = pool.acquire().await?;
        logs::insert(&mut conn, batch).await
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(
            "cannot store {} log line(s) now ({e}); spooling them",
            batch.len()
        );
        spool.save_logs(batch);
    }
    batch.clear();
}
