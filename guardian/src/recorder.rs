//! The recorder: every run's log lines, pids and outcomes reach the database in batches, the way
//! a database does group commit — wait for one message, take everything else already queued, and
//! write it all in one transaction (River's batching completer). Under load, batches grow by
//! themselves while the previous one is being written; when idle, nothing waits.
//!
//! A batch that cannot be written because the database is away goes to the spool: lines first,
//! then the outcomes, so replay keeps a run's lines before its outcome (invariant: no outcome is
//! lost). A batch that the database *refuses* (one entry it cannot take: a data or constraint
//! error) is not one run's problem to share: [`write_isolated`] retries it in halves, by run, until
//! the bad run is found, writes every other run as if nothing happened, and gives the bad run
//! alone a recorded, explained failure ("could not record output: …").

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use sisyphus_db::guardian::{lock_runs, set_pids};
use sisyphus_db::{logs, PgPool};
use sisyphus_model::views::{LogRow, Stream};
use sisyphus_model::{RunId, RunStatus};
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;
use crate::outcome::{write_outcomes, Outcome};
use crate::spool::Spool;

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
    /// The recorder and the task that writes what it is sent, for the caller to spawn (the
    /// guardian on its task tracker). The task ends when every `Recorder` is dropped, after a
    /// last batch.
    pub fn new(
        pool: PgPool,
        spool: Spool,
        metrics: Arc<Metrics>,
    ) -> (Recorder, impl Future<Output = ()> + Send + 'static) {
        // Bounded: a run that prints faster than the database takes it is slowed down (its pipe
        // fills and it blocks), instead of growing our memory.
        let (tx, rx) = mpsc::channel(2 * BATCH);
        let writer = Writer {
            pool,
            spool,
            metrics,
            damaged: HashMap::new(),
        };
        (Recorder { tx }, run(writer, rx))
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

/// What one write carries: lines, pids and outcomes, of any runs.
#[derive(Default, Clone)]
pub struct Batch {
    pub lines: Vec<LogRow>,
    pub pids: Vec<(RunId, i32)>,
    pub outcomes: Vec<Outcome>,
}

impl Batch {
    fn len(&self) -> usize {
        self.lines.len() + self.pids.len() + self.outcomes.len()
    }

    /// The batch cut by run, in the order runs first appear (each part keeps its own order).
    fn by_run(self) -> Vec<Batch> {
        let mut index: HashMap<RunId, usize> = HashMap::new();
        let mut parts: Vec<Batch> = Vec::new();
        let mut part = |run: RunId| {
            let i = *index.entry(run).or_insert_with(|| {
                parts.push(Batch::default());
                parts.len() - 1
            });
            i
        };
        let mut place: Vec<(usize, Item)> = Vec::with_capacity(self.len());
        for l in self.lines {
            place.push((part(l.run_id), Item::Line(l)));
        }
        for (r, p) in self.pids {
            place.push((part(r), Item::Pid(r, p)));
        }
        for o in self.outcomes {
            place.push((part(o.run), Item::Outcome(o)));
        }
        for (i, item) in place {
            match item {
                Item::Line(l) => parts[i].lines.push(l),
                Item::Pid(r, p) => parts[i].pids.push((r, p)),
                Item::Outcome(o) => parts[i].outcomes.push(o),
            }
        }
        parts
    }

    fn join(parts: &[Batch]) -> Batch {
        let mut all = Batch::default();
        for p in parts {
            all.lines.extend(p.lines.iter().cloned());
            all.pids.extend(p.pids.iter().copied());
            all.outcomes.extend(p.outcomes.iter().cloned());
        }
        all
    }
}

enum Item {
    Line(LogRow),
    Pid(RunId, i32),
    Outcome(Outcome),
}

/// Whether an error is about the data — the database refuses this entry, and will refuse it again
/// whoever sends it: SQLSTATE class 22 (data exception: a NUL, a value out of range) or 23
/// (integrity: a foreign key to a run that is gone, a check) — rather than about the database
/// being away or this guardian's access (connection, login, privileges, read-only standby,
/// shutdown, timeouts…). Only a refusal is narrowed down; everything else goes to the spool whole,
/// so a rotated password or a failover never costs a line.
pub fn is_refusal(e: &sisyphus_db::Error) -> bool {
    let code = e.sqlstate().unwrap_or_default();
    matches!(code.get(..2), Some("22" | "23")) || e.is_encode()
}

/// A foreign key violation: in `run_logs` and `runs`, the run itself is gone (deleted by
/// retention or `job rm`), so every line of it is refused alike.
fn run_is_gone(e: &sisyphus_db::Error) -> bool {
    e.sqlstate().as_deref() == Some("23503")
}

/// The one place lines, pids and outcomes are written: by the recorder and by spool replay.
pub struct Writer {
    pub pool: PgPool,
    pub spool: Spool,
    pub metrics: Arc<Metrics>,
    /// Runs with output that could not be recorded and no outcome yet: the reason, for the
    /// outcome when it comes.
    damaged: HashMap<RunId, String>,
}

impl Writer {
    pub fn new(pool: PgPool, spool: Spool, metrics: Arc<Metrics>) -> Writer {
        Writer {
            pool,
            spool,
            metrics,
            damaged: HashMap::new(),
        }
    }

    /// Writes the batch; spools it when the database is away. Returns whether it was written.
    pub async fn write(&mut self, mut batch: Batch) -> bool {
        for o in &mut batch.outcomes {
            if let Some(why) = self.damaged.remove(&o.run) {
                unrecordable(o, &why);
            }
        }
        match try_write(&self.pool, &batch).await {
            Ok(()) => true,
            Err(e) if is_refusal(&e) => self.write_isolated(batch, e).await,
            Err(e) => {
                tracing::warn!(
                    "cannot record {} line(s) and {} outcome(s) now ({e}); spooling them",
                    batch.lines.len(),
                    batch.outcomes.len()
                );
                self.spool_batch(&batch);
                false
            }
        }
    }

    fn spool_batch(&self, batch: &Batch) {
        if !batch.lines.is_empty() {
            self.spool.save_logs(&batch.lines);
        }
        for outcome in &batch.outcomes {
            self.spool.save_outcome(outcome);
        }
    }

    /// A refused batch, written in halves by run until each refused run stands alone; the rest is
    /// written as usual. Returns false when the database went away meanwhile (the rest spooled).
    async fn write_isolated(&mut self, batch: Batch, first: sisyphus_db::Error) -> bool {
        tracing::warn!("the database refused a batch ({first}); finding the run it is about");
        let parts = batch.by_run();
        // Slices of `parts` still to write, the next one last.
        let mut todo: Vec<std::ops::Range<usize>> = Vec::new();
        todo.push(0..parts.len());
        let mut known: Option<sisyphus_db::Error> = Some(first);
        while let Some(range) = todo.pop() {
            let group = &parts[range.clone()];
            let result = match known.take() {
                Some(e) => Err(e),
                None => try_write(&self.pool, &Batch::join(group)).await,
            };
            match result {
                Ok(()) => {}
                Err(e) if is_refusal(&e) && range.len() > 1 => {
                    let mid = range.start + range.len() / 2;
                    todo.push(mid..range.end);
                    todo.push(range.start..mid);
                }
                Err(e) if is_refusal(&e) => {
                    if !self.write_alone(group[0].clone(), &e).await {
                        todo.clear();
                        self.spool_rest(&parts, range.end);
                        return false;
                    }
                }
                Err(e) => {
                    tracing::warn!(
                        "the database went away while isolating a batch ({e}); spooling the rest"
                    );
                    self.spool_batch(&Batch::join(&parts[range.start..]));
                    return false;
                }
            }
        }
        true
    }

    fn spool_rest(&self, parts: &[Batch], from: usize) {
        if from < parts.len() {
            self.spool_batch(&Batch::join(&parts[from..]));
        }
    }

    /// One run's part that the database refused: its lines one half at a time (a refused line is
    /// replaced by a line saying so), its pid, and its outcome — turned into an explained failure.
    /// Returns false when the database went away (the part is spooled).
    async fn write_alone(&mut self, part: Batch, refusal: &sisyphus_db::Error) -> bool {
        let run = part
            .lines
            .first()
            .map(|l| l.run_id)
            .or(part.pids.first().map(|p| p.0))
            .or(part.outcomes.first().map(|o| o.run));
        let Some(run) = run else { return true };
        let mut why: Option<String> = None;
        match self.write_lines_isolated(&part.lines).await {
            Ok(None) => {}
            Ok(Some(reason)) => why = Some(self.damaged.remove(&run).unwrap_or(reason)),
            Err(e) => {
                tracing::warn!("database away while isolating run {run}: {e}");
                self.spool_batch(&part);
                return false;
            }
        }
        if !part.pids.is_empty() {
            let pids = Batch {
                pids: part.pids.clone(),
                ..Batch::default()
            };
            if let Err(e) = try_write(&self.pool, &pids).await {
                tracing::warn!(run = %run, "could not record the pid: {e}");
            }
        }
        if part.outcomes.is_empty() {
            if let Some(reason) = why {
                self.damaged.insert(run, reason);
            }
            return true;
        }
        for mut outcome in part.outcomes {
            if let Some(reason) = &why {
                unrecordable(&mut outcome, reason);
            }
            if !self.write_outcome_alone(outcome, refusal).await {
                return false;
            }
        }
        true
    }

    /// The outcome as it must be recorded: a failure when lines of its run were refused.
    pub fn with_damage(&mut self, mut outcome: Outcome) -> Outcome {
        if let Some(why) = self.damaged.remove(&outcome.run) {
            unrecordable(&mut outcome, &why);
        }
        outcome
    }

    /// Writes one outcome; if it is refused, writes it as an explained failure; if that is refused
    /// too, puts it in quarantine. Returns false when the database is away (it is spooled).
    pub async fn write_outcome_alone(
        &mut self,
        outcome: Outcome,
        refusal: &sisyphus_db::Error,
    ) -> bool {
        let mut outcome = outcome;
        for round in 0..2 {
            let one = Batch {
                outcomes: vec![outcome.clone()],
                ..Batch::default()
            };
            match try_write(&self.pool, &one).await {
                Ok(()) => return true,
                Err(e) if is_refusal(&e) && round == 0 => {
                    tracing::error!(run = %outcome.run, "the database refused the outcome ({e}); recording a failure instead");
                    self.metrics.unrecordable.inc();
                    let why = e.to_string();
                    outcome.summary = None;
                    outcome.error = None;
                    unrecordable(&mut outcome, &why);
                }
                Err(e) if is_refusal(&e) => {
                    tracing::error!(run = %outcome.run, "the database refused the outcome twice ({e}; first: {refusal}); quarantined");
                    self.spool.quarantine_outcome(&outcome, &e.to_string());
                    self.metrics.quarantined.inc();
                    return true;
                }
                Err(e) => {
                    tracing::warn!("database away while recording an outcome ({e}); spooling it");
                    self.spool.save_outcome(&outcome);
                    return false;
                }
            }
        }
        true
    }

    /// Writes lines in halves until each refused line stands alone; a refused line is replaced by
    /// a `sisyphus` line with the same number saying why (or, if even that is refused, left out).
    /// Returns the reason when some line was refused; an error when the database went away.
    pub async fn write_lines_isolated(
        &mut self,
        lines: &[LogRow],
    ) -> sisyphus_db::Result<Option<String>> {
        let mut reason: Option<String> = None;
        let mut todo: Vec<std::ops::Range<usize>> = Vec::new();
        todo.push(0..lines.len());
        while let Some(range) = todo.pop() {
            if range.is_empty() {
                continue;
            }
            let result = match self.pool.acquire().await {
                Ok(mut conn) => logs::insert(&mut conn, &lines[range.clone()]).await,
                Err(e) => Err(e.into()),
            };
            let one_run = lines[range.clone()]
                .iter()
                .all(|l| l.run_id == lines[range.start].run_id);
            match result {
                Ok(()) => {}
                Err(e) if run_is_gone(&e) && one_run => {
                    // The run no longer exists: its lines have nowhere to go, and no line saying
                    // so would either. One refusal for all of them, not one per line.
                    let run = lines[range.start].run_id;
                    self.metrics.unrecordable.inc_by(range.len() as u64);
                    tracing::error!(run = %run, "dropped {} line(s) of a run that no longer exists: {e}", range.len());
                    reason.get_or_insert_with(|| e.to_string());
                }
                Err(e) if is_refusal(&e) && range.len() > 1 => {
                    let mid = range.start + range.len() / 2;
                    todo.push(mid..range.end);
                    todo.push(range.start..mid);
                }
                Err(e) if is_refusal(&e) => {
                    let bad = &lines[range.start];
                    self.damaged
                        .entry(bad.run_id)
                        .or_insert_with(|| e.to_string());
                    self.metrics.unrecordable.inc();
                    tracing::error!(run = %bad.run_id, seq = bad.seq, "the database refused a log line: {e}");
                    let marker = LogRow {
                        stream: Stream::Sisyphus,
                        tags: vec!["sisyphus".into(), "error".into()],
                        task: None,
                        text: format!("could not record this line: {e}"),
                        ..bad.clone()
                    };
                    if let Ok(mut conn) = self.pool.acquire().await {
                        let _ = logs::insert(&mut conn, std::slice::from_ref(&marker)).await;
                    }
                    reason.get_or_insert_with(|| e.to_string());
                }
                Err(e) => return Err(e),
            }
        }
        Ok(reason)
    }
}

/// The outcome of a run part of whose record the database refused: a success becomes a failure
/// saying why; any other ending keeps its status and gets the reason added.
fn unrecordable(outcome: &mut Outcome, why: &str) {
    let note = format!("could not record output: {why}");
    if matches!(
        outcome.status,
        RunStatus::Successful | RunStatus::Uneventful
    ) {
        outcome.status = RunStatus::Failed;
        outcome.summary = None;
        outcome.error = Some(note);
    } else {
        outcome.error = Some(match outcome.error.take() {
            Some(e) => format!("{e}; {note}"),
            None => note,
        });
    }
}

async fn run(mut writer: Writer, mut rx: mpsc::Receiver<Msg>) {
    while let Some(first) = rx.recv().await {
        let mut batch = Batch::default();
        let mut waiting = Vec::new();
        let mut add = |msg: Msg, batch: &mut Batch| match msg {
            Msg::Line(row) => batch.lines.push(row),
            Msg::Started(run, pid) => batch.pids.push((run, pid)),
            Msg::Finished(outcome, done) => {
                batch.outcomes.push(outcome);
                waiting.push(done);
            }
        };
        add(first, &mut batch);
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(msg) => add(msg, &mut batch),
                Err(_) => break,
            }
        }
        writer.write(batch).await;
        for done in waiting {
            let _ = done.send(());
        }
    }
}

/// One transaction: lines, pids, outcomes (outcomes last: a run's pid and lines come first).
async fn try_write(pool: &PgPool, batch: &Batch) -> sisyphus_db::Result<()> {
    let mut tx = pool.begin().await?;
    // The runs whose pids and outcomes change, locked first and in the heartbeat's order.
    let changed: Vec<RunId> = batch
        .pids
        .iter()
        .map(|(run, _)| *run)
        .chain(batch.outcomes.iter().map(|o| o.run))
        .collect();
    if changed.len() > 1 {
        lock_runs(&mut tx, &changed).await?;
    }
    logs::insert(&mut tx, &batch.lines).await?;
    // Every started run's pid is recorded, also when its outcome is in this same batch (a quick
    // run under load): the pid is part of the run's record. One statement for the batch.
    if !batch.pids.is_empty() {
        set_pids(&mut tx, &batch.pids).await?;
    }
    write_outcomes(&mut tx, &batch.outcomes).await?;
    tx.commit().await?;
    Ok(())
}
