//! Who hears about what: notification rules (per job, and defaults per project) and the outbox
//! as people read it (`sisyctl notifications`).
//!
//! A rule names a channel — configured, with its secrets, only in the dispatcher — and the
//! events it listens for. Rules are checked here and stored as JSON (`jobs.notify`,
//! `project_defaults.notify`); the database turns events into outbox rows by them
//! (migrations/0007_notifications.sql).

pub use crate::event::Event;
pub use crate::run::OutboxState;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The most log lines a notification carries.
pub const MAX_LINES: u32 = 1000;
/// The default number of log lines (ll.sisyphus' `maxemailerrors`).
pub const DEFAULT_LINES: u32 = 10;

/// A rule as written in a jobs file: `{ channel = "ops-mail", on = ["failed"], to = [...] }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDefinition {
    pub channel: String,
    /// Default: every event but `terminated`.
    pub on: Option<Vec<String>>,
    /// E-mail recipients added to the channel's own.
    pub to: Option<Vec<String>>,
    /// How many of the run's last log lines to include (default 10).
    pub lines: Option<i64>,
}

/// A checked rule, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub channel: String,
    pub on: Vec<Event>,
    pub to: Vec<String>,
    pub lines: u32,
}

impl RuleDefinition {
    /// Checks the rule; the error says what is wrong with which key.
    pub fn check(&self) -> Result<Rule, String> {
        let name_ok = !self.channel.is_empty()
            && self
                .channel
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !name_ok {
            return Err(format!(
                "channel `{}`: a channel name is letters, digits, `-`, `_` and `.`",
                self.channel
            ));
        }
        let on = match &self.on {
            None => Event::DEFAULT.to_vec(),
            Some(names) if names.is_empty() => {
                return Err(format!("channel {}: `on` lists no events", self.channel))
            }
            Some(names) => names
                .iter()
                .map(|n| n.parse::<Event>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("channel {}: {e}", self.channel))?,
        };
        let to = self.to.clone().unwrap_or_default();
        if let Some(bad) = to.iter().find(|a| !looks_like_address(a)) {
            return Err(format!(
                "channel {}: `{bad}` is not an e-mail address",
                self.channel
            ));
        }
        let lines = match self.lines {
            None => DEFAULT_LINES,
            Some(n) if (0..=MAX_LINES as i64).contains(&n) => n as u32,
            Some(n) => {
                return Err(format!(
                    "channel {}: lines {n} is not between 0 and {MAX_LINES}",
                    self.channel
                ))
            }
        };
        Ok(Rule {
            channel: self.channel.clone(),
            on,
            to,
            lines,
        })
    }
}

/// `local@domain`, with no spaces or angle brackets (the dispatcher parses it fully).
fn looks_like_address(a: &str) -> bool {
    match a.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !a
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || "<>,;".contains(c))
        }
        None => false,
    }
}

/// Checks a list of rules; the first problem is the error.
pub fn check_rules(rules: &[RuleDefinition]) -> Result<Vec<Rule>, String> {
    rules.iter().map(RuleDefinition::check).collect()
}

/// A project's defaults, for jobs that set no rules of their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectDefaults {
    pub project: String,
    pub notify: Vec<Rule>,
}

/// One outbox row, as `sisyctl notifications` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxEntry {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    pub job: Option<String>,
    pub run_id: Option<i64>,
    pub event: Event,
    pub channel: String,
    pub state: OutboxState,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub next_attempt_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(channel: &str) -> RuleDefinition {
        RuleDefinition {
            channel: channel.into(),
            on: None,
            to: None,
            lines: None,
        }
    }

    #[test]
    fn a_rule_without_events_listens_for_all_but_terminated() {
        let r = rule("ops-mail").check().expect("rule");
        assert_eq!(r.on, Event::DEFAULT.to_vec());
        assert!(!r.on.contains(&Event::Terminated));
        assert_eq!(r.lines, 10);
    }

    #[test]
    fn bad_rules_name_what_is_wrong() {
        let cases = [
            (rule("has space"), "channel `has space`"),
            (
                RuleDefinition {
                    on: Some(vec!["failed".into(), "exploded".into()]),
                    ..rule("m")
                },
                "unknown event `exploded`",
            ),
            (
                RuleDefinition {
                    on: Some(vec![]),
                    ..rule("m")
                },
                "lists no events",
            ),
            (
                RuleDefinition {
                    to: Some(vec!["ops at example".into()]),
                    ..rule("m")
                },
                "`ops at example` is not an e-mail address",
            ),
            (
                RuleDefinition {
                    lines: Some(5000),
                    ..rule("m")
                },
                "lines 5000",
            ),
        ];
        for (def, want) in cases {
            let err = def.check().expect_err(want);
            assert!(err.contains(want), "{want}: {err}");
        }
    }
}
