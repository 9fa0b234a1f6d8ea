//! The Sisyphus client library: the actions people take (apply, pause, run now, control, list
//! runs…) as one API over the database layer (`sisyphus-db`) and the model (`sisyphus-model`),
//! both re-exported here so a service needs only this crate.
//!
//! # Layout
//!
//! - [`Client`]: the API `sisyctl` is a thin shell over, and that services use directly.
//! - [`jobsfile`]: jobs files (TOML) for `sisyctl apply`.
//! - [`calendars`]: calendars (`sisyctl calendar`), a job's upcoming slots with the calendar
//!   that excludes each, and `apply`'s check of `skip_on`/`only_on`.
//! - [`jobsfile`]: jobs files (TOML) for `sisyctl apply`; [`plan`]: what applying one would
//!   change (`apply --plan`), writing nothing.
//! - [`lock`]: reader/writer locks on resources for any service ([`ResourceLock`]).
//! - Re-exported from `sisyphus-model`: [`model`] (ids, statuses, runs), [`schedule`], [`spec`]
//!   (definitions as written and as checked), [`resources`], [`notifications`], [`views`],
//!   [`access`] (grants, kinds of logins, audit rows).
//! - Re-exported: [`db`], the only crate that runs SQL.
//!
//! # Example
//!
//! Define a job and read its runs (needs a migrated database; see `sisyctl migrate`):
//!
//! ```no_run
//! use sisyphus_client::{Client, JobDefinition, JobRef, RunFilter};
//!
//! # async fn example() -> Result<(), sisyphus_client::Error> {
//! let client = Client::connect("postgres://localhost/sisyphus").await?;
//! let fetch = JobDefinition::new("ACME.FooBar", "Fetch", ["curl", "-sO", "https://example.org/"])
//!     .cron("*/5 * * * *")
//!     .timezone("Europe/Amsterdam");
//! client.apply(&[fetch], false).await?;
//!
//! let job = JobRef::new("ACME.FooBar", "Fetch");
//! client.run_now(&job).await?;
//! for run in client.runs(&RunFilter::for_job(&job)).await? {
//!     println!("{} {} {:?}", run.id, run.status, run.summary);
//! }
//! # Ok(()) }
//! ```

pub mod calendars;
pub mod client;
pub mod jobsfile;
pub mod lock;
pub mod plan;
pub mod token;

/// The database layer the client is built on.
pub use sisyphus_db as db;
/// The model's run types (`sisyphus_client::model::RunStatus`).
pub use sisyphus_model::run as model;
/// The model, under the paths it had when it lived here.
pub use sisyphus_model::{
    access, backfill, calendar, diff, notifications, params, resources, schedule, spec, status,
    views,
};

pub use client::{Applied, Backfill, BulkAction, Change, Client};
pub use db::access::AuditFilter;
pub use db::runs::RunFilter;
pub use db::{Error, Result};
pub use lock::{LockRequest, ResourceLock};
pub use plan::{Plan, PlannedJob, PlannedProject};
pub use schedule::{CronError, CronExpr, Schedule};
pub use sisyphus_model::views::{Host, JobHealth, JobStatus};
pub use sisyphus_model::{
    Catchup, ControlAction, JobId, JobRef, Run, RunId, RunStatus, RunTrigger, Target,
};
pub use spec::{InvalidJob, JobDefinition, JobSpec, ResourceSpec};
