//! Slot planning: which runs one due job gets in this tick, and where its schedule goes next.
//!
//! A pure function of the stored job, the clock and the live hosts, so that every rule (window,
//! iterations, TTL, catch-up policy, jitter, fan-out) is testable without a database or a clock.
//!
//! The rules, for a slot `s` whose due time is `d = s + jitter offset`:
//! - `d` still in the future (inside the look-ahead): a pending run, on time;
//! - `d` passed (the scheduler was down, the job was paused, or it just took over):
//!   - `catchup = all`: pending if `d + ttl` has not passed, else missed;
//!   - `catchup = latest`: pending only for the newest passed slot (and inside its TTL);
//!   - `catchup = none`: pending only if no later than `late_after` (a takeover's hiccup, not an
//!     outage), else missed.
//!
//! Every slot not run becomes a `missed` run, so history shows the gap (invariant `no-late-start`).
//!
//! Calendars come first: a slot that the job's `skip_on`/`only_on` calendars exclude (evaluated
//! at the nominal slot, in each calendar's own zone) becomes one `skipped` run whose error names
//! the calendar, whatever its TTL or catch-up would have said; it does not count for
//! `iterations`. [`plan_with`] takes the job's calendars; [`plan`] is for a job without any.
//!
//! Time arithmetic is checked: a job whose stored values put a slot, a due time or a deadline
//! out of the range of timestamps gets a [`PlanError`] (the tick marks it and goes on), never a
//! panic (invariant `bad-job-isolated`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use sisyphus_db::jobs::{CorruptJob, JobRow};
use sisyphus_model::calendar::CalendarSet;
use sisyphus_model::schedule::{format_duration, jitter_offset, Schedule};
use sisyphus_model::{Catchup, JobId, JobRef, RunStatus, Target};

/// The planner's input and output types: live hosts come from, and planned runs go to, the
/// database through the tick (`sisyphus_db::scheduler`); the planner only reads and builds them.
pub use sisyphus_db::scheduler::{LiveHost as Host, PlannedRun};

/// Knobs of the planner.
#[derive(Debug, Clone)]
pub struct PlanSettings {
    /// Slots due up to this far ahead are materialised now, so guardians can start them on time.
    pub lookahead: Duration,
    /// Under `catchup = none`, a passed slot still runs if it is at most this late.
    pub late_after: Duration,
    /// At most this many slots per job per tick; a long backlog is worked off over several ticks.
    pub max_slots_per_job: usize,
}

impl Default for PlanSettings {
    fn default() -> Self {
        PlanSettings {
            lookahead: Duration::from_secs(5),
            late_after: Duration::from_secs(5),
            max_slots_per_job: 1000,
        }
    }
}

/// What one job gets in one tick.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub runs: Vec<PlannedRun>,
    /// The job's next slot after this tick (`None`: nothing until something changes).
    pub next_slot: Option<DateTime<Utc>>,
    /// Slots that became pending runs so far, for `iterations`.
    pub fired: i32,
}

/// Why one job could not be planned; the tick records it as the job's scheduler error.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A stored value does not read back as a definition.
    #[error(transparent)]
    Corrupt(#[from] CorruptJob),
    /// Adding the job's durations to a time leaves the range of timestamps.
    #[error("job {job}: {what} is out of the range of timestamps")]
    OutOfRange { job: JobRef, what: &'static str },
}

/// Plans one due job at `now` that names no calendar.
pub fn plan(
    job: &JobRow,
    now: DateTime<Utc>,
    hosts: &[Host],
    settings: &PlanSettings,
) -> Result<Plan, PlanError> {
    plan_with(job, now, hosts, settings, &CalendarSet::default())
}

/// Plans one due job at `now`, with its calendars resolved.
pub fn plan_with(
    job: &JobRow,
    now: DateTime<Utc>,
    hosts: &[Host],
    settings: &PlanSettings,
    calendars: &CalendarSet,
) -> Result<Plan, PlanError> {
    let spec = job.to_spec()?;
    let add = |t: DateTime<Utc>, d: chrono::Duration, what: &'static str| {
        t.checked_add_signed(d)
            .ok_or_else(|| PlanError::OutOfRange {
                job: job.job_ref(),
                what,
            })
    };
    let mut plan = Plan {
        runs: Vec::new(),
        next_slot: job.next_slot,
        fired: job.fired,
    };
    let Some(mut slot) = job.next_slot else {
        return Ok(plan);
    };
    let offset = chrono_duration(jitter_offset(&job.project, &job.name, Some(spec.jitter)));
    let ttl = chrono_duration(spec.ttl);
    let late_after = chrono_duration(settings.late_after);
    let horizon = add(now, chrono_duration(settings.lookahead), "the look-ahead")?;
    let targets = targets(&spec.target, hosts);
    let mut slots = 0;
    loop {
        if slot > horizon || slots >= settings.max_slots_per_job {
            plan.next_slot = Some(slot);
            break;
        }
        if spec.end.is_some_and(|end| slot > end)
            || spec.iterations.is_some_and(|n| plan.fired >= n as i32)
        {
            plan.next_slot = None;
            break;
        }
        let mut next = spec
            .schedule
            .as_ref()
            .and_then(|s| s.next_after(slot, spec.timezone));
        let due = add(slot, offset, "slot + jitter")?;
        let deadline = add(due, ttl, "slot + jitter + ttl")?;
        let refusal = if due > now {
            None
        } else if now >= deadline {
            Some(format!(
                "its TTL ({}) had passed when the scheduler reached it",
                human(spec.ttl)
            ))
        } else {
            match spec.catchup {
                Catchup::All => None,
                Catchup::Latest
                    if next.is_some_and(|n| {
                        n.checked_add_signed(offset).is_some_and(|d| d <= now)
                    }) =>
                {
                    Some("catch-up policy `latest`: a newer slot runs instead".to_string())
                }
                Catchup::Latest => None,
                Catchup::None if now - due > late_after => {
                    Some("catch-up policy `none`: the slot had passed".to_string())
                }
                Catchup::None => None,
            }
        };
        let refusal = match refusal {
            None if targets.is_empty() => Some("no live host in the job's target".to_string()),
            other => other,
        };
        let outcome = match (calendars.excluded_by(slot), refusal) {
            (Some(exclusion), _) => (RunStatus::Skipped, Some(exclusion.to_string())),
            (None, Some(refusal)) => (RunStatus::Missed, Some(refusal)),
            (None, None) => (RunStatus::Pending, None),
        };
        if outcome.0 == RunStatus::Pending {
            plan.fired += 1;
        }
        let slot_runs = SlotRuns {
            job: job.id,
            slot,
            due,
            expires_at: deadline,
        };
        slot_runs.push(&mut plan.runs, outcome, &targets);
        slots += 1;
        // An interval job's next slot is measured from the end of its run; when the slot is
        // missed or skipped there is no run to end, so the interval counts from now.
        if let (Some(Schedule::Interval(every)), Some(last)) = (&spec.schedule, plan.runs.last()) {
            if matches!(last.status, RunStatus::Missed | RunStatus::Skipped) {
                next = Some(add(now, chrono_duration(*every), "now + interval")?);
            }
        }
        match next {
            Some(n) => slot = n,
            None => {
                plan.next_slot = None;
                break;
            }
        }
    }
    Ok(plan)
}

/// The hosts an `all` job fans out to (`None` in the list: any host, for an `any` job).
fn targets(target: &Target, hosts: &[Host]) -> Vec<Option<String>> {
    if !target.all {
        return vec![None];
    }
    hosts
        .iter()
        .filter(|h| target.pool.as_ref().is_none_or(|p| h.pools.contains(p)))
        .map(|h| Some(h.name.clone()))
        .collect()
}

/// One slot's times, to become its runs.
struct SlotRuns {
    job: JobId,
    slot: DateTime<Utc>,
    due: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

impl SlotRuns {
    /// The slot's runs with `status` and its reason: one per target, but one only for a slot
    /// a calendar skipped (it is about the slot, not a host) and for an `all` job with no live
    /// host in its pool, which still records its (missed) slot.
    fn push(
        &self,
        runs: &mut Vec<PlannedRun>,
        (status, reason): (RunStatus, Option<String>),
        targets: &[Option<String>],
    ) {
        let nobody = [None];
        let targets = if targets.is_empty() || status == RunStatus::Skipped {
            &nobody[..]
        } else {
            targets
        };
        for host in targets {
            runs.push(PlannedRun {
                job: self.job,
                slot: self.slot,
                scheduled_for: self.due,
                expires_at: self.expires_at,
                target_host: host.clone(),
                status,
                error: reason.clone(),
            });
        }
    }
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

fn human(d: Duration) -> String {
    format_duration(d)
}

#[cfg(test)]
mod tests {
    //! The planner with a pinned clock: `now` is an argument, so every rule is checked at chosen
    //! instants with no database and no waiting.

    use super::*;
    use chrono::TimeZone;
    use sisyphus_db::interval;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, h, m, s)
            .single()
            .expect("in range")
    }

    const MINUTE: Duration = Duration::from_secs(60);
    const HOUR: Duration = Duration::from_secs(3600);

    /// A job that fires every minute, next due at 12:00, with a TTL of an hour, no jitter.
    fn job(catchup: &str) -> JobRow {
        JobRow {
            id: JobId(7),
            project: "p".into(),
            name: "every-minute".into(),
            command: vec!["true".into()],
            shell: false,
            env: Default::default(),
            workdir: None,
            cron: Some(vec!["* * * * *".into()]),
            every: None,
            at: None,
            timezone: "UTC".into(),
            starts_at: None,
            ends_at: None,
            iterations: None,
            ttl: interval::from_duration(HOUR),
            catchup: catchup.into(),
            jitter: interval::from_duration(Duration::ZERO),
            maxtime: None,
            retries: 0,
            retry_backoff: interval::from_duration(Duration::from_secs(10)),
            concurrency: 1,
            target_all: false,
            target_pool: None,
            paused: false,
            userdata: serde_json::Value::Object(Default::default()),
            next_slot: Some(at(12, 0, 0)),
            fired: 0,
            run_as: None,
            keep_logs: None,
            compress_logs: None,
            compress_mode: "gzip".into(),
            inputs: vec![],
            outputs: vec![],
            lock_lease: interval::from_duration(5 * MINUTE),
            lock_wait: interval::from_duration(15 * MINUTE),
            outputs_expire: None,
            on_inputs: false,
            max_health_age: None,
            notify: None,
            warn_after: None,
            min_duration: None,
            memory_max: None,
            cpu_weight: None,
            params: Default::default(),
            format: "sisyphus".into(),
            skip_on: vec![],
            only_on: vec![],
            overlap: "queue".into(),
        }
    }

    fn run(job: &JobRow, now: DateTime<Utc>) -> Plan {
        plan(job, now, &[], &PlanSettings::default()).expect("plans")
    }

    fn statuses(p: &Plan) -> Vec<RunStatus> {
        p.runs.iter().map(|r| r.status).collect()
    }

    fn slots(p: &Plan) -> Vec<DateTime<Utc>> {
        p.runs.iter().map(|r| r.slot).collect()
    }

    /// Every minute from 12:00 to 12:10, the slots passed by 12:10:30.
    fn passed() -> Vec<DateTime<Utc>> {
        (0..=10).map(|m| at(12, m, 0)).collect()
    }

    #[test]
    fn a_slot_inside_the_look_ahead_is_pending_on_time_and_the_schedule_moves_on() {
        let p = run(&job("all"), at(11, 59, 57));
        assert_eq!(slots(&p), [at(12, 0, 0)]);
        let r = &p.runs[0];
        assert_eq!(r.status, RunStatus::Pending);
        assert_eq!(
            (r.scheduled_for, r.expires_at),
            (at(12, 0, 0), at(13, 0, 0))
        );
        assert_eq!((p.next_slot, p.fired), (Some(at(12, 1, 0)), 1));
        // Further than the look-ahead (5 s): nothing yet, the schedule stays.
        let p = run(&job("all"), at(11, 59, 54));
        assert!(p.runs.is_empty());
        assert_eq!((p.next_slot, p.fired), (Some(at(12, 0, 0)), 0));
    }

    #[test]
    fn catchup_all_runs_every_passed_slot_inside_its_ttl() {
        let p = run(&job("all"), at(12, 10, 30));
        assert_eq!(slots(&p), passed());
        assert!(statuses(&p).iter().all(|s| *s == RunStatus::Pending));
        assert!(p
            .runs
            .iter()
            .all(|r| r.expires_at == r.slot + chrono::Duration::hours(1)));
        assert_eq!((p.next_slot, p.fired), (Some(at(12, 11, 0)), 11));
    }

    #[test]
    fn catchup_latest_runs_only_the_newest_passed_slot_and_records_the_others_missed() {
        let p = run(&job("latest"), at(12, 10, 30));
        assert_eq!(slots(&p), passed());
        let (last, older) = p.runs.split_last().expect("runs");
        assert_eq!(last.status, RunStatus::Pending);
        assert_eq!(last.slot, at(12, 10, 0));
        for r in older {
            assert_eq!(r.status, RunStatus::Missed, "{r:?}");
            assert!(
                r.error.as_deref().expect("a reason").contains("`latest`"),
                "{r:?}"
            );
        }
        assert_eq!((p.next_slot, p.fired), (Some(at(12, 11, 0)), 1));
    }

    #[test]
    fn catchup_none_misses_passed_slots_but_forgives_a_few_seconds() {
        let p = run(&job("none"), at(12, 10, 30));
        assert_eq!(slots(&p), passed());
        assert!(statuses(&p).iter().all(|s| *s == RunStatus::Missed));
        assert!(p.runs[0]
            .error
            .as_deref()
            .expect("a reason")
            .contains("`none`"));
        assert_eq!((p.next_slot, p.fired), (Some(at(12, 11, 0)), 0));
        // 12:10 is 3 s late at 12:10:03, inside `late_after` (5 s): a takeover's hiccup.
        let p = run(&job("none"), at(12, 10, 3));
        let (last, older) = p.runs.split_last().expect("runs");
        assert_eq!(
            (last.slot, last.status),
            (at(12, 10, 0), RunStatus::Pending)
        );
        assert!(older.iter().all(|r| r.status == RunStatus::Missed));
        assert_eq!(p.fired, 1);
    }

    #[test]
    fn slots_past_their_ttl_are_missed_whatever_the_catchup() {
        for catchup in ["all", "latest", "none"] {
            let mut j = job(catchup);
            j.ttl = interval::from_duration(5 * MINUTE);
            let p = run(&j, at(12, 10, 30));
            assert_eq!(slots(&p), passed(), "{catchup}");
            // 12:00–12:05 are due + 5 min ≤ 12:10:30: past their TTL.
            for r in &p.runs[..6] {
                assert_eq!(r.status, RunStatus::Missed, "{catchup} {r:?}");
                assert!(
                    r.error.as_deref().expect("a reason").contains("TTL"),
                    "{catchup} {r:?}"
                );
                assert_eq!(r.expires_at, r.slot + chrono::Duration::minutes(5));
            }
            // The rest is inside its TTL: pending under `all`, per policy otherwise.
            let inside = p.runs[6..]
                .iter()
                .filter(|r| r.status == RunStatus::Pending);
            let expected = match catchup {
                "all" => 5,
                "latest" => 1,
                _ => 0,
            };
            assert_eq!(inside.count(), expected, "{catchup}");
        }
    }

    #[test]
    fn jitter_is_a_stable_offset_below_the_jitter() {
        let jitter = Duration::from_secs(30);
        let mut j = job("all");
        j.jitter = interval::from_duration(jitter);
        // Two ticks at different instants, two slots each: one offset for the job.
        let p = run(&j, at(12, 1, 4));
        let q = run(&j, at(12, 1, 5));
        let offsets: Vec<chrono::Duration> = p
            .runs
            .iter()
            .chain(&q.runs)
            .map(|r| r.scheduled_for - r.slot)
            .collect();
        assert!(!offsets.is_empty());
        assert!(offsets.iter().all(|o| *o == offsets[0]), "{offsets:?}");
        let offset = offsets[0];
        assert!(offset >= chrono::Duration::zero());
        assert!(
            offset < chrono::Duration::from_std(jitter).expect("in range"),
            "{offset}"
        );
        assert_eq!(
            offset,
            chrono::Duration::from_std(jitter_offset("p", "every-minute", Some(jitter)))
                .expect("in range")
        );
        // The deadline counts from the jittered time.
        for r in &p.runs {
            assert_eq!(r.expires_at, r.scheduled_for + chrono::Duration::hours(1));
        }
        // Jobs are spread: names give different offsets.
        let spread: std::collections::BTreeSet<Duration> = (0..10)
            .map(|i| jitter_offset("p", &format!("job-{i}"), Some(jitter)))
            .collect();
        assert!(spread.len() > 5, "{spread:?}");
    }

    #[test]
    fn catchup_counts_from_the_jittered_time() {
        let mut j = job("none");
        j.jitter = interval::from_duration(Duration::from_secs(30));
        let offset = jitter_offset("p", "every-minute", Some(Duration::from_secs(30)));
        let offset = chrono::Duration::from_std(offset).expect("in range");
        assert!(
            offset > chrono::Duration::seconds(6),
            "pick a name with a larger offset"
        );
        // 6 s after the slot but before its jittered time: not late at all.
        let p = run(&j, at(12, 0, 6));
        assert_eq!(p.runs[0].status, RunStatus::Pending);
        assert_eq!(p.runs[0].scheduled_for, at(12, 0, 0) + offset);
        // 6 s after the jittered time: late beyond `late_after`, missed.
        let p = run(&j, at(12, 0, 6) + offset);
        assert_eq!(p.runs[0].status, RunStatus::Missed);
    }

    #[test]
    fn iterations_stop_the_schedule_after_n_runs() {
        let mut j = job("all");
        j.iterations = Some(3);
        let p = run(&j, at(12, 10, 30));
        assert_eq!(slots(&p), passed()[..3]);
        assert!(statuses(&p).iter().all(|s| *s == RunStatus::Pending));
        assert_eq!((p.next_slot, p.fired), (None, 3));
        // Two fired in earlier ticks: one left.
        j.fired = 2;
        let p = run(&j, at(12, 10, 30));
        assert_eq!(slots(&p), [at(12, 0, 0)]);
        assert_eq!((p.next_slot, p.fired), (None, 3));
        // All fired: nothing, and the schedule ends.
        j.fired = 3;
        let p = run(&j, at(12, 10, 30));
        assert!(p.runs.is_empty());
        assert_eq!(p.next_slot, None);
    }

    #[test]
    fn missed_slots_do_not_use_up_iterations() {
        let mut j = job("latest");
        j.iterations = Some(2);
        let p = run(&j, at(12, 10, 30));
        assert_eq!(p.runs.len(), 11);
        assert_eq!((p.next_slot, p.fired), (Some(at(12, 11, 0)), 1));
        let p = run(&Plan::advance(&j, &p), at(12, 11, 1));
        assert_eq!(slots(&p), [at(12, 11, 0)]);
        assert_eq!(statuses(&p), [RunStatus::Pending]);
        assert_eq!(p.fired, 2);
        // The second run was the last: the next tick ends the schedule without a third.
        let p = run(&Plan::advance(&j, &p), at(12, 12, 1));
        assert!(p.runs.is_empty(), "{p:?}");
        assert_eq!((p.next_slot, p.fired), (None, 2));
    }

    #[test]
    fn a_backlog_is_worked_off_in_batches() {
        let settings = PlanSettings {
            max_slots_per_job: 4,
            ..PlanSettings::default()
        };
        let p = plan(&job("all"), at(12, 10, 30), &[], &settings).expect("in range");
        assert_eq!(slots(&p), passed()[..4]);
        assert_eq!(p.next_slot, Some(at(12, 4, 0)));
    }

    #[test]
    fn an_all_job_fans_out_to_its_pool_and_records_a_miss_without_hosts() {
        let mut j = job("all");
        j.target_all = true;
        j.target_pool = Some("etl".into());
        let host = |name: &str, pools: &[&str]| Host {
            name: name.into(),
            pools: pools.iter().map(|p| p.to_string()).collect(),
        };
        let hosts = [
            host("a", &["etl"]),
            host("b", &["web"]),
            host("c", &["etl", "web"]),
        ];
        let p = plan(&j, at(11, 59, 58), &hosts, &PlanSettings::default()).expect("in range");
        let targets: Vec<_> = p.runs.iter().map(|r| r.target_host.as_deref()).collect();
        assert_eq!(targets, [Some("a"), Some("c")]);
        assert_eq!(p.fired, 1);
        let p = plan(&j, at(11, 59, 58), &hosts[1..2], &PlanSettings::default()).expect("in range");
        assert_eq!(statuses(&p), [RunStatus::Missed]);
        assert_eq!(p.runs[0].target_host, None);
        assert!(p.runs[0]
            .error
            .as_deref()
            .expect("a reason")
            .contains("no live host"));
        assert_eq!(p.fired, 0);
    }

    #[test]
    fn absurd_stored_values_are_errors_not_panics() {
        // Past validation's 100 years: the row does not read back.
        let mut j = job("all");
        j.ttl = interval::from_duration(Duration::MAX);
        let e = plan(&j, at(12, 10, 30), &[], &PlanSettings::default()).expect_err("refused");
        assert!(matches!(e, PlanError::Corrupt(_)), "{e}");
        assert!(e.to_string().contains("`ttl`"), "{e}");
        // A valid TTL from a slot near the end of chrono's time: the deadline overflows.
        let mut j = job("all");
        j.ttl = interval::from_duration(Duration::from_secs(99 * 365 * 86_400));
        let end = Utc
            .with_ymd_and_hms(262_100, 1, 1, 0, 0, 0)
            .single()
            .expect("in range");
        j.next_slot = Some(end);
        let e = plan(&j, end, &[], &PlanSettings::default()).expect_err("refused");
        assert!(matches!(e, PlanError::OutOfRange { .. }), "{e}");
    }

    #[test]
    fn slots_a_calendar_excludes_are_skipped_naming_it_and_do_not_count() {
        use sisyphus_model::calendar::{Calendar, CalendarFormat};
        use std::sync::Arc;
        // 12:03 to 12:06 UTC is a maintenance window.
        let window = Calendar::parse(
            "window",
            CalendarFormat::Toml,
            "zone = \"UTC\"\nranges = [{ from = 2026-11-23T12:03:00, to = 2026-11-23T12:06:00 }]\n",
            None,
        )
        .expect("reads");
        let set = CalendarSet::new(vec![Arc::new(window)], vec![]);
        let mut j = job("all");
        j.iterations = Some(20);
        j.ttl = interval::from_duration(2 * MINUTE);
        let p = plan_with(&j, at(12, 10, 30), &[], &PlanSettings::default(), &set).expect("plans");
        assert_eq!(slots(&p), passed());
        for r in &p.runs {
            let minute = (r.slot - at(12, 0, 0)).num_minutes();
            let expected = match minute {
                3..=5 => RunStatus::Skipped,
                // Past their TTL of 2 minutes by 12:10:30.
                0..=8 => RunStatus::Missed,
                _ => RunStatus::Pending,
            };
            assert_eq!(r.status, expected, "{r:?}");
            if expected == RunStatus::Skipped {
                assert_eq!(
                    r.error.as_deref(),
                    Some("skip_on calendar `window` contains the slot")
                );
            }
        }
        // Only the pending runs count for `iterations`.
        assert_eq!(p.fired, 2);
        // An `all` job records a skipped slot once, not per host.
        j.target_all = true;
        let hosts = [
            Host {
                name: "a".into(),
                pools: vec![],
            },
            Host {
                name: "b".into(),
                pools: vec![],
            },
        ];
        let p = plan_with(&j, at(12, 3, 0), &hosts, &PlanSettings::default(), &set).expect("plans");
        let at_3: Vec<_> = p.runs.iter().filter(|r| r.slot == at(12, 3, 0)).collect();
        assert_eq!(at_3.len(), 1);
        assert_eq!(
            (at_3[0].status, at_3[0].target_host.as_deref()),
            (RunStatus::Skipped, None)
        );
    }

    impl Plan {
        /// The job as the tick leaves it after writing this plan.
        fn advance(job: &JobRow, plan: &Plan) -> JobRow {
            let mut j = job.clone();
            j.next_slot = plan.next_slot;
            j.fired = plan.fired;
            j
        }
    }
}
