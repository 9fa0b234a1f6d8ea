//! A fleet of idle guardians (issue 17, target 5): real guardians (in this process, no-op
//! executor, each with its own pool and LISTEN connection, as a host's guardian has) against one
//! private cluster that preloads pg_stat_statements. Prints the connections per guardian, the
//! database's idle load (statements and CPU of the PostgreSQL processes over an idle stretch),
//! and the claim statements one `run_now` costs, against a run woken the way the scheduler's
//! tick wakes guardians (an empty payload: every guardian claims).

use std::time::{Duration, Instant};

use sisyphus_client::{db, Client, JobRef};
use sisyphus_guardian::Executor;

use crate::drain::{bench_job, insert_due, Guardians};
use crate::fork::postgres_cpu;

#[derive(clap::Args, Clone)]
pub struct Options {
    /// Idle guardians connected.
    #[arg(long, default_value_t = 200)]
    pub guardians: usize,
    /// The idle stretch measured, in seconds.
    #[arg(long, default_value_t = 60)]
    pub idle_secs: u64,
    /// `run_now` calls measured (and as many runs woken for everyone).
    #[arg(long, default_value_t = 20)]
    pub wakes: usize,
    /// The guardians' safety-net poll (their default: 2 s).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub poll: Option<Duration>,
    /// The guardians as before issue 17's idle stretching (the baseline of the idle load): the
    /// poll never stretches, and the idle beat is the heartbeat (a lease of three beats).
    #[arg(long)]
    pub unstretched: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            guardians: 200,
            idle_secs: 60,
            wakes: 20,
            poll: None,
            unstretched: false,
        }
    }
}

pub async fn fleet(o: &Options) -> anyhow::Result<()> {
    let connections = (o.guardians * 4 + 100).to_string();
    let cluster = tokio::task::spawn_blocking(move || {
        pgembed::Cluster::start(pgembed::Options {
            settings: vec![
                ("max_connections".into(), connections),
                (
                    "shared_preload_libraries".into(),
                    "pg_stat_statements".into(),
                ),
                ("pg_stat_statements.track".into(), "top".into()),
            ],
            ..pgembed::Options::default()
        })
    })
    .await??;
    let url = crate::fresh_database(&cluster, "bench_fleet").await?;
    let mut conn = db::bench::connect(&url).await?;
    db::bench::statements_extension(&mut conn).await?;
    let client = Client::connect(&url).await?;
    client
        .apply(&[bench_job("now", &["/bin/true"])], false)
        .await?;
    let pool = client.pool().clone();
    // The cluster's own idle load (background processes, this bench's connections), before
    // any guardian: the baseline.
    let base_secs = 20.0;
    let b0 = postgres_cpu(&cluster)?;
    tokio::time::sleep(Duration::from_secs_f64(base_secs)).await;
    let base = (postgres_cpu(&cluster)? - b0) / base_secs;
    let started = Instant::now();
    let (poll, unstretched) = (o.poll, o.unstretched);
    let fleet = Guardians::start(&url, "fleet", o.guardians, 4, Executor::Noop, |c| {
        if let Some(p) = poll {
            c.poll = p;
        }
        if unstretched {
            c.idle_poll = c.poll;
            c.lease = c.heartbeat * 3;
        }
    })
    .await?;
    let start_secs = started.elapsed().as_secs_f64();
    // Let every guardian reach its idle wait.
    tokio::time::sleep(Duration::from_secs(5)).await;

    println!(
        "A fleet of {} idle guardians (in this process, no-op executor, heartbeat 5 s, poll {:?}, {}), started in {start_secs:.1} s\n",
        o.guardians,
        o.poll.unwrap_or(Duration::from_secs(2)),
        if o.unstretched {
            "unstretched: beats every 5 s and polls every 2 s when idle, as before"
        } else {
            "idle: polls stretch to 5 s, beats every 10 s"
        }
    );
    let by_app = db::bench::connections_by_application(&pool).await?;
    let guardian_conns: i64 = by_app
        .iter()
        .filter(|(app, _)| app.starts_with("sisyphus guardian"))
        .map(|(_, n)| n)
        .sum();
    println!("| connections | count | per guardian |");
    println!("|---|---:|---:|");
    for (app, n) in &by_app {
        println!("| `{app}` | {n} | {:.2} |", *n as f64 / o.guardians as f64);
    }
    println!(
        "| all of the guardians' | {guardian_conns} | {:.2} |\n",
        guardian_conns as f64 / o.guardians as f64
    );

    // The idle stretch.
    db::bench::statements_forget(&pool).await?;
    let me = std::process::id() as i32;
    let (cpu0, p0) = (crate::fork::cpu(me)?.0, postgres_cpu(&cluster)?);
    tokio::time::sleep(Duration::from_secs(o.idle_secs)).await;
    let (cpu1, p1) = (crate::fork::cpu(me)?.0, postgres_cpu(&cluster)?);
    let calls = db::bench::statement_calls(&pool, 12).await?;
    let secs = o.idle_secs as f64;
    let total: i64 = calls.iter().map(|c| c.calls).sum();
    println!(
        "Idle for {} s: PostgreSQL processes {:.1}% of one core (target < 5%), of which {:.1}% without any guardian ({base_secs:.0} s before they started); the {} guardians themselves {:.1}%; {:.1} statements/s\n",
        o.idle_secs,
        100.0 * (p1 - p0) / secs,
        100.0 * base,
        o.guardians,
        100.0 * (cpu1 - cpu0) / secs,
        total as f64 / secs
    );
    println!("| statement (most called, idle) | calls/s | per guardian per minute | mean ms |");
    println!("|---|---:|---:|---:|");
    for c in calls.iter().filter(|c| c.calls > 0) {
        println!(
            "| `{}` | {:.1} | {:.1} | {:.3} |",
            short(&c.query).replace('|', "\\|"),
            c.calls as f64 / secs,
            c.calls as f64 * 60.0 / secs / o.guardians as f64,
            c.total_ms / c.calls as f64
        );
    }
    println!();

    // Wake-ups.
    let job = JobRef::new("Bench", "now");
    let mut named = Vec::new();
    let mut everyone = Vec::new();
    for _ in 0..o.wakes {
        named.push(wake(&pool, || async { Ok(client.run_now(&job).await?) }).await?);
        everyone.push(wake(&pool, || insert_due(&pool, "now", 1, 0.0)).await?);
    }
    // The idle polls' claims in a window of the same length, to tell them apart.
    println!("| one run woken by | claim statements (mean, max) | of which idle polls (expected) | creation → start max |");
    println!("|---|---:|---:|---:|");
    let idle_claims_per_sec = calls
        .iter()
        .filter(|c| c.query.contains("claim_runs"))
        .map(|c| c.calls as f64)
        .sum::<f64>()
        / secs;
    for (label, w) in [
        (
            "`run_now` (payload names two guardians, migrations/0021)",
            &named,
        ),
        (
            "a NOTIFY with an empty payload (the tick's; before 0021 also `run_now`'s)",
            &everyone,
        ),
    ] {
        let claims: Vec<f64> = w.iter().map(|x| x.0 as f64).collect();
        let window: f64 = w.iter().map(|x| x.1).sum::<f64>() / w.len() as f64;
        let latency = w.iter().map(|x| x.2).fold(0.0, f64::max);
        println!(
            "| {label} | {:.1}, {:.0} | {:.1} | {latency:.1} ms |",
            claims.iter().sum::<f64>() / claims.len() as f64,
            claims.iter().copied().fold(0.0, f64::max),
            (idle_claims_per_sec * window).abs(),
        );
    }
    fleet.stop().await;
    Ok(())
}

/// Makes one run with `make`, waits until it started and 300 ms more (late claimers), and
/// returns the claim statements counted meanwhile, the window's length in seconds and the run's
/// creation → start in ms.
async fn wake<F, Fut>(pool: &db::PgPool, make: F) -> anyhow::Result<(i64, f64, f64)>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Vec<sisyphus_client::RunId>>>,
{
    // Quiet first: no run of before still pending, no claim in flight.
    tokio::time::sleep(Duration::from_millis(300)).await;
    db::bench::statements_forget(pool).await?;
    let from = Instant::now();
    let ids = make().await?;
    let latency = loop {
        let (started, max) = db::bench::runs_started(pool, &ids).await?;
        if started == ids.len() as i64 {
            break max.unwrap_or(f64::NAN);
        }
        anyhow::ensure!(
            from.elapsed() < Duration::from_secs(30),
            "run not started within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let window = from.elapsed().as_secs_f64();
    let claims = db::bench::statement_calls(pool, 50)
        .await?
        .iter()
        .filter(|c| c.query.contains("claim_runs"))
        .map(|c| c.calls)
        .sum();
    Ok((claims, window, latency))
}

/// A statement without its comment lines, on one line, cut at 90 characters.
fn short(query: &str) -> String {
    let text = query
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .flat_map(str::split_whitespace)
        .collect::<Vec<_>>()
        .join(" ");
    match text.char_indices().nth(90) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}
