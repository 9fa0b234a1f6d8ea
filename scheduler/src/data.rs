//! Data-triggered runs (`on_inputs`): a job gets a run when every input has been written.
//!
//! - Templated inputs (`reporting.events.{date}`): each newly written resource that matches a
//!   template names a slot (its date read back out of the name). For each such slot whose inputs
//!   are all written, a run is created with that slot — once: the unique index on
//!   (job, slot, attempt) makes a second one impossible, so a pipeline runs once per day.
//! - Plain inputs: when every input was written after the job's last successful run began, a run
//!   is created whose slot is the newest input's write time — once per fresh set of writes.
//!
//! Which jobs to look at is one statement (`sql/scheduler/data_jobs.sql`): the jobs whose inputs
//! match a resource written since the scheduler last looked (a global watermark and a GIN index
//! of the inputs' folded names, `migrations/0010_data_triggers.sql`), the jobs queued for a full
//! look (new, changed, resumed) and marked jobs whose hold-back passed — so a tick's cost grows
//! with what was written, not with the jobs defined (invariant `tick-cost-by-due-jobs`). Only those get the per-job
//! work below. A per-job watermark (`inputs_seen_at`, the newest write looked at) keeps that
//! work to the resources written since. Writing outputs notifies the scheduler
//! (`release_lock`), so a downstream job starts within a tick of its inputs.

use std::collections::BTreeSet;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use sisyphus_db::scheduler as db;
use sisyphus_db::{PgConnection, Result};
use sisyphus_model::resources::Template;

pub use sisyphus_db::scheduler::DataJob;

/// Written resources looked at per job and tick at most; more wait for the next tick (the job
/// is queued for it: what is left may be older than the global watermark).
const NAMES_PER_TICK: i64 = 10_000;

/// The data-triggered jobs that may have new inputs (see the module's documentation), less those
/// marked with a scheduler error after `retry_marked_before` (held back, see
/// `migrations/0008_isolation.sql`). Moves the global watermark and empties the queue of full
/// looks, so it runs once per tick, outside the savepoints of the per-job work.
pub async fn data_jobs(
    conn: &mut PgConnection,
    retry_marked_before: DateTime<Utc>,
) -> Result<Vec<DataJob>> {
    db::data_jobs(conn, retry_marked_before).await
}

/// Creates the data-triggered runs that became due; returns how many.
pub async fn trigger_data_jobs(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    created_by: &str,
) -> Result<u64> {
    let mut created = 0;
    for job in data_jobs(conn, now).await? {
        created += trigger_one(conn, &job, now, created_by).await?;
    }
    Ok(created)
}

/// Creates one data-triggered job's runs that became due; returns how many.
pub async fn trigger_one(
    conn: &mut PgConnection,
    job: &DataJob,
    now: DateTime<Utc>,
    created_by: &str,
) -> Result<u64> {
    let Ok(templates) = job
        .inputs
        .iter()
        .map(|t| Template::parse(t))
        .collect::<Result<Vec<_>, _>>()
    else {
        tracing::error!(job = %job.id, "skipping a data-triggered job whose inputs do not read back");
        return Ok(0);
    };
    let slots = if templates.iter().all(Template::is_fixed) {
        fresh_fixed(conn, job, now).await?
    } else {
        slots_from_names(conn, job, &templates).await?
    };
    let created = if slots.is_empty() {
        0
    } else {
        db::insert_data_runs(&mut *conn, job.id, &slots, now, created_by).await?
    };
    if job.marked {
        db::clear_error(&mut *conn, job.id).await?;
    }
    Ok(created)
}

/// The fresh slot of a job whose inputs are plain names, if any; moves the watermark on.
async fn fresh_fixed(
    conn: &mut PgConnection,
    job: &DataJob,
    now: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>> {
    let fresh = db::fresh_fixed(&mut *conn, job.id, now).await?;
    see(conn, job, fresh.newest).await?;
    Ok(fresh.slot.into_iter().collect())
}

/// Moves a job's watermark to the newest write looked at — only when it moves: the update
/// notifies `sisyphus_jobs`, which wakes this scheduler.
async fn see(conn: &mut PgConnection, job: &DataJob, newest: Option<DateTime<Utc>>) -> Result<()> {
    match newest {
        Some(newest) if Some(newest) > job.inputs_seen_at => {
            db::set_inputs_seen(conn, job.id, newest).await
        }
        _ => Ok(()),
    }
}

/// The slots named by resources written since the job's watermark; moves the watermark on.
async fn slots_from_names(
    conn: &mut PgConnection,
    job: &DataJob,
    templates: &[Template],
) -> Result<Vec<DateTime<Utc>>> {
    let dated: Vec<&Template> = templates.iter().filter(|t| !t.is_fixed()).collect();
    let patterns: Vec<String> = dated.iter().map(|t| t.like_pattern()).collect();
    let written =
        db::written_like(&mut *conn, &patterns, job.inputs_seen_at, NAMES_PER_TICK).await?;
    let tz: Tz = job.timezone.parse().unwrap_or(Tz::UTC);
    let slots: BTreeSet<DateTime<Utc>> = written
        .iter()
        .flat_map(|w| dated.iter().filter_map(|t| t.slot_of(&w.name)))
        .filter_map(|local| tz.from_local_datetime(&local).earliest())
        .map(|t| t.with_timezone(&Utc))
        .collect();
    see(conn, job, written.iter().map(|w| w.written_at).max()).await?;
    if written.len() as i64 >= NAMES_PER_TICK {
        db::queue_full_look(&mut *conn, job.id).await?;
    }
    Ok(slots.into_iter().collect())
}
