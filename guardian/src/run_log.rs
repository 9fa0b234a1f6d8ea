//! One run's log: every line the run or its guardian says is numbered (per run, from 1), capped
//! (`--max-log-lines`/`--max-log-bytes`, then one `truncated` marker; the result line is always
//! stored), and routed to the recorder (`run_logs`) and to the local log file. Job protocol
//! records (fd 3) become tagged lines, user data, or the job's own result; so do the stdout lines
//! of an `ll.sisyphus` job (`llsisyphus::Reader`: tags, task stack, each line's own time, the
//! result line); what the output shows for the outcome is kept aside ([`Seen`]). Once the run's secrets are resolved, every line —
//! its text, tags and task — is masked (`secrets::Mask`) before it goes anywhere, and so is what
//! is kept for the outcome.

use chrono::{DateTime, Utc};
use sisyphus_logfile::{Ending, RunLog};
use sisyphus_model::spec::LogSettings;
use sisyphus_model::views::{LogRow, Stream};
use sisyphus_model::{RunId, RunStatus};
use sisyphus_protocol::Record;

use crate::llsisyphus::{self, Read};
use crate::outcome::{LlSisyphusSeen, Outcome, Seen};
use crate::output::Line;
use crate::recorder::Recorder;
use crate::secrets::Mask;

/// Caps on what one run may store (the local file and `run_logs` alike).
#[derive(Debug, Clone, Copy)]
pub struct LogCap {
    pub max_lines: u64,
    pub max_bytes: u64,
}

impl Default for LogCap {
    fn default() -> Self {
        LogCap {
            max_lines: 100_000,
            max_bytes: 16 * 1024 * 1024,
        }
    }
}

/// How many unreadable protocol records a run's log reports; the rest are ignored silently.
const REPORTED_PROTOCOL_ERRORS: u32 = 10;

/// The last stdout and stderr lines are kept for the outcome up to this many bytes.
const LAST_LINE_BYTES: usize = 1000;

/// Numbers, caps and routes one run's log lines: to the recorder (`run_logs`) and the local file.
pub(crate) struct RunLogger {
    run: RunId,
    seq: i32,
    lines: u64,
    bytes: u64,
    cap: LogCap,
    truncated: bool,
    recorder: Recorder,
    file: RunLog,
    seen: Seen,
    protocol_errors: u32,
    /// The run's secret values, masked in everything this logger routes.
    mask: Mask,
    /// For an `ll.sisyphus` job: what reads its stdout.
    ll: Option<llsisyphus::Reader>,
}

impl RunLogger {
    pub fn new(run: RunId, file: RunLog, cap: LogCap, recorder: Recorder) -> RunLogger {
        RunLogger {
            run,
            seq: 0,
            lines: 0,
            bytes: 0,
            cap,
            truncated: false,
            recorder,
            file,
            seen: Seen::default(),
            protocol_errors: 0,
            mask: Mask::default(),
            ll: None,
        }
    }

    /// From now on, reads stdout as an ll.sisyphus job prints it (and decides the outcome as
    /// ll.sisyphus does: `outcome::classify`).
    pub fn read_ll_sisyphus(&mut self, reader: llsisyphus::Reader) {
        self.ll = Some(reader);
        self.seen.ll_sisyphus = Some(LlSisyphusSeen::default());
    }

    /// From now on, masks these secret values in every line and in what is kept for the outcome.
    pub fn set_mask(&mut self, mask: Mask) {
        self.mask = mask;
    }

    /// Masks the run's secret values in the outcome's summary and error.
    pub fn mask_outcome(&self, outcome: &mut Outcome) {
        self.mask.apply_to_opt(&mut outcome.summary);
        self.mask.apply_to_opt(&mut outcome.error);
    }

    /// What the output showed so far, for the outcome.
    pub fn seen(&self) -> &Seen {
        &self.seen
    }

    /// One line the child wrote: on stdout or stderr, or a record on its protocol pipe.
    pub async fn child_line(&mut self, mut line: Line) {
        if line.stream == Stream::Sdk {
            return self.record(line).await;
        }
        if line.stream == Stream::Stdout {
            let read = match &mut self.ll {
                Some(reader) => reader.read(&line.text, Utc::now()),
                None => Read::Plain,
            };
            match read {
                Read::Line { line: ll, at, .. } => return self.ll_line(ll, at, &line).await,
                Read::Repeated => return,
                Read::Plain => {}
            }
        }
        // Before the last line is cut for the outcome: a cut could split a secret.
        self.mask.apply_to(&mut line.text);
        self.seen.any_output = true;
        if !line.text.trim().is_empty() {
            let last = Some(cut(&line.text, LAST_LINE_BYTES));
            match line.stream {
                Stream::Stdout => self.seen.last_stdout = last,
                _ => self.seen.last_stderr = last,
            }
        }
        if self.truncated {
            return;
        }
        let mut tags = vec![line.stream.as_str().to_string()];
        if line.lossy {
            tags.push("non-utf8".to_string());
        }
        if line.nul {
            tags.push(sisyphus_protocol::text::NUL_TAG.to_string());
        }
        self.store_masked(line.stream, tags, None, line.text).await;
    }

    /// One line of an ll.sisyphus job: a tagged line with its task stack and time; what its
    /// reader learnt so far (a result line) is kept for the outcome, masked.
    async fn ll_line(&mut self, ll: llsisyphus::LogLine, at: DateTime<Utc>, raw: &Line) {
        if let Some(reader) = &self.ll {
            let mut result = reader.result.clone();
            if let Some((_, text)) = &mut result {
                self.mask.apply_to_opt(text);
            }
            self.seen.ll_sisyphus = Some(LlSisyphusSeen {
                any_line: reader.any,
                result,
            });
        }
        self.seen.any_output = true;
        if self.truncated {
            return;
        }
        let task = ll.task();
        let mut tags = ll.tags;
        if raw.lossy {
            tags.push("non-utf8".to_string());
        }
        if raw.nul {
            tags.push(sisyphus_protocol::text::NUL_TAG.to_string());
        }
        self.store_at(Stream::Sdk, tags, task, ll.text, at).await;
    }

    /// One job protocol record: a tagged line (with its task stack), the result, or user data.
    /// A record that cannot be read is reported (the first ten) and otherwise ignored.
    async fn record(&mut self, line: Line) {
        match sisyphus_protocol::decode(line.text.as_bytes()) {
            Ok(Record::Log { tags, tasks, text }) => {
                let tasks = sisyphus_protocol::tasks_label(&tasks);
                let task = (!tasks.is_empty()).then_some(tasks);
                self.store(Stream::Sdk, tags, task, text).await;
            }
            Ok(Record::Result {
                status,
                mut summary,
            }) => {
                self.mask.apply_to_opt(&mut summary);
                self.seen.sdk_result = Some((status, summary));
            }
            Ok(Record::Userdata { mut value }) => {
                // Strings masked before they are encoded: escaping could hide a value.
                self.mask.apply_json(&mut value);
                let tags = vec!["userdata".into()];
                self.store(Stream::Sdk, tags, None, value.to_string()).await;
            }
            Err(e) => {
                self.protocol_errors += 1;
                if self.protocol_errors <= REPORTED_PROTOCOL_ERRORS {
                    let text = format!("unreadable job protocol record: {e}");
                    self.sisyphus(&["sisyphus", "protocol"], &text).await;
                }
            }
        }
    }

    /// A line of the guardian's own about the run.
    pub async fn sisyphus(&mut self, tags: &[&str], text: &str) {
        self.store(Stream::Sisyphus, owned(tags), None, text.to_string())
            .await;
    }

    /// Ends the log: the result line (stored past the cap too), then the local file is closed
    /// with its `last_*` link and retention.
    pub async fn finish(mut self, outcome: &Outcome, settings: LogSettings) {
        self.result(outcome).await;
        let ending = Ending::from(outcome.status);
        let file = self.file;
        let _ = tokio::task::spawn_blocking(move || file.finish(ending, &settings)).await;
    }

    async fn result(&mut self, outcome: &Outcome) {
        let kind = match outcome.status {
            RunStatus::Successful | RunStatus::Uneventful => "ok",
            RunStatus::Timeout | RunStatus::Terminated | RunStatus::Lost => "kill",
            RunStatus::Interrupted => "interrupted",
            _ => "fail",
        };
        let text = outcome
            .summary
            .clone()
            .or_else(|| outcome.error.clone())
            .unwrap_or_else(|| outcome.status.to_string());
        let tags = owned(&["sisyphus", "result", kind]);
        let text = format!("{}: {text}", outcome.status);
        let text = self.mask.apply(&text).into_owned();
        self.push(Stream::Sisyphus, tags, None, text).await;
    }

    /// Masks the line's secrets and stores it ([`store_masked`](Self::store_masked)).
    async fn store(
        &mut self,
        stream: Stream,
        tags: Vec<String>,
        task: Option<String>,
        text: String,
    ) {
        self.store_at(stream, tags, task, text, Utc::now()).await;
    }

    /// [`store`](Self::store) with the time the line was logged.
    async fn store_at(
        &mut self,
        stream: Stream,
        mut tags: Vec<String>,
        mut task: Option<String>,
        mut text: String,
        at: DateTime<Utc>,
    ) {
        for tag in &mut tags {
            self.mask.apply_to(tag);
        }
        self.mask.apply_to_opt(&mut task);
        self.mask.apply_to(&mut text);
        self.store_masked_at(stream, tags, task, text, at).await;
    }

    /// Counts a masked line against the cap; past it, writes the `truncated` marker once and
    /// nothing more.
    async fn store_masked(
        &mut self,
        stream: Stream,
        tags: Vec<String>,
        task: Option<String>,
        text: String,
    ) {
        self.store_masked_at(stream, tags, task, text, Utc::now())
            .await;
    }

    /// [`store_masked`](Self::store_masked) with the time the line was logged.
    async fn store_masked_at(
        &mut self,
        stream: Stream,
        tags: Vec<String>,
        task: Option<String>,
        text: String,
        at: DateTime<Utc>,
    ) {
        if self.truncated {
            return;
        }
        self.lines += 1;
        self.bytes += text.len() as u64;
        if self.lines > self.cap.max_lines || self.bytes > self.cap.max_bytes {
            self.truncated = true;
            let marker = format!(
                "log truncated: more than {} lines or {} bytes; further output of this run is not stored",
                self.cap.max_lines, self.cap.max_bytes
            );
            let tags = owned(&["sisyphus", "truncated"]);
            self.push(Stream::Sisyphus, tags, None, marker).await;
            return;
        }
        self.push_at(stream, tags, task, text, at).await;
    }

    /// Numbers the line and sends it to the local file and the recorder.
    async fn push(
        &mut self,
        stream: Stream,
        tags: Vec<String>,
        task: Option<String>,
        text: String,
    ) {
        self.push_at(stream, tags, task, text, Utc::now()).await;
    }

    /// [`push`](Self::push) with the time the line was logged (`run_logs.at`; fixed here, so a
    /// spool replay finds the stored copy).
    async fn push_at(
        &mut self,
        stream: Stream,
        tags: Vec<String>,
        task: Option<String>,
        text: String,
        at: DateTime<Utc>,
    ) {
        self.seq += 1;
        self.file
            .line(at, task.as_deref().unwrap_or(""), &tags, &text);
        self.recorder
            .line(LogRow {
                run_id: self.run,
                seq: self.seq,
                at,
                stream,
                tags,
                task,
                text,
            })
            .await;
    }
}

fn owned(tags: &[&str]) -> Vec<String> {
    tags.iter().map(|t| t.to_string()).collect()
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn cut(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_keeps_whole_characters() {
        assert_eq!(cut("short", 1000), "short");
        assert_eq!(cut("abcdef", 3), "abc");
        // 'é' is two bytes: a cut in its middle goes back before it.
        assert_eq!(cut("aé", 2), "a");
    }
}
