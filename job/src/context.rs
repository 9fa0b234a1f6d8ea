//! What a running job talks to: tagged logging (ll.sisyphus' `self.log.xml.warning(...)` is
//! `ctx.tag("xml").tag("warning").log(...)`), errors with their chain (tag `exc`), delayed
//! messages, the task stack, and user data. Lines go to a [`Sink`]: the local log file and
//! stdout/stderr when standalone, protocol records when under a guardian.

use std::cell::RefCell;
use std::io::Write;

use chrono::{DateTime, Utc};
use sisyphus_protocol::{tasks_label, Record, Task};

/// Who wrote a line (ll.sisyphus' `parent 4711`, `[1] child 4712`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Writer {
    pub who: String,
    pub pid: u32,
}

/// Where a job's lines go.
pub trait Sink {
    /// One line with its tags and the task stack at the time; `writer` is who wrote it when
    /// that was someone else than the sink's current writer (a delayed line of the parent's,
    /// written out by the child).
    fn line(
        &mut self,
        writer: Option<&Writer>,
        at: DateTime<Utc>,
        tasks: &[Task],
        tags: &[String],
        text: &str,
    );
    /// The current writer, if the sink labels lines with one.
    fn writer(&self) -> Option<Writer> {
        None
    }
    /// New user data (kept by the guardian; standalone jobs have nowhere to keep it).
    fn userdata(&mut self, _value: &serde_json::Value) {}
}

/// A job's side of the run: logging, tasks, user data. Cheap to pass around by reference; every
/// method takes `&self`, so a task iterator can be alive while the body logs.
pub struct Context {
    inner: RefCell<Inner>,
}

struct Inner {
    sink: Box<dyn Sink>,
    tasks: Vec<Task>,
    /// Delayed lines waiting for the first line that is not delayed.
    delayed: Vec<Delayed>,
    /// True once a line that is not delayed was written (delayed lines then go straight out).
    eventful: bool,
    /// Errors logged (the result line says `errors` instead of `ok` then).
    errors: usize,
    /// Lines tagged for notification channels.
    notices: Vec<Notice>,
}

/// A line routed to notifications by its tags (`email`, `mattermost`, `sentry`, or `external`
/// for all three), or the error that aborted the run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Notice {
    pub at: DateTime<Utc>,
    pub tags: Vec<String>,
    pub tasks: String,
    pub text: String,
}

/// Most notices kept per run.
const MAX_NOTICES: usize = 100;

impl Context {
    pub fn new(sink: Box<dyn Sink>) -> Context {
        Context {
            inner: RefCell::new(Inner {
                sink,
                tasks: Vec::new(),
                delayed: Vec::new(),
                eventful: false,
                errors: 0,
                notices: Vec::new(),
            }),
        }
    }

    /// Logs an untagged line.
    pub fn log(&self, text: impl AsRef<str>) {
        self.write(Vec::new(), text.as_ref());
    }

    /// Starts a tagged log call: `ctx.tag("xml").tag("warning").log("can't parse")`.
    pub fn tag(&self, tag: impl Into<String>) -> Tagged<'_> {
        Tagged {
            ctx: self,
            tags: vec![tag.into()],
        }
    }

    /// Logs an error with its chain of causes, tagged `exc`.
    pub fn log_error(&self, error: &(dyn std::error::Error + 'static)) {
        Tagged {
            ctx: self,
            tags: Vec::new(),
        }
        .log_error(error);
    }

    /// Replaces the run's user data (kept by the guardian).
    pub fn set_userdata(&self, value: serde_json::Value) {
        self.inner.borrow_mut().sink.userdata(&value);
    }

    /// Enters a task until the guard is dropped: every line meanwhile shows it, e.g.
    /// `[3/226] module sys` (index is zero-based, shown one-based).
    pub fn task(
        &self,
        kind: impl Into<String>,
        name: impl Into<String>,
        index: Option<u64>,
        count: Option<u64>,
    ) -> TaskGuard<'_> {
        self.inner.borrow_mut().tasks.push(Task {
            kind: Some(kind.into()),
            name: Some(name.into()),
            index,
            count,
        });
        TaskGuard { ctx: self }
    }

    /// Iterates over `items`, each inside a task of `kind` named by `name(item)`, with index and
    /// count filled in (ll.sisyphus' `tasks()`).
    pub fn tasks<I, F>(&self, items: I, kind: &str, name: F) -> Tasks<'_, I::IntoIter, F>
    where
        I: IntoIterator,
        I::IntoIter: ExactSizeIterator,
        F: FnMut(&I::Item) -> String,
    {
        let items = items.into_iter();
        Tasks {
            ctx: self,
            count: items.len() as u64,
            items,
            kind: kind.to_string(),
            name,
            index: 0,
            inside: false,
        }
    }

    /// How many errors were logged so far.
    pub fn errors_logged(&self) -> usize {
        self.inner.borrow().errors
    }

    /// Whether any line that was not delayed has been written.
    pub fn eventful(&self) -> bool {
        self.inner.borrow().eventful
    }

    /// A line from the machinery itself (tag `sisyphus` first), delayed as all of ll.sisyphus'
    /// own messages are (without showing a `delay` tag).
    pub(crate) fn sisyphus(&self, tags: &[&str], text: &str) {
        let mut all = vec!["sisyphus".to_string()];
        all.extend(tags.iter().map(|t| t.to_string()));
        self.emit(all, text, true);
    }

    /// The result line: written, without the delayed lines, also when nothing else was; not
    /// written at all for an uneventful run with nothing else to say.
    pub(crate) fn result(&self, tags: &[&str], text: Option<&str>) {
        let mut inner = self.inner.borrow_mut();
        inner.delayed.clear();
        let Some(text) = text else {
            return;
        };
        let mut all = vec!["sisyphus".to_string(), "result".to_string()];
        all.extend(tags.iter().map(|t| t.to_string()));
        let tasks = inner.tasks.clone();
        inner.sink.line(None, Utc::now(), &tasks, &all, text);
    }

    /// Forgets delayed lines another process (a forked child) has written already.
    pub(crate) fn mark_eventful(&self) {
        let mut inner = self.inner.borrow_mut();
        inner.eventful = true;
        inner.delayed.clear();
    }

    fn write(&self, tags: Vec<String>, text: &str) {
        let delayed = tags.iter().any(|t| t == "delay");
        self.emit(tags, text, delayed);
    }

    fn emit(&self, tags: Vec<String>, text: &str, delayed: bool) {
        let mut inner = self.inner.borrow_mut();
        let at = Utc::now();
        let tasks = inner.tasks.clone();
        if delayed && !inner.eventful {
            let writer = inner.sink.writer();
            inner.delayed.push(Delayed {
                writer,
                at,
                tasks,
                tags,
                text: text.to_string(),
            });
            return;
        }
        inner.eventful = true;
        for d in std::mem::take(&mut inner.delayed) {
            let tags = shown(d.tags);
            inner.note(d.at, &d.tasks, &tags, &d.text);
            inner
                .sink
                .line(d.writer.as_ref(), d.at, &d.tasks, &tags, &d.text);
        }
        let tags = shown(tags);
        inner.note(at, &tasks, &tags, text);
        inner.sink.line(None, at, &tasks, &tags, text);
    }

    /// Lines routed to notifications so far; a standalone run sends them at its end (see
    /// `notify.rs`), under a guardian they travel in `run_logs` with their tags.
    pub fn notices(&self) -> Vec<Notice> {
        self.inner.borrow().notices.clone()
    }

    /// Records the error that aborted the run as a notice for every channel.
    pub(crate) fn notice_failure(&self, text: &str) {
        let mut inner = self.inner.borrow_mut();
        let tags = vec!["exc".to_string(), "external".to_string()];
        let tasks = inner.tasks.clone();
        inner.note(Utc::now(), &tasks, &tags, text);
    }
}

impl Inner {
    fn note(&mut self, at: DateTime<Utc>, tasks: &[Task], tags: &[String], text: &str) {
        if !sisyphus_notify::notification::routed(tags) || self.notices.len() >= MAX_NOTICES {
            return;
        }
        self.notices.push(Notice {
            at,
            tags: tags.to_vec(),
            tasks: tasks_label(tasks),
            text: text.to_string(),
        });
    }
}

struct Delayed {
    writer: Option<Writer>,
    at: DateTime<Utc>,
    tasks: Vec<Task>,
    tags: Vec<String>,
    text: String,
}

/// A log call being tagged.
pub struct Tagged<'a> {
    ctx: &'a Context,
    tags: Vec<String>,
}

impl Tagged<'_> {
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    pub fn log(self, text: impl AsRef<str>) {
        self.ctx.write(self.tags, text.as_ref());
    }

    /// Logs an error with its chain, with these tags and `exc`.
    pub fn log_error(mut self, error: &(dyn std::error::Error + 'static)) {
        self.ctx.inner.borrow_mut().errors += 1;
        self.tags.push("exc".into());
        self.ctx.write(self.tags, &chain(error));
    }
}

/// Leaves its task when dropped.
pub struct TaskGuard<'a> {
    ctx: &'a Context,
}

impl Drop for TaskGuard<'_> {
    fn drop(&mut self) {
        self.ctx.inner.borrow_mut().tasks.pop();
    }
}

/// See [`Context::tasks`].
pub struct Tasks<'a, I, F> {
    ctx: &'a Context,
    items: I,
    kind: String,
    name: F,
    index: u64,
    count: u64,
    inside: bool,
}

impl<I, F> Iterator for Tasks<'_, I, F>
where
    I: Iterator,
    F: FnMut(&I::Item) -> String,
{
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        let mut inner = self.ctx.inner.borrow_mut();
        if self.inside {
            inner.tasks.pop();
            self.inside = false;
        }
        let item = self.items.next()?;
        inner.tasks.push(Task {
            kind: Some(self.kind.clone()),
            name: Some((self.name)(&item)),
            index: Some(self.index),
            count: Some(self.count),
        });
        self.index += 1;
        self.inside = true;
        Some(item)
    }
}

impl<I, F> Drop for Tasks<'_, I, F> {
    fn drop(&mut self) {
        if self.inside {
            self.ctx.inner.borrow_mut().tasks.pop();
        }
    }
}

/// The tags a line shows: `delay` only steers buffering, as in ll.sisyphus.
fn shown(mut tags: Vec<String>) -> Vec<String> {
    tags.retain(|t| t != "delay");
    tags
}

/// An error and its causes, `outer: inner: innermost`.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// Under a guardian: every line a protocol record on the descriptor it named.
pub struct ProtocolSink {
    pub out: std::fs::File,
}

impl ProtocolSink {
    pub(crate) fn send(&mut self, record: &Record) {
        // A guardian that stopped reading is not the job's problem; nothing to do about it.
        let _ = self
            .out
            .write_all(sisyphus_protocol::encode(record).as_bytes());
    }
}

impl Sink for ProtocolSink {
    fn line(
        &mut self,
        _writer: Option<&Writer>,
        _at: DateTime<Utc>,
        tasks: &[Task],
        tags: &[String],
        text: &str,
    ) {
        self.send(&Record::Log {
            tags: tags.to_vec(),
            tasks: tasks.to_vec(),
            text: text.to_string(),
        });
    }

    fn userdata(&mut self, value: &serde_json::Value) {
        self.send(&Record::Userdata {
            value: value.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    type Lines = Rc<RefCell<Vec<(String, Vec<String>, String)>>>;

    struct Capture(Lines);

    impl Sink for Capture {
        fn line(
            &mut self,
            _writer: Option<&Writer>,
            _at: DateTime<Utc>,
            tasks: &[Task],
            tags: &[String],
            text: &str,
        ) {
            self.0
                .borrow_mut()
                .push((tasks_label(tasks), tags.to_vec(), text.to_string()));
        }
    }

    fn capture() -> (Context, Lines) {
        let lines: Lines = Rc::default();
        (Context::new(Box::new(Capture(lines.clone()))), lines)
    }

    #[derive(Debug, thiserror::Error)]
    #[error("cannot load config")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn tags_errors_and_tasks_arrive_with_each_line() {
        let (ctx, lines) = capture();
        ctx.tag("xml").tag("warning").log("can't parse");
        ctx.log_error(&Outer(std::io::Error::other("disk on fire")));
        {
            let _db = ctx.task("db", "main", Some(0), Some(2));
            for t in ctx.tasks(["a", "b"], "table", |t| t.to_string()) {
                ctx.log(format!("copy {t}"));
            }
            ctx.log("after the tables");
        }
        ctx.log("outside");
        let got = lines.borrow().clone();
        let expect = [
            ("", vec!["xml", "warning"], "can't parse"),
            ("", vec!["exc"], "cannot load config: disk on fire"),
            ("[1/2] db main :: [1/2] table a", vec![], "copy a"),
            ("[1/2] db main :: [2/2] table b", vec![], "copy b"),
            ("[1/2] db main", vec![], "after the tables"),
            ("", vec![], "outside"),
        ];
        assert_eq!(got.len(), expect.len(), "{got:?}");
        for (g, e) in got.iter().zip(expect) {
            assert_eq!((g.0.as_str(), g.2.as_str()), (e.0, e.2));
            assert_eq!(g.1, e.1.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        }
        assert_eq!(ctx.errors_logged(), 1);
    }

    #[test]
    fn delayed_lines_wait_for_the_first_undelayed_one() {
        let (ctx, lines) = capture();
        ctx.sisyphus(&["init", "delay"], "starting");
        ctx.tag("delay").log("quiet detail");
        assert!(lines.borrow().is_empty(), "delayed lines are held back");
        ctx.log("something happened");
        ctx.tag("delay").log("now delayed lines go out at once");
        let texts: Vec<String> = lines.borrow().iter().map(|l| l.2.clone()).collect();
        assert_eq!(
            texts,
            [
                "starting",
                "quiet detail",
                "something happened",
                "now delayed lines go out at once"
            ]
        );
    }

    #[test]
    fn a_run_with_only_delayed_lines_logs_only_its_result() {
        let (ctx, lines) = capture();
        ctx.sisyphus(&["init", "delay"], "starting");
        ctx.tag("delay").log("detail");
        ctx.result(&["ok"], Some("done"));
        let got = lines.borrow().clone();
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].1, ["sisyphus", "result", "ok"]);
        let (ctx, lines) = capture();
        ctx.tag("delay").log("detail");
        ctx.result(&["ok"], None);
        assert!(
            lines.borrow().is_empty(),
            "an uneventful quiet run logs nothing"
        );
    }
}
