//! Start latency: from a run's due time to its process having started, idle and under load;
//! and the control path: from the SQL call to the signal. Both are compared with the
//! physical floor of their design, a LISTEN/NOTIFY round trip on the same database.

use std::time::{Duration, Instant};

use sisyphus_client::db::{self, PgPool};
use sisyphus_client::{Client, ControlAction, RunId, RunStatus};
use sisyphus_guardian::Executor;
use tokio_util::sync::CancellationToken;

use crate::drain::{bench_job, insert_due, wait_idle, Guardians};
use crate::{fresh_database, percentiles, Percentiles};

/// The start-latency table.
pub async fn latency(cluster: &pgembed::Cluster, samples: usize) -> anyhow::Result<()> {
    let url = fresh_database(cluster, "bench_latency").await?;
    let client = Client::connect(&url).await?;
    let jobs = [
        bench_job("probe", &["/bin/date", "+%s.%N"]),
        bench_job("load", &["/bin/true"]),
    ];
    client.apply(&jobs, false).await?;
    let pool = client.pool().clone();
    let guardians = Guardians::start(&url, "latency", 1, 8, Executor::Process, |_| {}).await?;
    // The load: half of what one guardian drains per second, measured here.
    let started = Instant::now();
    insert_due(&pool, "load", 2000, 0.0).await?;
    wait_idle(&pool).await?;
    let rate = 2000.0 / started.elapsed().as_secs_f64() / 2.0;
    let idle = probe(&pool, samples, None).await?;
    let loaded = probe(&pool, samples, Some(rate)).await?;
    guardians.stop().await;
    let floor = notify_round_trips(&pool, &url, samples).await?;

    println!("Start latency: due time → process started (the process prints its own start time), {samples} probes each, one guardian of capacity 8\n");
    println!("| condition | p50 | p99 | max | NOTIFY round trip p50 (baseline) | p50 / baseline |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (what, p) in [
        ("idle".to_string(), idle),
        (
            format!("under load: {rate:.0} /bin/true runs/s (half the measured drain rate)"),
            loaded,
        ),
    ] {
        row(&what, &p, &floor);
    }
    Ok(())
}

/// One table row: percentiles of `p` and their ratio to the NOTIFY round trip `floor`.
fn row(what: &str, p: &Percentiles, floor: &Percentiles) {
    println!(
        "| {what} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.1}× |",
        p.p50,
        p.p99,
        p.max,
        floor.p50,
        p.p50 / floor.p50
    );
}

/// Inserts `samples` probe runs, one every 20 ms, each due 100 ms after its insertion, with
/// `load` runs per second of `/bin/true` inserted meanwhile; returns the latencies in ms.
async fn probe(pool: &PgPool, samples: usize, load: Option<f64>) -> anyhow::Result<Percentiles> {
    let stop = CancellationToken::new();
    let loader = load.map(|rate| {
        let (pool, stop) = (pool.clone(), stop.clone());
        tokio::spawn(async move {
            let mut owed = 0.0;
            while !stop.is_cancelled() {
                owed += rate * 0.02;
                let now = owed.floor();
                if now >= 1.0 {
                    insert_due(&pool, "load", now as i64, 0.0).await?;
                    owed -= now;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            anyhow::Ok(())
        })
    });
    let mut ids = Vec::with_capacity(samples);
    for _ in 0..samples {
        ids.extend(insert_due(pool, "probe", 1, 100.0).await?);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    if let Some(l) = loader {
        l.await??;
    }
    wait_idle(pool).await?;
    let rows = db::bench::probe_starts(pool, &ids).await?;
    anyhow::ensure!(
        rows.len() == samples,
        "{} of {samples} probes printed their start",
        rows.len()
    );
    let mut ms = Vec::with_capacity(samples);
    for row in rows {
        let started: f64 = row.printed.trim().parse()?;
        ms.push((started - row.due) * 1000.0);
    }
    Ok(percentiles(ms))
}

/// LISTEN/NOTIFY round trips on the same database: the floor for waking a guardian.
pub async fn notify_round_trips(pool: &PgPool, url: &str, n: usize) -> anyhow::Result<Percentiles> {
    let channels = [db::bench::FLOOR_CHANNEL];
    let mut floor = db::Listener::connect(url, "sisyphus bench (listen)", &channels).await?;
    let mut ms = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        db::bench::notify_floor(pool).await?;
        floor.recv().await?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(percentiles(ms))
}

/// The control table: suspend, resume and terminate through SQL, until the process is seen in
/// the new state.
pub async fn control(cluster: &pgembed::Cluster, trials: usize) -> anyhow::Result<()> {
    let url = fresh_database(cluster, "bench_control").await?;
    let client = Client::connect(&url).await?;
    client
        .apply(&[bench_job("sleeper", &["/bin/sleep", "600"])], false)
        .await?;
    let pool = client.pool().clone();
    let guardians = Guardians::start(&url, "control", 1, trials, Executor::Process, |_| {}).await?;
    let ids = insert_due(&pool, "sleeper", trials as i64, 0.0).await?;
    let pids = loop {
        let pids = db::bench::running_pids(&pool, &ids).await?;
        if pids.len() == trials {
            break pids;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (mut suspend, mut resume, mut terminate) = (Vec::new(), Vec::new(), Vec::new());
    for (&id, &pid) in ids.iter().zip(&pids) {
        suspend.push(timed(&client, ControlAction::Suspend, id, pid, |s| s == Some('T')).await?);
        // The guardian records `suspended` just after the signal; resume asks for that status.
        recorded(&client, id, RunStatus::Suspended).await?;
        resume.push(timed(&client, ControlAction::Resume, id, pid, |s| s != Some('T')).await?);
        terminate.push(
            timed(&client, ControlAction::Terminate, id, pid, |s| {
                matches!(s, None | Some('Z'))
            })
            .await?,
        );
    }
    wait_idle(&pool).await?;
    guardians.stop().await;
    let floor = notify_round_trips(&pool, &url, trials).await?;
    println!("Control: SQL call → process seen in its new state (polling /proc every 0.1 ms), {trials} trials\n");
    println!("| action | p50 | p99 | max | NOTIFY round trip p50 (baseline) | p50 / baseline |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (what, samples) in [
        ("suspend (SIGSTOP)", suspend),
        ("resume (SIGCONT)", resume),
        ("terminate (SIGTERM)", terminate),
    ] {
        row(what, &percentiles(samples), &floor);
    }
    Ok(())
}

/// Waits until the run's status is `status`.
async fn recorded(client: &Client, run: RunId, status: RunStatus) -> anyhow::Result<()> {
    let t = Instant::now();
    loop {
        let now = client.run(run).await?.status;
        if now == status {
            return Ok(());
        }
        anyhow::ensure!(
            t.elapsed() < Duration::from_secs(10),
            "run {run} still {now}, not {status}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Calls `sisyphus.<action>(run)` and returns the ms until `pid`'s state satisfies `done`.
async fn timed(
    client: &Client,
    action: ControlAction,
    run: RunId,
    pid: i32,
    done: fn(Option<char>) -> bool,
) -> anyhow::Result<f64> {
    let t = Instant::now();
    client.control(run, action).await?;
    tokio::task::spawn_blocking(move || {
        while !done(process_state(pid)) {
            anyhow::ensure!(
                t.elapsed() < Duration::from_secs(10),
                "{action} of run {run} not seen in 10 s"
            );
            std::thread::sleep(Duration::from_micros(100));
        }
        Ok(t.elapsed().as_secs_f64() * 1000.0)
    })
    .await?
}

/// The state letter of a process (`R`, `S`, `T`, `Z`…), or None when it is gone.
pub fn process_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}
