//! Footprint: a real `sisyphus guardian` process's resident memory idle and with 100 runs in
//! flight, and its CPU while idle (no busy polling), against the processes it supervises.

use std::process::{Command, Stdio};
use std::time::Duration;

use sisyphus_client::{db, Client};

use crate::drain::{bench_job, insert_due};
use crate::fresh_database;

pub async fn footprint(cluster: &pgembed::Cluster, in_flight: i64) -> anyhow::Result<()> {
    let url = fresh_database(cluster, "bench_footprint").await?;
    let client = Client::connect(&url).await?;
    client
        .apply(&[bench_job("sleeper", &["/bin/sleep", "120"])], false)
        .await?;
    let pool = client.pool().clone();
    let exe = std::env::current_exe()?
        .parent()
        .map(|d| d.join("sisyphus"))
        .filter(|p| p.exists())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no `sisyphus` binary next to this one: run `cargo build --release` first"
            )
        })?;
    let dir = std::env::temp_dir().join(format!("sisyphus-bench-footprint-{}", std::process::id()));
    let mut guardian = Command::new(exe)
        .args([
            "guardian",
            "--name",
            "footprint",
            "--capacity",
            &in_flight.to_string(),
        ])
        .arg("--log-dir")
        .arg(dir.join("logs"))
        .arg("--spool-dir")
        .arg(dir.join("spool"))
        .env("SISYPHUS_DATABASE_URL", &url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let pid = guardian.id() as i32;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_rss = rss_kb(pid)?;
    let idle_secs = 20.0;
    let cpu_before = cpu_seconds(pid)?;
    tokio::time::sleep(Duration::from_secs_f64(idle_secs)).await;
    let idle_cpu = cpu_seconds(pid)? - cpu_before;

    let ids = insert_due(&pool, "sleeper", in_flight, 0.0).await?;
    let pids = loop {
        let pids = db::bench::running_pids(&pool, &ids).await?;
        if pids.len() as i64 == in_flight {
            break pids;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let busy_rss = rss_kb(pid)?;
    let child_rss: u64 =
        pids.iter().filter_map(|&p| rss_kb(p).ok()).sum::<u64>() / pids.len() as u64;
    let _ = guardian.kill();
    let _ = guardian.wait();
    let _ = std::fs::remove_dir_all(&dir);

    let per_run = busy_rss.saturating_sub(idle_rss) as f64 / in_flight as f64;
    println!("Footprint: one `sisyphus guardian` process (release build)\n");
    println!("| measure | guardian | baseline | ratio |");
    println!("|---|---:|---|---:|");
    println!(
        "| resident memory, idle | {:.1} MB | | |",
        idle_rss as f64 / 1024.0
    );
    println!(
        "| resident memory, {in_flight} runs in flight | {:.1} MB | | |",
        busy_rss as f64 / 1024.0
    );
    println!(
        "| memory per run in flight | {per_run:.0} KB | one supervised `sleep`: {child_rss} KB | {:.2}× |",
        per_run / child_rss.max(1) as f64
    );
    println!(
        "| CPU while idle ({idle_secs:.0} s, heartbeat every 5 s) | {:.1} ms ({:.3}% of a core) | | |",
        idle_cpu * 1000.0,
        100.0 * idle_cpu / idle_secs
    );
    Ok(())
}

/// Resident set size in KB, from /proc.
fn rss_kb(pid: i32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS for {pid}"))
}

/// User plus system CPU time of a process, in seconds.
fn cpu_seconds(pid: i32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // After the command name: state is field 3, utime 14 and stime 15 (1-based).
    let ticks = |i: usize| -> anyhow::Result<f64> {
        Ok(fields
            .get(i - 3)
            .ok_or_else(|| anyhow::anyhow!("short /proc/{pid}/stat"))?
            .parse()?)
    };
    Ok((ticks(14)? + ticks(15)?) / clock_ticks()?)
}

fn clock_ticks() -> anyhow::Result<f64> {
    let out = Command::new("getconf").arg("CLK_TCK").output()?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
}
