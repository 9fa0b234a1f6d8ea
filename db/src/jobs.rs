//! The `sisyphus.jobs` table: reading definitions back, writing checked ones.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sqlx::postgres::types::PgInterval;
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor, Postgres};

use super::interval;
use crate::error::{Error, Result};
use sisyphus_model::backfill::BackfillState;
use sisyphus_model::notifications::Rule;
use sisyphus_model::params::Params;
use sisyphus_model::resources::Template;
use sisyphus_model::schedule::{CronExpr, Schedule};
use sisyphus_model::spec::{
    EnvValue, FieldProblem, InvalidJob, JobSpec, LogSettings, ResourceSpec, RunLimits, SpecFields,
    MAX_COUNT, MAX_DURATION,
};
use sisyphus_model::views::{JobHealth, JobStatus, Pause};
use sisyphus_model::{Catchup, JobId, JobRef, RunId, Target};

const UPSERT: &str = include_str!("../../sql/jobs/upsert.sql");
const TAKE_BACK: &str = include_str!("../../sql/jobs/take_back_future_runs.sql");
const BY_PROJECT_COLUMNS: &str = concat!(
    include_str!("../../sql/jobs/columns.sql"),
    include_str!("../../sql/jobs/by_project.sql")
);

/// A stored job: its definition columns and the scheduler's state.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    #[sqlx(try_from = "i64")]
    pub id: JobId,
    pub project: String,
    pub name: String,
    pub command: Vec<String>,
    pub shell: bool,
    /// Plain values as strings, secrets as references (`{"secret": "NAME"}`), never values.
    pub env: Json<BTreeMap<String, EnvValue>>,
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
    pub memory_max: Option<i64>,
    pub cpu_weight: Option<i32>,
    pub params: Json<Params>,
    /// `sisyphus` or `ll.sisyphus` (`JobFormat`).
    pub format: String,
    /// Calendars (names) whose times the job's slots skip.
    pub skip_on: Vec<String>,
    /// Calendars outside of which the job's slots are skipped.
    pub only_on: Vec<String>,
    /// `queue`, `skip`, `buffer_one` or `replace` (`Overlap`).
    pub overlap: String,
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
        let fields = SpecFields {
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
            limits: RunLimits {
                memory_max: self
                    .memory_max
                    .map(|b| u64::try_from(b).map_err(|e| self.corrupt("memory_max", e)))
                    .transpose()?,
                cpu_weight: self
                    .cpu_weight
                    .map(|w| u32::try_from(w).map_err(|e| self.corrupt("cpu_weight", e)))
                    .transpose()?,
            },
            params: self.params.0.clone(),
            format: self.format.parse().map_err(|e| self.corrupt("format", e))?,
            skip_on: self.skip_on.clone(),
            only_on: self.only_on.clone(),
            overlap: self
                .overlap
                .parse()
                .map_err(|e| self.corrupt("overlap", e))?,
        };
        // A value changed by hand past what validation allows reads back as corrupt, naming
        // the first key the validator names (keys and columns share their names).
        JobSpec::from_fields(fields).map_err(|invalid| {
            let first = invalid.problems.into_iter().next();
            match first {
                Some(p) => self.corrupt(p.field, p.problem),
                None => self.corrupt("(all)", "does not validate"),
            }
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
) -> crate::Result<Vec<JobRow>> {
    sqlx::query_as::<Postgres, JobRow>(BY_PROJECT_COLUMNS)
        .bind(projects)
        .bind(name)
        .fetch_all(conn)
        .await
        .map_err(crate::Error::from)
}

/// One job by name.
pub async fn find(conn: &mut PgConnection, job: &JobRef) -> crate::Result<Option<JobRow>> {
    Ok(
        by_project(conn, std::slice::from_ref(&job.project), Some(&job.name))
            .await?
            .pop(),
    )
}

/// Writes a checked definition, with the scheduler's next slot as the caller decided it.
///
/// Every value is converted with checked arithmetic: a duration beyond [`MAX_DURATION`] or a
/// count beyond `integer` (possible only in a `JobSpec` built by hand, not by validation) is
/// refused naming its key, and so is anything the schema's own checks refuse.
pub async fn upsert(
    conn: &mut PgConnection,
    spec: &JobSpec,
    next_slot: Option<DateTime<Utc>>,
) -> Result<JobId> {
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
        Some(Schedule::Interval(d)) => (None, Some(*d), None),
        Some(Schedule::At(t)) => (None, None, Some(*t)),
        None => (None, None, None),
    };
    let mut c = Checked::default();
    let every = every.map(|d| c.interval("interval", d));
    let iterations = spec.iterations.map(|n| c.count("iterations", n));
    let ttl = c.interval("ttl", spec.ttl);
    let jitter = c.interval("jitter", spec.jitter);
    let maxtime = spec.maxtime.map(|d| c.interval("maxtime", d));
    let retries = c.count("retries", spec.retries);
    let retry_backoff = c.interval("retry_backoff", spec.retry_backoff);
    let concurrency = c.count("concurrency", spec.concurrency);
    let keep_logs = spec.logs.keep.map(|d| c.interval("keep_logs", d));
    let compress_logs = spec
        .logs
        .compress_after
        .map(|d| c.interval("compress_logs", d));
    let lock_lease = c.interval("lock_lease", spec.resources.lease);
    let lock_wait = c.interval("lock_wait", spec.resources.wait);
    let outputs_expire = spec
        .resources
        .outputs_expire
        .map(|d| c.interval("outputs_expire", d));
    let max_health_age = spec.max_health_age.map(|d| c.interval("max_health_age", d));
    let warn_after = spec.warn_after.map(|d| c.interval("warn_after", d));
    let min_duration = spec.min_duration.map(|d| c.interval("min_duration", d));
    let memory_max = spec.limits.memory_max.map(|b| c.bytes("memory_max", b));
    let cpu_weight = spec.limits.cpu_weight.map(|w| c.count("cpu_weight", w));
    if !c.problems.is_empty() {
        return Err(Error::Invalid(vec![InvalidJob {
            job: spec.job.to_string(),
            problems: c.problems,
        }]));
    }
    sqlx::query_scalar::<_, i64>(UPSERT)
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
        .bind(iterations)
        .bind(ttl)
        .bind(spec.catchup.as_str())
        .bind(jitter)
        .bind(maxtime)
        .bind(retries)
        .bind(retry_backoff)
        .bind(concurrency)
        .bind(spec.target.all)
        .bind(&spec.target.pool)
        .bind(&spec.userdata)
        .bind(next_slot)
        .bind(&spec.run_as)
        .bind(keep_logs)
        .bind(compress_logs)
        .bind(spec.logs.compression.as_str())
        .bind(names(&spec.resources.inputs))
        .bind(names(&spec.resources.outputs))
        .bind(lock_lease)
        .bind(lock_wait)
        .bind(outputs_expire)
        .bind(spec.resources.on_inputs)
        .bind(max_health_age)
        .bind(spec.notify.as_ref().map(Json))
        .bind(warn_after)
        .bind(min_duration)
        .bind(memory_max)
        .bind(cpu_weight)
        .bind(Json(&spec.params))
        .bind(spec.format.as_str())
        .bind(&spec.skip_on)
        .bind(&spec.only_on)
        .bind(spec.overlap.as_str())
        .fetch_one(conn)
        .await
        .map(JobId)
        .map_err(|e| refused_value(&spec.job, e))
}

/// Column values converted from a spec, with the problems found on the way.
#[derive(Default)]
struct Checked {
    problems: Vec<FieldProblem>,
}

impl Checked {
    fn interval(&mut self, field: &'static str, d: Duration) -> PgInterval {
        let converted = if d > MAX_DURATION {
            Err(format!(
                "{}s is longer than 100 years, the longest duration allowed",
                d.as_secs()
            ))
        } else {
            interval::try_from_duration(d).map_err(|e| e.to_string())
        };
        converted.unwrap_or_else(|problem| {
            self.problems.push(FieldProblem { field, problem });
            PgInterval::default()
        })
    }

    fn bytes(&mut self, field: &'static str, n: u64) -> i64 {
        i64::try_from(n).unwrap_or_else(|_| {
            self.problems.push(FieldProblem {
                field,
                problem: format!("{n} bytes is more than a bigint holds"),
            });
            0
        })
    }

    fn count(&mut self, field: &'static str, n: u32) -> i32 {
        i32::try_from(n).unwrap_or_else(|_| {
            self.problems.push(FieldProblem {
                field,
                problem: format!("{n} is more than {MAX_COUNT} (2^31 - 1), the largest count"),
            });
            0
        })
    }
}

/// Each column of `jobs` with the key of a definition it holds.
const COLUMN_KEYS: &[(&str, &str)] = &[
    ("project", "project"),
    ("name", "name"),
    ("command", "command"),
    ("shell", "shell"),
    ("env", "env"),
    ("workdir", "workdir"),
    ("cron", "cron"),
    ("every", "interval"),
    ("at", "at"),
    ("timezone", "timezone"),
    ("starts_at", "start"),
    ("ends_at", "end"),
    ("iterations", "iterations"),
    ("ttl", "ttl"),
    ("catchup", "catchup"),
    ("jitter", "jitter"),
    ("maxtime", "maxtime"),
    ("retries", "retries"),
    ("retry_backoff", "retry_backoff"),
    ("concurrency", "concurrency"),
    ("target_all", "target"),
    ("target_pool", "target"),
    ("userdata", "userdata"),
    ("run_as", "run_as"),
    ("keep_logs", "keep_logs"),
    ("compress_logs", "compress_logs"),
    ("compress_mode", "compress_mode"),
    ("inputs", "inputs"),
    ("outputs", "outputs"),
    ("lock_lease", "lock_lease"),
    ("lock_wait", "lock_wait"),
    ("outputs_expire", "outputs_expire"),
    ("on_inputs", "on_inputs"),
    ("max_health_age", "max_health_age"),
    ("notify", "notify"),
    ("warn_after", "warn_after"),
    ("min_duration", "min_duration"),
    ("memory_max", "memory_max"),
    ("cpu_weight", "cpu_weight"),
    ("params", "params"),
    ("format", "format"),
    ("skip_on", "skip_on"),
    ("only_on", "only_on"),
];

/// The key a column or constraint of `jobs` belongs to: `jobs_retries_check` → `retries`.
fn key_of(name: &str) -> Option<&'static str> {
    let bare = name.strip_prefix("jobs_").unwrap_or(name);
    let bare = bare
        .strip_suffix("_check")
        .or_else(|| bare.strip_suffix("_not_null"))
        .unwrap_or(bare);
    COLUMN_KEYS
        .iter()
        .find(|(column, _)| *column == bare)
        .map(|(_, key)| *key)
}

/// The database's refusal of a value while writing `job` — a data exception (SQLSTATE class
/// 22) or an integrity constraint (class 23, but for a duplicate key or a missing reference,
/// which are races, not values) — as the same field error validation gives, naming the key
/// where the column or constraint tells it. Anything else stays a database error.
pub fn refused_value(job: &JobRef, e: sqlx::Error) -> Error {
    let sqlx::Error::Database(db) = &e else {
        return Error::from(e);
    };
    let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
    let value_error =
        code.starts_with("22") || (code.starts_with("23") && code != "23505" && code != "23503");
    if !value_error {
        return Error::from(e);
    }
    let column = db
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .and_then(|pg| pg.column());
    let constraint = db.constraint();
    let field = column
        .and_then(key_of)
        .or_else(|| constraint.and_then(key_of))
        .unwrap_or("(stored value)");
    let problem = match constraint {
        Some(c) => format!(
            "the database refused it: {} (constraint {c}, SQLSTATE {code})",
            db.message()
        ),
        None => format!(
            "the database refused it: {} (SQLSTATE {code})",
            db.message()
        ),
    };
    Error::Invalid(vec![InvalidJob {
        job: job.to_string(),
        problems: vec![FieldProblem { field, problem }],
    }])
}

fn names(list: &[Template]) -> Vec<String> {
    list.iter().map(|t| t.as_str().to_string()).collect()
}

/// Takes back a job's runs materialised ahead of time; returns the earliest slot taken back.
pub async fn take_back_future_runs(
    conn: &mut PgConnection,
    job: JobId,
) -> crate::Result<Option<DateTime<Utc>>> {
    sqlx::query_scalar(TAKE_BACK)
        .bind(job.0)
        .fetch_one(conn)
        .await
        .map_err(crate::Error::from)
}

/// The first slot a job (re)defined at `now` should materialise: the schedule's first slot at or
/// after `now` (or after its start), unless the window has ended or the iterations ran out.
pub fn first_slot(spec: &JobSpec, now: DateTime<Utc>, fired: i32) -> Option<DateTime<Utc>> {
    if spec
        .iterations
        .is_some_and(|n| i64::from(fired) >= i64::from(n))
    {
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

const STATUS: &str = include_str!("../../sql/jobs/status.sql");
const HEALTH: &str = include_str!("../../sql/jobs/health.sql");
const DURATIONS: &str = include_str!("../../sql/jobs/durations.sql");
const RUN_NOW: &str = include_str!("../../sql/jobs/run_now.sql");
const PAUSE: &str = include_str!("../../sql/jobs/pause.sql");
const RESUME: &str = include_str!("../../sql/jobs/resume.sql");
const REMOVE: &str = include_str!("../../sql/jobs/remove.sql");
const FIRED: &str = include_str!("../../sql/jobs/fired.sql");
const NOW: &str = include_str!("../../sql/schema/now.sql");
const READ_ONLY: &str = include_str!("../../sql/schema/read_only.sql");

/// Jobs' states from `sisyphus.job_status`: every job, one project's, or one job.
pub async fn status<'e>(
    db: impl PgExecutor<'e>,
    project: Option<&str>,
    name: Option<&str>,
) -> crate::Result<Vec<JobStatus>> {
    sqlx::query(STATUS)
        .bind(project)
        .bind(name)
        .try_map(crate::decode::job_status)
        .fetch_all(db)
        .await
        .map_err(crate::Error::from)
}

/// Whether one job (or every job) is healthy, and why not.
pub async fn health<'e>(
    db: impl PgExecutor<'e>,
    job: Option<&JobRef>,
) -> crate::Result<Vec<JobHealth>> {
    type Row = (
        String,
        String,
        Option<String>,
        bool,
        Option<String>,
        Option<String>,
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
    );
    let rows: Vec<Row> = sqlx::query_as(HEALTH)
        .bind(job.map(|j| &j.project))
        .bind(job.map(|j| &j.name))
        .fetch_all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(project, name, reason, paused, pause_reason, by, since, until)| JobHealth {
                job: JobRef::new(project, name),
                reason,
                pause: paused.then_some(Pause {
                    reason: pause_reason,
                    by,
                    since,
                    until,
                }),
            },
        )
        .collect())
}

/// A job's last `count` run durations (start to finish), newest first.
pub async fn durations<'e>(
    db: impl PgExecutor<'e>,
    job: &JobRef,
    count: i64,
) -> crate::Result<Vec<Duration>> {
    let secs: Vec<f64> = sqlx::query_scalar(DURATIONS)
        .bind(&job.project)
        .bind(&job.name)
        .bind(count)
        .fetch_all(db)
        .await?;
    Ok(secs
        .into_iter()
        .map(|s| Duration::from_secs_f64(s.max(0.0)))
        .collect())
}

/// Runs a job now, outside its schedule: the new runs (one per live host for `all` jobs).
pub async fn run_now<'e>(
    db: impl PgExecutor<'e>,
    job: &JobRef,
    params: &BTreeMap<String, String>,
) -> crate::Result<Vec<RunId>> {
    let ids: Vec<i64> = sqlx::query_scalar(RUN_NOW)
        .bind(&job.project)
        .bind(&job.name)
        .bind(Json(params))
        .fetch_all(db)
        .await
        .map_err(|e| match Error::from(e) {
            // The database's refusal of a parameter (unknown, missing, not a choice) is bad
            // input, as a bad key of a definition is.
            Error::Declined { code, message } if code == "22023" => Error::BadInput(message),
            other => other,
        })?;
    Ok(ids.into_iter().map(RunId).collect())
}

/// Pauses (`paused`, with no reason or end) or resumes a job. Returns false when it was in that
/// state already.
pub async fn set_paused<'e>(
    db: impl PgExecutor<'e>,
    job: &JobRef,
    paused: bool,
) -> crate::Result<bool> {
    if paused {
        pause(db, job, None, None).await
    } else {
        sqlx::query_scalar(RESUME)
            .bind(&job.project)
            .bind(&job.name)
            .fetch_one(db)
            .await
            .map_err(crate::Error::from)
    }
}

/// Pauses a job, saying why and until when (the scheduler resumes it then). Returns false when
/// it was paused already.
pub async fn pause<'e>(
    db: impl PgExecutor<'e>,
    job: &JobRef,
    reason: Option<&str>,
    until: Option<DateTime<Utc>>,
) -> crate::Result<bool> {
    sqlx::query_scalar(PAUSE)
        .bind(&job.project)
        .bind(&job.name)
        .bind(reason)
        .bind(until)
        .fetch_one(db)
        .await
        .map_err(crate::Error::from)
}

/// Removes a job and its history; refused while a run of it is active. Returns the number of
/// runs removed with it.
pub async fn remove<'e>(db: impl PgExecutor<'e>, job: &JobRef) -> crate::Result<i32> {
    sqlx::query_scalar(REMOVE)
        .bind(&job.project)
        .bind(&job.name)
        .fetch_one(db)
        .await
        .map_err(crate::Error::from)
}

/// How many slots a job has materialised so far.
pub async fn fired<'e>(db: impl PgExecutor<'e>, job: JobId) -> crate::Result<i32> {
    sqlx::query_scalar(FIRED)
        .bind(job.0)
        .fetch_one(db)
        .await
        .map_err(crate::Error::from)
}

/// Makes the current transaction read-only (its first statement): a plan can write nothing.
pub async fn read_only(conn: &mut PgConnection) -> crate::Result<()> {
    sqlx::query(READ_ONLY).execute(conn).await?;
    Ok(())
}

/// The transaction's time.
pub async fn now<'e>(db: impl PgExecutor<'e>) -> crate::Result<DateTime<Utc>> {
    sqlx::query_scalar(NOW)
        .fetch_one(db)
        .await
        .map_err(crate::Error::from)
}

/// One slot of a backfill (`sql/jobs/backfill.sql`): the slot, the host of an `all` job's copy,
/// what the backfill found, and the run that is active or done.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BackfillSlot {
    pub slot: DateTime<Utc>,
    pub target_host: Option<String>,
    pub state: BackfillState,
    pub run: Option<RunId>,
}

/// Backfills `job`'s `slots` (the schedule's in `[from, to)`, at most `max`), or with `dry_run`
/// says what it would do. The database's refusal of the range or the slots is bad input.
#[allow(clippy::too_many_arguments)]
pub async fn backfill<'e>(
    db: impl PgExecutor<'e>,
    job: &JobRef,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    slots: &[DateTime<Utc>],
    max: u32,
    dry_run: bool,
) -> crate::Result<Vec<BackfillSlot>> {
    sqlx::query(include_str!("../../sql/jobs/backfill.sql"))
        .bind(&job.project)
        .bind(&job.name)
        .bind(from)
        .bind(to)
        .bind(slots)
        .bind(i32::try_from(max).unwrap_or(i32::MAX))
        .bind(dry_run)
        .try_map(|row: sqlx::postgres::PgRow| {
            use sqlx::Row as _;
            Ok(BackfillSlot {
                slot: row.try_get("slot")?,
                target_host: row.try_get("target_host")?,
                state: crate::decode::label(&row, "state")?,
                run: crate::decode::run_id_opt(&row, "run_id")?,
            })
        })
        .fetch_all(db)
        .await
        .map_err(|e| match Error::from(e) {
            Error::Declined { code, message } if code == "22023" => Error::BadInput(message),
            other => other,
        })
}

/// Takes back `job`'s backfill slots that are not runs yet; how many.
pub async fn cancel_backfill<'e>(db: impl PgExecutor<'e>, job: &JobRef) -> crate::Result<i32> {
    sqlx::query_scalar(include_str!("../../sql/jobs/cancel_backfill.sql"))
        .bind(&job.project)
        .bind(&job.name)
        .fetch_one(db)
        .await
        .map_err(crate::Error::from)
}
