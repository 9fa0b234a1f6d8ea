//! The job SDK's overhead: a trivial standalone job (log one line, return a summary) written
//! with `sisyphus-job`, against the same job written with ll.sisyphus (Python, `ll-xist` from
//! PyPI in a bench-only virtualenv), same machine, same run. Each is started as cron would,
//! one run after another; whole-process wall time and peak resident memory (`/usr/bin/time`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const TRIVIAL_PY: &str = r#"from ll import sisyphus

class Trivial(sisyphus.Job):
    projectname = "Bench"
    jobname = "Trivial"

    def execute(self):
        self.log("working")
        return "done"

if __name__ == "__main__":
    sisyphus.executewithargs(Trivial())
"#;

pub fn sdk(runs: usize) -> anyhow::Result<()> {
    let target = std::env::current_exe()?
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| anyhow::anyhow!("no directory for the bench binary"))?;
    let rust_job = target.join("examples").join("testjob");
    anyhow::ensure!(
        rust_job.exists(),
        "{} is missing: run `cargo build --release --workspace --examples` first",
        rust_job.display()
    );
    let python = virtualenv(&target.join("bench-venv"))?;
    let home = std::env::temp_dir().join(format!("sisyphus-bench-sdk-{}", std::process::id()));
    std::fs::create_dir_all(&home)?;
    let script = home.join("trivial.py");
    std::fs::write(&script, TRIVIAL_PY)?;

    let mut rust = Command::new(&rust_job);
    rust.args(["--basedir"])
        .arg(home.join("ll.sisyphus"))
        .env("TESTJOB_SCRIPT", "log:working;done:done");
    let mut py = Command::new(&python);
    py.arg(&script).env("HOME", &home);
    let mut floor = Command::new("/bin/true");
    let rust_m = measure(&mut rust, runs)?;
    let py_m = measure(&mut py, runs)?;
    let floor_m = measure(&mut floor, runs)?;
    let _ = std::fs::remove_dir_all(&home);

    println!("Job SDK overhead: a trivial standalone job (fork, log file, links, health record), {runs} runs each, one after another\n");
    println!("| job | wall p50 | wall max | peak RSS | wall vs ll.sisyphus | RSS vs ll.sisyphus |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (what, m) in [
        ("sisyphus-job (Rust, release)", &rust_m),
        ("ll.sisyphus (Python 3.11, ll-xist from PyPI)", &py_m),
        ("/bin/true (process start floor)", &floor_m),
    ] {
        println!(
            "| {what} | {:.1} ms | {:.1} ms | {:.1} MB | {:.3}× | {:.2}× |",
            m.p50_ms,
            m.max_ms,
            m.rss_kb as f64 / 1024.0,
            m.p50_ms / py_m.p50_ms,
            m.rss_kb as f64 / py_m.rss_kb as f64
        );
    }
    Ok(())
}

pub(crate) struct Measured {
    pub p50_ms: f64,
    pub max_ms: f64,
    pub rss_kb: u64,
}

/// Runs `cmd` under `/usr/bin/time` `runs` times: wall time measured here, peak RSS from time.
pub(crate) fn measure(cmd: &mut Command, runs: usize) -> anyhow::Result<Measured> {
    let out = std::env::temp_dir().join(format!("sisyphus-bench-rss-{}", std::process::id()));
    let mut times = Vec::with_capacity(runs);
    let mut rss = 0u64;
    for _ in 0..runs {
        let mut timed = Command::new("/usr/bin/time");
        timed
            .args(["-f", "%M", "-o"])
            .arg(&out)
            .arg(cmd.get_program())
            .args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => timed.env(k, v),
                None => timed.env_remove(k),
            };
        }
        let t = Instant::now();
        let status = timed.stdout(std::process::Stdio::null()).status()?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(status.success(), "{:?} failed: {status}", cmd.get_program());
        let kb: u64 = std::fs::read_to_string(&out)?.trim().parse()?;
        rss = rss.max(kb);
    }
    let _ = std::fs::remove_file(&out);
    times.sort_by(f64::total_cmp);
    Ok(Measured {
        p50_ms: times[times.len() / 2],
        max_ms: times[times.len() - 1],
        rss_kb: rss,
    })
}

/// A virtualenv with ll-xist, created (and installed from PyPI) on first use.
pub(crate) fn virtualenv(dir: &Path) -> anyhow::Result<PathBuf> {
    let python = dir.join("bin").join("python");
    let ready = Command::new(&python)
        .args(["-c", "import ll.sisyphus"])
        .status()
        .is_ok_and(|s| s.success());
    if !ready {
        eprintln!("creating {} with ll-xist from PyPI", dir.display());
        let ok = Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(dir)
            .status()?
            .success()
            && Command::new(dir.join("bin").join("pip"))
                .args(["install", "-q", "ll-xist"])
                .status()?
                .success();
        anyhow::ensure!(
            ok,
            "could not set up the ll-xist virtualenv in {}",
            dir.display()
        );
    }
    Ok(python)
}
