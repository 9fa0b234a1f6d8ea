//! `sisyphus-bench`: benchmarks that print one table each. Every figure is measured next to a
//! baseline in the same run (these machines are shared and noisy), and reported as a ratio.
//!
//! - `scheduler` — tick cost with 1,000 due jobs among 10,000 and among 1,000,000 defined jobs.
//! - `data-triggers` — tick cost with 10 data-triggered jobs fed each tick among 1,000 and
//!   among 100,000 idle data-triggered jobs.
//! - `calendars` — the leader's tick and overlap look with 20% of 10,000 jobs on calendars and
//!   20% with overlap `skip` (issue 18), against the same jobs without them.
//! - `throughput` — `/bin/true` runs completed end to end per second with 1 and 4 guardians,
//!   against spawning and reaping `/bin/true` at the same concurrency from a plain loop; and the
//!   database path alone (no-op executor) against raw single-statement round trips, with
//!   transactions per run; then the database path with 4 guardians (issue 17): a burn-down of
//!   100,000 pending no-op runs, and the drain with a REPEATABLE READ snapshot held 150 s
//!   against the same drain without one (and how soon autovacuum reclaims after).
//! - `fork` — the fork path: `/bin/true` drained by a real `sisyphus guardian` process (each
//!   way of spawning, and the no-op executor) against a plain spawn loop at the same
//!   concurrency, with CPU per run of the guardian, its children and PostgreSQL; and the spawn
//!   methods from one process, small and with 512 MB of heap.
//! - `fleet` — 200 idle guardians (real ones, in this process) on a cluster of their own:
//!   connections per guardian, the database's idle load (pg_stat_statements, CPU of the
//!   PostgreSQL processes), and the claim statements one `run_now` costs against a wake-up of
//!   every guardian.
//! - `latency` — due time → process started, idle and under half the drain rate, against a
//!   LISTEN/NOTIFY round trip.
//! - `control` — suspend, resume, terminate: SQL call → process in its new state.
//! - `logs` — a chatty job's lines into `run_logs` against `COPY` of the same rows.
//! - `footprint` — a guardian process's memory idle and with 100 runs in flight, idle CPU.
//! - `burndown` — 100,000 pending runs drained (no-op and `/bin/true`), with pickup times.
//! - `health` — the drain while a REPEATABLE READ snapshot is held, dead tuples, autovacuum.
//! - `locks` — a resource lock cycle (lock an input and an output, write) against `SELECT 1`.
//! - `isolation` — boundary cleaning per output line against UTF-8 decoding alone, and a cgroup
//!   per run around spawning `/bin/true` against a process group alone.
//! - `sdk` — a trivial standalone job with the job SDK against the same job with ll.sisyphus.
//! - `access` — access control's cost (issue 15): the guardian's claim/finish path, a run's
//!   control path and `sisyctl runs` over 1,000,000 runs, as the owner and as least-privilege
//!   logins, against a database migrated only through migration 10 (before access control).
//! - `web` — the web dashboard (issue 16) over 10,000 jobs and 1,000,000 runs: the Runs and
//!   Run pages (and the Overview, Jobs and a 100,000-line `log.txt`) over HTTP as an admin and as
//!   a viewer of one project, against the same statements run directly; 200 live event streams:
//!   memory per stream and delivery latency of a new run, against bare connections and LISTEN.
//! - `ll-sisyphus` — an unmodified Python ll.sisyphus job under a guardian (a running one, and
//!   `--once` per run) against the same job started directly, as cron does.
//! - `peers` — the no-op drain against graphile-worker (installed with npm into
//!   `target/peers/` when `node` is there) draining as many jobs on the same cluster,
//!   unbatched and with its local queue.
//! - `profile` — one no-op drain with pg_stat_statements (nested statements too) and sampled
//!   wait events: where a run's database time goes.
//! - `all` — every table above, one after another.
//!
//! Run with `cargo build --release --workspace --examples && target/release/sisyphus-bench
//! <bench>` (`footprint` and `ll-sisyphus` start the `sisyphus` binary built next to it, `sdk` the
//! SDK's `testjob` example).

mod access;
mod calendars;
mod data_triggers;
mod drain;
mod fleet;
mod footprint;
mod fork;
pub(crate) mod health;
mod isolation;
mod latency;
mod ll_sisyphus;
mod locks;
mod logs;
mod notify;
mod peers;
mod profile;
mod sdk;
mod web;

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use sisyphus_client::db::{self, PgConnection};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Runs completed per second, end to end and on the database path alone.
    Throughput {
        /// Runs per measurement.
        #[arg(long, default_value_t = 3000)]
        runs: i64,
        /// Runs each guardian takes at once.
        #[arg(long, default_value_t = 8)]
        capacity: usize,
        /// The database path's extra lines (4 guardians of this capacity, no-op executor):
        /// burn-down of this many pending runs (0: skip it).
        #[arg(long, default_value_t = 100_000)]
        burndown: i64,
        #[arg(long, default_value_t = 32)]
        db_capacity: usize,
        /// The drain with a REPEATABLE READ snapshot held this long, against the same drain
        /// without one for `clean_secs` (0: skip it).
        #[arg(long, default_value_t = 150)]
        held_secs: u64,
        #[arg(long, default_value_t = 30)]
        clean_secs: u64,
    },
    /// The fork path: /bin/true through a real `sisyphus guardian` against a plain spawn loop.
    Fork(fork::Options),
    /// A fleet of idle guardians: connections, idle load, claims per `run_now`.
    Fleet(fleet::Options),
    /// Resource lock cycles against raw round trips.
    Locks {
        #[arg(long, default_value_t = 2000)]
        cycles: usize,
        /// Holders locking at once (distinct outputs, one shared input).
        #[arg(long, default_value_t = 8)]
        holders: usize,
    },
    /// Scheduler tick cost against the number of defined jobs.
    Scheduler {
        /// Defined-job counts to compare (the first is the reference).
        #[arg(long, value_delimiter = ',', default_value = "10000,1000000")]
        defined: Vec<i64>,
        /// Jobs due in each tick.
        #[arg(long, default_value_t = 1000)]
        due: i64,
        /// Measured ticks per size.
        #[arg(long, default_value_t = 60)]
        ticks: usize,
    },
    /// Tick cost with 20% of the jobs on calendars and 20% with overlap `skip`, against none.
    Calendars {
        #[arg(long, default_value_t = 10_000)]
        defined: i64,
        #[arg(long, default_value_t = 1000)]
        due: i64,
        #[arg(long, default_value_t = 60)]
        ticks: usize,
    },
    /// Due time → process started, idle and under load.
    Latency {
        #[arg(long, default_value_t = 200)]
        samples: usize,
    },
    /// SQL call → signal delivered, for suspend, resume and terminate.
    Control {
        #[arg(long, default_value_t = 50)]
        trials: usize,
    },
    /// A chatty job's lines into run_logs against COPY.
    Logs {
        #[arg(long, default_value_t = 100_000)]
        lines: u64,
    },
    /// A guardian process's memory and idle CPU.
    Footprint {
        #[arg(long, default_value_t = 100)]
        in_flight: i64,
    },
    /// Pending runs inserted up front, drained.
    Burndown {
        #[arg(long, default_value_t = 100_000)]
        runs: i64,
        #[arg(long, default_value_t = 32)]
        capacity: usize,
    },
    /// The drain with an old snapshot held; dead tuples; autovacuum.
    Health {
        #[arg(long, default_value_t = 60)]
        clean_secs: u64,
        #[arg(long, default_value_t = 180)]
        held_secs: u64,
    },
    /// A trivial SDK job against the same job in ll.sisyphus (Python).
    Sdk {
        #[arg(long, default_value_t = 30)]
        runs: usize,
    },
    /// An ll.sisyphus job under a guardian against the same job started as cron starts it.
    LlSisyphus {
        #[arg(long, default_value_t = 20)]
        runs: usize,
    },
    /// The outbox on the outcome path (trigger on/off), and delivery against sending alone.
    Notify {
        #[arg(long, default_value_t = 3000)]
        runs: i64,
        #[arg(long, default_value_t = 2000)]
        notifications: i64,
    },
    /// Containment costs: boundary cleaning per line, a cgroup per run.
    Isolation {
        #[arg(long, default_value_t = 1_000_000)]
        lines: usize,
        #[arg(long, default_value_t = 300)]
        runs: usize,
    },
    /// Tick cost with idle data-triggered jobs among the defined ones.
    DataTriggers {
        /// Idle `on_inputs` job counts to compare (the first is the reference).
        #[arg(long, value_delimiter = ',', default_value = "1000,100000")]
        idle: Vec<i64>,
        /// Data-triggered jobs whose inputs are written before each tick.
        #[arg(long, default_value_t = 10)]
        active: i64,
        /// Measured ticks per size.
        #[arg(long, default_value_t = 60)]
        ticks: usize,
    },
    /// Access control's cost: claim/finish, control and listing, with and without it.
    Access(access::Options),
    /// The web dashboard at 1M runs: pages against their statements, 200 event streams.
    Web(web::Options),
    /// The no-op drain against graphile-worker (npm) on the same cluster.
    Peers(peers::Options),
    /// One no-op drain with pg_stat_statements and wait sampling: where the time goes.
    Profile(profile::Options),
    /// Every bench with its defaults.
    All,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut options = pgembed::Options::default();
    if matches!(cli.bench, Bench::Profile(_)) {
        options.settings = profile::settings();
    }
    let cluster = tokio::task::spawn_blocking(|| pgembed::Cluster::start(options))
        .await?
        .context("start a private PostgreSQL")?;
    match cli.bench {
        Bench::Scheduler {
            defined,
            due,
            ticks,
        } => scheduler(&cluster, &defined, due, ticks).await,
        Bench::Calendars {
            defined,
            due,
            ticks,
        } => calendars::calendars(&cluster, defined, due, ticks).await,
        Bench::Throughput {
            runs,
            capacity,
            burndown,
            db_capacity,
            held_secs,
            clean_secs,
        } => {
            drain::throughput(&cluster, runs, capacity).await?;
            println!();
            drain::database_path(&cluster, burndown, db_capacity, clean_secs, held_secs).await
        }
        Bench::Fleet(options) => fleet::fleet(&options).await,
        Bench::Fork(options) => fork::fork(&cluster, &options).await,
        Bench::Locks { cycles, holders } => locks::locks(&cluster, cycles, holders).await,
        Bench::Latency { samples } => latency::latency(&cluster, samples).await,
        Bench::Control { trials } => latency::control(&cluster, trials).await,
        Bench::Logs { lines } => logs::logs(&cluster, lines).await,
        Bench::Footprint { in_flight } => footprint::footprint(&cluster, in_flight).await,
        Bench::Burndown { runs, capacity } => drain::burndown(&cluster, runs, capacity).await,
        Bench::Health {
            clean_secs,
            held_secs,
        } => health::health(&cluster, clean_secs, held_secs).await,
        Bench::Sdk { runs } => sdk::sdk(runs),
        Bench::LlSisyphus { runs } => ll_sisyphus::ll_sisyphus(&cluster, runs).await,
        Bench::Notify {
            runs,
            notifications,
        } => notify::notify(&cluster, runs, notifications).await,
        Bench::Isolation { lines, runs } => isolation::isolation(lines, runs).await,
        Bench::DataTriggers {
            idle,
            active,
            ticks,
        } => data_triggers::data_triggers(&cluster, &idle, active, ticks).await,
        Bench::Access(options) => access::access(&cluster, &options).await,
        Bench::Web(options) => web::web(&cluster, &options).await,
        Bench::Peers(options) => peers::peers(&cluster, &options).await,
        Bench::Profile(options) => profile::profile(&cluster, &options).await,
        Bench::All => all(&cluster).await,
    }
}

/// Every table, with the defaults, separated by blank lines.
async fn all(cluster: &pgembed::Cluster) -> anyhow::Result<()> {
    scheduler(cluster, &[10_000, 1_000_000], 1000, 60).await?;
    println!();
    data_triggers::data_triggers(cluster, &[1_000, 100_000], 10, 60).await?;
    println!();
    calendars::calendars(cluster, 10_000, 1000, 60).await?;
    println!();
    drain::throughput(cluster, 3000, 8).await?;
    println!();
    drain::database_path(cluster, 100_000, 32, 30, 150).await?;
    println!();
    fork::fork(cluster, &fork::Options::default()).await?;
    println!();
    fleet::fleet(&fleet::Options::default()).await?;
    println!();
    latency::latency(cluster, 200).await?;
    println!();
    latency::control(cluster, 50).await?;
    println!();
    logs::logs(cluster, 100_000).await?;
    println!();
    footprint::footprint(cluster, 100).await?;
    println!();
    drain::burndown(cluster, 100_000, 32).await?;
    println!();
    health::health(cluster, 60, 180).await?;
    println!();
    locks::locks(cluster, 2000, 8).await?;
    println!();
    notify::notify(cluster, 3000, 2000).await?;
    println!();
    isolation::isolation(1_000_000, 300).await?;
    println!();
    access::access(cluster, &access::Options::default()).await?;
    println!();
    web::web(cluster, &web::Options::default()).await?;
    println!();
    peers::peers(cluster, &peers::Options::default()).await?;
    println!();
    sdk::sdk(30)?;
    println!();
    ll_sisyphus::ll_sisyphus(cluster, 20).await
}

pub(crate) struct Stats {
    pub p50: Duration,
    pub p90: Duration,
    pub mean: Duration,
}

pub(crate) fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    Stats {
        p50: at(0.5),
        p90: at(0.9),
        mean,
    }
}

/// Percentiles of samples in milliseconds.
pub(crate) struct Percentiles {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

pub(crate) fn percentiles(mut ms: Vec<f64>) -> Percentiles {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| {
        ms.get(((ms.len().max(1) - 1) as f64 * q).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    Percentiles {
        p50: at(0.5),
        p99: at(0.99),
        max: at(1.0),
    }
}

pub(crate) fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

pub(crate) async fn fresh_database(
    cluster: &pgembed::Cluster,
    name: &str,
) -> anyhow::Result<String> {
    let mut admin = db::bench::connect(&cluster.url("postgres")).await?;
    db::bench::drop_database(&mut admin, name).await?;
    db::bench::create_database(&mut admin, name).await?;
    let url = cluster.url(name);
    db::migrate(&url).await?;
    Ok(url)
}

async fn scheduler(
    cluster: &pgembed::Cluster,
    sizes: &[i64],
    due: i64,
    ticks: usize,
) -> anyhow::Result<()> {
    println!("Scheduler tick: {due} due jobs per tick, {ticks} ticks per size\n");
    println!(
        "| defined jobs | tick p50 | tick p90 | tick mean | slots/s at p50 | SELECT 1 p50 (baseline) | tick / baseline | p50 vs first size |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut reference: Option<Duration> = None;
    for &n in sizes {
        let url = fresh_database(cluster, &format!("bench_sched_{n}")).await?;
        let mut conn = db::bench::connect(&url).await?;
        define_jobs(&mut conn, n).await?;
        let base: DateTime<Utc> = db::bench::minute_tomorrow(&mut conn).await?;
        let settings = sisyphus_scheduler::PlanSettings::default();
        let mut tick_times = Vec::with_capacity(ticks);
        let mut round_trips = Vec::with_capacity(ticks);
        for round in 0..(ticks + 5) {
            let now = base + chrono::Duration::minutes(round as i64);
            // Make `due` jobs due at `now` (spread over the id range), outside the timing.
            db::bench::make_due(&mut conn, now, n, due).await?;
            let start = Instant::now();
            db::bench::select_one(&mut conn).await?;
            let rt = start.elapsed();
            let start = Instant::now();
            let report = sisyphus_scheduler::tick(&mut conn, Some(now), &settings, "bench").await?;
            let took = start.elapsed();
            anyhow::ensure!(
                report.jobs as i64 == due,
                "tick saw {} due jobs, expected {due}",
                report.jobs
            );
            anyhow::ensure!(
                report.pending as i64 == due,
                "tick made {} runs, expected {due}",
                report.pending
            );
            if round >= 5 {
                tick_times.push(took);
                round_trips.push(rt);
            }
        }
        let t = stats(tick_times);
        let rt = stats(round_trips);
        let vs_first = reference.map_or("1.00×".to_string(), |r| {
            format!("{:.2}×", t.p50.as_secs_f64() / r.as_secs_f64())
        });
        reference.get_or_insert(t.p50);
        println!(
            "| {n} | {} | {} | {} | {:.0} | {} | {:.0}× | {vs_first} |",
            ms(t.p50),
            ms(t.p90),
            ms(t.mean),
            due as f64 / t.p50.as_secs_f64(),
            ms(rt.p50),
            t.p50.as_secs_f64() / rt.p50.as_secs_f64()
        );
    }
    Ok(())
}

/// Inserts `n` jobs (cron, not due) in one statement, then VACUUM ANALYZE as production would.
async fn define_jobs(conn: &mut PgConnection, n: i64) -> anyhow::Result<()> {
    db::bench::define_cron_jobs(conn, n).await?;
    db::bench::vacuum_analyze(&mut *conn, db::bench::Table::Jobs).await?;
    Ok(())
}
