//! What access control costs (issue 15; migrations 0011 and 0012: row-level security, SECURITY
//! DEFINER wrappers that check the caller, audit rows), each figure next to the same work on a
//! database migrated only through migration 10 — before access control — in the same run, on the
//! same cluster:
//!
//! 1. The guardian's database path: claim a batch of due runs for host `h1`
//!    (`sql/guardian/claim.sql`) and record their outcomes in one statement
//!    (`sql/guardian/finish_many.sql`), until none is left: (a) before access control, as the
//!    owner; (b) the full schema as the owner (the wrappers run, row-level security does not
//!    apply); (c) the full schema as a guardian login bound to `h1` (the wrappers check the host
//!    binding, the policies apply). Rounds interleaved a, b, c, a, b, c, …; medians reported.
//! 2. A run's control path: `sisyphus.suspend` and `sisyphus.terminate` on a running run through
//!    `Client::control`: (a) before, as the owner; (b) full schema, as the owner; (c) full schema,
//!    as an operator of `*` (the grant checked, an audit row written each call). The request is
//!    cleared between calls (untimed), so every call does the whole work.
//! 3. `sisyctl runs` (`Client::runs` with its default limit, 50 newest) over 1,000,000 finished
//!    runs of 1,000 jobs in 10 projects: as the owner, a viewer of `*`, a viewer of `P3.*`, a
//!    viewer of a project without runs; with `--job P3/job7`; and with `--before-listing`, before
//!    access control as the owner.

use std::time::{Duration, Instant};

use chrono::Utc;
use sisyphus_client::access::{GrantLevel, LoginKind};
use sisyphus_client::db::{self, PgPool};
use sisyphus_client::{Client, ControlAction, JobRef, Run, RunFilter, RunId, RunStatus};

use crate::{fresh_database, percentiles};

/// The last migration before access control (0011).
const BEFORE: i64 = 10;
/// The host name the guardian path claims for (and the guardian login is bound to).
const HOST: &str = "h1";
const GUARDIAN: &str = "bench_guardian";
const OPERATOR: &str = "bench_operator";
const VIEWER_ALL: &str = "bench_viewer_all";
const VIEWER_P3: &str = "bench_viewer_p3";
const VIEWER_QUIET: &str = "bench_viewer_quiet";
/// `sisyctl runs`' default `--limit`.
const LIST_LIMIT: i64 = 50;

const RUNS: i64 = 2000;
const BATCH: i32 = 32;
const ROUNDS: usize = 5;
const CALLS: usize = 200;
const LISTED: i64 = 1_000_000;
const LISTS: usize = 20;

#[derive(clap::Args, Debug, Clone)]
pub struct Options {
    /// Pending no-op runs claimed and finished per measurement.
    #[arg(long, default_value_t = RUNS)]
    pub runs: i64,
    /// Runs claimed at once (a guardian's free capacity).
    #[arg(long, default_value_t = BATCH)]
    pub batch: i32,
    /// Interleaved rounds of the claim/finish and control measurements (medians reported).
    #[arg(long, default_value_t = ROUNDS)]
    pub rounds: usize,
    /// Control calls per setup and round (suspend and terminate alternately).
    #[arg(long, default_value_t = CALLS)]
    pub calls: usize,
    /// Finished runs in the listing databases.
    #[arg(long, default_value_t = LISTED)]
    pub listed: i64,
    /// Listings timed per case (median reported).
    #[arg(long, default_value_t = LISTS)]
    pub lists: usize,
    /// Also list as the owner on a database migrated through 0010 (fills a second database
    /// with the same history: about a minute more).
    #[arg(long)]
    pub before_listing: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            runs: RUNS,
            batch: BATCH,
            rounds: ROUNDS,
            calls: CALLS,
            listed: LISTED,
            lists: LISTS,
            before_listing: false,
        }
    }
}

/// Which schema a database gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Schema {
    /// Migrated through [`BEFORE`] only.
    Before,
    /// Every migration.
    Full,
}

/// The three tables.
pub async fn access(cluster: &pgembed::Cluster, o: &Options) -> anyhow::Result<()> {
    anyhow::ensure!(
        o.runs > 0 && o.batch > 0 && o.rounds > 0 && o.calls > 0 && o.lists > 0,
        "--runs, --batch, --rounds, --calls and --lists must be positive"
    );
    anyhow::ensure!(
        o.listed >= 1000 * LIST_LIMIT,
        "--listed must be at least {} (every job needs runs to list)",
        1000 * LIST_LIMIT
    );
    claim_finish(cluster, o).await?;
    println!();
    control(cluster, o).await?;
    println!();
    listing(cluster, o).await
}

/// A fresh database `name` with `schema`; its URL as the owner (the cluster's superuser). A
/// database before access control also gets the few columns later migrations added that
/// today's statements read ([`db::bench::add_later_columns`]).
async fn database(
    cluster: &pgembed::Cluster,
    name: &str,
    schema: Schema,
) -> anyhow::Result<String> {
    if schema == Schema::Full {
        return fresh_database(cluster, name).await;
    }
    let mut admin = db::bench::connect(&cluster.url("postgres")).await?;
    db::bench::drop_database(&mut admin, name).await?;
    db::bench::create_database(&mut admin, name).await?;
    let url = cluster.url(name);
    let reached = db::bench::migrate_through(&url, BEFORE).await?;
    anyhow::ensure!(
        reached == BEFORE,
        "{name} was migrated to version {reached}, not {BEFORE}"
    );
    // Today's statements read a few columns added since (empty here, as they would be there).
    db::bench::add_later_columns(&mut db::bench::connect(&url).await?).await?;
    Ok(url)
}

/// The URL of database `name` for `login` (the cluster trusts local logins).
fn login_url(cluster: &pgembed::Cluster, login: &str, name: &str) -> String {
    format!("postgres://{login}@127.0.0.1:{}/{name}", cluster.port())
}

/// A pool on `url` for the bench's own fixtures and checks, as whoever `url` names.
async fn pool(url: &str) -> anyhow::Result<PgPool> {
    Ok(db::pool(url, "sisyphus-bench", 2).await?)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    match xs.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => xs[n / 2],
        n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

fn min_max(xs: &[f64]) -> (f64, f64) {
    xs.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

// 1. The guardian's database path.

/// One setup of the claim/finish path: whose database, and who claims.
struct Drainer {
    label: &'static str,
    /// The owner's pool on the setup's database: fixtures and checks.
    owner: PgPool,
    /// The URL the claims and outcomes go through.
    measured: String,
}

async fn claim_finish(cluster: &pgembed::Cluster, o: &Options) -> anyhow::Result<()> {
    let before = database(cluster, "bench_access_claim_before", Schema::Before).await?;
    let full = database(cluster, "bench_access_claim_owner", Schema::Full).await?;
    let guarded_db = "bench_access_claim_guardian";
    let guarded = database(cluster, guarded_db, Schema::Full).await?;
    Client::connect(&guarded)
        .await?
        .add_login(GUARDIAN, None, LoginKind::Guardian, &[HOST.to_string()])
        .await?;
    let setups = [
        Drainer {
            label: "(a) before access control (migrated through 0010), owner",
            owner: pool(&before).await?,
            measured: before.clone(),
        },
        Drainer {
            label: "(b) full schema, owner (checking wrappers; row-level security bypassed)",
            owner: pool(&full).await?,
            measured: full.clone(),
        },
        Drainer {
            label: "(c) full schema, guardian login bound to h1 (host checked; policies apply)",
            owner: pool(&guarded).await?,
            measured: login_url(cluster, GUARDIAN, guarded_db),
        },
    ];
    for s in &setups {
        db::bench::define_project_jobs(&s.owner, 1, 1).await?;
    }
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); setups.len()];
    for _ in 0..o.rounds {
        for (s, rates) in setups.iter().zip(&mut rates) {
            rates.push(drain_once(s, o.runs, o.batch).await?);
        }
    }

    println!(
        "Access control: the guardian's database path — claim {} due no-op runs for host h1 in \
         batches of {} (sql/guardian/claim.sql), each batch's outcomes in one statement \
         (sql/guardian/finish_many.sql); {} rounds interleaved a, b, c, …, median\n",
        o.runs, o.batch, o.rounds
    );
    println!("| setup | runs/s (median) | min–max | vs (a) |");
    println!("|---|---:|---:|---:|");
    let reference = median(rates[0].clone());
    for (s, rates) in setups.iter().zip(rates) {
        let (lo, hi) = min_max(&rates);
        let m = median(rates);
        println!(
            "| {} | {m:.0} | {lo:.0}–{hi:.0} | {:.2}× |",
            s.label,
            m / reference
        );
    }
    Ok(())
}

/// Queues `runs` due runs and claims and finishes them all through `s.measured`, `batch` at a
/// time, as a guardian's no-op executor would; the rate, after checking that every run was
/// claimed once and ended successful.
async fn drain_once(s: &Drainer, runs: i64, batch: i32) -> anyhow::Result<f64> {
    db::bench::delete_finished_runs(&s.owner).await?;
    db::bench::insert_pending_runs(&s.owner, runs).await?;
    db::bench::vacuum_analyze(&s.owner, db::bench::Table::Runs).await?;
    let mut conn = db::bench::connect(&s.measured).await?;
    let lease = Duration::from_secs(600);
    let (mut claimed, mut recorded) = (0i64, 0i64);
    let started = Instant::now();
    loop {
        let batch = db::guardian::claim(&mut conn, HOST, &[], batch, lease).await?;
        if batch.is_empty() {
            break;
        }
        claimed += batch.len() as i64;
        let finished_at = Utc::now();
        let outcomes: Vec<db::guardian::Finish<'_>> = batch
            .iter()
            .map(|c| db::guardian::Finish {
                run: c.id,
                status: RunStatus::Successful,
                exit_code: Some(0),
                signal: None,
                summary: None,
                error: None,
                finished_at,
            })
            .collect();
        let applied = db::guardian::finish_many(&mut conn, &outcomes).await?;
        recorded += applied.iter().filter(|(_, ok)| *ok).count() as i64;
    }
    let elapsed = started.elapsed();
    drop(conn);
    anyhow::ensure!(
        claimed == runs && recorded == runs,
        "{}: claimed {claimed} and recorded {recorded} of {runs} runs",
        s.label
    );
    let successful = db::bench::count_runs_with_status(&s.owner, RunStatus::Successful).await?;
    anyhow::ensure!(
        successful == runs && !db::bench::runs_busy(&s.owner).await?,
        "{}: {successful} of {runs} runs successful afterwards, or some still pending/running",
        s.label
    );
    Ok(runs as f64 / elapsed.as_secs_f64())
}

// 2. The control path.

/// One setup of the control path.
struct Controller {
    label: &'static str,
    client: Client,
    /// The owner's pool on the setup's database: clears the request between calls.
    owner: PgPool,
    run: RunId,
}

async fn control(cluster: &pgembed::Cluster, o: &Options) -> anyhow::Result<()> {
    let before = database(cluster, "bench_access_ctl_before", Schema::Before).await?;
    let full_db = "bench_access_ctl_full";
    let full = database(cluster, full_db, Schema::Full).await?;
    let (before_pool, full_pool) = (pool(&before).await?, pool(&full).await?);
    let mut runs = Vec::new();
    for p in [&before_pool, &full_pool] {
        runs.push(running_run(p).await?);
    }
    let owner = Client::connect(&full).await?;
    owner
        .add_login(OPERATOR, None, LoginKind::User, &[])
        .await?;
    owner.grant(OPERATOR, GrantLevel::Operator, "*").await?;
    let setups = [
        Controller {
            label: "(a) before access control (0010), owner",
            client: Client::from_pool(before_pool.clone()),
            owner: before_pool.clone(),
            run: runs[0],
        },
        Controller {
            label: "(b) full schema, owner (wrapper, audit row)",
            client: owner,
            owner: full_pool.clone(),
            run: runs[1],
        },
        Controller {
            label: "(c) full schema, operator of * (grant checked, audit row)",
            client: Client::connect(&login_url(cluster, OPERATOR, full_db)).await?,
            owner: full_pool.clone(),
            run: runs[1],
        },
    ];
    // Per setup: suspend samples, terminate samples (ms).
    let mut samples: Vec<[Vec<f64>; 2]> = vec![[Vec::new(), Vec::new()]; setups.len()];
    for _ in 0..o.rounds {
        for (s, samples) in setups.iter().zip(&mut samples) {
            for call in 0..o.calls {
                let (action, k) = if call % 2 == 0 {
                    (ControlAction::Suspend, 0)
                } else {
                    (ControlAction::Terminate, 1)
                };
                db::bench::clear_requested(&s.owner, s.run).await?;
                let started = Instant::now();
                let answer = s.client.control(s.run, action).await?;
                let took = started.elapsed();
                anyhow::ensure!(
                    answer == "requested",
                    "{}: {action} answered {answer}, not requested",
                    s.label
                );
                samples[k].push(took.as_secs_f64() * 1000.0);
            }
        }
    }
    for p in [&before_pool, &full_pool] {
        let running = db::bench::count_runs_with_status(p, RunStatus::Running).await?;
        anyhow::ensure!(running == 1, "{running} runs running, not the 1 controlled");
    }
    let audited = db::bench::count_run_audit(&full_pool).await?;
    let calls = (2 * o.rounds * o.calls) as i64;
    anyhow::ensure!(
        audited == calls,
        "{audited} audit rows of control actions for {calls} calls on the full schema"
    );

    println!(
        "Access control: a run's control path — Client::control (sisyphus.suspend / \
         sisyphus.terminate → request_control) on a running run, {} calls per setup and action \
         ({} rounds interleaved a, b, c), the request cleared between calls (untimed)\n",
        o.rounds * o.calls / 2,
        o.rounds
    );
    println!("| setup | suspend p50 | suspend p99 | terminate p50 | terminate p99 | p50 vs (a) |");
    println!("|---|---:|---:|---:|---:|---:|");
    let mut reference = None;
    for (s, [suspend, terminate]) in setups.iter().zip(samples) {
        let (su, te) = (percentiles(suspend), percentiles(terminate));
        let both = (su.p50 + te.p50) / 2.0;
        let base = *reference.get_or_insert(both);
        println!(
            "| {} | {:.3} ms | {:.3} ms | {:.3} ms | {:.3} ms | {:.2}× |",
            s.label,
            su.p50,
            su.p99,
            te.p50,
            te.p99,
            both / base
        );
    }
    Ok(())
}

/// Defines one job, queues one run of it and claims it for [`HOST`] as the owner: a running run
/// that nobody carries requests out for.
async fn running_run(owner: &PgPool) -> anyhow::Result<RunId> {
    db::bench::define_project_jobs(owner, 1, 1).await?;
    db::bench::insert_pending_runs(owner, 1).await?;
    let mut conn = owner.acquire().await?;
    let claimed =
        db::guardian::claim(&mut conn, HOST, &[], 1, Duration::from_secs(24 * 3600)).await?;
    match claimed.as_slice() {
        [one] => Ok(one.id),
        other => anyhow::bail!("claimed {} runs for the control bench, not 1", other.len()),
    }
}

// 3. `sisyctl runs` over a large history.

/// One listing timed: who lists, what.
struct Listing {
    what: &'static str,
    who: &'static str,
    client: Client,
    filter: RunFilter,
    /// The runs it must return, and a check of each one's job.
    rows: usize,
    project: Option<&'static str>,
    /// The row the ratio is taken against (the owner's on the full schema, same filter).
    reference: usize,
}

async fn listing(cluster: &pgembed::Cluster, o: &Options) -> anyhow::Result<()> {
    let (projects, per_project) = (10, 100);
    let started = Instant::now();
    let full_db = "bench_access_list";
    let full = database(cluster, full_db, Schema::Full).await?;
    fill(&pool(&full).await?, projects, per_project, o.listed).await?;
    let filled = started.elapsed();
    let owner = Client::connect(&full).await?;
    for (login, pattern) in [
        (VIEWER_ALL, "*"),
        (VIEWER_P3, "P3.*"),
        (VIEWER_QUIET, "Quiet.*"),
    ] {
        owner.add_login(login, None, LoginKind::User, &[]).await?;
        owner.grant(login, GrantLevel::Viewer, pattern).await?;
    }
    let before = if !o.before_listing {
        None
    } else {
        let url = database(cluster, "bench_access_list_before", Schema::Before).await?;
        let p = pool(&url).await?;
        fill(&p, projects, per_project, o.listed).await?;
        Some(Client::from_pool(p))
    };
    let as_login = |login: &str| {
        let url = login_url(cluster, login, full_db);
        async move { Client::connect(&url).await }
    };
    let newest = RunFilter {
        limit: Some(LIST_LIMIT),
        ..RunFilter::default()
    };
    let of_job = RunFilter {
        limit: Some(LIST_LIMIT),
        ..RunFilter::for_job(&JobRef::new("P3", "job7"))
    };
    let all_runs = "newest 50 (sisyctl runs)";
    let job_runs = "--job P3/job7";
    let limit = LIST_LIMIT as usize;
    let mut cases = vec![
        Listing {
            what: all_runs,
            who: "owner",
            client: owner.clone(),
            filter: newest.clone(),
            rows: limit,
            project: None,
            reference: 0,
        },
        Listing {
            what: all_runs,
            who: "viewer of *",
            client: as_login(VIEWER_ALL).await?,
            filter: newest.clone(),
            rows: limit,
            project: None,
            reference: 0,
        },
        Listing {
            what: all_runs,
            who: "viewer of P3.* (10% of the runs)",
            client: as_login(VIEWER_P3).await?,
            filter: newest.clone(),
            rows: limit,
            project: Some("P3"),
            reference: 0,
        },
        Listing {
            what: all_runs,
            who: "viewer of Quiet.* (a project without runs)",
            client: as_login(VIEWER_QUIET).await?,
            filter: newest.clone(),
            rows: 0,
            project: None,
            reference: 0,
        },
        Listing {
            what: job_runs,
            who: "owner",
            client: owner.clone(),
            filter: of_job.clone(),
            rows: limit,
            project: Some("P3"),
            reference: 4,
        },
        Listing {
            what: job_runs,
            who: "viewer of P3.*",
            client: as_login(VIEWER_P3).await?,
            filter: of_job.clone(),
            rows: limit,
            project: Some("P3"),
            reference: 4,
        },
    ];
    if let Some(client) = before {
        cases.push(Listing {
            what: all_runs,
            who: "owner, before access control (0010)",
            client: client.clone(),
            filter: newest,
            rows: limit,
            project: None,
            reference: 0,
        });
        cases.push(Listing {
            what: job_runs,
            who: "owner, before access control (0010)",
            client,
            filter: of_job,
            rows: limit,
            project: Some("P3"),
            reference: 4,
        });
    }
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    for _ in 0..o.lists {
        for (c, times) in cases.iter().zip(&mut times) {
            let started = Instant::now();
            let runs = c.client.runs(&c.filter).await?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            check_listing(c, &runs)?;
        }
    }

    println!(
        "Access control: `sisyctl runs` (Client::runs, limit 50, newest first) over {} finished \
         runs of {} jobs in {projects} projects (filled and vacuumed in {:.0} s), {} calls each \
         interleaved, median\n",
        o.listed,
        projects * per_project,
        filled.as_secs_f64(),
        o.lists
    );
    println!("| listing | login | rows | median | max | vs owner |");
    println!("|---|---|---:|---:|---:|---:|");
    let medians: Vec<f64> = times.iter().map(|t| median(t.clone())).collect();
    for ((c, t), m) in cases.iter().zip(&times).zip(&medians) {
        let (_, hi) = min_max(t);
        println!(
            "| {} | {} | {} | {m:.2} ms | {hi:.2} ms | {:.2}× |",
            c.what,
            c.who,
            c.rows,
            m / medians[c.reference]
        );
    }
    Ok(())
}

/// `projects` × `per_project` jobs, a job without runs (`Quiet/job0`), `runs` finished runs over
/// the first ones; vacuumed and analysed as autovacuum would have.
async fn fill(owner: &PgPool, projects: i64, per_project: i64, runs: i64) -> anyhow::Result<()> {
    db::bench::define_project_jobs(owner, projects, per_project).await?;
    db::bench::define_quiet_job(owner).await?;
    db::bench::insert_finished_runs(owner, runs).await?;
    db::bench::vacuum_analyze(owner, db::bench::Table::Jobs).await?;
    db::bench::vacuum_analyze(owner, db::bench::Table::Runs).await?;
    Ok(())
}

/// Fails unless a listing returned what its login may see.
fn check_listing(c: &Listing, runs: &[Run]) -> anyhow::Result<()> {
    anyhow::ensure!(
        runs.len() == c.rows,
        "{} as {}: {} runs listed, expected {}",
        c.what,
        c.who,
        runs.len(),
        c.rows
    );
    if let Some(project) = c.project {
        let prefix = format!("{project}/");
        if let Some(other) = runs.iter().find(|r| !r.job.starts_with(&prefix)) {
            anyhow::bail!(
                "{} as {}: run {} of {} listed, outside {project}",
                c.what,
                c.who,
                other.id,
                other.job
            );
        }
    }
    Ok(())
}
