//! The guardian's statements (`sql/guardian/`): registering a host and giving its name back,
//! claiming runs and waiting for the next one, control requests, the heartbeat that renews the
//! leases, and recording pids, suspensions and outcomes; and the channels the guardian LISTENs on.
//!
//! Runs are claimed through `sisyphus.claim_runs` and ended through `sisyphus.finish_run`
//! (migrations/0003): the rules live in SQL, these functions only bind and decode.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::types::PgInterval;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor, Row};

use sisyphus_model::spec::{EnvValue, JobFormat, LogSettings};
use sisyphus_model::views::Isolation;
use sisyphus_model::{ControlAction, RunId, RunStatus};

use crate::listener::Notification;
use crate::{decode, interval, jobs};

const REGISTER: &str = include_str!("../../sql/guardian/register.sql");
const ORPHANS: &str = include_str!("../../sql/guardian/orphans.sql");
const DEREGISTER: &str = include_str!("../../sql/guardian/deregister.sql");
const CLAIM: &str = include_str!("../../sql/guardian/claim.sql");
const CLAIMED_PARAMS: &str = include_str!("../../sql/guardian/claimed_params.sql");
const NEXT_DUE: &str = include_str!("../../sql/guardian/next_due.sql");
const DUE_NOW: &str = include_str!("../../sql/guardian/due_now.sql");
const REQUESTS: &str = include_str!("../../sql/guardian/requests.sql");
const HEARTBEAT: &str = include_str!("../../sql/guardian/heartbeat.sql");
const HEARTBEAT_IDLE: &str = include_str!("../../sql/guardian/heartbeat_idle.sql");
const SET_SUSPENDED: &str = include_str!("../../sql/guardian/set_suspended.sql");
const SET_PIDS: &str = include_str!("../../sql/guardian/set_pids.sql");
const LOCK_RUNS: &str = include_str!("../../sql/guardian/lock_runs.sql");
const FINISH_MANY: &str = include_str!("../../sql/guardian/finish_many.sql");
const RUN_STATUSES: &str = include_str!("../../sql/guardian/run_statuses.sql");

/// Notified when runs become claimable (new runs, a freed concurrency slot).
const RUNS_CHANNEL: &str = "sisyphus_runs";
/// Notified when a control request waits for a run (`sisyphus.terminate` and the others).
const CONTROL_CHANNEL: &str = "sisyphus_control";

/// What a guardian registers under its host name.
#[derive(Debug, Clone)]
pub struct Registration<'a> {
    pub name: &'a str,
    pub pools: &'a [String],
    pub capacity: i32,
    pub pid: i32,
    pub version: &'a str,
    /// This life of the guardian: a restart is a new instance.
    pub instance: &'a str,
    /// The liveness window: a holder of the name whose heartbeat is older may be replaced.
    pub lease: Duration,
    pub isolation: Isolation,
}

/// Registers a guardian under its host name, unless another live guardian holds the name.
/// Returns the host's `draining` flag when registered, `None` when the name is taken.
pub async fn register<'e>(
    db: impl PgExecutor<'e>,
    host: &Registration<'_>,
) -> crate::Result<Option<bool>> {
    sqlx::query_scalar(REGISTER)
        .bind(host.name)
        .bind(host.pools)
        .bind(host.capacity)
        .bind(host.pid)
        .bind(host.version)
        .bind(host.instance)
        .bind(interval::from_duration(host.lease))
        .bind(host.isolation.as_str())
        .fetch_optional(db)
        .await
        .map_err(crate::Error::from)
}

/// Marks the runs `host` still shows as active `lost`: they belong to an earlier life of its
/// guardian, and their processes died with it. Returns how many there were.
pub async fn mark_orphans_lost<'e>(db: impl PgExecutor<'e>, host: &str) -> crate::Result<u64> {
    let done = sqlx::query(ORPHANS).bind(host).execute(db).await?;
    Ok(done.rows_affected())
}

/// Gives the host name back (a guardian stopping cleanly): a new guardian may take it at once.
pub async fn deregister<'e>(
    db: impl PgExecutor<'e>,
    host: &str,
    instance: &str,
) -> crate::Result<()> {
    sqlx::query(DEREGISTER)
        .bind(host)
        .bind(instance)
        .execute(db)
        .await?;
    Ok(())
}

/// A claimed run with what is needed to start it.
///
/// Stored values that do not read (intervals in months, an unknown compression, changed by hand
/// in SQL) do not fail the claim: such a maxtime is none, such a lock wait is zero, such log
/// settings are the defaults (the files are kept), and a format the CHECK on `jobs.format` would
/// refuse is `sisyphus`.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: RunId,
    pub attempt: i32,
    pub scheduled_for: DateTime<Utc>,
    pub project: String,
    pub name: String,
    pub command: Vec<String>,
    pub shell: bool,
    /// The job's variables; secrets as references, which the guardian resolves on its host.
    pub env: BTreeMap<String, EnvValue>,
    pub workdir: Option<String>,
    pub maxtime: Option<Duration>,
    pub run_as: Option<String>,
    pub userdata: serde_json::Value,
    /// Retention and compression of the run's local log file.
    pub logs: LogSettings,
    /// The job declares inputs or outputs: the run locks them before it starts.
    pub takes_locks: bool,
    /// How long the run may wait for its resource locks.
    pub lock_wait: Duration,
    /// Limits of the run's cgroup (bytes; 1 to 10000).
    pub memory_max: Option<i64>,
    pub cpu_weight: Option<i32>,
    /// The run's parameters (none for a job that declares none).
    pub params: BTreeMap<String, String>,
    /// Its job declares parameters (then `claim` reads them).
    pub takes_params: bool,
    /// How the run is started and its output read (`sisyphus` or `ll.sisyphus`).
    pub format: JobFormat,
}

/// Claims up to `limit` due runs for `host` (serving `pools`), each with a lease of `lease`, and
/// then reads their parameters (a second statement: see `sql/guardian/claimed_params.sql`).
pub async fn claim(
    db: &mut PgConnection,
    host: &str,
    pools: &[String],
    limit: i32,
    lease: Duration,
) -> crate::Result<Vec<Claimed>> {
    let mut runs: Vec<Claimed> = sqlx::query(CLAIM)
        .bind(host)
        .bind(pools)
        .bind(limit)
        .bind(interval::from_duration(lease))
        .try_map(claimed)
        .fetch_all(&mut *db)
        .await?;
    // Only runs of jobs that declare parameters have any: no second round trip otherwise.
    let ids: Vec<i64> = runs
        .iter()
        .filter(|r| r.takes_params)
        .map(|r| r.id.0)
        .collect();
    if ids.is_empty() {
        return Ok(runs);
    }
    let params: Vec<(i64, Json<BTreeMap<String, String>>)> = sqlx::query_as(CLAIMED_PARAMS)
        .bind(&ids)
        .fetch_all(&mut *db)
        .await?;
    let mut params: BTreeMap<i64, BTreeMap<String, String>> =
        params.into_iter().map(|(id, p)| (id, p.0)).collect();
    for run in &mut runs {
        run.params = params.remove(&run.id.0).unwrap_or_default();
    }
    Ok(runs)
}

/// A row of `sql/guardian/claim.sql`.
fn claimed(row: PgRow) -> sqlx::Result<Claimed> {
    let maxtime: Option<PgInterval> = row.try_get("maxtime")?;
    let lock_wait: PgInterval = row.try_get("lock_wait")?;
    let keep: Option<PgInterval> = row.try_get("keep_logs")?;
    let compress: Option<PgInterval> = row.try_get("compress_logs")?;
    let mode: String = row.try_get("compress_mode")?;
    Ok(Claimed {
        id: decode::run_id(&row, "id")?,
        attempt: row.try_get("attempt")?,
        scheduled_for: row.try_get("scheduled_for")?,
        project: row.try_get("project")?,
        name: row.try_get("name")?,
        command: row.try_get("command")?,
        shell: row.try_get("shell")?,
        env: row.try_get::<Json<BTreeMap<String, EnvValue>>, _>("env")?.0,
        workdir: row.try_get("workdir")?,
        maxtime: maxtime.and_then(|m| interval::to_duration(&m).ok()),
        run_as: row.try_get("run_as")?,
        userdata: row.try_get("userdata")?,
        logs: jobs::log_settings(keep.as_ref(), compress.as_ref(), &mode).unwrap_or_default(),
        takes_locks: row.try_get("takes_locks")?,
        lock_wait: interval::to_duration(&lock_wait).unwrap_or_default(),
        memory_max: row.try_get("memory_max")?,
        cpu_weight: row.try_get("cpu_weight")?,
        params: BTreeMap::new(),
        takes_params: row.try_get("takes_params")?,
        format: row
            .try_get::<String, _>("format")?
            .parse()
            .unwrap_or(JobFormat::Sisyphus),
    })
}

/// The recorded status of each of `runs` that the login can see (a one-shot guardian's check that
/// its outcomes are stored). A label that is not a status is an error of its row's decoding.
pub async fn run_statuses<'e>(
    db: impl PgExecutor<'e>,
    runs: &[RunId],
) -> crate::Result<Vec<(RunId, RunStatus)>> {
    sqlx::query(RUN_STATUSES)
        .bind(runs.iter().map(|r| r.0).collect::<Vec<_>>())
        .try_map(|row: PgRow| {
            Ok((
                decode::run_id(&row, "id")?,
                decode::label::<RunStatus>(&row, "status")?,
            ))
        })
        .fetch_all(db)
        .await
        .map_err(crate::Error::from)
}

/// When the next pending run `host` could take falls due, if that is in the future.
pub async fn next_due<'e>(
    db: impl PgExecutor<'e>,
    host: &str,
    pools: &[String],
) -> crate::Result<Option<DateTime<Utc>>> {
    sqlx::query_scalar(NEXT_DUE)
        .bind(host)
        .bind(pools)
        .fetch_one(db)
        .await
        .map_err(crate::Error::from)
}

/// Whether a pending run `host` (serving `pools`) could take is due: the poll's cheap probe
/// before a claim.
pub async fn due_now<'e>(
    db: impl PgExecutor<'e>,
    host: &str,
    pools: &[String],
) -> crate::Result<bool> {
    sqlx::query_scalar(DUE_NOW)
        .bind(host)
        .bind(pools)
        .fetch_one(db)
        .await
        .map_err(crate::Error::from)
}

/// A control request waiting for one of the host's runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub run: RunId,
    /// The action, or why the stored label is not one (one bad request does not hide the others).
    pub action: Result<ControlAction, String>,
}

/// The control requests waiting for `host`'s active runs.
pub async fn requests<'e>(db: impl PgExecutor<'e>, host: &str) -> crate::Result<Vec<Request>> {
    sqlx::query(REQUESTS)
        .bind(host)
        .try_map(|row: PgRow| {
            let label: String = row.try_get("requested")?;
            Ok(Request {
                run: decode::run_id(&row, "id")?,
                action: label.parse(),
            })
        })
        .fetch_all(db)
        .await
        .map_err(crate::Error::from)
}

/// What one heartbeat found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Beat {
    /// The host is still registered to this instance (false: another guardian took it over).
    pub ours: bool,
    /// An operator drained the host: no new claims.
    pub draining: bool,
    /// How many of the supervised runs' leases were renewed.
    pub leases: i64,
}

/// One beat: refreshes `host`'s heartbeat, and renews the leases (and resource locks) of the
/// runs this instance supervises — only those — by `lease` (with none, the heartbeat alone:
/// `heartbeat_idle.sql`).
pub async fn heartbeat<'e>(
    db: impl PgExecutor<'e>,
    host: &str,
    instance: &str,
    lease: Duration,
    supervised: &[RunId],
) -> crate::Result<Beat> {
    let (ours, draining, leases) = if supervised.is_empty() {
        sqlx::query_as::<_, (bool, bool, i64)>(HEARTBEAT_IDLE)
            .bind(host)
            .bind(instance)
            .fetch_one(db)
            .await?
    } else {
        sqlx::query_as::<_, (bool, bool, i64)>(HEARTBEAT)
            .bind(host)
            .bind(instance)
            .bind(interval::from_duration(lease))
            .bind(supervised.iter().map(|r| r.0).collect::<Vec<_>>())
            .fetch_one(db)
            .await?
    };
    Ok(Beat {
        ours,
        draining,
        leases,
    })
}

/// Records that a run's processes were stopped (`suspended`) or continued (`running`), and
/// clears the request carried out (only that one: a newer request survives).
pub async fn set_suspended<'e>(
    db: impl PgExecutor<'e>,
    run: RunId,
    suspended: bool,
) -> crate::Result<()> {
    sqlx::query(SET_SUSPENDED)
        .bind(run.0)
        .bind(suspended)
        .execute(db)
        .await?;
    Ok(())
}

/// Locks `runs` in ascending id order for the rest of the transaction, as the heartbeat does:
/// the first statement of a transaction that changes several runs.
pub async fn lock_runs(conn: &mut PgConnection, runs: &[RunId]) -> crate::Result<()> {
    sqlx::query(LOCK_RUNS)
        .bind(runs.iter().map(|r| r.0).collect::<Vec<_>>())
        .execute(conn)
        .await?;
    Ok(())
}

/// Records the pids of started runs, in one statement.
pub async fn set_pids(conn: &mut PgConnection, pids: &[(RunId, i32)]) -> crate::Result<()> {
    sqlx::query(SET_PIDS)
        .bind(pids.iter().map(|(r, _)| r.0).collect::<Vec<_>>())
        .bind(pids.iter().map(|(_, p)| *p).collect::<Vec<_>>())
        .execute(conn)
        .await?;
    Ok(())
}

/// How a run ended, as `finish_many` records it.
#[derive(Debug, Clone, PartialEq)]
pub struct Finish<'a> {
    pub run: RunId,
    pub status: RunStatus,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub summary: Option<&'a str>,
    pub error: Option<&'a str>,
    pub finished_at: DateTime<Utc>,
}

/// Records outcomes in one statement through `sisyphus.finish_runs` (compare-and-set each,
/// retries as it does). Returns, per outcome, whether it was recorded: false when the run had
/// already ended otherwise.
///
/// The runs are ended in ascending id order, the order in which the heartbeat renews their
/// leases (an index scan of `id = ANY`): two statements that lock the same runs in different
/// orders deadlock, and the heartbeat is the one PostgreSQL cancels.
pub async fn finish_many(
    conn: &mut PgConnection,
    outcomes: &[Finish<'_>],
) -> crate::Result<Vec<(RunId, bool)>> {
    let mut sorted: Vec<&Finish<'_>> = outcomes.iter().collect();
    sorted.sort_by_key(|x| x.run.0);
    let o = sorted;
    let applied: Vec<(i64, bool)> = sqlx::query_as(FINISH_MANY)
        .bind(o.iter().map(|x| x.run.0).collect::<Vec<_>>())
        .bind(o.iter().map(|x| x.status.as_str()).collect::<Vec<_>>())
        .bind(o.iter().map(|x| x.exit_code).collect::<Vec<_>>())
        .bind(o.iter().map(|x| x.signal).collect::<Vec<_>>())
        .bind(o.iter().map(|x| x.summary).collect::<Vec<_>>())
        .bind(o.iter().map(|x| x.error).collect::<Vec<_>>())
        .bind(o.iter().map(|x| x.finished_at).collect::<Vec<_>>())
        .fetch_all(conn)
        .await?;
    Ok(applied
        .into_iter()
        .map(|(run, recorded)| (RunId(run), recorded))
        .collect())
}

/// The channels a guardian LISTENs on (a [`crate::Listener`]), read as [`Notice`]s.
pub const CHANNELS: &[&str] = &[RUNS_CHANNEL, CONTROL_CHANNEL];

/// What a notification to the guardian means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// Runs may be claimable.
    Runs,
    /// A control request waits.
    Control,
}

impl Notice {
    /// What `heard` means to the guardian of `host`, or None when it is meant for other guardians:
    /// a control request names the run's host (migrations/0003), a run made now the guardians
    /// that should claim it (`wake <host> <host>`, migrations/0021). An empty payload is for
    /// everyone, and so is one this version does not know.
    pub fn for_host(heard: &Notification, host: &str) -> Option<Notice> {
        let notice = Notice::from(heard);
        let payload = heard.payload.as_str();
        let mine = match notice {
            Notice::Control => payload.is_empty() || payload == host,
            Notice::Runs => match payload.strip_prefix("wake ") {
                Some(named) => named.split(' ').any(|h| h == host),
                None => true,
            },
        };
        mine.then_some(notice)
    }
}

impl From<&Notification> for Notice {
    fn from(heard: &Notification) -> Notice {
        match heard.channel.as_str() {
            CONTROL_CHANNEL => Notice::Control,
            _ => Notice::Runs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heard(channel: &str, payload: &str) -> Notification {
        Notification {
            channel: channel.to_string(),
            payload: payload.to_string(),
        }
    }

    #[test]
    fn a_guardian_hears_what_names_it_or_everyone() {
        let runs = |p| Notice::for_host(&heard(RUNS_CHANNEL, p), "b");
        assert_eq!(runs(""), Some(Notice::Runs));
        assert_eq!(runs("wake a b"), Some(Notice::Runs));
        assert_eq!(runs("wake b"), Some(Notice::Runs));
        assert_eq!(runs("wake a c"), None);
        assert_eq!(runs("wake bb"), None);
        assert_eq!(runs("something newer"), Some(Notice::Runs));
        let control = |p| Notice::for_host(&heard(CONTROL_CHANNEL, p), "b");
        assert_eq!(control("b"), Some(Notice::Control));
        assert_eq!(control(""), Some(Notice::Control));
        assert_eq!(control("a"), None);
    }
}
