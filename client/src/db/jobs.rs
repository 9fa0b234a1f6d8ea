//! The `sisyphus.jobs` table: reading definitions back, writing checked ones.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sqlx::postgres::types::PgInterval;
use sqlx::types::Json;
use sqlx::{PgConnection, Postgres};

use super::interval;
use crate::model::{Catchup, JobId, JobRef, Target};
use crate::notifications::Rule;
use crate::resources::Template;
use crate::schedule::{CronExpr, Schedule};
use crate::spec::{JobSpec, LogSettings, ResourceSpec};

const COLUMNS: &str = include_str!("../../../sql/jobs/columns.sql");
const BY_PROJECT: &str = include_str!("../../../sql/jobs/by_project.sql");
const UPSERT: &str = include_str!("../../../sql/jobs/upsert.sql");

/// A stored job: its definition columns and the scheduler's state.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    pub id: JobId,
    pub project: String,
    pub name: String,
    pub command: Vec<String>,
    pub shell: bool,
    pub env: Json<BTreeMap<String, String>>,
    pub workdir: Option<String>,
    pub cron: Option<Vec<String>>,
    pub every: Option<PgInterval>,
    pub at: Option<DateTime<Utc>>,
    pub timezone: String,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub iterations: Option<i32>,
    pub ttl: PgInterval,
    pub catchup: String,
    pub jitter: PgInterval,
    pub maxtime: Option<PgInterval>,
    pub retries: i32,
    pub retry_backoff: PgInterval,
    pub concurrency: i32,
    pub target_all: bool,
    pub target_pool: Option<String>,
    pub paused: bool,
    pub userdata: serde_json::Value,
    /// The next slot the scheduler will materialise; `None` when nothing is due until something
    /// changes (an interval job's run is still going, the window ended, iterations ran out).
    pub next_slot: Option<DateTime<Utc>>,
    /// Slots materialised so far (for `iterations`).
    pub fired: i32,
    pub run_as: Option<String>,
    pub keep_logs: Option<PgInterval>,
    pub compress_logs: Option<PgInterval>,
    pub compress_mode: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub lock_lease: PgInterval,
    pub lock_wait: PgInterval,
    pub outputs_expire: Option<PgInterval>,
    pub on_inputs: bool,
    pub max_health_age: Option<PgInterval>,
    pub notify: Option<Json<Vec<Rule>>>,
    pub warn_after: Option<PgInterval>,
    pub min_duration: Option<PgInterval>,
}

/// A stored row that no longer reads as a valid definition (changed by hand in SQL).
#[derive(Debug, thiserror::Error)]
#[error("stored job {job}: column `{column}`: {problem}")]
pub struct CorruptJob {
    pub job: JobRef,
    pub column: &'static str,
    pub problem: String,
}

impl JobRow {
    pub fn job_ref(&self) -> JobRef {
        JobRef::new(&self.project, &self.name)
    }

    fn corrupt(&self, column: &'static str, problem: impl ToString) -> CorruptJob {
        CorruptJob {
            job: self.job_ref(),
            column,
            problem: problem.to_string(),
        }
    }

    fn duration(&self, column: &'static str, i: &PgInterval) -> Result<Duration, CorruptJob> {
        interval::to_duration(i).map_err(|p| self.corrupt(column, p))
    }

    pub fn time_zone(&self) -> Result<Tz, CorruptJob> {
        self.timezone
            .parse()
            .map_err(|_| self.corrupt("timezone", "unknown time zone"))
    }

    pub fn schedule(&self) -> Result<Option<Schedule>, CorruptJob> {
        if let Some(lines) = &self.cron {
            let parsed: Result<Vec<_>, _> = lines.iter().map(|l| CronExpr::parse(l)).collect();
            return parsed
                .map(|c| Some(Schedule::Cron(c)))
                .map_err(|e| self.corrupt("cron", e));
        }
        if let Some(every) = &self.every {
            return Ok(Some(Schedule::Interval(self.duration("every", every)?)));
        }
        Ok(self.at.map(Schedule::At))
    }

    /// The definition as a checked spec, to compare with a new one or to show.
    pub fn to_spec(&self) -> Result<JobSpec, CorruptJob> {
        let maxtime = self
            .maxtime
            .as_ref()
            .map(|m| self.duration("maxtime", m))
            .transpose()?;
        let logs = log_settings(
            self.keep_logs.as_ref(),
            self.compress_logs.as_ref(),
            &self.compress_mode,
        )
        .map_err(|(column, problem)| self.corrupt(column, problem))?;
        Ok(JobSpec {
            job: self.job_ref(),
            command: self.command.clone(),
            shell: self.shell,
            env: self.env.0.clone(),
            workdir: self.workdir.clone(),
            schedule: self.schedule()?,
            timezone: self.time_zone()?,
            start: self.starts_at,
            end: self.ends_at,
            iterations: self.iterations.map(|i| i.max(0) as u32),
            ttl: self.duration("ttl", &self.ttl)?,
            catchup: self
                .catchup
                .parse::<Catchup>()
                .map_err(|e| self.corrupt("catchup", e))?,
            jitter: self.duration("jitter", &self.jitter)?,
            maxtime,
            retries: self.retries.max(0) as u32,
            retry_backoff: self.duration("retry_backoff", &self.retry_backoff)?,
            concurrency: self.concurrency.max(1) as u32,
            target: Target {
                all: self.target_all,
                pool: self.target_pool.clone(),
            },
            paused: self.paused,
            userdata: self.userdata.clone(),
            run_as: self.run_as.clone(),
            logs,
            resources: self.resources()?,
            max_health_age: self
                .max_health_age
                .as_ref()
                .map(|i| self.duration("max_health_age", i))
                .transpose()?,
            notify: self.notify.as_ref().map(|n| n.0.clone()),
            warn_after: self
                .warn_after
                .as_ref()
                .map(|i| self.duration("warn_after", i))
                .transpose()?,
            min_duration: self
                .min_duration
                .as_ref()
                .map(|i| self.duration("min_duration", i))
                .transpose()?,
        })
    }

    fn resources(&self) -> Result<ResourceSpec, CorruptJob> {
        let names = |column, list: &[String]| {
            list.iter()
                .map(|n| Template::parse(n).map_err(|e| self.corrupt(column, e)))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(ResourceSpec {
            inputs: names("inputs", &self.inputs)?,
            outputs: names("outputs", &self.outputs)?,
            lease: self.duration("lock_lease", &self.lock_lease)?,
            wait: self.duration("lock_wait", &self.lock_wait)?,
            outputs_expire: self
                .outputs_expire
                .as_ref()
                .map(|i| self.duration("outputs_expire", i))
                .transpose()?,
            on_inputs: self.on_inputs,
        })
    }
}

/// The log-retention settings from their stored columns (`keep_logs`, `compress_logs`,
/// `compress_mode`); on a bad value, the column and the problem.
pub fn log_settings(
    keep: Option<&PgInterval>,
    compress_after: Option<&PgInterval>,
    mode: &str,
) -> Result<LogSettings, (&'static str, String)> {
    let duration = |column, i: Option<&PgInterval>| {
        i.map(interval::to_duration)
            .transpose()
            .map_err(|p| (column, p))
    };
    Ok(LogSettings {
        keep: duration("keep_logs", keep)?,
        compress_after: duration("compress_logs", compress_after)?,
        compression: mode.parse().map_err(|p| ("compress_mode", p))?,
    })
}

/// Jobs of the given projects (all of them, or the one named `name`).
pub async fn by_project(
    conn: &mut PgConnection,
    projects: &[String],
    name: Option<&str>,
) -> sqlx::Result<Vec<JobRow>> {
    sqlx::query_as::<Postgres, JobRow>(&format!("{COLUMNS}{BY_PROJECT}"))
        .bind(projects)
        .bind(name)
        .fetch_all(conn)
        .await
}

/// One job by name.
pub async fn find(conn: &mut PgConnection, job: &JobRef) -> sqlx::Result<Option<JobRow>> {
    Ok(
        by_project(conn, std::slice::from_ref(&job.project), Some(&job.name))
            .await?
            .pop(),
    )
}

/// Writes a checked definition, with the scheduler's next slot as the caller decided it.
pub async fn upsert(
    conn: &mut PgConnection,
    spec: &JobSpec,
    next_slot: Option<DateTime<Utc>>,
) -> sqlx::Result<JobId> {
    let (cron, every, at) = match &spec.schedule {
        Some(Schedule::Cron(lines)) => (
            Some(
                lines
                    .iter()
                    .map(|c| c.as_str().to_string())
                    .collect::<Vec<_>>(),
            ),
            None,
            None,
        ),
        Some(Schedule::Interval(d)) => (None, Some(interval::from_duration(*d)), None),
        Some(Schedule::At(t)) => (None, None, Some(*t)),
        None => (None, None, None),
    };
    sqlx::query_scalar(UPSERT)
        .bind(&spec.job.project)
        .bind(&spec.job.name)
        .bind(&spec.command)
        .bind(spec.shell)
        .bind(Json(&spec.env))
        .bind(&spec.workdir)
        .bind(cron)
        .bind(every)
        .bind(at)
        .bind(spec.timezone.name())
        .bind(spec.start)
        .bind(spec.end)
        .bind(spec.iterations.map(|i| i as i32))
        .bind(interval::from_duration(spec.ttl))
        .bind(spec.catchup.as_str())
        .bind(interval::from_duration(spec.jitter))
        .bind(spec.maxtime.map(interval::from_duration))
        .bind(spec.retries as i32)
        .bind(interval::from_duration(spec.retry_backoff))
        .bind(spec.concurrency as i32)
        .bind(spec.target.all)
        .bind(&spec.target.pool)
        .bind(&spec.userdata)
        .bind(next_slot)
        .bind(&spec.run_as)
        .bind(spec.logs.keep.map(interval::from_duration))
        .bind(spec.logs.compress_after.map(interval::from_duration))
        .bind(spec.logs.compression.as_str())
        .bind(names(&spec.resources.inputs))
        .bind(names(&spec.resources.outputs))
        .bind(interval::from_duration(spec.resources.lease))
        .bind(interval::from_duration(spec.resources.wait))
        .bind(spec.resources.outputs_expire.map(interval::from_duration))
        .bind(spec.resources.on_inputs)
        .bind(spec.max_health_age.map(interval::from_duration))
        .bind(spec.notify.as_ref().map(Json))
        .bind(spec.warn_after.map(interval::from_duration))
        .bind(spec.min_duration.map(interval::from_duration))
        .fetch_one(conn)
        .await
}

fn names(list: &[Template]) -> Vec<String> {
    list.iter().map(|t| t.as_str().to_string()).collect()
}

/// Takes back a job's runs materialised ahead of time; returns the earliest slot taken back.
pub async fn take_back_future_runs(
    conn: &mut PgConnection,
    job: JobId,
) -> sqlx::Result<Option<DateTime<Utc>>> {
    sqlx::query_scalar("SELECT sisyphus.take_back_future_runs($1)")
        .bind(job)
        .fetch_one(conn)
        .await
}

/// The first slot a job (re)defined at `now` should materialise: the schedule's first slot at or
/// after `now` (or after its start), unless the window has ended or the iterations ran out.
pub fn first_slot(spec: &JobSpec, now: DateTime<Utc>, fired: i32) -> Option<DateTime<Utc>> {
    if spec.iterations.is_some_and(|n| fired >= n as i32) {
        return None;
    }
    let from = spec.start.map_or(now, |s| s.max(now));
    let slot = spec
        .schedule
        .as_ref()?
        .first_at_or_after(from, spec.timezone)?;
    match spec.end {
        Some(end) if slot > end => None,
        _ => Some(slot),
    }
}
