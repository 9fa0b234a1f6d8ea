//! The poison storm: four guardians, each a host of its own, run eight well-behaved cron jobs
//! beside one job of each kind of poison — NUL bytes in its output, 200 kB of /dev/urandom,
//! absurd durations stored behind validation's back (direct SQL), a `setsid` escapee, and, where
//! the `pids` controller is delegated, a fork bomb on a host of its own whose cgroup is limited
//! by `pids.max` — while a random guardian is killed with SIGKILL every few seconds and restarted
//! under the same name, in the same namespace and cgroup root. Afterwards:
//! - every slot of a well-behaved job (and of the NUL, urandom and escapee jobs) in the window
//!   got exactly one first attempt, and its chain of attempts (1, 2, … with no gap) ends
//!   `successful`, every earlier attempt `lost`: outcome counts are exact;
//! - every successful well-behaved run stored exactly its lines (no duplicate, none lost, in
//!   order) and nothing on stderr; no attempt was started twice (witness files), none exceeded
//!   concurrency 1, and no run whose process finished lost its outcome (unless its guardian was
//!   killed in that moment);
//! - the NUL job's lines hold U+FFFD tagged `nul`; the escapee job's runs report the process they
//!   left behind; the jobs with absurd values carry a `scheduler_error`;
//! - no process of any run outlives its run: every process of this test's runs is found by its
//!   environment, and once its run has ended (and the guardian of its host has been up for a
//!   while, so escapees of a killed guardian's runs were reaped at its restart) none may be left;
//!   after the final restarts and a settle period, no process of any run is left at all, and
//!   every escapee pid recorded is gone.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Utc;
use sisyphus_client::spec::{Command as JobCommand, CronLines, Text};
use sisyphus_client::JobDefinition;

use crate::net::Host;
use crate::{now, temp_dir, witness, Daemon, Fleet};

/// Well-behaved jobs: (name, period in seconds, stdout lines before `done`, seconds per line).
const GOOD: [(&str, u32, u32, &str); 8] = [
    ("w1", 2, 3, "0.1"),
    ("w2", 2, 5, "0.05"),
    ("w3", 3, 2, "0.3"),
    ("w4", 3, 8, "0.05"),
    ("w5", 2, 1, "0.5"),
    ("w6", 3, 4, "0.2"),
    ("w7", 2, 6, "0.1"),
    ("w8", 3, 10, "0.02"),
];
/// Poison jobs held to the same slot and outcome rules: (name, period in seconds).
const POISON: [(&str, u32); 3] = [("nul", 2), ("urandom", 2), ("escapee", 2)];
/// Jobs whose stored values are made absurd by SQL after apply.
const ABSURD: [(&str, &str); 2] = [
    (
        "backoff",
        "UPDATE sisyphus.jobs SET retry_backoff = '2000000000 hours' WHERE name = 'backoff'",
    ),
    (
        "ttl",
        "UPDATE sisyphus.jobs SET ttl = '-99999999 hours' WHERE name = 'ttl'",
    ),
];
const HOSTS: [&str; 4] = ["poison-1", "poison-2", "poison-3", "poison-4"];
const STORM: Duration = Duration::from_secs(40);
const KILL_EVERY: Duration = Duration::from_secs(3);
/// A run whose process ended this long before its guardian was killed had time to be recorded.
const RECORD_WINDOW: f64 = 2.0;
/// How long after its run ended (and after its host's guardian started) a process may linger.
const LINGER: f64 = 3.0;
/// A killed guardian is restarted this many seconds later.
const RESTART_AFTER: f64 = 2.0;
/// `pids.max` of the fork bomb's host.
const BOMB_PIDS: u32 = 64;

/// (id, job, slot, attempt, status, host)
type RunRow = (i64, String, f64, i32, String, Option<String>);

pub async fn run(fleet: &mut Fleet) {
    let db = fleet.database().await;
    let dir = temp_dir("poison");
    let tag = format!("poison-{}-{}", std::process::id(), db.name);
    let escapees_file = dir.join("escapees");
    // Whatever happens, no process of this test's runs is left on the machine afterwards.
    let _reaper = Reaper(tag.clone());
    let start = Utc::now() + chrono::Duration::seconds(3);
    let end = start + chrono::Duration::from_std(STORM).expect("storm length");
    let cron = |period: u32| Some(CronLines::One(format!("* * * * * */{period}")));
    let base = |name: &str, period: u32| JobDefinition {
        cron: cron(period),
        start: Some(Text(start.to_rfc3339())),
        end: Some(Text(end.to_rfc3339())),
        concurrency: Some(1),
        retries: Some(20),
        retry_backoff: Some("0s".into()),
        target: Some("fleet".into()),
        env: Some(BTreeMap::from([(
            "FLEET_TAG".to_string(),
            tag.clone().into(),
        )])),
        ..JobDefinition::new("X", name, ["unused"])
    };
    let mut definitions: Vec<JobDefinition> = GOOD
        .iter()
        .map(|(name, period, lines, step)| JobDefinition {
            shell: Some(true),
            command: Some(JobCommand::Line(good_script(
                &dir.join(format!("{name}.witness")),
                *lines,
                step,
            ))),
            ..base(name, *period)
        })
        .collect();
    definitions.push(JobDefinition {
        command: Some(JobCommand::Argv(vec!["printf".into(), "a\\000b\\n".into()])),
        ..base("nul", 2)
    });
    definitions.push(JobDefinition {
        command: Some(JobCommand::Argv(
            ["head", "-c", "200000", "/dev/urandom"]
                .map(String::from)
                .to_vec(),
        )),
        ..base("urandom", 2)
    });
    // Without a cgroup v2 directory runs are held by process groups, which `setsid` leaves.
    let contained = own_cgroup().is_some_and(|c| c.join("cgroup.procs").is_file());
    if contained {
        definitions.push(JobDefinition {
        shell: Some(true),
        command: Some(JobCommand::Line(format!(
            "( setsid sh -c 'echo \"$$ $SISYPHUS_RUN_ID\" >> {}; exec sleep 900' & ); sleep 1; echo escaped",
            escapees_file.display()
        ))),
        ..base("escapee", 2)
    });
    } else {
        println!("poison: setsid escapee skipped: no cgroup v2 directory on this machine");
    }
    definitions.push(JobDefinition {
        shell: Some(true),
        command: Some(JobCommand::Line("echo failing; exit 1".into())),
        retries: Some(3),
        ..base("backoff", 2)
    });
    definitions.push(JobDefinition {
        shell: Some(true),
        command: Some(JobCommand::Line("echo ttl".into())),
        ..base("ttl", 2)
    });
    let bomb = bomb_cgroup(&tag);
    match &bomb {
        Ok(_) => definitions.push(JobDefinition {
            shell: Some(true),
            command: Some(JobCommand::Line("f() { f | f & }; f; sleep 30".into())),
            maxtime: Some("3s".into()),
            retries: Some(0),
            target: Some("bomb".into()),
            ..base("bomb", 10)
        }),
        Err(why) => println!("poison: fork bomb skipped: {why}"),
    }
    db.client.apply(&definitions, false).await.expect("apply");
    // Behind validation's back, before any scheduler reads them.
    for (name, statement) in ABSURD {
        sqlx::query(statement)
            .execute(&db.pool)
            .await
            .unwrap_or_else(|e| panic!("poison {name} by SQL: {e}"));
    }

    // In their network namespaces, but seeing the machine's cgroup v2 mount.
    let hosts: Vec<Host> = HOSTS
        .iter()
        .map(|n| Host::new(n).keeping_mounts())
        .collect();
    let flags = [
        "--pools",
        "fleet",
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
    let bomb_host = bomb
        .as_ref()
        .ok()
        .map(|_| Host::new("poison-bomb").keeping_mounts());
    let _bomb_guardian = match (&bomb, &bomb_host) {
        (Ok(root), Some(h)) => {
            let root = root.display().to_string();
            let flags = [
                "--pools",
                "bomb",
                "--lease",
                "5s",
                "--heartbeat",
                "500ms",
                "--grace",
                "1s",
                "--cgroup-root",
                &root,
            ];
            Some(Daemon::guardian(h, fleet.port(), &db, &dir, &flags))
        }
        _ => None,
    };
    let _scheduler = Daemon::scheduler(&db, "s1", &dir);
    let isolation: Vec<(String, String)> =
        crate::wait_for("the hosts to register", Duration::from_secs(20), || async {
            let rows: Vec<(String, String)> = sqlx::query_as(
                "SELECT name, isolation FROM sisyphus.hosts WHERE name = ANY($1) ORDER BY name",
            )
            .bind(HOSTS.to_vec())
            .fetch_all(&db.pool)
            .await
            .map_err(|e| println!("poison: hosts: {e}"))
            .ok()?;
            (rows.len() == HOSTS.len()).then_some(rows)
        })
        .await;
    if contained {
        for (host, how) in &isolation {
            assert_eq!(how, "cgroup", "{host} holds its runs by {how}");
        }
    }

    // The storm; every 250 ms, every process of a run is checked against its run.
    let mut rng = Rng(now().to_bits() | 1);
    let (mut kills, mut restarts) = (Vec::<(String, f64)>::new(), 0);
    let mut outlived: BTreeMap<i32, String> = BTreeMap::new();
    let mut seen_processes: BTreeMap<i32, (i64, f64, f64)> = BTreeMap::new();
    let began = Instant::now();
    let mut next_kill = began + KILL_EVERY;
    while began.elapsed() < STORM + Duration::from_secs(3) {
        restarts += respawn_dead(&mut guardians, &hosts, &kills);
        if Instant::now() >= next_kill {
            // Every other kill hits a host while it runs an escapee (waiting up to 1.5 s for
            // one), so that escapees of killed guardians' runs are surely among the victims.
            let aimed = contained && kills.len() % 2 == 1;
            let target = match aimed {
                true => escapee_host(&db.pool).await,
                false => None,
            };
            let late = Instant::now() > next_kill + Duration::from_millis(1500);
            if target.is_some() || !aimed || late {
                let i = target
                    .and_then(|h| HOSTS.iter().position(|n| *n == h))
                    .unwrap_or_else(|| rng.below(guardians.len()));
                guardians[i].kill9();
                kills.push((hosts[i].name.clone(), now()));
                next_kill += KILL_EVERY;
            }
        }
        check_processes(
            &db.pool,
            &tag,
            &mut guardians,
            &mut outlived,
            &mut seen_processes,
        )
        .await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Calm: everything left must reach a terminal state.
    let calm = Instant::now();
    let mut open = i64::MAX;
    while open > 0 {
        assert!(
            calm.elapsed() < Duration::from_secs(90),
            "{open} runs still not in a terminal state 90 s after the storm"
        );
        restarts += respawn_dead(&mut guardians, &hosts, &kills);
        check_processes(
            &db.pool,
            &tag,
            &mut guardians,
            &mut outlived,
            &mut seen_processes,
        )
        .await;
        tokio::time::sleep(Duration::from_millis(250)).await;
        open = sqlx::query_scalar(
            "SELECT count(*) FROM sisyphus.runs WHERE status IN ('pending', 'running', 'suspended')",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap_or(i64::MAX);
    }
    // Settle: every guardian up for a while (so it reaped what its earlier lives' runs left);
    // then no process of any run may be left.
    let settle = Instant::now();
    let left = loop {
        restarts += respawn_dead(&mut guardians, &hosts, &kills);
        let settled = guardians
            .iter_mut()
            .all(|g| g.is_alive() && g.age() > Duration::from_secs_f64(LINGER));
        let left = tagged_processes(&tag);
        if (settled && left.is_empty()) || settle.elapsed() > Duration::from_secs(20) {
            break left;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    check_processes(
        &db.pool,
        &tag,
        &mut guardians,
        &mut outlived,
        &mut seen_processes,
    )
    .await;
    let escapees = read_escapees(&escapees_file);
    let escapees_alive: Vec<&(i32, i64)> = escapees
        .iter()
        .filter(|(pid, run)| process_of_run(*pid, *run))
        .collect();

    // The verdict.
    let runs: Vec<RunRow> = sqlx::query_as(
        "SELECT r.id, j.name, extract(epoch FROM r.slot)::float8, r.attempt, r.status::text, r.host \
           FROM sisyphus.runs r JOIN sisyphus.jobs j ON j.id = r.job_id ORDER BY r.id",
    )
    .fetch_all(&db.pool)
    .await
    .expect("runs");
    let mut statuses: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for r in &runs {
        *statuses.entry((r.1.as_str(), r.4.as_str())).or_default() += 1;
    }
    let window = (
        start.timestamp_millis() as f64 / 1000.0,
        end.timestamp_millis() as f64 / 1000.0,
    );
    let mut chained: Vec<(&str, u32)> = GOOD.iter().map(|g| (g.0, g.1)).collect();
    chained.extend(POISON.iter().filter(|p| contained || p.0 != "escapee"));
    let mut problems: Vec<String> = Vec::new();
    let mut slots_total = 0;
    let mut successes: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for (name, period) in &chained {
        let (slots, ok, bad) = chain_check(&runs, name, *period, window);
        slots_total += slots;
        successes.insert(name, ok);
        problems.extend(bad);
    }

    // Lines of every successful well-behaved run, exactly.
    let good_ok: Vec<i64> = GOOD
        .iter()
        .flat_map(|g| successes[g.0].iter().copied())
        .collect();
    let lines = stored_lines(&db.pool, &good_ok).await;
    let mut lines_checked = 0;
    for (name, _, count, _) in GOOD {
        for id in &successes[name] {
            let mut want: Vec<(String, String)> = (1..=count)
                .map(|i| ("stdout".to_string(), format!("line {i} of {id}")))
                .collect();
            want.push(("stdout".into(), format!("done {id}")));
            let got: Vec<(String, String)> = lines
                .get(id)
                .map(|l| {
                    l.iter()
                        .filter(|(stream, _, _)| stream != "sisyphus")
                        .map(|(stream, _, text)| (stream.clone(), text.clone()))
                        .collect()
                })
                .unwrap_or_default();
            lines_checked += got.len();
            if got != want {
                problems.push(format!(
                    "{name} run {id} stored {got:?}, not its {} lines",
                    count + 1
                ));
            }
        }
    }

    // Witnesses of the well-behaved jobs: no attempt started twice, no overlap, no lost outcome.
    let by_id: HashMap<i64, &RunRow> = runs.iter().map(|r| (r.0, r)).collect();
    let (mut witnessed, mut twice, mut over_limit, mut excused) = (0, 0, 0, 0);
    for (name, ..) in GOOD {
        let seen = witness::read(&dir.join(format!("{name}.witness")));
        witnessed += seen.len();
        twice += seen.values().filter(|s| s.starts > 1).count();
        over_limit += witness::excess_starts(seen.values(), 1);
        let ok: BTreeSet<i64> = successes[name].iter().copied().collect();
        for id in &ok {
            if !seen.get(id).is_some_and(|s| s.ended) {
                problems.push(format!(
                    "{name} run {id} is successful but its process did not finish"
                ));
            }
        }
        for (id, s) in &seen {
            let Some(row) = by_id.get(id) else {
                problems.push(format!(
                    "witnessed run {id} of {name} is not in the database"
                ));
                continue;
            };
            if s.ended && row.4 != "successful" {
                let host = row.5.as_deref().unwrap_or("");
                let killed_meanwhile = kills
                    .iter()
                    .any(|(h, t)| h == host && *t >= s.to - 0.1 && *t <= s.to + RECORD_WINDOW);
                if killed_meanwhile {
                    excused += 1;
                } else {
                    problems.push(format!(
                        "lost outcome: run {id} of {name} finished but is {}",
                        row.4
                    ));
                }
            }
        }
    }
    if twice > 0 {
        problems.push(format!("{twice} runs started twice"));
    }
    if over_limit > 0 {
        problems.push(format!("{over_limit} starts beyond concurrency 1"));
    }

    // The poisons' own marks.
    let nul_lines = stored_lines(&db.pool, &successes["nul"]).await;
    for id in &successes["nul"] {
        let stdout: Vec<&(String, Vec<String>, String)> = nul_lines
            .get(id)
            .map(|l| l.iter().filter(|(s, _, _)| s == "stdout").collect())
            .unwrap_or_default();
        let ok = stdout.len() == 1
            && stdout[0].2 == "a\u{FFFD}b"
            && stdout[0].1.iter().any(|t| t == "nul");
        if !ok {
            problems.push(format!("nul run {id} stored {stdout:?}"));
        }
    }
    let escapee_runs = successes.get("escapee").cloned().unwrap_or_default();
    let escapee_lines = stored_lines(&db.pool, &escapee_runs).await;
    for id in &escapee_runs {
        let reported = escapee_lines.get(id).is_some_and(|l| {
            l.iter()
                .any(|(_, _, text)| text == "1 process left behind, killed")
        });
        if !reported {
            problems.push(format!(
                "escapee run {id} does not report the process it left behind: {:?}",
                escapee_lines.get(id)
            ));
        }
    }
    let recorded_escapees: BTreeSet<i64> = escapees.iter().map(|e| e.1).collect();
    for id in &escapee_runs {
        if !recorded_escapees.contains(id) {
            problems.push(format!("escapee run {id} recorded no escapee pid"));
        }
    }
    let marks: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT name, scheduler_error FROM sisyphus.jobs WHERE name = ANY($1) ORDER BY name",
    )
    .bind(ABSURD.iter().map(|a| a.0).collect::<Vec<_>>())
    .fetch_all(&db.pool)
    .await
    .expect("scheduler errors");
    for (name, mark) in &marks {
        match mark {
            Some(m) => println!("poison: {name} marked: {m}"),
            None => problems.push(format!("{name}, poisoned by SQL, has no scheduler_error")),
        }
    }
    for (pid, what) in &outlived {
        problems.push(format!("process {pid} outlived its run: {what}"));
    }
    for (pid, run, cmd) in &left {
        problems.push(format!(
            "process {pid} of run {run} ({cmd}) still alive after the storm"
        ));
    }
    for (pid, run) in &escapees_alive {
        problems.push(format!("escapee {pid} of run {run} still alive"));
    }

    let status_of: HashMap<i64, &str> = runs.iter().map(|r| (r.0, r.4.as_str())).collect();
    let orphaned = escapees
        .iter()
        .filter(|(_, run)| status_of.get(run).is_some_and(|s| *s == "lost"))
        .count();
    // How long escapees of runs lost with their guardian lived after the kill.
    let mut orphan_lives: Vec<String> = Vec::new();
    for (pid, run) in &escapees {
        let (Some(&"lost"), Some(r)) = (status_of.get(run), by_id.get(run)) else {
            continue;
        };
        let host = r.5.as_deref().unwrap_or("");
        let Some(&(_, first_seen, last_seen)) = seen_processes.get(pid) else {
            continue;
        };
        // The first kill of its host since it was seen (checks are 250 ms apart); negative: it
        // was gone before (killed with its run's leftovers, the outcome lost with the guardian
        // before its commit).
        let killed = kills
            .iter()
            .filter(|(h, t)| h == host && *t >= first_seen - 0.3)
            .map(|k| k.1)
            .fold(f64::INFINITY, f64::min);
        orphan_lives.push(format!("{:.1}", last_seen - killed));
    }
    println!(
        "poison: escapees of runs lost with their guardian, last seen alive this many seconds after \
         their guardian was killed (restarted {RESTART_AFTER} s after): {}",
        orphan_lives.join(", ")
    );
    let good_runs = runs
        .iter()
        .filter(|r| GOOD.iter().any(|g| g.0 == r.1))
        .count();
    println!(
        "poison: {} runs ({good_runs} of well-behaved jobs), {slots_total} slots of {} chained jobs, \
         {} successful well-behaved runs with {lines_checked} stdout lines, {witnessed} witnessed \
         (+{excused} finished as their guardian was killed); guardian kills {}, guardian start \
         attempts {restarts}; {} processes of runs seen, {} escapees recorded ({orphaned} of runs \
         lost with their guardian), {} outlived their run, {} left at the end; statuses {statuses:?}; {:.0} s",
        runs.len(),
        chained.len(),
        good_ok.len(),
        kills.len(),
        seen_processes.len(),
        escapees.len(),
        outlived.len(),
        left.len() + escapees_alive.len(),
        began.elapsed().as_secs_f64(),
    );
    drop(guardians);
    drop(_bomb_guardian);
    cleanup_cgroups(bomb.as_ref().ok());
    for p in &problems {
        println!("poison: {p}");
    }
    assert!(kills.len() >= 10, "only {} kills", kills.len());
    assert!(slots_total >= 150, "only {slots_total} slots");
    assert!(
        !contained || !escapees.is_empty(),
        "no escapee was recorded: the escapee job never ran"
    );
    assert!(
        !contained || orphaned > 0,
        "no escapee's guardian was killed: the reaping at restart was not tried"
    );
    assert!(problems.is_empty(), "{} problems (above)", problems.len());
}

/// A well-behaved job: witness lines around `lines` lines on stdout (`line I of RUN`), one per
/// `step` seconds, then `done RUN`.
fn good_script(witness: &Path, lines: u32, step: &str) -> String {
    let w = witness.display();
    format!(
        "w={w}; r=$SISYPHUS_RUN_ID; echo \"start $r $(date +%s.%N)\" >> $w; \
         i=1; while [ $i -le {lines} ]; do echo \"line $i of $r\"; sleep {step}; \
         echo \"tick $r $(date +%s.%N)\" >> $w; i=$((i+1)); done; \
         echo \"end $r $(date +%s.%N)\" >> $w; echo \"done $r\""
    )
}

/// For one job: (slots, ids of the successful final attempts, problems). Every slot of the
/// window has exactly one first attempt; each chain's attempts are 1..=k, the last
/// `successful`, the others `lost`.
fn chain_check(
    runs: &[RunRow],
    name: &str,
    period: u32,
    (start, end): (f64, f64),
) -> (usize, Vec<i64>, Vec<String>) {
    let mut chains: BTreeMap<i64, Vec<&RunRow>> = BTreeMap::new();
    for r in runs.iter().filter(|r| r.1 == name) {
        chains.entry(r.2.round() as i64).or_default().push(r);
    }
    let expected: BTreeSet<i64> = (start.ceil() as i64..=end.floor() as i64)
        .filter(|s| s % i64::from(period) == 0)
        .collect();
    let mut problems = Vec::new();
    let mut ok = Vec::new();
    for slot in &expected {
        if !chains.contains_key(slot) {
            problems.push(format!("{name}: slot {slot} has no run"));
        }
    }
    for (slot, chain) in &mut chains {
        if !expected.contains(slot) {
            problems.push(format!(
                "{name}: run(s) for slot {slot} outside the schedule"
            ));
            continue;
        }
        chain.sort_by_key(|r| r.3);
        let attempts: Vec<i32> = chain.iter().map(|r| r.3).collect();
        let want: Vec<i32> = (1..=chain.len() as i32).collect();
        if attempts != want {
            problems.push(format!("{name}: slot {slot} has attempts {attempts:?}"));
        }
        let (last, earlier) = chain.split_last().expect("a chain has a run");
        if last.4 == "successful" {
            ok.push(last.0);
        } else {
            problems.push(format!(
                "{name}: slot {slot} ended {} (run {})",
                last.4, last.0
            ));
        }
        for r in earlier.iter().filter(|r| r.4 != "lost") {
            problems.push(format!(
                "{name}: slot {slot} attempt {} is {}, not lost",
                r.3, r.4
            ));
        }
    }
    (expected.len(), ok, problems)
}

/// (stream, tags, text) of the runs' stored lines, by run, in order.
async fn stored_lines(
    pool: &sqlx::PgPool,
    runs: &[i64],
) -> HashMap<i64, Vec<(String, Vec<String>, String)>> {
    let rows: Vec<(i64, String, Vec<String>, String)> = sqlx::query_as(
        "SELECT run_id, stream::text, tags, text FROM sisyphus.run_logs \
          WHERE run_id = ANY($1) ORDER BY run_id, seq",
    )
    .bind(runs)
    .fetch_all(pool)
    .await
    .expect("run logs");
    let mut by_run: HashMap<i64, Vec<(String, Vec<String>, String)>> = HashMap::new();
    for (run, stream, tags, text) in rows {
        by_run.entry(run).or_default().push((stream, tags, text));
    }
    by_run
}

/// Every live (not zombie) process of this test's runs: (pid, run id, command line). Found by
/// the `FLEET_TAG` every job has in its environment, which escapees and children inherit.
fn tagged_processes(tag: &str) -> Vec<(i32, i64, String)> {
    let needle = format!("FLEET_TAG={tag}");
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let vars: Vec<&[u8]> = environ.split(|b| *b == 0).collect();
        if !vars.contains(&needle.as_bytes()) {
            continue;
        }
        if !alive(pid) {
            continue;
        }
        let run = vars
            .iter()
            .find_map(|v| v.strip_prefix(b"SISYPHUS_RUN_ID="))
            .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
            .unwrap_or(0);
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .unwrap_or_default();
        found.push((pid, run, cmd.trim().to_string()));
    }
    found
}

/// Whether a process exists and is not a zombie.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z'))
    })
}

/// Whether `pid` is alive and a process of `run` (not a later process that got its pid).
fn process_of_run(pid: i32, run: i64) -> bool {
    let needle = format!("SISYPHUS_RUN_ID={run}");
    alive(pid)
        && std::fs::read(format!("/proc/{pid}/environ"))
            .is_ok_and(|e| e.split(|b| *b == 0).any(|v| v == needle.as_bytes()))
}

/// Notes every process of a run that is still alive `LINGER` seconds after its run ended in
/// the database while its host's guardian has been up for `LINGER` seconds (a guardian reaps
/// what runs of its killed predecessors left when it starts).
async fn check_processes(
    pool: &sqlx::PgPool,
    tag: &str,
    guardians: &mut [Daemon],
    outlived: &mut BTreeMap<i32, String>,
    seen: &mut BTreeMap<i32, (i64, f64, f64)>,
) {
    let procs = tagged_processes(tag);
    if procs.is_empty() {
        return;
    }
    let t = now();
    for (pid, run, _) in &procs {
        seen.entry(*pid).or_insert((*run, t, t)).2 = t;
    }
    let ids: Vec<i64> = procs.iter().map(|p| p.1).collect();
    let Ok(ended) = sqlx::query_as::<_, (i64, String, Option<String>, f64)>(
        "SELECT id, status::text, host, extract(epoch FROM clock_timestamp() - finished_at)::float8 \
           FROM sisyphus.runs WHERE id = ANY($1) AND finished_at IS NOT NULL",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await
    else {
        return;
    };
    let ended: HashMap<i64, (String, Option<String>, f64)> = ended
        .into_iter()
        .map(|(id, s, h, a)| (id, (s, h, a)))
        .collect();
    for (pid, run, cmd) in procs {
        let Some((status, host, ago)) = ended.get(&run) else {
            continue;
        };
        if *ago < LINGER {
            continue;
        }
        let host = host.as_deref().unwrap_or("");
        let guardian_settled = HOSTS
            .iter()
            .position(|h| *h == host)
            .map(|i| &mut guardians[i])
            .is_none_or(|g| g.is_alive() && g.age() > Duration::from_secs_f64(LINGER));
        // Still alive now (not only when listed), and still the same process.
        if guardian_settled && process_of_run(pid, run) {
            outlived.entry(pid).or_insert_with(|| {
                format!("`{cmd}` of run {run} ({status} on {host} {ago:.1} s ago)")
            });
        }
    }
}

/// A host running an escapee run whose escapee has already left, if any.
async fn escapee_host(pool: &sqlx::PgPool) -> Option<String> {
    sqlx::query_scalar(
        "SELECT r.host FROM sisyphus.runs r JOIN sisyphus.jobs j ON j.id = r.job_id \
          WHERE j.name = 'escapee' AND r.status = 'running' \
            AND r.started_at < clock_timestamp() - interval '200 milliseconds' \
          ORDER BY r.id LIMIT 1",
    )
    .fetch_optional(pool)
    .await
    .ok()
    .flatten()
    .flatten()
}

/// (pid, run) of every escapee, as the escapees wrote them.
fn read_escapees(file: &Path) -> Vec<(i32, i64)> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (pid, run) = l.trim().split_once(' ')?;
            Some((pid.parse().ok()?, run.parse().ok()?))
        })
        .collect()
}

/// Restarts guardians that are not running (killed, or refused while their old registration
/// was still live), at most once a second each and no sooner than `RESTART_AFTER` after their
/// last kill (so that escapees of their runs live on meanwhile); returns how many starts were
/// tried.
fn respawn_dead(guardians: &mut [Daemon], hosts: &[Host], kills: &[(String, f64)]) -> usize {
    let mut n = 0;
    let t = now();
    for (g, host) in guardians.iter_mut().zip(hosts) {
        let killed_lately = kills
            .iter()
            .any(|(h, at)| *h == host.name && t - at < RESTART_AFTER);
        if !g.is_alive() && g.age() > Duration::from_secs(1) && !killed_lately {
            g.respawn(hosts);
            n += 1;
        }
    }
    n
}

/// The cgroup v2 directory this process (and so every guardian it starts) lives in.
fn own_cgroup() -> Option<PathBuf> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = cgroup.lines().find_map(|l| l.strip_prefix("0::"))?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount = mountinfo.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        let fstype = right.split_whitespace().next()?;
        (fstype == "cgroup2").then(|| left.split_whitespace().nth(4).map(PathBuf::from))?
    })?;
    Some(mount.join(path.trim_start_matches('/')))
}

/// A cgroup for the fork bomb's host, limited to `BOMB_PIDS` processes, where the `pids`
/// controller is delegated; otherwise why not.
fn bomb_cgroup(tag: &str) -> Result<PathBuf, String> {
    let parent = own_cgroup().ok_or("no cgroup v2 directory for this process")?;
    let controllers = std::fs::read_to_string(parent.join("cgroup.controllers"))
        .map_err(|e| format!("cannot read {}/cgroup.controllers: {e}", parent.display()))?;
    if !controllers.split_whitespace().any(|c| c == "pids") {
        return Err(format!(
            "the pids controller is not available in {} (controllers: `{}`), and nothing else \
             could hold a fork bomb",
            parent.display(),
            controllers.trim()
        ));
    }
    let write = |path: PathBuf, value: &str| {
        std::fs::write(&path, value)
            .map_err(|e| format!("writing {value} to {}: {e}", path.display()))
    };
    write(parent.join("cgroup.subtree_control"), "+pids")?;
    let root = parent.join(format!("fleet-{tag}"));
    std::fs::create_dir(&root).map_err(|e| format!("creating {}: {e}", root.display()))?;
    write(root.join("pids.max"), &BOMB_PIDS.to_string())?;
    write(root.join("cgroup.subtree_control"), "+pids")?;
    Ok(root)
}

/// Removes the (empty) cgroup directories that guardians of these hosts, now gone, left
/// behind, and the fork bomb's root.
fn cleanup_cgroups(bomb: Option<&PathBuf>) {
    let Some(parent) = own_cgroup() else { return };
    let mut bases: Vec<PathBuf> = Vec::new();
    for entry in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // `sisyphus-<host>-<pid>-<n>` of a guardian that is gone.
        let dead = HOSTS.iter().any(|h| {
            name.strip_prefix(&format!("sisyphus-{h}-"))
                .and_then(|rest| rest.split('-').next())
                .is_some_and(|pid| !Path::new("/proc").join(pid).exists())
        });
        if dead {
            bases.push(entry.path());
        }
    }
    if let Some(root) = bomb {
        for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
            bases.push(entry.path());
        }
    }
    for base in &bases {
        for run in std::fs::read_dir(base).into_iter().flatten().flatten() {
            if run.path().is_dir() {
                let _ = std::fs::remove_dir(run.path());
            }
        }
        let _ = std::fs::remove_dir(base);
    }
    if let Some(root) = bomb {
        let _ = std::fs::remove_dir(root);
    }
}

/// Kills every process of this test's runs when dropped (after the verdict, or on a panic).
struct Reaper(String);

impl Drop for Reaper {
    fn drop(&mut self) {
        for (pid, _, _) in tagged_processes(&self.0) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
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
