//! The crash storm: four guardians, each a host of its own, run every-second jobs with
//! concurrency limits while a random guardian is killed with SIGKILL every few seconds and
//! restarted; optionally PostgreSQL is restarted, or the leading scheduler killed, in the middle.
//! Afterwards the database and the witness files must agree that
//! - every run ended in a terminal state;
//! - no run id was started twice (an attempt runs at most once; a retry is a new attempt);
//! - no job ever had more runs at once than its concurrency;
//! - no outcome was lost: a run whose process finished is `successful`, unless its guardian
//!   was killed in the moment between the process's end and the outcome's commit;
//! - no log line was lost: every successful run has its `done <id>` line in `run_logs`;
//! - every schedule slot was materialised exactly once (attempt 1), none skipped.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use chrono::Utc;
use sisyphus_client::spec::{Command as JobCommand, CronLines, Text};
use sisyphus_client::JobDefinition;

use crate::net::Host;
use crate::{now, temp_dir, witness, Daemon, Fleet};

/// What else goes wrong during the storm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Trouble {
    None,
    DatabaseRestart,
    SchedulerFailover,
}

/// (name, concurrency, steps of 0.1 s).
const JOBS: [(&str, i64, u32); 8] = [
    ("c1a", 1, 4),
    ("c1b", 1, 2),
    ("c1c", 1, 1),
    ("c2a", 2, 6),
    ("c2b", 2, 3),
    ("c3a", 3, 8),
    ("c3b", 3, 2),
    ("c4", 4, 10),
];
const STORM: Duration = Duration::from_secs(40);
const KILL_EVERY: Duration = Duration::from_secs(3);
/// A run whose process ended this long before its guardian was killed had time to be recorded.
const RECORD_WINDOW: f64 = 2.0;

type RunRow = (i64, String, f64, i32, String, Option<String>);

pub async fn run(fleet: &mut Fleet, trouble: Trouble) {
    let db = fleet.database().await;
    let dir = temp_dir("storm");
    let start = Utc::now() + chrono::Duration::seconds(3);
    let end = start + chrono::Duration::from_std(STORM).expect("storm length");
    let definitions: Vec<JobDefinition> = JOBS
        .iter()
        .map(|(name, concurrency, steps)| JobDefinition {
            shell: Some(true),
            command: Some(JobCommand::Line(witness::script(
                &dir.join(format!("{name}.witness")),
                *steps,
                "0.1",
            ))),
            cron: Some(CronLines::One("* * * * * *".into())),
            start: Some(Text(start.to_rfc3339())),
            end: Some(Text(end.to_rfc3339())),
            concurrency: Some(*concurrency),
            retries: Some(20),
            retry_backoff: Some("0s".into()),
            ..JobDefinition::new("S", name, ["unused"])
        })
        .collect();
    db.client.apply(&definitions, false).await.expect("apply");

    let hosts: Vec<Host> = ["g1", "g2", "g3", "g4"]
        .iter()
        .map(|n| Host::new(n))
        .collect();
    let flags = [
        "--capacity",
        "4",
        "--lease",
        "5s",
        "--heartbeat",
        "500ms",
        "--grace",
        "1s",
    ];
    let mut guardians: Vec<Daemon> = hosts
        .iter()
        .map(|h| Daemon::guardian(h, fleet.port(), &db, &dir, &flags))
        .collect();
    let mut schedulers = vec![Daemon::scheduler(&db, "s1", &dir)];
    if trouble == Trouble::SchedulerFailover {
        tokio::time::sleep(Duration::from_secs(1)).await;
        schedulers.push(Daemon::scheduler(&db, "s2", &dir));
    }

    // The storm.
    let mut rng = Rng(now().to_bits() | 1);
    let (mut kills, mut restarts, mut scheduler_kills, mut db_restarts) = (Vec::new(), 0, 0, 0);
    let began = Instant::now();
    let mut next_kill = began + KILL_EVERY;
    let mut scheduler_down: Option<(usize, Instant)> = None;
    let mut next_failover = began + Duration::from_secs(10);
    let mut db_restart_due = trouble == Trouble::DatabaseRestart;
    while began.elapsed() < STORM + Duration::from_secs(3) {
        restarts += respawn_dead(&mut guardians, &hosts);
        if Instant::now() >= next_kill {
            let i = rng.below(guardians.len());
            guardians[i].kill9();
            kills.push((hosts[i].name.clone(), now()));
            next_kill += KILL_EVERY;
        }
        if trouble == Trouble::SchedulerFailover {
            match scheduler_down {
                Some((i, since)) if since.elapsed() > Duration::from_secs(2) => {
                    schedulers[i].respawn(&hosts);
                    scheduler_down = None;
                }
                None if Instant::now() >= next_failover => {
                    // Alternate, so that each kill hits the one that became leader.
                    let i = scheduler_kills % 2;
                    schedulers[i].kill9();
                    scheduler_kills += 1;
                    scheduler_down = Some((i, Instant::now()));
                    next_failover += Duration::from_secs(10);
                }
                _ => {}
            }
        }
        if db_restart_due && began.elapsed() > Duration::from_secs(18) {
            fleet.cluster.stop();
            std::thread::sleep(Duration::from_secs(1));
            fleet.cluster.restart().expect("restart PostgreSQL");
            db_restarts += 1;
            db_restart_due = false;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for s in &mut schedulers {
        if !s.is_alive() {
            s.respawn(&hosts);
        }
    }

    // Calm: everything left must reach a terminal state.
    let pool = sqlx::PgPool::connect(&db.url).await.expect("reconnect");
    let calm = Instant::now();
    let mut open = i64::MAX;
    while open > 0 {
        assert!(
            calm.elapsed() < Duration::from_secs(120),
            "{open} runs still not in a terminal state 120 s after the storm"
        );
        restarts += respawn_dead(&mut guardians, &hosts);
        tokio::time::sleep(Duration::from_millis(250)).await;
        open = sqlx::query_scalar(
            "SELECT count(*) FROM sisyphus.runs WHERE status IN ('pending', 'running', 'suspended')",
        )
        .fetch_one(&pool)
        .await
        .unwrap_or(i64::MAX);
    }

    // The verdict.
    let runs: Vec<RunRow> = sqlx::query_as(
        "SELECT r.id, j.name, extract(epoch FROM r.slot)::float8, r.attempt, r.status::text, r.host \
           FROM sisyphus.runs r JOIN sisyphus.jobs j ON j.id = r.job_id ORDER BY r.id",
    )
    .fetch_all(&pool)
    .await
    .expect("runs");
    let mut statuses: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &runs {
        *statuses.entry(r.4.as_str()).or_default() += 1;
    }
    let by_id: HashMap<i64, &RunRow> = runs.iter().map(|r| (r.0, r)).collect();
    let (mut twice, mut over_limit, mut lost_outcomes, mut excused, mut unfinished_successes) =
        (0, 0, 0, 0, 0);
    let (mut witnessed, mut peaks) = (0, Vec::new());
    for (name, concurrency, _) in JOBS {
        let seen = witness::read(&dir.join(format!("{name}.witness")));
        witnessed += seen.len();
        twice += seen.values().filter(|s| s.starts > 1).count();
        over_limit += witness::excess_starts(seen.values(), concurrency as usize);
        peaks.push(format!(
            "{name}: {}/{concurrency}",
            witness::most_at_once(seen.values())
        ));
        for (id, s) in &seen {
            let Some(row) = by_id.get(id) else {
                panic!("witnessed run {id} of {name} is not in the database");
            };
            let successful = row.4 == "successful";
            if s.ended && !successful {
                let host = row.5.as_deref().unwrap_or("");
                let killed_meanwhile = kills
                    .iter()
                    .any(|(h, t)| h == host && *t >= s.to - 0.1 && *t <= s.to + RECORD_WINDOW);
                if killed_meanwhile {
                    excused += 1;
                } else {
                    lost_outcomes += 1;
                    println!("lost outcome: run {id} of {name} finished but is {}", row.4);
                }
            }
            if successful && !s.ended {
                unfinished_successes += 1;
            }
        }
    }
    let lost_lines: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sisyphus.runs r WHERE r.status = 'successful' AND NOT EXISTS \
           (SELECT 1 FROM sisyphus.run_logs l WHERE l.run_id = r.id AND l.text = 'done ' || r.id)",
    )
    .fetch_one(&pool)
    .await
    .expect("lost lines");
    let window = (
        start.timestamp_millis() as f64 / 1000.0,
        end.timestamp_millis() as f64 / 1000.0,
    );
    let (duplicate_slots, skipped_slots, first_attempts) = slot_check(&runs, window);
    println!(
        "storm ({trouble:?}): {} runs ({first_attempts} slots, {} retries), {witnessed} witnessed; \
         guardian kills {}, guardian start attempts {restarts} (refused while the killed one's registration was live), scheduler kills {scheduler_kills}, \
         database restarts {db_restarts}; statuses {statuses:?}",
        runs.len(),
        runs.len() - first_attempts,
        kills.len(),
    );
    println!(
        "storm ({trouble:?}): started twice {twice}, over the concurrency limit {over_limit}, \
         lost outcomes {lost_outcomes} (+{excused} ended as their guardian was killed), \
         successful without finishing {unfinished_successes}, lost log lines {lost_lines}, \
         duplicate slots {duplicate_slots}, skipped slots {skipped_slots}; most at once {}",
        peaks.join(", ")
    );
    assert!(runs.len() >= 300, "only {} runs", runs.len());
    assert!(kills.len() >= 10, "only {} kills", kills.len());
    assert_eq!(twice, 0, "runs started twice");
    assert_eq!(over_limit, 0, "concurrency limits exceeded");
    assert_eq!(lost_outcomes, 0, "outcomes lost");
    assert_eq!(
        unfinished_successes, 0,
        "successes recorded for processes that did not finish"
    );
    assert_eq!(lost_lines, 0, "log lines lost");
    assert_eq!(duplicate_slots, 0, "slots materialised twice");
    assert_eq!(skipped_slots, 0, "slots skipped");
}

/// Restarts guardians that are not running (killed, or refused while their old registration
/// was still live), at most once a second each; returns how many starts were tried.
fn respawn_dead(guardians: &mut [Daemon], hosts: &[Host]) -> usize {
    let mut n = 0;
    for g in guardians.iter_mut() {
        if !g.is_alive() && g.age() > Duration::from_secs(1) {
            g.respawn(hosts);
            n += 1;
        }
    }
    n
}

/// Per job, first attempts only: (slots seen twice, whole seconds of the `(start, end)` window
/// with no slot, number of first attempts).
fn slot_check(runs: &[RunRow], (start, end): (f64, f64)) -> (usize, usize, usize) {
    let mut slots: BTreeMap<&str, Vec<i64>> = JOBS.iter().map(|j| (j.0, Vec::new())).collect();
    for r in runs.iter().filter(|r| r.3 == 1) {
        slots
            .entry(r.1.as_str())
            .or_default()
            .push(r.2.round() as i64);
    }
    let expected: Vec<i64> = (start.ceil() as i64..=end.floor() as i64).collect();
    let (mut duplicates, mut skipped, mut total) = (0, 0, 0);
    for list in slots.values_mut() {
        total += list.len();
        list.sort_unstable();
        let before = list.len();
        list.dedup();
        duplicates += before - list.len();
        skipped += expected
            .iter()
            .filter(|s| list.binary_search(s).is_err())
            .count();
    }
    (duplicates, skipped, total)
}

/// A small xorshift generator: which guardian dies next needs no cryptography.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}
