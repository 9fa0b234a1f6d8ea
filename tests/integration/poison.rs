//! No job can harm another job or the fleet (issue 13): poison output, escaping processes, the
//! guardian's environment and files, its flags, a refused write batch and a poisoned spool.
//! Each test runs the real guardian against a real database.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use sisyphus_client::db::logs::{LogRow, Stream};
use sisyphus_client::spec::{Command, Text};
use sisyphus_client::{JobDefinition, RunId, RunStatus};

use crate::harness::{bin, ended, process_gone, run_now, wait_for, Daemon, TestDb};

fn shell(name: &str, script: &str) -> JobDefinition {
    JobDefinition {
        project: Some("P".into()),
        name: Some(name.into()),
        command: Some(Command::Line(script.into())),
        shell: Some(true),
        ..JobDefinition::default()
    }
}

fn argv(name: &str, argv: &[&str]) -> JobDefinition {
    JobDefinition::new("P", name, argv.iter().copied())
}

/// (seq, stream, tags, text) of a run's stored lines.
async fn lines(db: &TestDb, run: i64) -> Vec<(i32, String, Vec<String>, String)> {
    sqlx::query_as(
        "SELECT seq, stream::text, tags, text FROM sisyphus.run_logs WHERE run_id = $1 ORDER BY seq",
    )
    .bind(run)
    .fetch_all(&db.pool)
    .await
    .expect("lines")
}

/// Runs of a job: (attempt, status).
async fn runs_of(db: &TestDb, name: &str) -> Vec<(i32, String)> {
    sqlx::query_as(
        "SELECT r.attempt, r.status::text FROM sisyphus.runs r JOIN sisyphus.jobs j ON j.id = r.job_id
          WHERE j.name = $1 ORDER BY r.id",
    )
    .bind(name)
    .fetch_all(&db.pool)
    .await
    .expect("runs")
}

/// Where cgroup v2 is mounted here ("" when it is not).
fn cgroup2_mount() -> String {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.contains(" - cgroup2 "))
        .and_then(|l| l.split_whitespace().nth(4).map(String::from))
        .unwrap_or_default()
}

async fn isolation(db: &TestDb, host: &str) -> String {
    wait_for(
        "the guardian to register",
        Duration::from_secs(15),
        || async {
            sqlx::query_scalar("SELECT isolation FROM sisyphus.hosts WHERE name = $1")
                .bind(host)
                .fetch_optional(&db.pool)
                .await
                .ok()
                .flatten()
        },
    )
    .await
}

/// One NUL byte in a job's output used to make PostgreSQL refuse the guardian's whole batch:
/// the NUL job ended `lost`, runs of other jobs in the batch were retried. Now the NUL becomes
/// U+FFFD on a line tagged `nul`, and twelve jobs beside it run once with every line.
#[tokio::test]
async fn nul_and_random_output_harm_no_other_run() {
    let db = TestDb::new().await;
    let g = Daemon::guardian(&db.url, "g1", &["--capacity", "16"]);
    for i in 0..12 {
        let def = shell(
            &format!("echo{i}"),
            &format!("for n in 1 2 3 4 5; do echo job{i} line $n; done"),
        );
        db.client.apply(&[def], false).await.expect("apply");
    }
    db.client
        .apply(
            &[
                argv("nul", &["printf", "a\\000b\\n"]),
                argv("urandom", &["head", "-c", "200000", "/dev/urandom"]),
            ],
            false,
        )
        .await
        .expect("apply");
    // All at once, so that their lines share the recorder's batches.
    let mut all = Vec::new();
    for name in ["nul", "urandom"]
        .into_iter()
        .map(String::from)
        .chain((0..12).map(|i| format!("echo{i}")))
    {
        let run = db
            .client
            .run_now(&sisyphus_client::JobRef::new("P", &name))
            .await
            .expect("run now")[0]
            .0;
        all.push((name, run));
    }
    for (name, run) in &all {
        let (status, summary, error, _) = ended(&db, *run, Duration::from_secs(30)).await;
        assert_eq!(status, "successful", "{name}: {summary:?} {error:?}");
    }
    let nul = lines(&db, all[0].1).await;
    let stdout: Vec<_> = nul.iter().filter(|l| l.1 == "stdout").collect();
    assert_eq!(stdout.len(), 1, "{nul:?}");
    assert_eq!(stdout[0].3, "a\u{FFFD}b");
    assert!(
        stdout[0].2.contains(&"nul".to_string()),
        "{:?}",
        stdout[0].2
    );
    let random = lines(&db, all[1].1).await;
    assert!(
        random.iter().any(|l| l.1 == "stdout"),
        "urandom stored no line"
    );
    for (i, (name, run)) in all[2..].iter().enumerate() {
        assert_eq!(
            runs_of(&db, name).await,
            [(1, "successful".to_string())],
            "{name} ran more than once"
        );
        let texts: Vec<String> = lines(&db, *run)
            .await
            .into_iter()
            .filter(|l| l.1 == "stdout")
            .map(|l| l.3)
            .collect();
        let want: Vec<String> = (1..=5).map(|n| format!("job{i} line {n}")).collect();
        assert_eq!(texts, want, "{name} lost a line");
    }
    let spool = g.dir.join("spool");
    let spooled = std::fs::read_dir(&spool).map(|d| d.count()).unwrap_or(0);
    assert_eq!(spooled, 0, "nothing waits in the spool");
    assert!(!g.log_text().contains("spooling"), "{}", g.log_text());
}

/// A batch the database refuses (here: lines of a run that no longer exists, a foreign key
/// violation, beside twelve good runs) is written in halves until the bad run stands alone:
/// every other run's lines, pid and outcome are recorded, and nothing is spooled.
#[tokio::test]
async fn a_refused_batch_is_narrowed_to_the_run_it_is_about() {
    use sisyphus_guardian::outcome::Outcome;
    use sisyphus_guardian::recorder::Recorder;
    use sisyphus_guardian::spool::Spool;
    let db = TestDb::new().await;
    let mut good = Vec::new();
    for i in 0..12 {
        good.push(run_now(&db, argv(&format!("good{i}"), &["true"])).await);
    }
    let gone = run_now(&db, argv("gone", &["true"])).await;
    sqlx::query(
        "UPDATE sisyphus.runs SET status = 'running', host = 'h', started_at = now(),
                lease_expires_at = now() + interval '1 minute' WHERE id = ANY($1)",
    )
    .bind(&good)
    .execute(&db.pool)
    .await
    .expect("claim by hand");
    sqlx::query("DELETE FROM sisyphus.runs WHERE id = $1")
        .bind(gone)
        .execute(&db.pool)
        .await
        .expect("delete");
    let spool_dir = crate::harness::temp_dir("refused-spool");
    let spool = Spool::open(&spool_dir).expect("spool");
    let metrics = std::sync::Arc::<sisyphus_guardian::metrics::Metrics>::default();
    let guardian = db.service_pool("guardian", "h").await;
    let (recorder, recording) = Recorder::new(guardian, spool, metrics.clone());
    let task = tokio::spawn(recording);
    let line = |run: i64, seq: i32, text: &str| LogRow {
        run_id: RunId(run),
        seq,
        at: chrono::Utc::now(),
        stream: Stream::Stdout,
        tags: vec!["stdout".into()],
        task: None,
        text: text.into(),
    };
    // Interleaved, as a busy guardian's channel is: the refused run sits in the middle.
    for seq in 1..=3 {
        for (i, run) in good.iter().enumerate() {
            recorder
                .line(line(*run, seq, &format!("good{i} {seq}")))
                .await;
            if i == 6 {
                recorder
                    .line(line(gone, seq, "of a run that is gone"))
                    .await;
            }
        }
    }
    // The outcomes are sent concurrently, so that they share batches with the lines.
    let finishing = good.iter().map(|run| {
        recorder.finished(Outcome {
            run: RunId(*run),
            status: RunStatus::Successful,
            exit_code: Some(0),
            signal: None,
            summary: Some("ok".into()),
            error: None,
            finished_at: chrono::Utc::now(),
        })
    });
    futures_join_all(finishing).await;
    drop(recorder);
    task.await.expect("the recorder ends");
    for (i, run) in good.iter().enumerate() {
        let (status, summary, _, _) = ended(&db, *run, Duration::from_secs(5)).await;
        assert_eq!(
            (status.as_str(), summary.as_deref()),
            ("successful", Some("ok"))
        );
        let texts: Vec<String> = lines(&db, *run).await.into_iter().map(|l| l.3).collect();
        assert_eq!(
            texts,
            (1..=3).map(|s| format!("good{i} {s}")).collect::<Vec<_>>()
        );
    }
    assert!(
        metrics.unrecordable.get() >= 1,
        "the refused lines are counted"
    );
    assert_eq!(std::fs::read_dir(&spool_dir).expect("spool dir").count(), 0);
}

/// Waits for all futures (no extra dependency for one test).
async fn futures_join_all<F: std::future::Future<Output = ()>>(futures: impl Iterator<Item = F>) {
    let mut set = Vec::new();
    for f in futures {
        set.push(Box::pin(f));
    }
    for f in set {
        f.await;
    }
}

/// The spool never blocks on one entry: an unreadable file and lines the database refuses are
/// set aside (quarantined or replaced by a line saying why); what comes after them is written.
#[tokio::test]
async fn a_poisoned_spool_entry_does_not_block_the_rest() {
    use sisyphus_guardian::outcome::Outcome;
    use sisyphus_guardian::spool::Spool;
    let db = TestDb::new().await;
    let run = run_now(&db, argv("after", &["true"])).await;
    sqlx::query(
        "UPDATE sisyphus.runs SET status = 'running', host = 'h', started_at = now(),
                lease_expires_at = now() + interval '1 minute' WHERE id = $1",
    )
    .bind(run)
    .execute(&db.pool)
    .await
    .expect("claim by hand");
    let dir = crate::harness::temp_dir("poisoned-spool");
    let spool = Spool::open(&dir).expect("spool");
    // Oldest first: garbage, lines of a run that does not exist, then a good run's line and outcome.
    std::fs::write(dir.join("00000000000000000001-000000.json"), b"{not json").expect("garbage");
    spool.save_logs(&[LogRow {
        run_id: RunId(i64::MAX),
        seq: 1,
        at: chrono::Utc::now(),
        stream: Stream::Stdout,
        tags: vec![],
        task: None,
        text: "orphan".into(),
    }]);
    spool.save_logs(&[LogRow {
        run_id: RunId(run),
        seq: 1,
        at: chrono::Utc::now(),
        stream: Stream::Stdout,
        tags: vec![],
        task: None,
        text: "kept\0with a NUL".into(),
    }]);
    spool.save_outcome(&Outcome {
        run: RunId(run),
        status: RunStatus::Successful,
        exit_code: Some(0),
        signal: None,
        summary: Some("done\0".into()),
        error: None,
        finished_at: chrono::Utc::now(),
    });
    let metrics = std::sync::Arc::<sisyphus_guardian::metrics::Metrics>::default();
    let guardian = db.service_pool("guardian", "h").await;
    let written = spool.replay(&guardian, &metrics, None).await;
    assert_eq!(
        written, 3,
        "the orphan lines, the good line and the outcome"
    );
    assert!(spool.is_empty());
    let quarantined: Vec<_> = std::fs::read_dir(dir.join("quarantine"))
        .expect("quarantine dir")
        .flatten()
        .collect();
    assert_eq!(quarantined.len(), 1, "the unreadable file is kept aside");
    assert_eq!(metrics.quarantined.get(), 1);
    let (status, summary, _, _) = ended(&db, run, Duration::from_secs(5)).await;
    assert_eq!(
        (status.as_str(), summary.as_deref()),
        ("successful", Some("done\u{FFFD}"))
    );
    let stored = lines(&db, run).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].3, "kept\u{FFFD}with a NUL");
    assert!(stored[0].2.contains(&"nul".to_string()));
}

/// Jobs get PATH, HOME, USER, LOGNAME, LANG, TZ, their env and the run's variables, and what the
/// guardian is told to pass: its `PGPASSWORD` stays with it.
#[tokio::test]
async fn jobs_get_a_clean_environment() {
    let db = TestDb::new().await;
    let _g = Daemon::guardian_with_env(
        &db.url,
        "g1",
        &["--pass-env", "PASSED"],
        &[
            ("PGPASSWORD", "s3cret-pw"),
            ("PASSED", "yes"),
            ("NOT_PASSED", "no"),
            ("TZ", "Europe/Berlin"),
        ],
    );
    let def = JobDefinition {
        env: Some([("OWN".to_string(), "mine".into())].into_iter().collect()),
        ..argv("env", &["env"])
    };
    let run = run_now(&db, def).await;
    let (status, _, error, _) = ended(&db, run, Duration::from_secs(20)).await;
    assert_eq!(status, "successful", "{error:?}");
    let vars: std::collections::BTreeMap<String, String> = lines(&db, run)
        .await
        .into_iter()
        .filter(|l| l.1 == "stdout")
        .filter_map(|l| {
            l.3.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    assert_eq!(vars.get("OWN").map(String::as_str), Some("mine"));
    assert_eq!(vars.get("PASSED").map(String::as_str), Some("yes"));
    assert_eq!(vars.get("TZ").map(String::as_str), Some("Europe/Berlin"));
    assert_eq!(vars.get("SISYPHUS_RUN_ID"), Some(&run.to_string()));
    assert!(vars.contains_key("PATH"), "{vars:?}");
    for gone in [
        "PGPASSWORD",
        "NOT_PASSED",
        "SISYPHUS_DATABASE_URL",
        "RUST_LOG",
    ] {
        assert!(!vars.contains_key(gone), "{gone} reached the job: {vars:?}");
    }
    let allowed = [
        "PATH", "HOME", "USER", "LOGNAME", "LANG", "TZ", "OWN", "PASSED", "PWD", "SHLVL", "_",
    ];
    for key in vars.keys() {
        assert!(
            allowed.contains(&key.as_str()) || key.starts_with("SISYPHUS_"),
            "unexpected variable {key} reached the job"
        );
    }
}

/// Local log files and the spool are for their owner: directories 0700, files 0600.
#[tokio::test]
async fn log_files_and_the_spool_are_private() {
    let db = TestDb::new().await;
    let g = Daemon::guardian(&db.url, "g1", &[]);
    let run = run_now(&db, argv("private", &["echo", "secret"])).await;
    ended(&db, run, Duration::from_secs(20)).await;
    let job_dir = g.dir.join("logs").join("P").join("private");
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(&g.dir.join("logs")), 0o700);
    assert_eq!(mode(&g.dir.join("logs").join("P")), 0o700);
    assert_eq!(mode(&job_dir), 0o700);
    let files: Vec<_> = std::fs::read_dir(&job_dir)
        .expect("job dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sisyphuslog") && !p.is_symlink())
        .collect();
    assert!(!files.is_empty(), "a log file is written");
    for f in files {
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
    assert_eq!(mode(&g.dir.join("spool")), 0o700);
}

/// A process that leaves the run's process group with `setsid` is still the run's: where the
/// host has cgroups, maxtime kills it, and a main process that ends leaves nothing behind (the
/// run's log says how many processes were killed).
#[tokio::test]
async fn setsid_escapees_are_killed_with_their_run() {
    let db = TestDb::new().await;
    let _g = Daemon::guardian(&db.url, "g1", &[]);
    if isolation(&db, "g1").await != "cgroup" {
        println!("skipped: no writable cgroup v2 directory here; runs are held by process groups");
        return;
    }
    let dir = crate::harness::temp_dir("escapee");
    let pidfile = |n: &str| dir.join(format!("{n}.pid"));
    // 1. A timeout: the escapee must not outlive maxtime.
    let script = format!(
        "( setsid sh -c 'echo $$ > {}; exec sleep 900' & ); sleep 600",
        pidfile("timeout").display()
    );
    let def = JobDefinition {
        maxtime: Some(Text::from("2s")),
        ..shell("timeout", &script)
    };
    let timed_out = run_now(&db, def).await;
    // 2. The main process ends at once; the escapee would live on unseen.
    let script = format!(
        "( setsid sh -c 'echo $$ > {}; exec sleep 900' & ); sleep 0.5; echo started",
        pidfile("left").display()
    );
    let left = run_now(&db, shell("left", &script)).await;
    // 3. The escapee hides in a cgroup of its own below the run's (a job as root may make one).
    let script = format!(
        "d=$(awk '$9 == \"cgroup2\" {{print $5}}' /proc/self/mountinfo)$(sed -n 's/^0:://p' /proc/self/cgroup)/hide; \
         mkdir $d && ( setsid sh -c 'echo $$ > '$d'/cgroup.procs; echo $$ > {}; exec sleep 900' & ); sleep 0.5; echo started",
        pidfile("hidden").display()
    );
    let hidden = run_now(&db, shell("hidden", &script)).await;
    let pid_of = |n: &'static str| {
        let path = pidfile(n);
        async move {
            wait_for("the escapee's pid", Duration::from_secs(10), || async {
                std::fs::read_to_string(&path)
                    .ok()?
                    .trim()
                    .parse::<i32>()
                    .ok()
            })
            .await
        }
    };
    let escapee_timeout = pid_of("timeout").await;
    let escapee_left = pid_of("left").await;
    let escapee_hidden = pid_of("hidden").await;
    let (st, _, _, _) = ended(&db, timed_out, Duration::from_secs(20)).await;
    assert_eq!(st, "timeout");
    let (st, _, _, _) = ended(&db, left, Duration::from_secs(20)).await;
    assert_eq!(st, "successful");
    let (st, _, err, _) = ended(&db, hidden, Duration::from_secs(20)).await;
    assert_eq!(st, "successful", "{err:?}");
    let start = Instant::now();
    while !(process_gone(escapee_timeout)
        && process_gone(escapee_left)
        && process_gone(escapee_hidden))
    {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "an escapee outlived its run"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let texts: Vec<String> = lines(&db, left).await.into_iter().map(|l| l.3).collect();
    assert!(
        texts.iter().any(|t| t == "1 process left behind, killed"),
        "{texts:?}"
    );
    let texts: Vec<String> = lines(&db, hidden).await.into_iter().map(|l| l.3).collect();
    assert!(
        texts.iter().any(|t| t == "1 process left behind, killed"),
        "{texts:?}"
    );
    let hosts =
        crate::harness::stdout(&crate::harness::sisyctl_with_url(Some(&db.url), &["hosts"]));
    assert!(hosts.contains("cgroup"), "{hosts}");
}

/// Suspend freezes the whole cgroup, escapees too; resume thaws it.
#[tokio::test]
async fn suspend_freezes_escapees_too() {
    let db = TestDb::new().await;
    let _g = Daemon::guardian(&db.url, "g1", &[]);
    if isolation(&db, "g1").await != "cgroup" {
        println!("skipped: no writable cgroup v2 directory here");
        return;
    }
    let dir = crate::harness::temp_dir("freeze");
    let pidfile = dir.join("escapee.pid");
    let script = format!(
        "( setsid sh -c 'echo $$ > {}; exec sleep 900' & ); sleep 600",
        pidfile.display()
    );
    let run = run_now(&db, shell("frozen", &script)).await;
    let escapee: i32 = wait_for("the escapee's pid", Duration::from_secs(10), || async {
        std::fs::read_to_string(&pidfile).ok()?.trim().parse().ok()
    })
    .await;
    sqlx::query("SELECT sisyphus.suspend($1)")
        .bind(run)
        .execute(&db.pool)
        .await
        .expect("suspend");
    // A frozen task shows as sleeping in /proc; the cgroup says whether it is frozen.
    let cgroup = std::fs::read_to_string(format!("/proc/{escapee}/cgroup")).expect("cgroup");
    let path = cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .expect("a cgroup v2 line")
        .to_string();
    assert!(
        path.contains("/run-"),
        "the escapee is in the run's cgroup: {path}"
    );
    let events = |path: &str| {
        let root = cgroup2_mount();
        std::fs::read_to_string(format!("{root}{path}/cgroup.events")).unwrap_or_default()
    };
    wait_for("the cgroup to freeze", Duration::from_secs(10), || {
        let ev = events(&path);
        async move { ev.contains("frozen 1").then_some(()) }
    })
    .await;
    sqlx::query("SELECT sisyphus.resume($1)")
        .bind(run)
        .execute(&db.pool)
        .await
        .expect("resume");
    wait_for("the cgroup to thaw", Duration::from_secs(10), || {
        let ev = events(&path);
        async move { ev.contains("frozen 0").then_some(()) }
    })
    .await;
    sqlx::query("SELECT sisyphus.terminate($1)")
        .bind(run)
        .execute(&db.pool)
        .await
        .expect("terminate");
    let (st, _, _, _) = ended(&db, run, Duration::from_secs(20)).await;
    assert_eq!(st, "terminated");
    wait_for(
        "the escapee to be killed",
        Duration::from_secs(5),
        || async { process_gone(escapee).then_some(()) },
    )
    .await;
}

/// Guardian flags are checked at start, each refusal naming the flag, with exit 2.
#[tokio::test]
async fn guardian_flags_are_checked_at_start() {
    let db = TestDb::new().await;
    let cases: [(&[&str], &str); 6] = [
        (&["--lease", "1s", "--heartbeat", "1s"], "--lease"),
        (&["--lease", "0s"], "--lease"),
        (&["--heartbeat", "0s"], "--heartbeat"),
        (&["--name", ""], "--name"),
        (&["--pools", "bad pool!"], "--pools"),
        (&["--log-dir", "/proc/nope"], "--log-dir"),
    ];
    for (flags, named) in cases {
        let mut args = vec!["guardian", "--name", "g-flags"];
        if flags.contains(&"--name") {
            args.truncate(1);
        }
        args.extend_from_slice(flags);
        let started = Instant::now();
        let out = std::process::Command::new(bin("sisyphus"))
            .args(&args)
            .env("SISYPHUS_DATABASE_URL", &db.url)
            .output()
            .expect("run sisyphus guardian");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(named), "{args:?} should name {named}: {err}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }
    assert_eq!(db.count("hosts").await, 0, "no refused guardian registered");
}

/// A guardian whose stderr nobody reads any more (the pipe is full) still stops on SIGTERM.
#[tokio::test]
async fn sigterm_stops_a_guardian_whose_stderr_is_not_read() {
    let db = TestDb::new().await;
    let dir = crate::harness::temp_dir("stderr-full");
    let mut child = std::process::Command::new(bin("sisyphus"))
        .args([
            "guardian",
            "--name",
            "g-full",
            "--lease",
            "3s",
            "--heartbeat",
            "100ms",
        ])
        .arg("--log-dir")
        .arg(dir.join("logs"))
        .arg("--spool-dir")
        .arg(dir.join("spool"))
        .env("SISYPHUS_DATABASE_URL", &db.url)
        .env("RUST_LOG", "trace")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start guardian");
    // Never read: trace logging fills the 64 KiB pipe within moments.
    let _unread = child.stderr.take();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "the guardian runs"
    );
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            println!("stopped after {:?}: {status}", start.elapsed());
            break;
        }
        if start.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            panic!("the guardian ignored SIGTERM with a full stderr pipe");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `memory_max` and `cpu_weight` reach the run's cgroup where the host delegates the memory and
/// cpu controllers; elsewhere the run goes on and its log says what was not applied and why.
#[tokio::test]
async fn run_limits_apply_where_the_controllers_are_delegated() {
    let db = TestDb::new().await;
    let _g = Daemon::guardian(&db.url, "g1", &[]);
    let cgroups = isolation(&db, "g1").await == "cgroup";
    let mount = cgroup2_mount();
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("0::").map(String::from))
        .unwrap_or_default();
    let available =
        std::fs::read_to_string(format!("{mount}{own}/cgroup.controllers")).unwrap_or_default();
    let delegated = |c: &str| cgroups && available.split_whitespace().any(|x| x == c);
    let script = format!(
        "p=$(sed -n 's/^0:://p' /proc/self/cgroup); \
         echo memory $(cat {mount}$p/memory.max 2>/dev/null || echo none); \
         echo cpu $(cat {mount}$p/cpu.weight 2>/dev/null || echo none)"
    );
    let def = JobDefinition {
        memory_max: Some(sisyphus_client::spec::Size::Text("64M".into())),
        cpu_weight: Some(42),
        ..shell("limited", &script)
    };
    let run = run_now(&db, def).await;
    let (status, _, error, _) = ended(&db, run, Duration::from_secs(20)).await;
    assert_eq!(status, "successful", "{error:?}");
    let texts: Vec<String> = lines(&db, run).await.into_iter().map(|l| l.3).collect();
    for (key, controller, seen, value) in [
        ("memory_max", "memory", "memory", "67108864"),
        ("cpu_weight", "cpu", "cpu", "42"),
    ] {
        if delegated(controller) {
            assert!(texts.contains(&format!("{seen} {value}")), "{texts:?}");
        } else {
            println!("{key}: the {controller} controller is not delegated here; checking the note");
            assert!(
                texts
                    .iter()
                    .any(|t| t.starts_with(&format!("{key} = ")) && t.contains("not applied")),
                "{texts:?}"
            );
        }
    }
}

/// The scheduler's and the dispatcher's settings are checked at start too, naming the flag.
#[tokio::test]
async fn scheduler_and_dispatcher_flags_are_checked_at_start() {
    let db = TestDb::new().await;
    let config = crate::harness::temp_dir("dispatcher-flags").join("notify.toml");
    std::fs::write(&config, "").expect("an empty channels file");
    let config = config.display().to_string();
    let cases: [(Vec<&str>, &str); 5] = [
        (vec!["scheduler", "--interval", "0s"], "--interval"),
        (vec!["scheduler", "--lookahead", "2h"], "--lookahead"),
        (vec!["scheduler", "--keep-logs", "1h"], "--keep-logs"),
        (vec!["scheduler", "--keep-runs", "1s"], "--keep-runs"),
        (
            vec!["dispatcher", "--config", &config, "--poll", "0s"],
            "--poll",
        ),
    ];
    for (args, named) in cases {
        let out = std::process::Command::new(bin("sisyphus"))
            .args(&args)
            .env("SISYPHUS_DATABASE_URL", &db.url)
            .output()
            .expect("run sisyphus");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(named), "{args:?} should name {named}: {err}");
    }
}
