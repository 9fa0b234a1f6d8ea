//! `locks`: the cost of a resource lock cycle (request, try, release with write) through the
//! client guard, against a raw `SELECT 1` round trip on the same database, one at a time and with
//! several holders at once on distinct outputs that share one input.

use std::time::{Duration, Instant};

use sisyphus_client::{db, Client, LockRequest};

use crate::{fresh_database, ms, stats};

pub async fn locks(
    cluster: &pgembed::Cluster,
    cycles: usize,
    holders: usize,
) -> anyhow::Result<()> {
    let url = fresh_database(cluster, "bench_locks").await?;
    let pool = db::pool(&url, "sisyphus-bench", holders as u32 + 2).await?;
    let client = Client::from_pool(pool.clone());
    client
        .lock(LockRequest::new("seed").outputs(["bench.input"]))
        .await?
        .stop()
        .await?;
    let cycle = |client: Client, output: String| async move {
        let start = Instant::now();
        let lock = client
            .lock(
                LockRequest::new("bench")
                    .inputs(["bench.input"])
                    .outputs([output])
                    .wait(Duration::from_secs(60)),
            )
            .await?;
        lock.stop().await?;
        anyhow::Ok(start.elapsed())
    };
    let mut lock_times = Vec::with_capacity(cycles);
    let mut round_trips = Vec::with_capacity(cycles);
    for i in 0..cycles {
        let start = Instant::now();
        db::bench::select_one(&pool).await?;
        round_trips.push(start.elapsed());
        lock_times.push(cycle(client.clone(), format!("bench.out.{}", i % 100)).await?);
    }
    let l = stats(lock_times);
    let rt = stats(round_trips);
    println!("Resource locks: {cycles} cycles (lock 1 input + 1 output, stop = write), then {holders} holders at once\n");
    println!("| measure | p50 | p90 | baseline SELECT 1 p50 | ratio |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| one lock cycle, sequential | {} | {} | {} | {:.1}× |",
        ms(l.p50),
        ms(l.p90),
        ms(rt.p50),
        l.p50.as_secs_f64() / rt.p50.as_secs_f64()
    );
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for h in 0..holders {
        let client = client.clone();
        tasks.spawn(async move {
            for i in 0..cycles / holders {
                cycle(client.clone(), format!("bench.par.{h}.{}", i % 10)).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let per_s = (cycles / holders * holders) as f64 / start.elapsed().as_secs_f64();
    let select_start = Instant::now();
    for _ in 0..cycles {
        db::bench::select_one(&pool).await?;
    }
    let selects_per_s = cycles as f64 / select_start.elapsed().as_secs_f64();
    println!(
        "| {holders} holders at once: {per_s:.0} cycles/s | | | {selects_per_s:.0} SELECT 1/s sequential | {:.2}× |",
        per_s / selects_per_s
    );
    Ok(())
}
