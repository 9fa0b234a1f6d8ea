//! What a notification says: the payload of an outbox row (built in SQL by
//! `sisyphus.notification_payload`, migrations/0007) or of a standalone job SDK run (built in
//! Rust). One type for both, so both read the same wherever they are sent.
//!
//! A payload holds facts about a run only: never a channel's address or secret.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use sisyphus_model::Event;
use sisyphus_model::RunStatus;

/// The tags that route a log line to notification channels (ll.sisyphus'): each names its
/// kind of channel, `external` routes to all of them.
pub const ROUTING_TAGS: [&str; 4] = ["email", "mattermost", "sentry", "external"];

/// Whether lines with these tags go to some notification channel.
pub fn routed(tags: &[String]) -> bool {
    tags.iter().any(|t| ROUTING_TAGS.contains(&t.as_str()))
}

/// One log line as a notification shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    pub at: DateTime<Utc>,
    #[serde(default)]
    pub stream: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// The task stack, `[1/3] module sys :: [2/5] file a.txt`.
    #[serde(default)]
    pub task: Option<String>,
    pub text: String,
}

impl Line {
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }

    /// Whether the line goes to channels that listen to `tag` (the tag itself, or `external`).
    pub fn routes_to(&self, tag: &str) -> bool {
        self.has_tag(tag) || self.has_tag("external")
    }

    /// `[2026-11-25 21:04:40] {tag, tag} :: task >> text`, as in the log files.
    pub fn display(&self) -> String {
        let mut s = format!("[{}]", self.at.format("%Y-%m-%d %H:%M:%S"));
        if !self.tags.is_empty() {
            s.push_str(&format!(" {{{}}}", self.tags.join(", ")));
        }
        if let Some(task) = &self.task {
            s.push_str(&format!(" :: {task}"));
        }
        s.push_str(" >> ");
        s.push_str(&self.text);
        s
    }
}

/// The run a notification is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// None for a standalone job SDK run (it has no run in the database).
    #[serde(default)]
    pub id: Option<i64>,
    pub status: RunStatus,
    #[serde(default)]
    pub attempt: Option<i32>,
    #[serde(default)]
    pub trigger: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub slot: Option<DateTime<Utc>>,
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub signal: Option<i32>,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
}

impl RunInfo {
    /// How long it ran, if it started and ended.
    pub fn duration(&self) -> Option<std::time::Duration> {
        let d = self.finished_at? - self.started_at?;
        d.to_std().ok()
    }
}

/// A notification: an outbox row's payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Payload version (1).
    #[serde(default = "one")]
    pub v: u32,
    pub event: Event,
    /// `project/name`.
    pub job: String,
    /// Why, for events a run's status does not say (slow, too fast, overdue, recovered).
    #[serde(default)]
    pub reason: Option<String>,
    /// E-mail recipients the job's rule adds to the channel's own.
    #[serde(default)]
    pub to: Vec<String>,
    pub at: DateTime<Utc>,
    #[serde(default)]
    pub run: Option<RunInfo>,
    /// The run's last lines (at most the rule's `lines`, ll.sisyphus' maxemailerrors).
    #[serde(default)]
    pub lines: Vec<Line>,
    /// The run's lines tagged `email`, `mattermost`, `sentry` or `external`.
    #[serde(default)]
    pub tagged: Vec<Line>,
    /// ll.sisyphus' `--identifier`, shown in the subject.
    #[serde(default)]
    pub identifier: Option<String>,
}

fn one() -> u32 {
    1
}

impl Notification {
    /// The run's host, if it ran somewhere.
    pub fn host(&self) -> Option<&str> {
        self.run.as_ref().and_then(|r| r.host.as_deref())
    }

    /// The one line that says what happened: the error, the summary, or the reason.
    pub fn headline(&self) -> String {
        let run = self.run.as_ref();
        let text = match self.event {
            Event::Slow | Event::TooFast | Event::Recovered | Event::SchedulerError => {
                self.reason.clone()
            }
            _ => None,
        }
        .or_else(|| run.and_then(|r| r.error.clone()))
        .or_else(|| run.and_then(|r| r.summary.clone()))
        .or_else(|| self.reason.clone())
        .or_else(|| self.tagged.first().map(|l| l.text.clone()))
        .unwrap_or_else(|| match run {
            Some(r) => format!("run {}", r.status),
            None => self.event.to_string(),
        });
        first_line(&text, 200)
    }

    /// The lines tagged for a channel that listens to `tag` (and `external`).
    pub fn tagged_for<'a>(&'a self, tag: &'a str) -> impl Iterator<Item = &'a Line> + 'a {
        self.tagged.iter().filter(move |l| l.routes_to(tag))
    }
}

/// The first line of `text`, cut at `max` characters.
pub fn first_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    if line.chars().count() > max {
        let cut: String = line.chars().take(max).collect();
        format!("{cut}…")
    } else {
        line.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_parse_by_their_sql_names_and_refuse_others() {
        for e in Event::ALL {
            assert_eq!(e.as_str().parse::<Event>(), Ok(e));
            assert_eq!(
                serde_json::to_value(e).expect("serialise"),
                serde_json::json!(e.as_str())
            );
        }
        let err = "broken".parse::<Event>().expect_err("unknown event");
        assert!(
            err.contains("`broken`") && err.contains("too_fast"),
            "{err}"
        );
    }

    #[test]
    fn a_payload_as_sql_builds_it_reads_back() {
        let json = serde_json::json!({
            "v": 1, "event": "failed", "job": "acme/report", "reason": null, "to": [],
            "at": "2026-11-25T21:00:00.5+00:00",
            "run": {"id": 7, "status": "failed", "attempt": 1, "trigger": "schedule",
                    "host": "h1", "slot": "2026-11-25T21:00:00+00:00",
                    "started_at": "2026-11-25T21:00:00+00:00",
                    "finished_at": "2026-11-25T21:00:02.25+00:00", "exit_code": 1,
                    "signal": null, "summary": null, "error": "boom\nsecond line"},
            "lines": [{"at": "2026-11-25T21:00:01+00:00", "stream": "sdk",
                       "tags": ["email"], "task": "[1/2] file a", "text": "bad"}],
            "tagged": []
        });
        let n: Notification = serde_json::from_value(json).expect("payload");
        assert_eq!(n.event, Event::Failed);
        assert_eq!(n.headline(), "boom");
        let run = n.run.as_ref().expect("run");
        assert_eq!(run.duration(), Some(std::time::Duration::from_millis(2250)));
        assert_eq!(
            n.lines[0].display(),
            "[2026-11-25 21:00:01] {email} :: [1/2] file a >> bad"
        );
    }
}
