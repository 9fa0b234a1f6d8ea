//! A zone's clock changes (DST transitions), found from its UTC offsets.
//!
//! `chrono-tz` answers "what is the offset at this instant" but does not list transitions, so
//! they are found by probing the offset every [`PROBE_STEP`] and bisecting where it changes. A
//! transition followed by another one within less than a probe step would go unnoticed; in the
//! tz database since 1970 no two transitions of a zone are closer than a week (checked over every
//! zone with Python's `zoneinfo`, hourly probes 1970–2040: the closest pair is 167 hours apart,
//! Brazil in October 2000), so a 12-hour step misses none.

use chrono::{DateTime, Duration, Offset, TimeZone, Utc};
use chrono_tz::Tz;

/// How far apart the offset is probed when looking for a transition.
pub const PROBE_STEP: Duration = Duration::hours(12);

/// One change of a zone's UTC offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The first instant with the new offset.
    pub at: DateTime<Utc>,
    /// The offset before `at`.
    pub before: Duration,
    /// The offset from `at` on.
    pub after: Duration,
}

impl Transition {
    /// Clocks go forward (spring): local times between the old and the new reading do not exist.
    pub fn is_gap(&self) -> bool {
        self.after > self.before
    }

    /// How far the clocks move (positive for a gap, negative for a fold).
    pub fn shift(&self) -> Duration {
        self.after - self.before
    }
}

/// The UTC offset of `tz` at `at`.
pub fn offset_at(tz: Tz, at: DateTime<Utc>) -> Duration {
    let seconds = tz
        .offset_from_utc_datetime(&at.naive_utc())
        .fix()
        .local_minus_utc();
    Duration::seconds(i64::from(seconds))
}

/// The first transition of `tz` in `(after, until]`, if any.
pub fn next_transition(tz: Tz, after: DateTime<Utc>, until: DateTime<Utc>) -> Option<Transition> {
    let before = offset_at(tz, after);
    let mut lo = after;
    while lo < until {
        let hi = lo
            .checked_add_signed(PROBE_STEP)
            .map_or(until, |h| h.min(until));
        if offset_at(tz, hi) != before {
            let at = first_change(tz, lo, hi, before);
            return Some(Transition {
                at,
                before,
                after: offset_at(tz, at),
            });
        }
        lo = hi;
    }
    None
}

/// Every transition of `tz` in `(after, until]`, in order.
pub fn transitions(tz: Tz, after: DateTime<Utc>, until: DateTime<Utc>) -> Vec<Transition> {
    let mut out = Vec::new();
    let mut from = after;
    while let Some(t) = next_transition(tz, from, until) {
        out.push(t);
        from = t.at;
    }
    out
}

/// The first instant in `(lo, hi]` whose offset is not `before`, knowing that `lo` has `before`
/// and `hi` does not. Transitions fall on whole seconds, and so does the answer.
fn first_change(
    tz: Tz,
    mut lo: DateTime<Utc>,
    mut hi: DateTime<Utc>,
    before: Duration,
) -> DateTime<Utc> {
    while hi - lo > Duration::seconds(1) {
        let mid = lo + (hi - lo) / 2;
        if offset_at(tz, mid) == before {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let whole = hi - Duration::nanoseconds(i64::from(hi.timestamp_subsec_nanos()));
    if whole > lo && offset_at(tz, whole) != before {
        whole
    } else {
        hi
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn finds_the_transitions_of_a_year() {
        let tz: Tz = "Europe/Amsterdam".parse().expect("zone");
        let found = transitions(tz, t("2026-01-01T00:00:00Z"), t("2027-01-01T00:00:00Z"));
        let at: Vec<_> = found.iter().map(|x| x.at).collect();
        assert_eq!(at, [t("2026-03-29T01:00:00Z"), t("2026-10-25T01:00:00Z")]);
        assert!(found[0].is_gap() && !found[1].is_gap());
        assert_eq!(found[0].shift(), Duration::hours(1));
        let utc: Tz = "UTC".parse().expect("zone");
        assert!(transitions(utc, t("2026-01-01T00:00:00Z"), t("2027-01-01T00:00:00Z")).is_empty());
    }

    #[test]
    fn a_transition_at_the_window_end_is_found_and_one_at_its_start_is_not() {
        let tz: Tz = "Australia/Lord_Howe".parse().expect("zone");
        let at = t("2026-10-03T15:30:00Z");
        let found = next_transition(tz, at - Duration::seconds(1), at).expect("found");
        assert_eq!(found.at, at);
        assert_eq!(found.shift(), Duration::minutes(30));
        assert_eq!(next_transition(tz, at, at + Duration::days(30)), None);
    }
}
