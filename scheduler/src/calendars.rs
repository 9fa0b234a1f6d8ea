//! The scheduler's copy of the calendars (migrations/0017), kept between ticks.
//!
//! A tick whose due jobs name calendars reads one row, the calendars' version (bumped by every
//! change of `sisyphus.calendars`), and reads the calendars again only when it moved; a tick
//! whose due jobs name none reads nothing. So calendars add no cost per defined job or per
//! calendar to a tick (invariant `tick-cost-by-due-jobs`). A change of a calendar reaches the
//! slots materialised after it; runs already written stay as they are.

use std::collections::HashMap;
use std::sync::Arc;

use sisyphus_db::calendars as db;
use sisyphus_db::jobs::JobRow;
use sisyphus_db::{PgConnection, Result};
use sisyphus_model::calendar::{Calendar, CalendarSet};

/// The calendars as of a version: each one evaluable, or why it is not.
#[derive(Debug, Default)]
pub struct Calendars {
    version: Option<i64>,
    by_name: HashMap<String, std::result::Result<Arc<Calendar>, String>>,
    /// How often they were read (for tests and metrics).
    loads: u64,
}

impl Calendars {
    /// Reads the calendars again if their version moved since the last read.
    pub async fn refresh(&mut self, conn: &mut PgConnection) -> Result<()> {
        let version = db::version(&mut *conn).await?;
        if self.version == Some(version) {
            return Ok(());
        }
        self.by_name = db::all(&mut *conn).await?.into_iter().collect();
        self.version = Some(version);
        self.loads += 1;
        Ok(())
    }

    /// How many times the calendars were read.
    pub fn loads(&self) -> u64 {
        self.loads
    }

    /// Whether a job names any calendar.
    pub fn used_by(job: &JobRow) -> bool {
        !job.skip_on.is_empty() || !job.only_on.is_empty()
    }

    /// A job's calendars, or why they cannot be had (a calendar gone or unreadable): the job is
    /// then marked with a scheduler error, not planned without them.
    pub fn set_for(&self, job: &JobRow) -> std::result::Result<CalendarSet, String> {
        if !Self::used_by(job) {
            return Ok(CalendarSet::default());
        }
        let mut problem = None;
        let set = CalendarSet::resolve(&job.skip_on, &job.only_on, |name| {
            match self.by_name.get(name) {
                Some(Ok(c)) => Some(c.clone()),
                Some(Err(e)) => {
                    problem.get_or_insert_with(|| e.clone());
                    None
                }
                None => None,
            }
        });
        match (set, problem) {
            (Ok(set), _) => Ok(set),
            (Err(_), Some(p)) => Err(p),
            (Err((key, name)), None) => Err(format!(
                "{key} names calendar `{name}`, which does not exist"
            )),
        }
    }
}
