//! `sisyphus-bench calendars`: what calendars and the `skip` overlap policy add to a scheduler
//! tick (issue 18).
//!
//! Two databases on the one private cluster, each with the same `defined` cron jobs of which
//! `due` come due before each tick (spread over the ids, as in `sisyphus-bench scheduler`):
//! - plain: no job names a calendar, every job's overlap is `queue`;
//! - mixed: 20% of the jobs (and of each tick's due ones) name a calendar — half `freeze`, which
//!   excludes today and tomorrow (each of their slots is written as skipped, naming it), half
//!   `holidays`, fixed days of the year that are neither (planned as usual after the look) —
//!   and 20% have overlap `skip` with a run still going, so each slot that comes due is skipped
//!   by the leader's look after the tick.
//!
//! Between ticks, outside the timing, the runs the tick made are ended as successful, as the
//! guardians would have ended them (unclaimed runs would pile up as they never do in a fleet).
//!
//! Timed: what the leader does for each tick, `tick_with` (with the calendars kept between
//! ticks, as the leader keeps them) and then `settle_overlaps`. The ticks run at the real clock
//! (the overlap look decides runs due by the database's clock), a few milliseconds apart.
//! Baseline: a `SELECT 1` round trip on the same connection; the ratio that matters is mixed
//! against plain, measured in the same run with the rounds interleaved.

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{Datelike, Timelike, Utc};
use sisyphus_client::calendar::{Calendar, CalendarFormat};
use sisyphus_client::db::{self, PgConnection};
use sisyphus_scheduler::calendars::Calendars;
use sisyphus_scheduler::PlanSettings;

use crate::{fresh_database, ms, stats};

/// One database and the leader's state kept between its ticks.
struct Variant {
    name: &'static str,
    conn: PgConnection,
    calendars: Calendars,
    settled: db::scheduler::Settled,
    times: Vec<Duration>,
    ticks: Vec<Duration>,
    looks: Vec<Duration>,
    round_trips: Vec<Duration>,
}

/// Measures `ticks` ticks of each variant, `due` of `defined` jobs due in each.
pub async fn calendars(
    cluster: &pgembed::Cluster,
    defined: i64,
    due: i64,
    ticks: usize,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        due >= 10 && defined >= due && defined % due == 0,
        "--due must be at least 10 and divide --defined"
    );
    println!(
        "Scheduler tick with calendars and overlap `skip`: {defined} jobs, {due} due per tick, \
         {ticks} ticks each (leader's tick + overlap look)\n"
    );
    let mut plain = prepare(cluster, "plain", defined, due, false).await?;
    let mut mixed = prepare(cluster, "mixed", defined, due, true).await?;
    let settings = PlanSettings::default();
    for round in 0..(ticks + 5) {
        for v in [&mut plain, &mut mixed] {
            one_tick(v, &settings, defined, due, round >= 5).await?;
        }
    }
    println!(
        "| jobs | tick + look p50 | p90 | mean | tick p50 | look p50 | SELECT 1 p50 (baseline) | tick / baseline | p50 vs plain |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let reference = stats(plain.times.clone()).p50;
    for v in [plain, mixed] {
        let t = stats(v.times);
        let rt = stats(v.round_trips);
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.0}× | {:.2}× |",
            v.name,
            ms(t.p50),
            ms(t.p90),
            ms(t.mean),
            ms(stats(v.ticks).p50),
            ms(stats(v.looks).p50),
            ms(rt.p50),
            t.p50.as_secs_f64() / rt.p50.as_secs_f64(),
            t.p50.as_secs_f64() / reference.as_secs_f64()
        );
    }
    Ok(())
}

/// A fresh database with the jobs (and, for `mixed`, the calendars, the policies and the runs
/// that keep the `skip` jobs busy), vacuumed and analysed.
async fn prepare(
    cluster: &pgembed::Cluster,
    name: &'static str,
    defined: i64,
    due: i64,
    mixed: bool,
) -> anyhow::Result<Variant> {
    let url = fresh_database(cluster, &format!("bench_calendars_{name}")).await?;
    let mut conn = db::bench::connect(&url).await?;
    db::bench::define_cron_jobs(&mut conn, defined).await?;
    if mixed {
        set_calendars(&mut conn).await?;
        db::bench::use_calendars_and_skip(&mut conn, defined / due).await?;
        db::bench::occupy_skip_jobs(&mut conn).await?;
        db::bench::vacuum_analyze(&mut conn, db::bench::Table::Runs).await?;
    }
    db::bench::vacuum_analyze(&mut conn, db::bench::Table::Jobs).await?;
    Ok(Variant {
        name,
        conn,
        calendars: Calendars::default(),
        settled: Default::default(),
        times: Vec::new(),
        ticks: Vec::new(),
        looks: Vec::new(),
        round_trips: Vec::new(),
    })
}

/// `freeze`: today and tomorrow (UTC). `holidays`: twelve fixed days a year, none of them today
/// or tomorrow.
async fn set_calendars(conn: &mut PgConnection) -> anyhow::Result<()> {
    let today = Utc::now().date_naive();
    let tomorrow = today.succ_opt().context("a date after today")?;
    let freeze = format!("zone = \"UTC\"\ndays = [\"{today}\", \"{tomorrow}\"]\n");
    let near = [today, tomorrow].map(|d| (d.month(), d.day()));
    let yearly: Vec<String> = (1..=12)
        .map(|month| (month, 10 + month % 3))
        .filter(|md| !near.contains(md))
        .map(|(m, d)| format!("\"{m:02}-{d:02}\""))
        .collect();
    let holidays = format!("zone = \"UTC\"\nyearly = [{}]\n", yearly.join(", "));
    for (name, text) in [("freeze", freeze), ("holidays", holidays)] {
        let calendar = Calendar::parse(name, CalendarFormat::Toml, &text, None)
            .with_context(|| format!("calendar {name}"))?;
        db::calendars::set(&mut *conn, &calendar, CalendarFormat::Toml, &text).await?;
    }
    Ok(())
}

/// Makes `due` jobs due now, then times the leader's tick and overlap look, checking what they
/// did: every due job planned; in `mixed`, a tenth skipped by `freeze` and a fifth by `skip`.
async fn one_tick(
    v: &mut Variant,
    settings: &PlanSettings,
    defined: i64,
    due: i64,
    record: bool,
) -> anyhow::Result<()> {
    // The tick plans up to 5 s ahead: a tick in a minute's last seconds would also make the
    // next minute's runs. Wait for the next minute instead.
    let second = Utc::now().second();
    if second >= 50 {
        tokio::time::sleep(Duration::from_millis(u64::from(61 - second) * 1000)).await;
    }
    let now = Utc::now();
    db::bench::make_due(&mut v.conn, now, defined, due).await?;
    let start = Instant::now();
    db::bench::select_one(&mut v.conn).await?;
    let rt = start.elapsed();
    let start = Instant::now();
    let report =
        sisyphus_scheduler::tick_with(&mut v.conn, Some(now), settings, "bench", &mut v.calendars)
            .await?;
    let ticked = start.elapsed();
    v.settled = sisyphus_scheduler::settle_overlaps(&mut v.conn, v.settled).await?;
    let took = start.elapsed();
    let (calendar_skips, overlap_skips) = if v.name == "mixed" {
        (due / 10, due / 5)
    } else {
        (0, 0)
    };
    anyhow::ensure!(
        report.jobs as i64 == due
            && report.pending as i64 == due - calendar_skips
            && report.skipped as i64 == calendar_skips
            && i64::from(v.settled.skipped) == overlap_skips,
        "{}: the tick saw {} due jobs, made {} runs, skipped {} slots, the look skipped {} runs; \
         expected {due}, {}, {calendar_skips}, {overlap_skips}",
        v.name,
        report.jobs,
        report.pending,
        report.skipped,
        v.settled.skipped,
        due - calendar_skips
    );
    // The guardians' part, outside the timing: the runs made start and end before the next tick
    // (so pending runs do not pile up as they never do with guardians running).
    db::bench::finish_pending_runs(&mut v.conn).await?;
    if record {
        v.times.push(took);
        v.ticks.push(ticked);
        v.looks.push(took - ticked);
        v.round_trips.push(rt);
    }
    Ok(())
}
