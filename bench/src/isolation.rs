//! `isolation`: what issue 13's containment costs per line and per run, each against the path
//! without it, measured in the same run:
//! - the boundary cleaning (NUL → U+FFFD) of output lines, against decoding them as UTF-8 alone
//!   (what every line cost before);
//! - a run's own cgroup (create, move the child in before exec, count leftovers, remove) around
//!   spawning and reaping `/bin/true`, against the same spawn in a process group alone.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sisyphus_guardian::cgroup::Cgroups;
use sisyphus_guardian::process::{self, Launch};

use crate::{ms, stats};

pub async fn isolation(lines: usize, runs: usize) -> anyhow::Result<()> {
    println!("Containment costs: boundary cleaning per line, a cgroup per run\n");
    println!("| what | with | without (baseline) | ratio |");
    println!("|---|---:|---:|---:|");
    cleaning(lines);
    cgroups(runs).await
}

/// Lines as a chatty job writes them: mostly ASCII, some UTF-8, one in a thousand with a NUL.
fn sample_lines(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut l =
                format!("{i:08} INFO fetched page {} of ü-feed in 12 ms", i % 97).into_bytes();
            if i % 1000 == 0 {
                l.push(0);
            }
            l
        })
        .collect()
}

fn cleaning(n: usize) {
    let lines = sample_lines(n);
    let mut with = Vec::new();
    let mut without = Vec::new();
    for _ in 0..7 {
        let input = lines.clone();
        let start = Instant::now();
        let mut kept = 0usize;
        for bytes in input {
            let s = String::from_utf8(bytes).unwrap_or_default();
            kept += s.len();
        }
        without.push(start.elapsed());
        std::hint::black_box(kept);
        let input = lines.clone();
        let start = Instant::now();
        let mut kept = 0usize;
        for bytes in input {
            let mut s = String::from_utf8(bytes).unwrap_or_default();
            sisyphus_protocol::text::clean(&mut s);
            kept += s.len();
        }
        with.push(start.elapsed());
        std::hint::black_box(kept);
    }
    let (w, wo) = (stats(with).p50, stats(without).p50);
    let per = |d: Duration| format!("{:.1} ns/line", d.as_nanos() as f64 / n as f64);
    println!(
        "| {n} output lines: decode + clean NUL vs decode | {} | {} | {:.2}× |",
        per(w),
        per(wo),
        w.as_secs_f64() / wo.as_secs_f64()
    );
}

async fn cgroups(runs: usize) -> anyhow::Result<()> {
    let cgroups = match Cgroups::open(None, "bench") {
        Ok(Some(c)) => c,
        Ok(None) => {
            println!("| a cgroup per run | skipped: no writable cgroup v2 directory here | | |");
            return Ok(());
        }
        Err(e) => {
            println!("| a cgroup per run | skipped: {e} | | |");
            return Ok(());
        }
    };
    let launch = |cgroup| Launch {
        argv: vec!["/bin/true".into()],
        env: BTreeMap::from([("PATH".to_string(), "/usr/bin:/bin".to_string())]),
        workdir: None,
        user: None,
        protocol: None,
        cgroup,
        how: process::Spawn::default(),
    };
    let mut with = Vec::with_capacity(runs);
    let mut without = Vec::with_capacity(runs);
    for i in 0..runs {
        // Alternating, so that both see the same machine.
        let start = Instant::now();
        let mut child = process::spawn(&launch(None))?;
        child.wait().await?;
        without.push(start.elapsed());

        let start = Instant::now();
        let cg = cgroups.create(i as i64)?;
        let procs = cg.procs_file()?;
        let mut child = process::spawn(&launch(Some(std::os::fd::AsRawFd::as_raw_fd(&procs))))?;
        drop(procs);
        child.wait().await?;
        let left = cg.pids().len();
        std::hint::black_box(left);
        cg.remove();
        with.push(start.elapsed());
    }
    cgroups.remove();
    let (w, wo) = (stats(with), stats(without));
    println!(
        "| {runs} runs of /bin/true: spawn + reap in a cgroup vs in a process group (p50) | {} | {} | {:.2}× |",
        ms(w.p50),
        ms(wo.p50),
        w.p50.as_secs_f64() / wo.p50.as_secs_f64()
    );
    println!(
        "| the same, mean | {} | {} | {:.2}× |",
        ms(w.mean),
        ms(wo.mean),
        w.mean.as_secs_f64() / wo.mean.as_secs_f64()
    );
    Ok(())
}
