//! Ids, run statuses and triggers, targets, catch-up policies, runs.
//!
//! Enums here mirror PostgreSQL enums of the same name in `migrations/`; a test in `tests/`
//! compares their labels so the two cannot drift apart. They cross the wire as text
//! (`status::text` out, `$1::sisyphus.run_status` in): `sisyphus-db` decodes them with
//! [`FromStr`], so this crate needs no database library.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<i64> for $name {
            fn from(id: i64) -> Self {
                $name(id)
            }
        }

        impl FromStr for $name {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.trim_start_matches('#').parse().map($name)
            }
        }
    };
}

typed_id!(
    /// A job's id (`sisyphus.jobs.id`).
    JobId
);
typed_id!(
    /// A run's id (`sisyphus.runs.id`).
    RunId
);

/// A job's name as people write it: `PROJECT/NAME`, e.g. `ACME.FooBar/Fetch`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct JobRef {
    pub project: String,
    pub name: String,
}

impl JobRef {
    pub fn new(project: impl Into<String>, name: impl Into<String>) -> JobRef {
        JobRef {
            project: project.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for JobRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.project, self.name)
    }
}

impl FromStr for JobRef {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.rsplit_once('/') {
            Some((p, n)) if !p.is_empty() && !n.is_empty() => Ok(JobRef::new(p, n)),
            _ => Err(format!(
                "`{s}` is not a job name; write PROJECT/NAME, e.g. ACME.FooBar/Fetch"
            )),
        }
    }
}

/// An enum whose values are the labels of a PostgreSQL enum (or of a checked text column):
/// `as_str`, `Display`, `FromStr` with an error that lists the labels, and serde by label.
macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident, $what:literal { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in the PostgreSQL enum's order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The label, as in PostgreSQL.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(format!(
                        "`{s}` is not a {}; expected one of: {}",
                        $what,
                        [$($text),+].join(", ")
                    )),
                }
            }
        }
    };
}

pub(crate) use text_enum;

text_enum!(
    /// Where a run is in its life (ARCHITECTURE.md, "Run lifecycle" in the bird's-eye view). Mirrors `sisyphus.run_status`.
    RunStatus, "run status" {
        /// Materialised, waiting for a guardian to claim it.
        Pending = "pending",
        Running = "running",
        /// Stopped with SIGSTOP; counts against concurrency; its maxtime clock is paused.
        Suspended = "suspended",
        /// Exit 0 with output; the summary is the last non-empty stdout line.
        Successful = "successful",
        /// Exit 0 with nothing to say.
        Uneventful = "uneventful",
        Failed = "failed",
        /// Ended by SIGINT, or by a guardian shutting down.
        Interrupted = "interrupted",
        /// Killed for passing its maxtime.
        Timeout = "timeout",
        /// Ended by a remote terminate request.
        Terminated = "terminated",
        /// Its guardian stopped renewing the lease.
        Lost = "lost",
        /// Its TTL passed before it could start.
        Missed = "missed",
        /// Taken back before it started (job paused or removed).
        Cancelled = "cancelled",
        /// Came due and was deliberately not run: a calendar excludes its slot, or the job's
        /// overlap policy yielded it to a run already active. The reason is the run's `error`.
        Skipped = "skipped",
    }
);

text_enum!(
    /// Where a notification stands in the outbox. Mirrors `sisyphus.outbox_state`.
    OutboxState, "notification state" {
        /// Waiting for (another) delivery attempt.
        Pending = "pending",
        Delivered = "delivered",
        /// Nothing for its channel (a tagged event without lines for that kind of channel).
        Skipped = "skipped",
        /// Gave up after the dispatcher's `max_attempts`.
        Failed = "failed",
    }
);

impl RunStatus {
    /// Whether the run has ended (no further transition is possible).
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            RunStatus::Pending | RunStatus::Running | RunStatus::Suspended
        )
    }
}

text_enum!(
    /// What happens to slots that passed while nothing could run them. Mirrors
    /// `sisyphus.catchup_policy`.
    Catchup, "catch-up policy" {
        /// Run each passed slot that is still inside its TTL, once.
        All = "all",
        /// Run only the newest passed slot (if inside its TTL).
        Latest = "latest",
        /// Run none of them; the schedule goes on from the next slot.
        None = "none",
    }
);

text_enum!(
    /// Why a run exists. Mirrors `sisyphus.run_trigger`.
    RunTrigger, "run trigger" {
        Schedule = "schedule",
        Manual = "manual",
        Retry = "retry",
        Data = "data",
        Rerun = "rerun",
        /// A past slot run on request (`sisyctl backfill`).
        Backfill = "backfill",
    }
);

/// Which hosts may run a job: any one host, or every live host; optionally only those of a pool.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Target {
    /// Every live host gets its own run of each slot.
    pub all: bool,
    /// Only hosts of this pool.
    pub pool: Option<String>,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = if self.all { "all" } else { "any" };
        match &self.pool {
            Some(pool) => write!(f, "{mode}:{pool}"),
            None => f.write_str(mode),
        }
    }
}

impl FromStr for Target {
    type Err = String;
    /// `any`, `all`, `any:POOL`, `all:POOL`, or a bare `POOL` (any host of that pool).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (all, pool) = match s.split_once(':') {
            Some(("any", pool)) => (false, Some(pool)),
            Some(("all", pool)) => (true, Some(pool)),
            Some(_) => return Err(format!("`{s}`: write any, all, any:POOL, all:POOL or POOL")),
            None if s == "any" => (false, None),
            None if s == "all" => (true, None),
            None => (false, Some(s)),
        };
        if let Some(pool) = pool {
            if !crate::spec::is_simple_name(pool) {
                return Err(format!(
                    "pool `{pool}` must be letters, digits, `_`, `-` or `.`, and not empty"
                ));
            }
        }
        Ok(Target {
            all,
            pool: pool.map(str::to_string),
        })
    }
}

/// One run, as `sisyctl runs --json` and the client return it. The field names are the column
/// names, so scripts read the same words in SQL and in JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub id: RunId,
    /// `PROJECT/NAME`.
    pub job: String,
    pub status: RunStatus,
    pub summary: Option<String>,
    pub attempt: i32,
    pub host: Option<String>,
    pub exit_code: Option<i32>,
    pub scheduled_for: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub slot: DateTime<Utc>,
    pub trigger: RunTrigger,
    pub target_host: Option<String>,
    pub error: Option<String>,
    /// The run this one repeats (`sisyctl rerun`).
    pub rerun_of: Option<RunId>,
    /// The run this one gave way to under its job's overlap policy: the active or waiting run a
    /// `skipped` run yielded to, or the newer slot that replaced a `terminated` one.
    #[serde(default)]
    pub yielded_to: Option<RunId>,
    /// The run's parameters (`crate::params`); None for a job that declares none.
    pub params: Option<std::collections::BTreeMap<String, String>>,
}
