//! ll.sisyphus jobs under a guardian (issue 19): one unmodified Python ll.sisyphus job (`ll-xist`
//! from PyPI, in the bench's virtualenv) started as cron starts it — `python job.py`, writing its
//! own log file, links and health file — against the same job as a `format = "ll.sisyphus"` job
//! run by a `sisyphus guardian` process (due → outcome recorded, its lines parsed into
//! `run_logs`), and by a `sisyphus guardian --once` started per run as cron would start it.
//! One run after another, the three ways in turn; time per run and peak resident memory: the job's own (`/usr/bin/time`
//! around it in every case, so that all three pay for it alike) and the guardian's (`VmHWM`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sisyphus_client::db::{self, PgPool};
use sisyphus_client::{Client, RunId};

use crate::drain::{bench_job, insert_due};
use crate::sdk::{measure, virtualenv};
use crate::{fresh_database, percentiles};

const JOB_PY: &str = r#"from ll import sisyphus

class Sum(sisyphus.Job):
    projectname = "Bench"
    jobname = "Sum"

    def execute(self):
        total = 0
        for n in self.tasks(range(10), "chunk"):
            total += n
            self.log(f"added {n}")
        return f"summed 10 chunks: {total}"

if __name__ == "__main__":
    sisyphus.executewithargs(Sum())
"#;

const SUMMARY: &str = "summed 10 chunks: 45";

pub async fn ll_sisyphus(cluster: &pgembed::Cluster, runs: usize) -> anyhow::Result<()> {
    let target = std::env::current_exe()?
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| anyhow::anyhow!("no directory for the bench binary"))?;
    let sisyphus = target.join("sisyphus");
    anyhow::ensure!(
        sisyphus.exists(),
        "no `sisyphus` binary next to this one: run `cargo build --release` first"
    );
    let python = virtualenv(&target.join("bench-venv"))?;
    let home = std::env::temp_dir().join(format!("sisyphus-bench-ll-{}", std::process::id()));
    std::fs::create_dir_all(&home)?;
    let script = home.join("sum.py");
    std::fs::write(&script, JOB_PY)?;

    // The same job under a guardian, its peak memory measured by the same `time` around it: once
    // for the running guardian (pool `daemon`), once for the one-shot guardians (pool `once`).
    let url = fresh_database(cluster, "bench_ll_sisyphus").await?;
    let client = Client::connect(&url).await?;
    let rss_file = home.join("job-rss");
    let command = [
        "/usr/bin/time".to_string(),
        "-f".into(),
        "%M".into(),
        "-o".into(),
        rss_file.display().to_string(),
        python.display().to_string(),
        script.display().to_string(),
    ];
    let command: Vec<&str> = command.iter().map(String::as_str).collect();
    let job = |name: &str, pool: &str| sisyphus_client::JobDefinition {
        format: Some("ll.sisyphus".into()),
        env: Some([("HOME".to_string(), home.display().to_string().into())].into()),
        workdir: Some(home.display().to_string()),
        target: Some(format!("any:{pool}")),
        ..bench_job(name, &command)
    };
    client
        .apply(&[job("Sum", "daemon"), job("SumOnce", "once")], false)
        .await?;
    let pool = client.pool().clone();
    let dir = home.join("guardian");
    let mut daemon = guardian(&sisyphus, &url, &dir, "ll-daemon", &["--pools", "daemon"])?;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Cron: the job as its users start it today, log file and links of its own.
    let mut direct = Command::new(&python);
    direct.arg(&script).env("HOME", &home).current_dir(&home);

    // The three ways in turn, so that the load of this shared machine falls on all alike. One
    // round first, not counted: the guardian's first claim and the page cache.
    let (mut cron_times, mut cron_rss) = (Vec::with_capacity(runs), 0u64);
    let (mut daemon_times, mut daemon_ran) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    let mut daemon_job_rss = 0u64;
    let (mut once_times, mut once_rss, mut once_job_rss) = (Vec::with_capacity(runs), 0u64, 0u64);
    for round in 0..=runs {
        let cron = measure(&mut direct, 1)?;
        let id = insert_due(&pool, "Sum", 1, 0.0).await?[0];
        let ended = wait_ended(&pool, id).await?;
        let daemon_job = job_rss(&rss_file)?;
        let id = insert_due(&pool, "SumOnce", 1, 0.0).await?[0];
        let started = Instant::now();
        let mut once = guardian(
            &sisyphus,
            &url,
            &dir,
            "ll-once",
            &["--once", "--pools", "once"],
        )?;
        let pid = once.id();
        let mut hwm = 0;
        let status = loop {
            if let Some(status) = once.try_wait()? {
                break status;
            }
            hwm = status_kb(pid, "VmHWM:").unwrap_or(hwm).max(hwm);
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        let once_took = started.elapsed().as_secs_f64() * 1000.0;
        anyhow::ensure!(status.success(), "guardian --once exited with {status}");
        check(&wait_ended(&pool, id).await?)?;
        if round == 0 {
            continue;
        }
        cron_times.push(cron.p50_ms);
        cron_rss = cron_rss.max(cron.rss_kb);
        daemon_times.push(ended.due_to_recorded * 1000.0);
        daemon_ran.push(ended.ran * 1000.0);
        daemon_job_rss = daemon_job_rss.max(daemon_job);
        once_times.push(once_took);
        once_rss = once_rss.max(hwm);
        once_job_rss = once_job_rss.max(job_rss(&rss_file)?);
    }
    anyhow::ensure!(
        home.join("ll.sisyphus/Bench/Sum/last_successful.sisyphuslog")
            .exists(),
        "the directly started job wrote no log file"
    );
    let daemon_rss = status_kb(daemon.id(), "VmHWM:")?;
    let _ = daemon.kill();
    let _ = daemon.wait();
    let _ = std::fs::remove_dir_all(&home);

    let cron_p = percentiles(cron_times);
    let daemon_p = percentiles(daemon_times);
    let ran_p = percentiles(daemon_ran);
    let once_p = percentiles(once_times);
    let mb = |kb: u64| kb as f64 / 1024.0;
    println!(
        "ll.sisyphus jobs (issue 19): one unmodified Python ll.sisyphus job (ll-xist, 10 tasks, 15 \
         log lines), {runs} rounds of one run each way, one after another\n"
    );
    println!("| how the run starts | time per run p50 | max | job peak RSS | guardian peak RSS | memory per run | time vs cron | memory vs cron |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let cron_mem = cron_rss;
    let row = |what: &str, p50: f64, max: f64, job: u64, guardian: Option<u64>| {
        let total = job + guardian.unwrap_or(0);
        println!(
            "| {what} | {p50:.0} ms | {max:.0} ms | {:.1} MB | {} | {:.1} MB | {:.2}× | {:.2}× |",
            mb(job),
            guardian.map_or("-".to_string(), |g| format!("{:.1} MB", mb(g))),
            mb(total),
            p50 / cron_p.p50,
            total as f64 / cron_mem as f64
        );
    };
    row(
        "cron: `python job.py` (its own log file and links), start → exit",
        cron_p.p50,
        cron_p.max,
        cron_rss,
        None,
    );
    row(
        "a running `sisyphus guardian`: due → outcome recorded",
        daemon_p.p50,
        daemon_p.max,
        daemon_job_rss,
        Some(daemon_rss),
    );
    row(
        "cron: `sisyphus guardian --once`, start → exit",
        once_p.p50,
        once_p.max,
        once_job_rss,
        Some(once_rss),
    );
    println!(
        "\nUnder the running guardian the job's process itself ran {:.0} ms (p50); the rest of \
         due → recorded is the claim, the start and recording the outcome. The guardian's peak \
         RSS is the whole process's, shared by every run it supervises.",
        ran_p.p50
    );
    Ok(())
}

/// A `sisyphus guardian` process named `name` (capacity 1) with `extra` flags.
fn guardian(
    exe: &Path,
    url: &str,
    dir: &Path,
    name: &str,
    extra: &[&str],
) -> anyhow::Result<Child> {
    Ok(Command::new(exe)
        .args(["guardian", "--name", name, "--capacity", "1"])
        .arg("--log-dir")
        .arg(dir.join("logs"))
        .arg("--spool-dir")
        .arg(dir.join("spool"))
        .args(extra)
        .env("SISYPHUS_DATABASE_URL", url)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?)
}

/// Waits until run `id` has ended successfully with the job's summary.
async fn wait_ended(pool: &PgPool, id: RunId) -> anyhow::Result<db::bench::Ended> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(ended) = db::bench::run_ended(pool, id).await? {
            check(&ended)?;
            return Ok(ended);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "run {id} did not end within a minute"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The run ended as the job says, with its lines parsed.
fn check(ended: &db::bench::Ended) -> anyhow::Result<()> {
    anyhow::ensure!(
        ended.status == "successful" && ended.summary.as_deref() == Some(SUMMARY),
        "the run ended {} ({:?})",
        ended.status,
        ended.summary
    );
    anyhow::ensure!(
        ended.job_lines >= 12,
        "only {} of the job's lines were stored",
        ended.job_lines
    );
    Ok(())
}

/// The job's peak RSS, as `/usr/bin/time` around it wrote it.
fn job_rss(file: &PathBuf) -> anyhow::Result<u64> {
    Ok(std::fs::read_to_string(file)?.trim().parse()?)
}

/// A `/proc/PID/status` field in KB (`VmHWM:`: peak resident memory).
fn status_kb(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no {field} for {pid}"))
}
