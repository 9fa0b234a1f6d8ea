//! The fork path (issue 17, target 2): `/bin/true` runs drained by a real `sisyphus guardian`
//! process against spawning and reaping `/bin/true` from a plain loop at the same concurrency; the
//! guardian's spawn methods side by side; and where the CPU goes per run (the guardian, its
//! children, PostgreSQL), read from /proc.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sisyphus_client::{db, Client};
use sisyphus_guardian::process::{self, Launch, Spawn};

use crate::drain::{bench_job, insert_due, spawn_baseline, wait_idle};
use crate::fresh_database;

#[derive(clap::Args, Clone)]
pub struct Options {
    /// Runs per measurement.
    #[arg(long, default_value_t = 3000)]
    pub runs: i64,
    /// The guardian's capacity, and the plain loop's concurrency.
    #[arg(long, default_value_t = 8)]
    pub capacity: usize,
    /// Rounds of every guardian row (the rows take turns, so that the load falls on all alike).
    #[arg(long, default_value_t = 2)]
    pub rounds: usize,
    /// Only the spawn methods from one process (no database, no guardian).
    #[arg(long)]
    pub methods_only: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            runs: 3000,
            capacity: 8,
            rounds: 2,
            methods_only: false,
        }
    }
}

/// One guardian configuration the table compares.
struct Variant {
    label: &'static str,
    args: &'static [&'static str],
    /// Runs of `/bin/true` (false: the no-op executor, no process at all).
    spawns: bool,
}

const VARIANTS: &[Variant] = &[
    Variant {
        label: "guardian, clone(CLONE_VM|CLONE_VFORK) (default)",
        args: &[],
        spawns: true,
    },
    Variant {
        label: "guardian, fork() with pre_exec (before)",
        args: &["--spawn", "fork"],
        spawns: true,
    },
    Variant {
        label: "guardian, vfork, no cgroup per run",
        args: &["--no-cgroups"],
        spawns: true,
    },
    Variant {
        label: "guardian, no-op executor (database path alone)",
        args: &["--noop"],
        spawns: false,
    },
];

#[derive(Default, Clone)]
struct Measured {
    per_second: Vec<f64>,
    /// CPU milliseconds per run: the guardian itself, its reaped children, PostgreSQL.
    guardian_ms: Vec<f64>,
    children_ms: Vec<f64>,
    postgres_ms: Vec<f64>,
}

pub async fn fork(cluster: &pgembed::Cluster, o: &Options) -> anyhow::Result<()> {
    if o.methods_only {
        return spawn_methods(o.capacity).await;
    }
    let exe = sisyphus_binary()?;
    let url = fresh_database(cluster, "bench_fork").await?;
    let client = Client::connect(&url).await?;
    client
        .apply(&[bench_job("true", &["/bin/true"])], false)
        .await?;
    let pool = client.pool().clone();
    let mut measured: Vec<Measured> = vec![Measured::default(); VARIANTS.len()];
    let mut baseline = Vec::new();
    for _ in 0..o.rounds {
        baseline.push(spawn_baseline(o.runs, o.capacity).await?);
        for (v, m) in VARIANTS.iter().zip(measured.iter_mut()) {
            let r = drain_with(cluster, &exe, &url, &pool, v, o).await?;
            m.per_second.push(r.0);
            m.guardian_ms.push(r.1);
            m.children_ms.push(r.2);
            m.postgres_ms.push(r.3);
        }
    }
    baseline.push(spawn_baseline(o.runs, o.capacity).await?);
    let base = mean(&baseline);
    let base_cpu = baseline_cpu_ms(o.runs, o.capacity).await?;

    println!(
        "The fork path: {} runs of /bin/true per row, capacity {} (rows: mean of {} rounds taken in turn; the plain loop before, between and after)\n",
        o.runs, o.capacity, o.rounds
    );
    println!("| what | runs/s | of the plain loop | guardian CPU/run | children CPU/run | PostgreSQL CPU/run |");
    println!("|---|---:|---:|---:|---:|---:|");
    println!(
        "| plain loop: spawn + reap /bin/true at concurrency {} (baseline; {}) | {base:.0} | 100% | {:.3} ms (the loop) | {:.3} ms | |",
        o.capacity,
        baseline
            .iter()
            .map(|b| format!("{b:.0}"))
            .collect::<Vec<_>>()
            .join(", "),
        base_cpu.0,
        base_cpu.1,
    );
    for (v, m) in VARIANTS.iter().zip(&measured) {
        let rate = mean(&m.per_second);
        println!(
            "| {} ({}) | {rate:.0} | {:.0}% | {:.3} ms | {} | {:.3} ms |",
            v.label,
            m.per_second
                .iter()
                .map(|b| format!("{b:.0}"))
                .collect::<Vec<_>>()
                .join(", "),
            100.0 * rate / base,
            mean(&m.guardian_ms),
            if v.spawns {
                format!("{:.3} ms", mean(&m.children_ms))
            } else {
                "-".to_string()
            },
            mean(&m.postgres_ms),
        );
    }
    println!();
    spawn_methods(o.capacity).await
}

/// Starts `sisyphus guardian` with the variant's flags, queues `runs` due runs with a NOTIFY
/// and times them from the commit to the last outcome; stops the guardian. Returns runs/s and
/// CPU ms per run of the guardian, its children and PostgreSQL.
async fn drain_with(
    cluster: &pgembed::Cluster,
    exe: &Path,
    url: &str,
    pool: &db::PgPool,
    v: &Variant,
    o: &Options,
) -> anyhow::Result<(f64, f64, f64, f64)> {
    let dir = std::env::temp_dir().join(format!("sisyphus-bench-fork-{}", std::process::id()));
    let mut guardian = Command::new(exe)
        .args(["guardian", "--name", "fork", "--capacity"])
        .arg(o.capacity.to_string())
        .args(v.args)
        .arg("--log-dir")
        .arg(dir.join("logs"))
        .arg("--spool-dir")
        .arg(dir.join("spool"))
        .env("SISYPHUS_DATABASE_URL", url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let pid = guardian.id() as i32;
    // Registered and listening.
    let registered = Instant::now();
    while !db::hosts::list(pool)
        .await?
        .iter()
        .any(|h| h.name == "fork" && h.pid == Some(pid))
    {
        anyhow::ensure!(
            registered.elapsed() < Duration::from_secs(20),
            "the guardian did not register"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (g0, c0) = cpu(pid)?;
    let p0 = postgres_cpu(cluster)?;
    let started = Instant::now();
    insert_due(pool, "true", o.runs, 0.0).await?;
    wait_idle(pool).await?;
    let elapsed = started.elapsed();
    let (g1, c1) = cpu(pid)?;
    let p1 = postgres_cpu(cluster)?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )?;
    let _ = guardian.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let failed = db::bench::unsuccessful_runs(pool).await?;
    anyhow::ensure!(failed == 0, "{failed} runs did not succeed ({})", v.label);
    let n = o.runs as f64;
    Ok((
        n / elapsed.as_secs_f64(),
        (g1 - g0) * 1000.0 / n,
        (c1 - c0) * 1000.0 / n,
        (p1 - p0) * 1000.0 / n,
    ))
}

/// CPU of the plain loop itself and of its children per spawn, in ms (this process's own
/// rusage before and after).
async fn baseline_cpu_ms(runs: i64, concurrency: usize) -> anyhow::Result<(f64, f64)> {
    let me = std::process::id() as i32;
    let (s0, c0) = cpu(me)?;
    spawn_baseline(runs, concurrency).await?;
    let (s1, c1) = cpu(me)?;
    let n = runs as f64;
    Ok(((s1 - s0) * 1000.0 / n, (c1 - c0) * 1000.0 / n))
}

/// The guardian's spawn methods from this process, without the database: `/bin/true` spawned
/// and reaped `concurrency` at a time, with this process small and then with 512 MB of touched
/// heap (fork copies the page tables; clone(CLONE_VM) and posix_spawn do not).
async fn spawn_methods(concurrency: usize) -> anyhow::Result<()> {
    let runs = 3000;
    println!("Spawn methods from one process: {runs} × /bin/true, {concurrency} at a time, no database\n");
    println!("| parent | std Command (posix_spawn, the plain loop) | guardian spawn: clone(CLONE_VM\\|CLONE_VFORK) | guardian spawn: fork() + pre_exec | vfork / posix_spawn | fork / posix_spawn |");
    println!("|---|---:|---:|---:|---:|---:|");
    for big in [false, true] {
        let ballast: Vec<u8> = if big {
            // Touched, so that the pages are mapped.
            (0..512usize << 20).map(|i| i as u8).collect()
        } else {
            Vec::new()
        };
        let plain = spawn_baseline(runs, concurrency).await?;
        let vfork = guardian_spawns(runs, concurrency, Spawn::Vfork).await?;
        let fork = guardian_spawns(runs, concurrency, Spawn::Fork).await?;
        std::hint::black_box(&ballast);
        println!(
            "| {} | {plain:.0}/s | {vfork:.0}/s | {fork:.0}/s | {:.2} | {:.2} |",
            if big {
                "the bench with 512 MB of touched heap"
            } else {
                "the bench (small)"
            },
            vfork / plain,
            fork / plain
        );
    }
    Ok(())
}

/// `/bin/true` through `process::spawn` (new session, PDEATHSIG, protocol pipe, pipes read to
/// their end), `concurrency` at a time; spawns per second.
async fn guardian_spawns(runs: i64, concurrency: usize, how: Spawn) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    let mut launched = 0;
    while launched < runs || !set.is_empty() {
        while launched < runs && set.len() < concurrency {
            // Spawned inside the task, as the plain loop and the guardian's supervisors do.
            set.spawn(async move {
                let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
                let launch = Launch {
                    argv: vec!["/bin/true".into()],
                    env: BTreeMap::from([("PATH".to_string(), "/usr/bin:/bin".to_string())]),
                    workdir: None,
                    user: None,
                    protocol: Some(std::os::fd::AsRawFd::as_raw_fd(&write)),
                    cgroup: None,
                    how,
                };
                let mut child = process::spawn(&launch).map_err(|e| anyhow::anyhow!(e.0))?;
                drop((read, write));
                let status = child.wait().await?;
                anyhow::Ok(status.success())
            });
            launched += 1;
        }
        if let Some(done) = set.join_next().await {
            anyhow::ensure!(matches!(done, Ok(Ok(true))), "/bin/true failed");
        }
    }
    Ok(runs as f64 / started.elapsed().as_secs_f64())
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// The `sisyphus` binary built next to this one.
pub(crate) fn sisyphus_binary() -> anyhow::Result<PathBuf> {
    std::env::current_exe()?
        .parent()
        .map(|d| d.join("sisyphus"))
        .filter(|p| p.exists())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no `sisyphus` binary next to this one: run `cargo build --release` first"
            )
        })
}

/// A process's own CPU seconds and its reaped children's (utime + stime, cutime + cstime).
pub(crate) fn cpu(pid: i32) -> anyhow::Result<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let (own, children) =
        stat_cpu(&stat).ok_or_else(|| anyhow::anyhow!("cannot read /proc/{pid}/stat"))?;
    let hz = clock_ticks();
    Ok((own / hz, children / hz))
}

/// (utime + stime, cutime + cstime) in clock ticks from a `/proc/<pid>/stat` line.
fn stat_cpu(stat: &str) -> Option<(f64, f64)> {
    let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split_whitespace().collect();
    // After the command name, field 3 (state) is index 0: utime is field 14, cstime 17.
    let f = |i: usize| fields.get(i - 3).and_then(|v| v.parse::<f64>().ok());
    Some((f(14)? + f(15)?, f(16)? + f(17)?))
}

/// CPU seconds of `cluster`'s PostgreSQL processes now alive: the postmaster (its pid is the
/// first line of `postmaster.pid`) and its children (backends, autovacuum, the writers). Other
/// clusters on the machine are not counted.
pub(crate) fn postgres_cpu(cluster: &pgembed::Cluster) -> anyhow::Result<f64> {
    let pid_file = std::fs::read_to_string(cluster.data_dir().join("postmaster.pid"))?;
    let postmaster = pid_file
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    let mut total = 0.0;
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // After the command name: state, then the parent's pid.
        let ppid = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .unwrap_or_default();
        if pid == postmaster || ppid == postmaster {
            if let Some((own, _)) = stat_cpu(&stat) {
                total += own;
            }
        }
    }
    Ok(total / clock_ticks())
}

/// /proc's clock ticks (USER_HZ), 100 on every Linux.
fn clock_ticks() -> f64 {
    100.0
}
