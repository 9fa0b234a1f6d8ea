//! `apply --plan`: what applying a jobs file would change, per job, writing nothing.
//!
//! The plan reads what apply reads (the stored jobs of the file's projects, the projects'
//! default rules, the database's clock) in a read-only transaction and takes apply's own
//! decisions ([`decide`], [`pruned`], `first_slot`), so the plan and the apply cannot disagree.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::client::{decide, existing_jobs, pruned, slots_from};
use crate::db::{jobs, notifications};
use crate::diff::{changed_keys, KeyChange};
use crate::notifications::ProjectDefaults;
use crate::spec::JobSpec;
use crate::{Change, Client, Result};

/// What applying would do to one job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedJob {
    pub job: String,
    pub change: Change,
    /// For an update: each key that changes, old → new.
    pub keys: Vec<KeyChange>,
    /// For an update whose stored definition no longer reads back: why (every key is then
    /// written afresh).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
    /// Whether the job's slots move (a new job, or a change of its schedule, zone, window,
    /// jitter, iterations or target): then its next fire times are shown.
    pub schedule_changes: bool,
    /// The next fire times as stored now (empty for a new job).
    pub fires_before: Vec<DateTime<Utc>>,
    /// The next fire times after the apply (empty for a removed job).
    pub fires_after: Vec<DateTime<Utc>>,
}

/// A project's default notification rules that applying would set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedProject {
    pub project: String,
    /// The stored rules (`None`: the project has none stored).
    pub old: Option<serde_json::Value>,
    pub new: serde_json::Value,
}

/// What applying a jobs file would change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// Every job of the file (unchanged ones too), then the jobs `--prune` would remove.
    pub jobs: Vec<PlannedJob>,
    /// Projects whose default rules would change.
    pub projects: Vec<PlannedProject>,
}

impl Plan {
    /// Whether applying would change anything.
    pub fn has_changes(&self) -> bool {
        !self.projects.is_empty() || self.jobs.iter().any(|j| j.change != Change::Unchanged)
    }
}

impl Client {
    /// What [`apply_with_defaults`](Client::apply_with_defaults) would do with these
    /// definitions, in a read-only transaction: per job the change, each changed key, and where
    /// the schedule changes the next `count` fire times before and after.
    pub async fn plan(
        &self,
        specs: &[JobSpec],
        defaults: &[ProjectDefaults],
        prune: bool,
        count: usize,
    ) -> Result<Plan> {
        let mut tx = self.pool().begin().await?;
        jobs::read_only(&mut tx).await?;
        let now = jobs::now(&mut *tx).await?;
        // The same refusals as `apply` (unknown calendars, no slot left): a plan never says
        // yes to what applying would refuse.
        crate::calendars::check_specs(&mut tx, specs, now).await?;
        let existing = existing_jobs(&mut tx, specs).await?;
        let mut planned = Vec::new();
        for spec in specs {
            let row = existing.get(&spec.job);
            let (change, timing_changed) = decide(spec, row);
            let mut job = PlannedJob {
                job: spec.job.to_string(),
                change,
                keys: Vec::new(),
                unreadable: None,
                schedule_changes: timing_changed && (row.is_some() || spec.schedule.is_some()),
                fires_before: Vec::new(),
                fires_after: Vec::new(),
            };
            match row {
                None => {
                    job.fires_after = slots_from(spec, jobs::first_slot(spec, now, 0), 0, count);
                }
                Some(row) if change == Change::Updated => {
                    match row.to_spec() {
                        Ok(old) => job.keys = changed_keys(&old, spec),
                        Err(e) => job.unreadable = Some(e.to_string()),
                    }
                    if timing_changed {
                        let old = row.to_spec().ok();
                        job.fires_before = old.map_or_else(Vec::new, |old| {
                            slots_from(&old, row.next_slot, row.fired, count)
                        });
                        let fired = jobs::fired(&mut *tx, row.id).await?;
                        job.fires_after =
                            slots_from(spec, jobs::first_slot(spec, now, fired), fired, count);
                    }
                }
                Some(_) => {}
            }
            planned.push(job);
        }
        if prune {
            for job in pruned(&existing, specs) {
                let row = &existing[job];
                let fires_before = row
                    .to_spec()
                    .map(|old| slots_from(&old, row.next_slot, row.fired, count))
                    .unwrap_or_default();
                planned.push(PlannedJob {
                    job: job.to_string(),
                    change: Change::Removed,
                    keys: Vec::new(),
                    unreadable: None,
                    schedule_changes: !fires_before.is_empty(),
                    fires_before,
                    fires_after: Vec::new(),
                });
            }
        }
        let projects = planned_projects(&mut tx, defaults).await?;
        tx.rollback().await?;
        Ok(Plan {
            jobs: planned,
            projects,
        })
    }
}

/// The projects whose stored default rules differ from the file's (as `set_project` writes
/// them only when they differ).
async fn planned_projects(
    conn: &mut sisyphus_db::PgConnection,
    defaults: &[ProjectDefaults],
) -> Result<Vec<PlannedProject>> {
    let names: Vec<String> = defaults.iter().map(|d| d.project.clone()).collect();
    let stored: std::collections::BTreeMap<String, serde_json::Value> =
        notifications::projects(conn, &names)
            .await?
            .into_iter()
            .collect();
    let mut out = Vec::new();
    for d in defaults {
        let new = serde_json::to_value(&d.notify)
            .map_err(|e| crate::Error::Refused(format!("project {}: {e}", d.project)))?;
        let old = stored.get(&d.project).cloned();
        if old.as_ref() != Some(&new) {
            out.push(PlannedProject {
                project: d.project.clone(),
                old,
                new,
            });
        }
    }
    Ok(out)
}
