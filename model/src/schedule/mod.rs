//! Schedules: when a job's slots fall.
//!
//! A job has at most one [`Schedule`]: cron lines (one or several), an interval measured from the
//! end of the previous run (ll.sisyphus' `nextrun`), or a one-shot instant (Sisy's `delay_until`).
//! A job without a schedule runs only when asked (`sisyctl run`, `sisyphus.run_now`).
//!
//! Slot arithmetic lives here so that the client (for `sisyctl job next` and for the first due
//! time written by `apply`) and the scheduler compute exactly the same slots.

pub mod cron;
pub mod explain;
pub mod zone;

use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

pub use self::cron::{CronError, CronExpr, DstRule};

/// When a job's slots fall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// Fires at every time any of the lines matches, on the job's wall clock.
    Cron(Vec<CronExpr>),
    /// Fires this long after the previous run ended (the first run fires at once).
    Interval(Duration),
    /// Fires once, at this instant.
    At(DateTime<Utc>),
}

impl Schedule {
    /// The first clock slot strictly after `after`. Intervals have no clock slots: their next slot
    /// depends on when the previous run ends, so this returns `None` for them.
    pub fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Cron(lines) => lines.iter().filter_map(|c| c.next_after(after, tz)).min(),
            Schedule::Interval(_) => None,
            Schedule::At(at) => (*at > after).then_some(*at),
        }
    }

    /// The first slot at or after `from`: where a schedule starts when a job is (re)defined.
    pub fn first_at_or_after(&self, from: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Interval(_) => Some(from),
            Schedule::At(at) => Some(*at),
            Schedule::Cron(_) => self.next_after(from - chrono::Duration::microseconds(1), tz),
        }
    }

    /// A short human description: the cron lines, `every 5m` or `at <time>`.
    pub fn describe(&self) -> String {
        match self {
            Schedule::Cron(lines) => lines
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(" | "),
            Schedule::Interval(d) => format!("every {}", humantime::format_duration(*d)),
            Schedule::At(t) => format!("at {}", t.to_rfc3339()),
        }
    }
}

/// A duration as people write it: `1h 30m`, `90s`, `250ms`.
pub fn format_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// The stable per-job delay of each slot for `jitter`: a hash of `project/name` modulo the jitter,
/// so a fleet of jobs on the same schedule spreads out while each job's own times stay predictable.
/// FNV-1a is used because it is fixed forever; std's hasher may change between Rust releases.
pub fn jitter_offset(project: &str, name: &str, jitter: Option<Duration>) -> Duration {
    let Some(jitter) = jitter else {
        return Duration::ZERO;
    };
    let millis = jitter.as_millis() as u64;
    if millis == 0 {
        return Duration::ZERO;
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in project
        .bytes()
        .chain(std::iter::once(b'/'))
        .chain(name.bytes())
    {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    Duration::from_millis(hash % millis)
}
