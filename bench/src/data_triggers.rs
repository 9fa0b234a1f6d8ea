//! `data-triggers`: the scheduler's tick with idle data-triggered (`on_inputs`) jobs among the
//! defined ones. Each tick, the inputs of `active` jobs are written (outside the timing) and the
//! tick must create exactly their runs; the idle jobs' inputs are never written. The figure to
//! read is how the tick grows from the first size to the last: with data triggers found by what
//! was written (`sql/scheduler/data_jobs.sql`), it should not.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sisyphus_client::db::bench::Table;
use sisyphus_client::db::{self, PgConnection};

use crate::{fresh_database, ms, stats};

pub(crate) async fn data_triggers(
    cluster: &pgembed::Cluster,
    sizes: &[i64],
    active: i64,
    ticks: usize,
) -> anyhow::Result<()> {
    println!(
        "Data triggers: {active} data-triggered jobs whose inputs are written before each tick, \
         among idle ones (half templated inputs, half plain names, never written); {ticks} ticks \
         per size\n"
    );
    println!(
        "| idle on_inputs jobs | tick p50 | tick p90 | tick mean | SELECT 1 p50 (baseline) | tick / baseline | p50 vs first size |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let mut reference: Option<Duration> = None;
    for &n in sizes {
        let url = fresh_database(cluster, &format!("bench_data_{n}")).await?;
        let mut conn = db::bench::connect(&url).await?;
        define(&mut conn, n, active).await?;
        let base: DateTime<Utc> = db::bench::today(&mut conn).await?;
        let settings = sisyphus_scheduler::PlanSettings::default();
        let mut tick_times = Vec::with_capacity(ticks);
        let mut round_trips = Vec::with_capacity(ticks);
        for round in 0..(ticks + 5) {
            // A new day's inputs for every active job: each names a new slot.
            let day = base + chrono::Duration::days(round as i64);
            db::bench::write_day_inputs(&mut conn, day, active).await?;
            let start = Instant::now();
            db::bench::select_one(&mut conn).await?;
            let rt = start.elapsed();
            let start = Instant::now();
            let report = sisyphus_scheduler::tick(&mut conn, None, &settings, "bench").await?;
            let took = start.elapsed();
            anyhow::ensure!(
                report.data as i64 == active,
                "tick made {} data-triggered runs, expected {active}",
                report.data
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
            "| {n} | {} | {} | {} | {} | {:.0}× | {vs_first} |",
            ms(t.p50),
            ms(t.p90),
            ms(t.mean),
            ms(rt.p50),
            t.p50.as_secs_f64() / rt.p50.as_secs_f64()
        );
    }
    Ok(())
}

/// `n` idle data-triggered jobs (half `idle.<i>.events.{date}`, half `idle.<i>.plain`, never
/// written) and `active` ones (`active.<k>.events.{date}`), with unrelated resources written
/// an hour ago; then VACUUM ANALYZE as production would. The jobs are taken off the queue of
/// full looks, as after their first tick: this measures the ticks after it.
async fn define(conn: &mut PgConnection, n: i64, active: i64) -> anyhow::Result<()> {
    db::bench::define_data_jobs(conn, n, active).await?;
    db::bench::write_other_resources(conn, n).await?;
    db::bench::clear_full_look_queue(conn).await?;
    db::bench::mark_inputs_seen(conn).await?;
    for table in [Table::Jobs, Table::Resources] {
        db::bench::vacuum_analyze(&mut *conn, table).await?;
    }
    Ok(())
}
