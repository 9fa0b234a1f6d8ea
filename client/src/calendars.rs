//! Calendars as people use them (`sisyctl calendar set|ls|show|rm`, `cron --calendar`,
//! `job next`), and the check `apply` makes of a job's `skip_on` and `only_on`: every name a
//! calendar, and together not excluding every slot of the next
//! [`HORIZON_YEARS`](crate::calendar::HORIZON_YEARS) years.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use sisyphus_db::PgConnection;

use crate::calendar::{Calendar, CalendarFormat, CalendarSet, HORIZON_YEARS};
use crate::db::calendars::{self as db, CalendarRow};
use crate::db::jobs;
use crate::spec::{FieldProblem, InvalidJob, JobSpec};
use crate::{Client, Error, JobRef, Result};

/// One upcoming slot of a job: when, and the calendar that excludes it (the scheduler records
/// such a slot as a `skipped` run).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UpcomingSlot {
    pub at: DateTime<Utc>,
    /// Why the slot is skipped: `None` when it runs.
    pub skipped: Option<String>,
    /// The excluding calendar's name.
    pub calendar: Option<String>,
}

impl Client {
    /// Sets (creates or replaces) a calendar read from `source` (admins only); whether it was
    /// new. Slots already materialised keep their runs; the scheduler uses the new calendar
    /// from its next look at them.
    pub async fn set_calendar(
        &self,
        calendar: &Calendar,
        format: CalendarFormat,
        source: &str,
    ) -> Result<bool> {
        db::set(self.pool(), calendar, format, source).await
    }

    /// Removes a calendar (admins only); whether there was one. Refused, naming them, while jobs
    /// name it in `skip_on` or `only_on`.
    pub async fn remove_calendar(&self, name: &str) -> Result<bool> {
        db::remove(self.pool(), name).await
    }

    /// Every calendar, by name.
    pub async fn calendars(&self) -> Result<Vec<CalendarRow>> {
        db::list(self.pool(), None).await
    }

    /// One calendar with the file it was set from.
    pub async fn calendar(&self, name: &str) -> Result<(CalendarRow, String)> {
        let names = [name.to_string()];
        let row = db::list(self.pool(), Some(&names))
            .await?
            .pop()
            .ok_or_else(|| Error::BadInput(format!("calendar `{name}` does not exist")))?;
        let source = db::source(self.pool(), name).await?.unwrap_or_default();
        Ok((row, source))
    }

    /// The calendars named, resolved; an unknown name is bad input naming `key` and the name.
    pub async fn calendar_set(
        &self,
        skip_on: &[String],
        only_on: &[String],
        key: &str,
    ) -> Result<CalendarSet> {
        let mut conn = self.pool().acquire().await?;
        resolve(&mut conn, skip_on, only_on)
            .await?
            .map_err(|(field, name)| {
                let field = if key.is_empty() { field } else { key };
                Error::BadInput(format!("{field}: unknown calendar `{name}`"))
            })
    }

    /// A job's next `count` slots from its next one, each with the calendar that excludes it
    /// (an interval job: its next slot, if known).
    pub async fn upcoming_slots(&self, job: &JobRef, count: usize) -> Result<Vec<UpcomingSlot>> {
        let mut conn = self.pool().acquire().await?;
        let row = jobs::find(&mut conn, job)
            .await?
            .ok_or_else(|| Error::NoSuchJob(job.clone()))?;
        let spec = row.to_spec().map_err(|e| Error::Refused(e.to_string()))?;
        let set = resolve(&mut conn, &spec.skip_on, &spec.only_on)
            .await?
            .map_err(|(field, name)| {
                Error::Refused(format!("{job}: {field} names unknown calendar `{name}`"))
            })?;
        let times = self.next_fire_times(job, count).await?;
        Ok(times.into_iter().map(|at| upcoming(&set, at)).collect())
    }
}

/// A slot with its exclusion, if any.
pub fn upcoming(set: &CalendarSet, at: DateTime<Utc>) -> UpcomingSlot {
    let exclusion = set.excluded_by(at);
    UpcomingSlot {
        at,
        skipped: exclusion.as_ref().map(|e| e.to_string()),
        calendar: exclusion.map(|e| e.calendar().to_string()),
    }
}

/// Resolves names against the stored calendars: the set, or the first unknown name with its key.
async fn resolve(
    conn: &mut PgConnection,
    skip_on: &[String],
    only_on: &[String],
) -> Result<std::result::Result<CalendarSet, (&'static str, String)>> {
    let names: Vec<String> = skip_on.iter().chain(only_on).cloned().collect();
    if names.is_empty() {
        return Ok(Ok(CalendarSet::default()));
    }
    let rows = db::list(&mut *conn, Some(&names)).await?;
    let mut found: BTreeMap<String, Arc<Calendar>> = BTreeMap::new();
    for row in rows {
        let calendar = row.to_calendar().map_err(Error::Refused)?;
        found.insert(row.name.clone(), Arc::new(calendar));
    }
    Ok(
        CalendarSet::resolve(skip_on, only_on, |n| found.get(n).cloned())
            .map_err(|(key, name)| (key, name.to_string())),
    )
}

/// `apply`'s check of the specs' calendars, before anything is written: each name must be a
/// calendar, and a scheduled job must keep at least one slot in the next
/// [`HORIZON_YEARS`] years (up to its `end`). Every problem of every job is reported.
pub(crate) async fn check_specs(
    conn: &mut PgConnection,
    specs: &[JobSpec],
    now: DateTime<Utc>,
) -> Result<()> {
    let mut invalid = Vec::new();
    for spec in specs {
        if spec.skip_on.is_empty() && spec.only_on.is_empty() {
            continue;
        }
        let problem = match resolve(conn, &spec.skip_on, &spec.only_on).await? {
            Err((field, name)) => Some(FieldProblem {
                field,
                problem: format!(
                    "unknown calendar `{name}`; define it with `sisyctl calendar set {name} FILE`"
                ),
            }),
            Ok(set) => excludes_everything(spec, &set, now),
        };
        if let Some(p) = problem {
            invalid.push(InvalidJob {
                job: spec.job.to_string(),
                problems: vec![p],
            });
        }
    }
    if invalid.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid(invalid))
    }
}

/// The problem of a job whose calendars leave none of its slots in the horizon, if so.
fn excludes_everything(
    spec: &JobSpec,
    set: &CalendarSet,
    now: DateTime<Utc>,
) -> Option<FieldProblem> {
    let schedule = spec.schedule.as_ref()?;
    let from = spec.start.map_or(now, |s| s.max(now));
    let horizon = from + Duration::days(HORIZON_YEARS * 366);
    let until = spec.end.map_or(horizon, |e| e.min(horizon));
    let before = from - Duration::microseconds(1);
    if set
        .next_slot(schedule, spec.timezone, before, until)
        .is_some()
    {
        return None;
    }
    let field = if spec.only_on.is_empty() {
        "skip_on"
    } else {
        "only_on"
    };
    Some(FieldProblem {
        field,
        problem: format!(
            "skip_on {:?} and only_on {:?} together exclude every slot of the schedule `{}` from {} to {}; the job would never run",
            spec.skip_on,
            spec.only_on,
            schedule.describe(),
            from.format("%Y-%m-%d"),
            until.format("%Y-%m-%d"),
        ),
    })
}
