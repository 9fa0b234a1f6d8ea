//! The guardian's invariants under contention and failure, with real processes: fleet-wide
//! concurrency (three guardians, a witness file), a guardian killed with SIGKILL mid-run, and
//! PostgreSQL stopped while runs are in flight. Plus the README's first command.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sisyphus_client::spec::Text;
use sisyphus_client::{Client, JobDefinition, JobRef};
use sqlx::PgPool;

use crate::harness::{bin, process_gone, running_pid, status, wait_for, Daemon, TestDb};

/// A shell command that appends `start <t> <run>` and `end <t> <run>` lines to `witness` under
/// flock, sleeping `secs` in between.
fn witnessed(witness: &Path, secs: &str) -> String {
    let w = witness.display();
    format!(
        "flock {w}.lock -c \"echo start $(date +%s.%N) $SISYPHUS_RUN_ID >> {w}\"; sleep {secs}; \
         flock {w}.lock -c \"echo end $(date +%s.%N) $SISYPHUS_RUN_ID >> {w}\""
    )
}

/// Reads a witness file; returns (completed runs, overlaps): an overlap is a start seen while
/// another run had started and not yet ended.
fn check_witness(witness: &Path) -> (usize, usize) {
    let text = std::fs::read_to_string(witness).unwrap_or_default();
    let mut events: Vec<(f64, bool)> = text
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let kind = parts.next()?;
            let t: f64 = parts.next()?.parse().ok()?;
            Some((t, kind == "start"))
        })
        .collect();
    events.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut inside, mut overlaps, mut completed) = (0i32, 0, 0);
    for (_, start) in events {
        if start {
            if inside > 0 {
                overlaps += 1;
            }
            inside += 1;
        } else {
            inside -= 1;
            completed += 1;
        }
    }
    (completed, overlaps)
}

fn shell_job(project: &str, name: &str, script: String) -> JobDefinition {
    JobDefinition {
        project: Some(project.into()),
        name: Some(name.into()),
        shell: Some(true),
        command: Some(sisyphus_client::spec::Command::Line(script)),
        ..JobDefinition::default()
    }
}

#[tokio::test]
async fn three_guardians_never_overlap_a_concurrency_one_job() {
    let db = TestDb::new().await;
    let dir = std::env::temp_dir().join(format!("sisyphus-witness-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let witness = dir.join("w");
    let _ = std::fs::remove_file(&witness);
    // Fires every second; each run takes 1.2 s, so runs always wait for each other.
    let def = JobDefinition {
        cron: Some(sisyphus_client::spec::CronLines::One("* * * * * *".into())),
        ..shell_job("R", "one", witnessed(&witness, "1.2"))
    };
    db.client.apply(&[def], false).await.expect("apply");
    let _s = Daemon::scheduler(&db.url);
    let _g: Vec<Daemon> = ["g1", "g2", "g3"]
        .iter()
        .map(|n| Daemon::guardian(&db.url, n, &["--capacity", "4"]))
        .collect();
    let runs = 60;
    wait_for("60 runs", Duration::from_secs(150), || async {
        let (done, _) = check_witness(&witness);
        (done >= runs).then_some(())
    })
    .await;
    let (done, overlaps) = check_witness(&witness);
    let hosts: Vec<(String, i64)> = sqlx::query_as(
        "SELECT host, count(*) FROM sisyphus.runs WHERE host IS NOT NULL GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(&db.pool)
    .await
    .expect("hosts");
    println!("concurrency 1 across 3 guardians: {done} runs, overlaps = {overlaps}, runs per host {hosts:?}");
    assert_eq!(overlaps, 0);
    assert!(
        hosts.len() >= 2,
        "the runs should spread over the guardians: {hosts:?}"
    );
}

#[tokio::test]
async fn a_killed_guardians_run_becomes_lost_and_is_retried_elsewhere() {
    let db = TestDb::new().await;
    let _s = Daemon::scheduler(&db.url);
    let mut a = Daemon::guardian(&db.url, "a", &[]);
    let def = JobDefinition {
        retries: Some(1),
        retry_backoff: Some(Text::from("0s")),
        ..JobDefinition::new("R", "long", ["sleep", "8"])
    };
    db.client.apply(&[def], false).await.expect("apply");
    let first = db
        .client
        .run_now(&JobRef::new("R", "long"))
        .await
        .expect("run")[0]
        .0;
    let pid = running_pid(&db.pool, first).await;
    let host: Option<String> = sqlx::query_scalar("SELECT host FROM sisyphus.runs WHERE id = $1")
        .bind(first)
        .fetch_one(&db.pool)
        .await
        .expect("host");
    assert_eq!(host.as_deref(), Some("a"));
    let _b = Daemon::guardian(&db.url, "b", &[]);
    let killed = Instant::now();
    a.kill9();
    // The child dies with its guardian (parent-death signal), so nothing can overlap the retry.
    wait_for(
        "the orphaned child to die",
        Duration::from_secs(3),
        || async { process_gone(pid).then_some(()) },
    )
    .await;
    let lost_after = wait_for("the run to be lost", Duration::from_secs(20), || async {
        (status(&db.pool, first).await == "lost").then(|| killed.elapsed())
    })
    .await;
    let retry: (i64, String) =
        wait_for("the retry to run on b", Duration::from_secs(20), || async {
            sqlx::query_as(
                "SELECT id, host FROM sisyphus.runs WHERE attempt = 2 AND host IS NOT NULL",
            )
            .fetch_optional(&db.pool)
            .await
            .ok()
            .flatten()
        })
        .await;
    println!(
        "kill -9: run lost after {:.1} s (lease 4 s), retry {} on {}",
        lost_after.as_secs_f64(),
        retry.0,
        retry.1
    );
    assert_eq!(retry.1, "b");
    let error: Option<String> = sqlx::query_scalar("SELECT error FROM sisyphus.runs WHERE id = $1")
        .bind(first)
        .fetch_one(&db.pool)
        .await
        .expect("error");
    assert!(error.is_some_and(|e| e.contains("stopped renewing its lease")));
}

/// Counts per run of stored lines `line N`, and whether any appears twice.
async fn line_counts(pool: &PgPool) -> Vec<(i64, i64, i64)> {
    sqlx::query_as(
        "SELECT run_id, count(*) FILTER (WHERE text LIKE 'line %'), count(DISTINCT text) FILTER (WHERE text LIKE 'line %')
           FROM sisyphus.run_logs GROUP BY run_id ORDER BY run_id",
    )
    .fetch_all(pool)
    .await
    .expect("lines")
}

#[tokio::test]
async fn outcomes_and_logs_survive_a_database_restart() {
    // Its own cluster: this test stops PostgreSQL.
    let (cluster, url) = own_cluster().await;
    let client = Client::connect(&url).await.expect("connect");
    let lines = 40;
    let script =
        format!("for i in $(seq 1 {lines}); do echo line $i; sleep 0.1; done; echo finished");
    let defs: Vec<JobDefinition> = (0..4)
        .map(|i| shell_job("R", &format!("talk{i}"), script.clone()))
        .collect();
    client.apply(&defs, false).await.expect("apply");
    let g = Daemon::guardian(&url, "g", &["--lease", "60s"]);
    for i in 0..4 {
        client
            .run_now(&JobRef::new("R", format!("talk{i}")))
            .await
            .expect("run");
    }
    let pool = client.pool().clone();
    wait_for("four running runs", Duration::from_secs(10), || async {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM sisyphus.runs WHERE status = 'running'")
                .fetch_one(&pool)
                .await
                .ok()?;
        (n == 4).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    pool.close().await;
    drop(client);
    // Stop PostgreSQL while the runs print and finish; start it after they have ended.
    let down = Instant::now();
    let cluster = stop(cluster).await;
    tokio::time::sleep(Duration::from_secs(9)).await;
    let spooled = std::fs::read_dir(g.dir.join("spool"))
        .map(|d| d.count())
        .unwrap_or(0);
    let cluster = restart(cluster).await;
    println!(
        "database down for {:.1} s; {spooled} spool file(s) written meanwhile",
        down.elapsed().as_secs_f64()
    );
    assert!(
        spooled > 0,
        "outcomes and lines of the outage should have been spooled"
    );
    let pool = PgPool::connect(&url).await.expect("reconnect");
    let statuses: Vec<String> = wait_for("every outcome", Duration::from_secs(30), || async {
        let s: Vec<String> =
            sqlx::query_scalar("SELECT status::text FROM sisyphus.runs ORDER BY id")
                .fetch_all(&pool)
                .await
                .ok()?;
        s.iter().all(|s| s == "successful").then_some(s)
    })
    .await;
    assert_eq!(statuses.len(), 4);
    let counts = wait_for("every log line", Duration::from_secs(30), || async {
        let c = line_counts(&pool).await;
        (c.len() == 4 && c.iter().all(|(_, n, _)| *n == lines)).then_some(c)
    })
    .await;
    for (run, n, distinct) in &counts {
        assert_eq!(
            (*n, *distinct),
            (lines, lines),
            "run {run}: every line once"
        );
    }
    let summaries: Vec<Option<String>> = sqlx::query_scalar("SELECT summary FROM sisyphus.runs")
        .fetch_all(&pool)
        .await
        .expect("summaries");
    assert!(summaries.iter().all(|s| s.as_deref() == Some("finished")));
    wait_for("the spool to empty", Duration::from_secs(10), || async {
        (std::fs::read_dir(g.dir.join("spool"))
            .map(|d| d.count())
            .unwrap_or(0)
            == 0)
            .then_some(())
    })
    .await;
    drop(g);
    drop(cluster);
}

#[tokio::test]
async fn the_readme_first_command_shows_successful_runs_within_a_minute() {
    let state = std::env::temp_dir().join(format!("sisyphus-dev-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    let jobs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/jobs.toml");
    let started = Instant::now();
    let mut dev = Command::new(bin("sisyphus"))
        .args(["dev", "--state-dir"])
        .arg(&state)
        .arg("--jobs")
        .arg(&jobs)
        .env_remove("SISYPHUS_DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sisyphus dev");
    let stderr = dev.stderr.take().expect("stderr");
    let url = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(stderr).lines();
        let url = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| l.split("SISYPHUS_DATABASE_URL=").nth(1).map(str::to_string));
        // Keep draining so the daemon never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        url
    })
    .await
    .expect("read")
    .expect("dev prints the database URL");
    let pool = PgPool::connect(&url).await.expect("connect");
    let ok: i64 = wait_for(
        "an example run to succeed",
        Duration::from_secs(60),
        || async {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM sisyphus.runs WHERE status = 'successful'",
            )
            .fetch_one(&pool)
            .await
            .ok()?;
            (n > 0).then_some(n)
        },
    )
    .await;
    println!(
        "sisyphus dev: first successful example run after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(ok > 0);
    // The URL printed for people is an operator's, not the owner's, and the daemons work under
    // their own logins.
    let me: String = sqlx::query_scalar("SELECT session_user::text")
        .fetch_one(&pool)
        .await
        .expect("session user");
    assert_eq!(me, "dev_operator");
    let edit = sqlx::query(
        "UPDATE sisyphus.jobs SET command = '{false}' WHERE id = (SELECT min(id) FROM sisyphus.jobs)",
    )
    .execute(&pool)
    .await
    .expect_err("the printed URL may edit jobs");
    assert!(edit.to_string().contains("permission denied"), "{edit}");
    let daemons: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT usename::text FROM pg_stat_activity
          WHERE application_name LIKE 'sisyphus %' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .expect("sessions");
    // Each daemon on its own login; the dashboard's login is there while it holds a connection
    // (its pool opens them as pages are asked for), never the owner's.
    for daemon in [
        "sisyphus_dev_dispatcher",
        "sisyphus_dev_guardian",
        "sisyphus_dev_scheduler",
    ] {
        assert!(
            daemons.iter().any(|d| d == daemon),
            "{daemon} in {daemons:?}"
        );
    }
    assert!(
        daemons.iter().all(|d| [
            "sisyphus_dev_dispatcher",
            "sisyphus_dev_guardian",
            "sisyphus_dev_scheduler",
            "sisyphus_dev_web"
        ]
        .contains(&d.as_str())),
        "the daemons' logins: {daemons:?}"
    );
    pool.close().await;
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(dev.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    );
    let exit = dev.wait().expect("wait");
    assert!(exit.success(), "Ctrl-C stops everything cleanly: {exit:?}");
    let _ = std::fs::remove_dir_all(&state);
}

/// Starts a private cluster of its own (these tests stop PostgreSQL), migrated.
async fn own_cluster() -> (pgembed::Cluster, String) {
    let cluster =
        tokio::task::spawn_blocking(|| pgembed::Cluster::start(pgembed::Options::default()))
            .await
            .expect("task")
            .expect("cluster");
    let url = cluster.url("postgres");
    sisyphus_client::db::migrate(&url).await.expect("migrate");
    (cluster, url)
}

async fn stop(mut cluster: pgembed::Cluster) -> pgembed::Cluster {
    tokio::task::spawn_blocking(move || {
        cluster.stop();
        cluster
    })
    .await
    .expect("stop")
}

async fn restart(mut cluster: pgembed::Cluster) -> pgembed::Cluster {
    tokio::task::spawn_blocking(move || {
        cluster.restart().expect("restart");
        cluster
    })
    .await
    .expect("restart")
}

#[tokio::test]
async fn a_guardian_that_cannot_renew_its_lease_kills_its_runs_in_time() {
    let (cluster, url) = own_cluster().await;
    let client = Client::connect(&url).await.expect("connect");
    client
        .apply(&[JobDefinition::new("R", "fenced", ["sleep", "60"])], false)
        .await
        .expect("apply");
    // Lease 3 s: the guardian must have killed its run 2 s after its last renewal.
    let _g = Daemon::guardian(&url, "g", &["--lease", "3s", "--heartbeat", "500ms"]);
    let run = client
        .run_now(&JobRef::new("R", "fenced"))
        .await
        .expect("run")[0]
        .0;
    let pool = client.pool().clone();
    let pid = running_pid(&pool, run).await;
    pool.close().await;
    drop(client);
    let down = Instant::now();
    let cluster = stop(cluster).await;
    wait_for(
        "the fenced process to die",
        Duration::from_secs(3),
        || async { process_gone(pid).then_some(()) },
    )
    .await;
    let killed_after = down.elapsed();
    println!(
        "self-fencing: run killed {:.2} s after the database went away (lease 3 s)",
        killed_after.as_secs_f64()
    );
    assert!(
        killed_after < Duration::from_secs(3),
        "killed after {killed_after:?}, past the lease"
    );
    let cluster = restart(cluster).await;
    let pool = PgPool::connect(&url).await.expect("reconnect");
    let (st, err): (String, Option<String>) =
        wait_for("the run's outcome", Duration::from_secs(20), || async {
            let row: (String, Option<String>) =
                sqlx::query_as("SELECT status::text, error FROM sisyphus.runs WHERE id = $1")
                    .bind(run)
                    .fetch_one(&pool)
                    .await
                    .ok()?;
            (row.0 != "running").then_some(row)
        })
        .await;
    assert_eq!(st, "lost", "{err:?}");
    drop(cluster);
}

#[tokio::test]
async fn the_spool_is_written_after_the_guardian_itself_restarts() {
    let (cluster, url) = own_cluster().await;
    let client = Client::connect(&url).await.expect("connect");
    let script = "sleep 1; echo spooled line; echo done".to_string();
    client
        .apply(&[shell_job("R", "later", script)], false)
        .await
        .expect("apply");
    let mut g = Daemon::guardian(&url, "g", &["--lease", "60s"]);
    let spool = g.dir.join("spool");
    let run = client
        .run_now(&JobRef::new("R", "later"))
        .await
        .expect("run")[0]
        .0;
    let pool = client.pool().clone();
    wait_for("the run", Duration::from_secs(10), || async {
        (status(&pool, run).await == "running").then_some(())
    })
    .await;
    pool.close().await;
    drop(client);
    let cluster = stop(cluster).await;
    // The run ends while the database is away; its outcome and lines go to the spool.
    wait_for("the spooled outcome", Duration::from_secs(15), || async {
        let files = std::fs::read_dir(&spool)
            .ok()?
            .flatten()
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .collect::<Vec<_>>();
        files
            .iter()
            .any(|f| f.contains("\"Outcome\""))
            .then_some(())
    })
    .await;
    g.kill9();
    let cluster = restart(cluster).await;
    // A new guardian of the same host, with the same spool: it writes the spool at start, before
    // marking what an earlier life left running as lost.
    let args = ["--lease", "60s", "--spool-dir"];
    let mut extra: Vec<&str> = args.to_vec();
    let spool_arg = spool.display().to_string();
    extra.push(&spool_arg);
    // The old registration is live for its lease; take the name after it (60 s is too long to
    // wait, so the test ages it by hand, as an operator would after confirming the host is gone).
    let pool = PgPool::connect(&url).await.expect("reconnect");
    sqlx::query("UPDATE sisyphus.hosts SET last_heartbeat = now() - interval '1 hour'")
        .execute(&pool)
        .await
        .expect("age");
    let _g2 = Daemon::guardian(&url, "g", &extra);
    let (st, summary): (String, Option<String>) = wait_for(
        "the spooled outcome to arrive",
        Duration::from_secs(20),
        || async {
            let row: (String, Option<String>) =
                sqlx::query_as("SELECT status::text, summary FROM sisyphus.runs WHERE id = $1")
                    .bind(run)
                    .fetch_one(&pool)
                    .await
                    .ok()?;
            (row.0 != "running").then_some(row)
        },
    )
    .await;
    assert_eq!(
        (st.as_str(), summary.as_deref()),
        ("successful", Some("done"))
    );
    let lines: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sisyphus.run_logs WHERE run_id = $1 AND text = 'spooled line'",
    )
    .bind(run)
    .fetch_one(&pool)
    .await
    .expect("lines");
    assert_eq!(lines, 1);
    drop(cluster);
}
