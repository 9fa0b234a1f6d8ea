//! Draining a queue of pending runs with real guardians (in this process), against baselines that
//! do the same work without Sisyphus.

use std::time::{Duration, Instant};

use sisyphus_client::db::{self, PgPool};
use sisyphus_client::{Client, JobDefinition, RunId};
use std::path::PathBuf;

use sisyphus_guardian::{Config, Executor, Guardian};
use tokio_util::sync::CancellationToken;

use crate::fresh_database;

/// What one drain measured.
pub struct Drain {
    pub runs: i64,
    pub elapsed: Duration,
    /// Transactions committed in the database per run (heartbeats included).
    pub xacts_per_run: f64,
    pub pickup_p50: Duration,
    pub pickup_p99: Duration,
}

impl Drain {
    pub fn per_second(&self) -> f64 {
        self.runs as f64 / self.elapsed.as_secs_f64()
    }
}

/// Inserts `runs` due runs of one `/bin/true` job and drains them with `guardians` guardians.
pub async fn drain(
    cluster: &pgembed::Cluster,
    name: &str,
    runs: i64,
    guardians: usize,
    capacity: usize,
    executor: Executor,
) -> anyhow::Result<Drain> {
    let url = fresh_database(cluster, name).await?;
    let client = Client::connect(&url).await?;
    client
        .apply(&[bench_job("true", &["/bin/true"])], false)
        .await?;
    let pool = client.pool().clone();
    db::bench::insert_pending_runs(&pool, runs).await?;
    db::bench::vacuum_analyze(&pool, db::bench::Table::Runs).await?;
    let xacts_before = xacts(&pool).await?;
    let started = Instant::now();
    let running = Guardians::start(&url, name, guardians, capacity, executor, |_| {}).await?;
    wait_idle(&pool).await?;
    let elapsed = started.elapsed();
    let xacts_after = xacts(&pool).await?;
    running.stop().await;
    let pickup = db::bench::pickup(
        &pool,
        chrono::Utc::now() - chrono::Duration::from_std(elapsed)?,
    )
    .await?;
    let failed = db::bench::unsuccessful_runs(&pool).await?;
    anyhow::ensure!(failed == 0, "{failed} runs did not succeed");
    Ok(Drain {
        runs,
        elapsed,
        xacts_per_run: (xacts_after - xacts_before) as f64 / runs as f64,
        pickup_p50: Duration::from_secs_f64(pickup.p50.max(0.0)),
        pickup_p99: Duration::from_secs_f64(pickup.p99.max(0.0)),
    })
}

/// Guardians running inside this process until [`Guardians::stop`].
pub struct Guardians {
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<sisyphus_guardian::Report>>,
    dir: PathBuf,
}

impl Guardians {
    /// Starts `count` guardians named `bench-N` with `capacity` each; `configure` adjusts the
    /// rest of their configuration.
    pub async fn start(
        url: &str,
        tag: &str,
        count: usize,
        capacity: usize,
        executor: Executor,
        configure: impl Fn(&mut Config),
    ) -> anyhow::Result<Guardians> {
        let stop = CancellationToken::new();
        let dir = std::env::temp_dir().join(format!("sisyphus-bench-{}-{tag}", std::process::id()));
        let mut tasks = Vec::new();
        for g in 0..count {
            let mut config = Config::new(url);
            config.name = format!("bench-{g}");
            config.capacity = capacity;
            config.log_dir = dir.join(format!("logs-{g}"));
            config.spool_dir = dir.join(format!("spool-{g}"));
            config.executor = executor;
            configure(&mut config);
            let guardian = Guardian::start(config).await?;
            tasks.push(tokio::spawn(guardian.run(stop.clone())));
        }
        Ok(Guardians { stop, tasks, dir })
    }

    pub async fn stop(self) {
        self.stop.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A job with unlimited concurrency and a day's TTL, so that a queue of its runs only waits for
/// capacity.
pub fn bench_job(name: &str, command: &[&str]) -> JobDefinition {
    JobDefinition {
        concurrency: Some(1_000_000),
        ttl: Some("24h".into()),
        ..JobDefinition::new("Bench", name, command.iter().copied())
    }
}

/// Inserts `count` runs of job `name` due in `delay_ms` and wakes the guardians, as the
/// scheduler's tick does; returns their ids.
pub async fn insert_due(
    pool: &PgPool,
    name: &str,
    count: i64,
    delay_ms: f64,
) -> anyhow::Result<Vec<RunId>> {
    let mut tx = pool.begin().await?;
    let ids = db::bench::insert_due_runs(&mut tx, name, count, delay_ms).await?;
    db::scheduler::notify_runs(&mut *tx).await?;
    tx.commit().await?;
    Ok(ids)
}

/// Waits until no run is pending or running. Probes the partial indexes only: a count over
/// `runs` every few milliseconds would itself eat a core once the table is large.
pub async fn wait_idle(pool: &PgPool) -> anyhow::Result<()> {
    loop {
        if !db::bench::runs_busy(pool).await? {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn xacts(pool: &PgPool) -> anyhow::Result<i64> {
    // Statistics are flushed lazily; ask for a fresh snapshot.
    let _ = db::bench::clear_stats_snapshot(pool).await;
    Ok(db::bench::committed_transactions(pool).await?)
}

/// Spawns and reaps `/bin/true` `runs` times, `concurrency` at a time, from a plain loop.
pub async fn spawn_baseline(runs: i64, concurrency: usize) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    let mut launched = 0;
    while launched < runs || !set.is_empty() {
        while launched < runs && set.len() < concurrency {
            set.spawn(async {
                let status = tokio::process::Command::new("/bin/true").status().await;
                status.map(|s| s.success()).unwrap_or(false)
            });
            launched += 1;
        }
        if let Some(done) = set.join_next().await {
            anyhow::ensure!(done.unwrap_or(false), "/bin/true failed");
        }
    }
    Ok(runs as f64 / started.elapsed().as_secs_f64())
}

/// Single-statement transactions per second over `connections` connections for `secs` seconds
/// (pgbench's simple-update style: one round trip, one commit each).
pub async fn round_trip_baseline(url: &str, connections: usize, secs: f64) -> anyhow::Result<f64> {
    let mut setup = db::bench::connect(url).await?;
    db::bench::create_counters(&mut setup).await?;
    db::bench::fill_counters(&mut setup).await?;
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for c in 0..connections {
        let url = url.to_string();
        tasks.push(tokio::spawn(async move {
            let mut conn = db::bench::connect(&url).await?;
            let mut n = 0u64;
            while Instant::now() < deadline {
                db::bench::bump_counter(&mut conn, ((n as usize * 7 + c * 131) % 1000 + 1) as i32)
                    .await?;
                n += 1;
            }
            anyhow::Ok(n)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    Ok(total as f64 / secs)
}

/// The throughput table.
pub async fn throughput(
    cluster: &pgembed::Cluster,
    runs: i64,
    capacity: usize,
) -> anyhow::Result<()> {
    println!("End-to-end throughput: {runs} runs of /bin/true per line, capacity {capacity} per guardian\n");
    println!("| what | runs/s | baseline | baseline runs/s | ratio | txns/run | pickup p50 | pickup p99 |");
    println!("|---|---:|---|---:|---:|---:|---:|---:|");
    for guardians in [1usize, 4] {
        let d = drain(
            cluster,
            &format!("bench_true_{guardians}"),
            runs,
            guardians,
            capacity,
            Executor::Process,
        )
        .await?;
        let base = spawn_baseline(runs, guardians * capacity).await?;
        println!(
            "| /bin/true, {guardians} guardian(s) | {:.0} | spawn+reap at concurrency {} | {base:.0} | {:.0}% | {:.2} | {} | {} |",
            d.per_second(),
            guardians * capacity,
            100.0 * d.per_second() / base,
            d.xacts_per_run,
            crate::ms(d.pickup_p50),
            crate::ms(d.pickup_p99),
        );
    }
    for guardians in [1usize, 4] {
        let name = format!("bench_noop_{guardians}");
        let d = drain(
            cluster,
            &name,
            runs * 3,
            guardians,
            capacity,
            Executor::Noop,
        )
        .await?;
        let base = round_trip_baseline(&cluster.url(&name), guardians, 3.0).await?;
        println!(
            "| no-op executor, {guardians} guardian(s) | {:.0} | single-statement txns on {guardians} connection(s) | {base:.0} | {:.0}% | {:.2} | {} | {} |",
            d.per_second(),
            100.0 * d.per_second() / base,
            d.xacts_per_run,
            crate::ms(d.pickup_p50),
            crate::ms(d.pickup_p99),
        );
    }
    Ok(())
}

/// Issue 17's targets for the database path (no-op executor, 4 guardians, concurrency
/// unlimited): what this bench compares with besides its measured baselines.
const BURNDOWN_TARGET: f64 = 5_000.0;
const HELD_TARGET: f64 = 0.90;

/// The database path under a deep backlog and under a held snapshot: `burndown` pending no-op
/// runs drained by 4 guardians of `capacity` (against single-statement transactions on 4
/// connections, and issue 17's 5,000 runs/s); then batches of 2,000 no-op runs drained for
/// `clean_secs`, and again for `held_secs` while another session holds a REPEATABLE READ
/// snapshot that has read `runs` (against the clean figure), with the dead tuples of `runs` and
/// how long autovacuum takes to reclaim them once the snapshot is released.
pub async fn database_path(
    cluster: &pgembed::Cluster,
    burndown: i64,
    capacity: usize,
    clean_secs: u64,
    held_secs: u64,
) -> anyhow::Result<()> {
    println!("The database path: no-op executor, 4 guardians of capacity {capacity}, concurrency unlimited\n");
    println!(
        "| what | runs | runs/s | baseline | baseline runs/s | ratio | pickup p99 / dead tuples |"
    );
    println!("|---|---:|---:|---|---:|---:|---|");
    if burndown > 0 {
        let name = "bench_burn_db";
        let d = drain(cluster, name, burndown, 4, capacity, Executor::Noop).await?;
        let base = round_trip_baseline(&cluster.url(name), 4, 3.0).await?;
        println!(
            "| burn-down of {burndown} pending runs | {burndown} | {:.0} | single-statement txns on 4 connections | {base:.0} | {:.0}% (target {BURNDOWN_TARGET:.0} runs/s: {:.2}×) | pickup p99 {} |",
            d.per_second(),
            100.0 * d.per_second() / base,
            d.per_second() / BURNDOWN_TARGET,
            crate::ms(d.pickup_p99),
        );
    }
    if held_secs > 0 {
        let url = fresh_database(cluster, "bench_held_db").await?;
        let client = Client::connect(&url).await?;
        client
            .apply(&[bench_job("noop", &["/bin/true"])], false)
            .await?;
        let pool = client.pool().clone();
        let guardians = Guardians::start(&url, "held", 4, capacity, Executor::Noop, |_| {}).await?;
        let clean =
            crate::health::drain_for(&pool, "noop", Duration::from_secs(clean_secs)).await?;
        let holder = db::bench::hold_snapshot(&url).await?;
        let held = crate::health::drain_for(&pool, "noop", Duration::from_secs(held_secs)).await?;
        let held_dead = crate::health::dead_tuples(&pool).await?;
        holder.release().await?;
        let released = Instant::now();
        let mut after = held_dead;
        while released.elapsed() < Duration::from_secs(180) {
            tokio::time::sleep(Duration::from_secs(5)).await;
            after = crate::health::dead_tuples(&pool).await?;
            if after.runs * 10 < held_dead.runs.max(1) {
                break;
            }
        }
        guardians.stop().await;
        println!(
            "| batches of 2,000, REPEATABLE READ snapshot held {held_secs} s | {} | {:.0} | the same without a snapshot, {clean_secs} s | {:.0} | {:.0}% (target {:.0}%) | dead tuples in runs: {} at release, {} after {:.0} s |",
            held.0,
            held.1,
            clean.1,
            100.0 * held.1 / clean.1,
            100.0 * HELD_TARGET,
            held_dead.runs,
            after.runs,
            released.elapsed().as_secs_f64(),
        );
    }
    Ok(())
}

/// The burn-down table: `runs` pending runs inserted up front, drained by one guardian.
pub async fn burndown(
    cluster: &pgembed::Cluster,
    runs: i64,
    capacity: usize,
) -> anyhow::Result<()> {
    println!(
        "Burn-down: {runs} pending runs inserted up front, one guardian, capacity {capacity}\n"
    );
    println!("| executor | seconds | runs/s | baseline | baseline/s | ratio | txns/run | pickup p50 | pickup p99 |");
    println!("|---|---:|---:|---|---:|---:|---:|---:|---:|");
    for (label, executor) in [("no-op", Executor::Noop), ("/bin/true", Executor::Process)] {
        let name = format!(
            "bench_burn_{}",
            if executor == Executor::Noop {
                "noop"
            } else {
                "true"
            }
        );
        let d = drain(cluster, &name, runs, 1, capacity, executor).await?;
        let (what, base) = if executor == Executor::Noop {
            (
                "single-statement txns",
                round_trip_baseline(&cluster.url(&name), 1, 3.0).await?,
            )
        } else {
            (
                "spawn+reap /bin/true",
                spawn_baseline(runs.min(20_000), capacity).await?,
            )
        };
        println!(
            "| {label} | {:.1} | {:.0} | {what} | {base:.0} | {:.0}% | {:.2} | {} | {} |",
            d.elapsed.as_secs_f64(),
            d.per_second(),
            100.0 * d.per_second() / base,
            d.xacts_per_run,
            crate::ms(d.pickup_p50),
            crate::ms(d.pickup_p99),
        );
    }
    Ok(())
}
