//! The Sisyphus client library: the typed model, validation of job definitions, schedules, the
//! database seam, and the actions people take (apply, pause, run now, list runs…).
//!
//! # Layout
//!
//! - [`model`]: ids, run statuses, targets, catch-up policies, runs — plain types every part shares.
//! - [`schedule`]: cron expressions, intervals and one-shot times; next fire times in a time zone.
//! - [`spec`]: job definitions as written ([`JobDefinition`]) and as checked ([`JobSpec`]).
//! - [`jobsfile`]: jobs files (TOML) for `sisyctl apply`.
//! - [`resources`]: resource name templates and the lineage graph; [`lock`]: reader/writer
//!   locks on resources for any service ([`ResourceLock`]).
//! - [`db`]: connecting, migrating, schema checks, and one module per table over `sql/*.sql`.
//! - [`Client`]: the API `sisyctl` is a thin shell over, and that services use directly.
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

pub mod client;
pub mod db;
pub mod error;
pub mod jobsfile;
pub mod lock;
pub mod model;
pub mod notifications;
pub mod resources;
pub mod schedule;
pub mod spec;

pub use client::{Applied, Change, Client, ControlAction, Host, JobHealth, JobStatus};
pub use db::runs::RunFilter;
pub use error::{Error, Result};
pub use lock::{LockRequest, ResourceLock};
pub use model::{Catchup, JobId, JobRef, Run, RunId, RunStatus, RunTrigger, Target};
pub use schedule::{CronError, CronExpr, Schedule};
pub use spec::{InvalidJob, JobDefinition, JobSpec, ResourceSpec};
