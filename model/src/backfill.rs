//! Backfill: the past slots of a job's schedule in a range, computed by the same cron evaluator
//! as the scheduler's ([`crate::schedule`]), and what a backfill found for each.
//!
//! The range is half-open, `[from, to)`: three days from midnight to midnight are exactly 72
//! hourly slots. Only the job's own slots count: those of its schedule inside its window
//! (`start`, `end`). The database records the slots and makes runs of them
//! (`sisyphus.backfill`, migrations/0016_overlap_backfill.sql); this module only counts them.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::schedule::Schedule;
use crate::spec::JobSpec;

/// How many slots one backfill may cover unless it says otherwise (`--max`).
pub const DEFAULT_MAX_SLOTS: u32 = 10_000;
/// The most `--max` may allow.
pub const MAX_SLOTS: u32 = 1_000_000;

/// Why a job's slots in a range cannot be backfilled. Each is the caller's bad input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackfillError {
    #[error("--from {from} is not before --to {to}: the range [from, to) is empty")]
    EmptyRange {
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    },
    #[error("--max {0} is not within 1 to 1000000")]
    BadMax(u32),
    #[error("job {job} {why}: it has no clock slots to backfill")]
    NoSlots { job: String, why: &'static str },
    #[error(
        "the range holds more than {max} slots of {job} (the first beyond: {beyond}); narrow it, \
         or allow more with --max"
    )]
    TooMany {
        job: String,
        max: u32,
        beyond: DateTime<Utc>,
    },
}

/// The job's slots in `[from, to)`, oldest first: at most `max`, or [`BackfillError::TooMany`]
/// (counting stops at the first slot beyond `max`, so a huge range costs no more than that).
pub fn slots(
    spec: &JobSpec,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    max: u32,
) -> Result<Vec<DateTime<Utc>>, BackfillError> {
    if from >= to {
        return Err(BackfillError::EmptyRange { from, to });
    }
    if max == 0 || max > MAX_SLOTS {
        return Err(BackfillError::BadMax(max));
    }
    let no_slots = |why| BackfillError::NoSlots {
        job: spec.job.to_string(),
        why,
    };
    let schedule = match &spec.schedule {
        None => return Err(no_slots("runs only when asked")),
        Some(Schedule::Interval(_)) => {
            return Err(no_slots(
                "runs at an interval after the previous run ends (`interval`)",
            ))
        }
        Some(s) => s,
    };
    let start = spec.start.map_or(from, |s| s.max(from));
    let in_range = |t: DateTime<Utc>| t < to && spec.end.is_none_or(|end| t <= end);
    let mut out = Vec::new();
    let mut next = schedule.first_at_or_after(start, spec.timezone);
    while let Some(slot) = next.filter(|t| in_range(*t)) {
        if out.len() == max as usize {
            return Err(BackfillError::TooMany {
                job: spec.job.to_string(),
                max,
                beyond: slot,
            });
        }
        out.push(slot);
        next = schedule.next_after(slot, spec.timezone);
    }
    Ok(out)
}

crate::run::text_enum!(
    /// What a backfill found for one slot (`sisyphus.backfill`'s `state`).
    BackfillState, "backfill state" {
        /// It had no good run and none in progress: queued now (with `--dry-run`: would be).
        New = "new",
        /// An earlier backfill queued it; its run is not made yet.
        Waiting = "waiting",
        /// A run of it is pending, running or suspended.
        Active = "active",
        /// A run of it ended successful or uneventful.
        Done = "done",
    }
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::JobDefinition;
    use chrono::TimeZone;

    fn at(d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, d, h, 0, 0)
            .single()
            .expect("in range")
    }

    fn hourly() -> JobSpec {
        JobDefinition::new("P", "hourly", ["true"])
            .cron("0 * * * *")
            .validate()
            .expect("valid")
    }

    #[test]
    fn three_days_of_an_hourly_job_are_72_slots_from_inclusive_to_exclusive() {
        let s = slots(&hourly(), at(1, 0), at(4, 0), DEFAULT_MAX_SLOTS).expect("slots");
        assert_eq!(s.len(), 72);
        assert_eq!(s.first(), Some(&at(1, 0)));
        assert_eq!(s.last(), Some(&at(3, 23)));
    }

    #[test]
    fn more_than_max_is_refused_naming_the_first_slot_beyond() {
        let e = slots(&hourly(), at(1, 0), at(4, 0), 10).expect_err("too many");
        assert_eq!(
            e,
            BackfillError::TooMany {
                job: "P/hourly".into(),
                max: 10,
                beyond: at(1, 10)
            }
        );
        assert_eq!(
            slots(&hourly(), at(1, 0), at(1, 10), 10).map(|s| s.len()),
            Ok(10)
        );
    }

    #[test]
    fn a_reversed_or_empty_range_and_slotless_jobs_are_refused() {
        assert!(matches!(
            slots(&hourly(), at(2, 0), at(1, 0), 10),
            Err(BackfillError::EmptyRange { .. })
        ));
        assert!(matches!(
            slots(&hourly(), at(2, 0), at(2, 0), 10),
            Err(BackfillError::EmptyRange { .. })
        ));
        let manual = JobDefinition::new("P", "m", ["true"])
            .validate()
            .expect("valid");
        assert!(matches!(
            slots(&manual, at(1, 0), at(2, 0), 10),
            Err(BackfillError::NoSlots { .. })
        ));
        let interval = JobDefinition::new("P", "i", ["true"])
            .interval("5m")
            .validate()
            .expect("valid");
        assert!(matches!(
            slots(&interval, at(1, 0), at(2, 0), 10),
            Err(BackfillError::NoSlots { .. })
        ));
    }

    #[test]
    fn only_slots_inside_the_jobs_window_count() {
        let def = JobDefinition {
            start: Some("2026-03-01T06:00:00Z".into()),
            end: Some("2026-03-01T08:00:00Z".into()),
            ..JobDefinition::new("P", "w", ["true"]).cron("0 * * * *")
        };
        let spec = def.validate().expect("valid");
        let s = slots(&spec, at(1, 0), at(2, 0), 100).expect("slots");
        assert_eq!(s, vec![at(1, 6), at(1, 7), at(1, 8)]);
    }
}
