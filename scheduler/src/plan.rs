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
//! Every slot not run becomes a `missed` run, so history shows the gap (invariant 3).
//!
//! Time arithmetic is checked: a job whose stored values put a slot, a due time or a deadline
//! out of the range of timestamps gets a [`PlanError`] (the tick marks it and goes on), never a
//! panic (invariant 15).

use std::time::Duration;

use chrono::{DateTime, Utc};
use sisyphus_client::db::jobs::{CorruptJob, JobRow};
use sisyphus_client::schedule::{jitter_offset, Schedule};
use sisyphus_client::{Catchup, JobId, JobRef, RunStatus};

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

/// A live host that takes new runs.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Host {
    pub name: String,
    pub pools: Vec<String>,
}

/// A run to insert.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRun {
    pub job: JobId,
    pub slot: DateTime<Utc>,
    pub scheduled_for: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub target_host: Option<String>,
    pub status: RunStatus,
    pub error: Option<String>,
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

/// Plans one due job at `now`.
pub fn plan(
    job: &JobRow,
    now: DateTime<Utc>,
    hosts: &[Host],
    settings: &PlanSettings,
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
        if refusal.is_none() {
            plan.fired += 1;
        }
        push_runs(
            &mut plan.runs,
            job.id,
            slot,
            due,
            deadline,
            refusal,
            &targets,
        );
        slots += 1;
        // An interval job's next slot is measured from the end of its run; when the slot is
        // missed there is no run to end, so the interval counts from now.
        if let (Some(Schedule::Interval(every)), Some(last)) = (&spec.schedule, plan.runs.last()) {
            if last.status == RunStatus::Missed {
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
fn targets(target: &sisyphus_client::Target, hosts: &[Host]) -> Vec<Option<String>> {
    if !target.all {
        return vec![None];
    }
    hosts
        .iter()
        .filter(|h| target.pool.as_ref().is_none_or(|p| h.pools.contains(p)))
        .map(|h| Some(h.name.clone()))
        .collect()
}

fn push_runs(
    runs: &mut Vec<PlannedRun>,
    job: JobId,
    slot: DateTime<Utc>,
    due: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    refusal: Option<String>,
    targets: &[Option<String>],
) {
    let status = if refusal.is_some() {
        RunStatus::Missed
    } else {
        RunStatus::Pending
    };
    // An `all` job with no live host in its pool still records its (missed) slot, once.
    let nobody = [None];
    let targets = if targets.is_empty() {
        &nobody[..]
    } else {
        targets
    };
    for host in targets {
        runs.push(PlannedRun {
            job,
            slot,
            scheduled_for: due,
            expires_at,
            target_host: host.clone(),
            status,
            error: refusal.clone(),
        });
    }
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

fn human(d: Duration) -> String {
    sisyphus_client::schedule::format_duration(d)
}
