//! The job protocol: what a job written with the SDK (`sisyphus-job`) tells the guardian that
//! supervises it. The guardian opens a pipe, hands the job its write end as the file descriptor
//! named in `SISYPHUS_PROTOCOL_FD`, and reads one JSON object per line:
//!
//! ```text
//! {"v":1,"type":"log","tags":["xml","warning"],"tasks":[{"type":"module","name":"sys","index":2,"count":226}],"text":"…"}
//! {"v":1,"type":"result","status":"successful","summary":"cached 3 pages"}
//! {"v":1,"type":"userdata","value":{"last_id":42}}
//! ```
//!
//! `v` is the protocol version; a guardian refuses records of a version it does not know (and
//! says so in the run's log) rather than guessing. Everything the guardian reads from a child is
//! untrusted: [`decode`] bounds every size and never panics, whatever the bytes (a property test
//! feeds it garbage).

use serde::{Deserialize, Serialize};

pub mod text;

/// The protocol version this build speaks.
pub const VERSION: u32 = 1;

/// The environment variable naming the file descriptor records are written to.
pub const FD_ENV: &str = "SISYPHUS_PROTOCOL_FD";

/// Longest record line accepted, in bytes.
pub const MAX_LINE: usize = 64 * 1024;
/// Most tags on one log record, and longest tag.
pub const MAX_TAGS: usize = 32;
pub const MAX_TAG_LEN: usize = 64;
/// Deepest task nesting.
pub const MAX_TASKS: usize = 16;

/// How a run ended, as the job itself reports it (ll.sisyphus' statuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Successful,
    Uneventful,
    Failed,
    Interrupted,
    Timeout,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Successful => "successful",
            Status::Uneventful => "uneventful",
            Status::Failed => "failed",
            Status::Interrupted => "interrupted",
            Status::Timeout => "timeout",
        }
    }
}

/// One level of the task stack (ll.sisyphus' `task(type, name, index, count)`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Task {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Zero-based.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

impl Task {
    /// As ll.sisyphus shows it: `[3/226] module sys` (index shown one-based), `module sys`
    /// without an index, `?` with nothing at all.
    pub fn label(&self) -> String {
        let desc: Vec<&str> = [self.kind.as_deref(), self.name.as_deref()]
            .into_iter()
            .flatten()
            .filter(|d| !d.is_empty())
            .collect();
        let desc = desc.join(" ");
        match (self.index, self.count) {
            (Some(i), count) => {
                let n = count.map(|n| format!("/{n}")).unwrap_or_default();
                let sep = if desc.is_empty() { "" } else { " " };
                format!("[{}{n}]{sep}{desc}", i + 1)
            }
            (None, _) if desc.is_empty() => "?".to_string(),
            (None, _) => desc,
        }
    }
}

/// The whole stack, outermost first, levels joined by ` :: ` as in ll.sisyphus' lines.
pub fn tasks_label(tasks: &[Task]) -> String {
    tasks
        .iter()
        .map(Task::label)
        .collect::<Vec<_>>()
        .join(" :: ")
}

/// One record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Record {
    /// A log line with its tags and the task stack at the time.
    Log {
        #[serde(default)]
        tags: Vec<String>,
        #[serde(default)]
        tasks: Vec<Task>,
        text: String,
    },
    /// The run's result: status and one-line summary.
    Result {
        status: Status,
        #[serde(default)]
        summary: Option<String>,
    },
    /// New user data for the run.
    Userdata { value: serde_json::Value },
}

#[derive(Serialize)]
struct Out<'a> {
    v: u32,
    #[serde(flatten)]
    record: &'a Record,
}

#[derive(Deserialize)]
struct In {
    v: u32,
    #[serde(flatten)]
    record: serde_json::Value,
}

/// Why a line is not a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("record longer than {MAX_LINE} bytes ({0})")]
    TooLong(usize),
    #[error("record is not JSON: {0}")]
    NotJson(String),
    #[error("protocol version {0} is not spoken here (this guardian speaks {VERSION})")]
    Version(u32),
    #[error("record is not a known log, result or userdata record: {0}")]
    Shape(String),
    #[error("record exceeds a limit: {0}")]
    Limit(String),
}

/// One record as a line (with its newline).
pub fn encode(record: &Record) -> String {
    let mut line = serde_json::to_string(&Out { v: VERSION, record }).unwrap_or_else(|e| {
        format!("{{\"v\":{VERSION},\"type\":\"log\",\"text\":\"unencodable record: {e}\"}}")
    });
    line.push('\n');
    line
}

/// Parses one line (without or with its newline). Never panics. What the record carries is made
/// storable ([`text`]): NULs are replaced, and a log record whose text held one gets the tag
/// [`text::NUL_TAG`].
pub fn decode(line: &[u8]) -> Result<Record, ProtocolError> {
    if line.len() > MAX_LINE {
        return Err(ProtocolError::TooLong(line.len()));
    }
    let envelope: In =
        serde_json::from_slice(line).map_err(|e| ProtocolError::NotJson(e.to_string()))?;
    if envelope.v != VERSION {
        return Err(ProtocolError::Version(envelope.v));
    }
    let record: Record =
        serde_json::from_value(envelope.record).map_err(|e| ProtocolError::Shape(e.to_string()))?;
    check_limits(&record)?;
    Ok(cleaned(record))
}

/// The record with every string storable as PostgreSQL text.
fn cleaned(mut record: Record) -> Record {
    match &mut record {
        Record::Log { tags, tasks, text } => {
            let mut any = text::clean(text);
            for t in tags.iter_mut() {
                any |= text::clean(t);
            }
            for t in tasks.iter_mut() {
                any |= text::clean_opt(&mut t.kind) | text::clean_opt(&mut t.name);
            }
            if any {
                tags.push(text::NUL_TAG.to_string());
            }
        }
        Record::Result { summary, .. } => {
            text::clean_opt(summary);
        }
        Record::Userdata { value } => {
            text::clean_json(value);
        }
    }
    record
}

fn check_limits(record: &Record) -> Result<(), ProtocolError> {
    if let Record::Log { tags, tasks, .. } = record {
        if tags.len() > MAX_TAGS {
            return Err(ProtocolError::Limit(format!(
                "{} tags (at most {MAX_TAGS})",
                tags.len()
            )));
        }
        if let Some(t) = tags.iter().find(|t| t.len() > MAX_TAG_LEN || t.is_empty()) {
            return Err(ProtocolError::Limit(format!(
                "tag of {} bytes (1 to {MAX_TAG_LEN})",
                t.len()
            )));
        }
        if tasks.len() > MAX_TASKS {
            return Err(ProtocolError::Limit(format!(
                "{} nested tasks (at most {MAX_TASKS})",
                tasks.len()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn task(kind: &str, name: &str, index: Option<u64>, count: Option<u64>) -> Task {
        Task {
            kind: Some(kind.into()),
            name: Some(name.into()),
            index,
            count,
        }
    }

    #[test]
    fn records_round_trip() {
        let records = [
            Record::Log {
                tags: vec!["xml".into(), "warning".into()],
                tasks: vec![task("module", "sys", Some(2), Some(226))],
                text: "can't parse".into(),
            },
            Record::Result {
                status: Status::Successful,
                summary: Some("done".into()),
            },
            Record::Userdata {
                value: serde_json::json!({"last": 42}),
            },
        ];
        for r in records {
            let line = encode(&r);
            assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'));
            assert_eq!(decode(line.as_bytes()).as_ref(), Ok(&r), "{line}");
        }
    }

    #[test]
    fn task_labels_read_like_ll_sisyphus() {
        assert_eq!(
            task("module", "sys", Some(0), Some(226)).label(),
            "[1/226] module sys"
        );
        assert_eq!(task("row", "7", Some(6), None).label(), "[7] row 7");
        assert_eq!(task("child", "4711", None, None).label(), "child 4711");
        assert_eq!(Task::default().label(), "?");
        assert_eq!(
            tasks_label(&[
                task("db", "a", Some(0), Some(2)),
                task("table", "t", Some(2), Some(9))
            ]),
            "[1/2] db a :: [3/9] table t"
        );
    }

    #[test]
    fn bad_lines_are_refused_with_the_reason() {
        assert!(matches!(decode(b"hello"), Err(ProtocolError::NotJson(_))));
        assert_eq!(
            decode(br#"{"v":2,"type":"log","text":"x"}"#),
            Err(ProtocolError::Version(2))
        );
        assert!(matches!(
            decode(br#"{"v":1,"type":"shout","text":"x"}"#),
            Err(ProtocolError::Shape(_))
        ));
        assert!(matches!(
            decode(br#"{"v":1,"type":"result","status":"great"}"#),
            Err(ProtocolError::Shape(_))
        ));
        let many = format!(
            r#"{{"v":1,"type":"log","tags":[{}],"text":"x"}}"#,
            vec!["\"t\""; 33].join(",")
        );
        assert!(matches!(
            decode(many.as_bytes()),
            Err(ProtocolError::Limit(_))
        ));
        let long = vec![b' '; MAX_LINE + 1];
        assert_eq!(decode(&long), Err(ProtocolError::TooLong(MAX_LINE + 1)));
    }

    #[test]
    fn nul_in_a_record_is_replaced_and_tagged() {
        let log = decode(br#"{"v":1,"type":"log","tags":["a\u0000"],"tasks":[{"name":"t\u0000"}],"text":"x\u0000y"}"#);
        let Ok(Record::Log { tags, tasks, text }) = log else {
            panic!("not a log record: {log:?}");
        };
        assert_eq!(text, "x\u{FFFD}y");
        assert_eq!(tags, ["a\u{FFFD}", text::NUL_TAG]);
        assert_eq!(tasks[0].name.as_deref(), Some("t\u{FFFD}"));
        let result = decode(br#"{"v":1,"type":"result","status":"failed","summary":"\u0000"}"#);
        assert_eq!(
            result,
            Ok(Record::Result {
                status: Status::Failed,
                summary: Some("\u{FFFD}".into())
            })
        );
        let data = decode(br#"{"v":1,"type":"userdata","value":{"k":"\u0000"}}"#);
        assert_eq!(
            data,
            Ok(Record::Userdata {
                value: serde_json::json!({"k": "\u{FFFD}"})
            })
        );
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn json_shaped_garbage_never_panics(text in r#"\{"v":1,"type":"(log|result|userdata)"[ -~]{0,200}\}"#) {
            let _ = decode(text.as_bytes());
        }

        #[test]
        fn decoded_records_are_always_storable(text in "[\\x00-\\x7f]{0,100}") {
            let r = Record::Log { tags: vec!["t".into()], tasks: vec![], text };
            if let Ok(Record::Log { text, tags, .. }) = decode(encode(&r).as_bytes()) {
                prop_assert!(text::is_storable(&text));
                prop_assert!(tags.iter().all(|t| text::is_storable(t)));
            }
        }

        #[test]
        fn any_log_record_round_trips(
            tags in proptest::collection::vec("[a-z]{1,12}", 0..8),
            text in "\\PC{0,200}",
            index in proptest::option::of(0u64..1000),
        ) {
            let r = Record::Log { tags, tasks: vec![Task { kind: Some("k".into()), name: None, index, count: None }], text };
            prop_assert_eq!(decode(encode(&r).as_bytes()), Ok(r));
        }
    }
}
