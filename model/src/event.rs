//! Why a notification exists: the values of the PostgreSQL enum `sisyphus.notify_event`. Rules
//! (in [`crate::notifications`]) name them, the outbox stores them, and the senders in
//! `sisyphus-notify` read them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a notification exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Failed,
    Timeout,
    Lost,
    Missed,
    Terminated,
    /// The first good run after failures.
    Recovered,
    /// A run still going after its job's `warn_after`.
    Slow,
    /// A good run that ended sooner than its job's `min_duration`.
    TooFast,
    /// Log lines tagged `email`, `mattermost`, `sentry` or `external`.
    Tagged,
    /// The scheduler could not plan or finish the job's runs (its values, changed behind
    /// validation's back, do not compute) and leaves it alone until it changes.
    SchedulerError,
}

impl Event {
    pub const ALL: [Event; 10] = [
        Event::Failed,
        Event::Timeout,
        Event::Lost,
        Event::Missed,
        Event::Terminated,
        Event::Recovered,
        Event::Slow,
        Event::TooFast,
        Event::Tagged,
        Event::SchedulerError,
    ];

    /// What a rule listens for when it names no events: everything but `terminated` (an operator
    /// did that, and knows).
    pub const DEFAULT: [Event; 9] = [
        Event::Failed,
        Event::Timeout,
        Event::Lost,
        Event::Missed,
        Event::Recovered,
        Event::Slow,
        Event::TooFast,
        Event::Tagged,
        Event::SchedulerError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Event::Failed => "failed",
            Event::Timeout => "timeout",
            Event::Lost => "lost",
            Event::Missed => "missed",
            Event::Terminated => "terminated",
            Event::Recovered => "recovered",
            Event::Slow => "slow",
            Event::TooFast => "too_fast",
            Event::Tagged => "tagged",
            Event::SchedulerError => "scheduler_error",
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Event {
    type Err = String;
    fn from_str(s: &str) -> Result<Event, String> {
        Event::ALL
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Event::ALL.iter().map(|e| e.as_str()).collect();
                format!("unknown event `{s}` (expected one of {})", names.join(", "))
            })
    }
}
