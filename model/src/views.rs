//! What people read about jobs, hosts and logs: the rows of `sisyphus.job_status`, the hosts
//! list and log lines, with their enums typed. `sisyphus-db` decodes them; `sisyctl`, the Rust
//! client and the web dashboard show them.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::run::{JobId, JobRef, RunId, RunStatus};

crate::run::text_enum!(
    /// A job's state in one word (the `health` column of `sisyphus.job_status`).
    Health, "job health" {
        Paused = "paused",
        /// The scheduler left the job alone (see `scheduler_error`).
        SchedulerError = "scheduler-error",
        NeverRun = "never-run",
        /// The last finished run was good.
        Ok = "ok",
        /// The last run's slot passed before it could start.
        Missed = "missed",
        Failing = "failing",
    }
);

crate::run::text_enum!(
    /// How a guardian holds its runs' processes (`hosts.isolation`, migrations/0009).
    Isolation, "isolation" {
        /// A cgroup per run: killing it kills everything, `setsid` or not.
        Cgroup = "cgroup",
        /// A process group per run (no writable cgroup v2 on the host).
        ProcessGroup = "process-group",
    }
);

/// A job's state, from the `sisyphus.job_status` view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobStatus {
    pub id: JobId,
    pub project: String,
    pub name: String,
    pub schedule: String,
    pub timezone: String,
    pub paused: bool,
    pub next_due: Option<DateTime<Utc>>,
    pub active_runs: i64,
    pub last_run_id: Option<RunId>,
    pub last_status: Option<RunStatus>,
    pub last_finished_at: Option<DateTime<Utc>>,
    pub last_summary: Option<String>,
    pub health: Health,
    /// Never run, last run not good, or last good run too old: see `sisyphus.health_reason`.
    pub healthy: bool,
    pub health_reason: Option<String>,
    /// Why the scheduler left this job alone, and since when (`migrations/0008_isolation.sql`).
    pub scheduler_error: Option<String>,
    pub scheduler_error_at: Option<DateTime<Utc>>,
    /// Who paused it, when, why and until when (`migrations/0013_operations.sql`); None when not
    /// paused.
    pub pause: Option<Pause>,
}

/// A paused job's note.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pause {
    pub reason: Option<String>,
    pub by: Option<String>,
    pub since: Option<DateTime<Utc>>,
    /// When the scheduler resumes it by itself.
    pub until: Option<DateTime<Utc>>,
}

impl std::fmt::Display for Pause {
    /// `paused by alice since 2026-12-03 10:00Z until 2026-12-04 06:00Z: migration`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = |t: &DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%SZ").to_string();
        f.write_str("paused")?;
        if let Some(by) = &self.by {
            write!(f, " by {by}")?;
        }
        if let Some(since) = &self.since {
            write!(f, " since {}", at(since))?;
        }
        if let Some(until) = &self.until {
            write!(f, " until {}", at(until))?;
        }
        if let Some(reason) = &self.reason {
            write!(f, ": {reason}")?;
        }
        Ok(())
    }
}

/// Whether a job is healthy; `reason` says why not.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobHealth {
    pub job: JobRef,
    pub reason: Option<String>,
    /// A paused job's note: paused is not unhealthy, but worth saying.
    pub pause: Option<Pause>,
}

/// A registered guardian.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Host {
    pub name: String,
    pub pools: Vec<String>,
    pub capacity: i32,
    pub draining: bool,
    pub pid: Option<i32>,
    pub version: Option<String>,
    pub started_at: DateTime<Utc>,
    pub last_heartbeat: DateTime<Utc>,
    /// Seconds since the last heartbeat.
    pub heartbeat_age: f64,
    /// Heartbeat younger than 30 s.
    pub live: bool,
    /// Runs running or suspended there.
    pub running: i64,
    pub isolation: Isolation,
}

/// Where a line came from. Mirrors `sisyphus.log_stream`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
    /// Structured records from a job written with the job SDK.
    Sdk,
    /// Lines Sisyphus itself writes about the run.
    Sisyphus,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
            Stream::Sdk => "sdk",
            Stream::Sisyphus => "sisyphus",
        }
    }
}

impl FromStr for Stream {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "stdout" => Ok(Stream::Stdout),
            "stderr" => Ok(Stream::Stderr),
            "sdk" => Ok(Stream::Sdk),
            "sisyphus" => Ok(Stream::Sisyphus),
            _ => Err(format!("`{s}` is not a log stream")),
        }
    }
}

/// One stored log line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRow {
    pub run_id: RunId,
    /// 1, 2, 3… within the run.
    pub seq: i32,
    pub at: DateTime<Utc>,
    pub stream: Stream,
    pub tags: Vec<String>,
    /// The task path (job SDK), e.g. `[3/226] module sys`.
    pub task: Option<String>,
    pub text: String,
}

/// What the dashboard's Run page shows beyond a [`crate::Run`] (`sql/web/run_facts.sql`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunFacts {
    pub pid: Option<i32>,
    pub signal: Option<i32>,
    /// Who asked for it (a person's login for manual runs and reruns).
    pub created_by: Option<String>,
    /// A control request its guardian has not carried out yet.
    pub requested: Option<String>,
    pub suspended_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub job_id: crate::JobId,
}
