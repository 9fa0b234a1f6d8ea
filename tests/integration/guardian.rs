//! The guardian as a real process against a real database: outcomes, failures, retries, maxtime,
//! remote control, logs and local files, shutdown.

use std::time::{Duration, Instant};

use sisyphus_client::spec::Text;
use sisyphus_client::{JobDefinition, JobRef};

use crate::harness::{ended, process_gone, run_now, running_pid, status, wait_for, Daemon, TestDb};

/// (attempt, status, trigger, scheduled for, finished at)
type Attempt = (
    i32,
    String,
    String,
    chrono::DateTime<chrono::Utc>,
    Option<chrono::DateTime<chrono::Utc>>,
);

fn job(name: &str, argv: &[&str]) -> JobDefinition {
    JobDefinition::new("G", name, argv.iter().copied())
}

fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next())
}

/// Processes of a process group that are still alive (zombies waiting to be reaped by PID 1
/// do not count: they run nothing).
fn live_group_members(pgid: i32) -> Vec<i32> {
    let mut live = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // fields[0] = state, fields[2] = process group
        if fields.get(2) == Some(&pgid.to_string().as_str()) && fields.first() != Some(&"Z") {
            live.push(pid);
        }
    }
    live
}

/// Polls every 2 ms: for measuring latencies.
/// Runs `G/sleeper` now and waits for its process: (run, pid).
async fn start_sleeper(db: &TestDb) -> (i64, i32) {
    let run = db
        .client
        .run_now(&JobRef::new("G", "sleeper"))
        .await
        .expect("run")[0]
        .0;
    (run, running_pid(&db.pool, run).await)
}

/// `SELECT sisyphus.<action>(run)` (suspend, resume, terminate), as sisyctl would call it.
async fn control(db: &TestDb, action: &str, run: i64) {
    sqlx::query(&format!("SELECT sisyphus.{action}($1)"))
        .bind(run)
        .execute(&db.pool)
        .await
        .unwrap_or_else(|e| panic!("{action} run {run}: {e}"));
}

async fn poll_fast(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test]
async fn outcomes_and_failure_reasons() {
    let db = TestDb::new().await;
    let _g = Daemon::guardian(&db.url, "g1", &["--allow-users", "nosuchuser"]);
    let ok = run_now(
        &db,
        job(
            "ok",
            &["sh", "-c", "echo one; echo; echo two; echo >&2 note"],
        ),
    )
    .await;
    let quiet = run_now(&db, job("quiet", &["true"])).await;
    let bad = run_now(&db, job("bad", &["sh", "-c", "echo oops >&2; exit 3"])).await;
    let missing = run_now(&db, job("missing", &["/no/such/program"])).await;
    let nowd = run_now(
        &db,
        JobDefinition {
            workdir: Some("/no/such/dir".into()),
            ..job("nowd", &["true"])
        },
    )
    .await;
    let nouser = run_now(
        &db,
        JobDefinition {
            run_as: Some("nosuchuser".into()),
            ..job("nouser", &["true"])
        },
    )
    .await;
    let intr = run_now(&db, job("intr", &["sh", "-c", "kill -INT $$; sleep 5"])).await;
    let bytes = run_now(&db, job("bytes", &["printf", "\\377\\376 abc\\n"])).await;
    let limit = Duration::from_secs(20);
    assert_eq!(
        ended(&db, ok, limit).await,
        ("successful".into(), Some("two".into()), None, Some(0))
    );
    assert_eq!(
        ended(&db, quiet, limit).await,
        ("uneventful".into(), None, None, Some(0))
    );
    let (st, _, err, code) = ended(&db, bad, limit).await;
    assert_eq!((st.as_str(), code), ("failed", Some(3)));
    assert_eq!(err.as_deref(), Some("exit code 3: oops"));
    let (st, _, err, _) = ended(&db, missing, limit).await;
    assert_eq!(st, "failed");
    assert_eq!(
        err.as_deref(),
        Some("cannot start `/no/such/program`: command not found")
    );
    let (st, _, err, _) = ended(&db, nowd, limit).await;
    assert_eq!(st, "failed");
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains("workdir `/no/such/dir` does not exist")),
        "{err:?}"
    );
    let (st, _, err, _) = ended(&db, nouser, limit).await;
    assert_eq!(st, "failed");
    let expected = if nix::unistd::Uid::effective().is_root() {
        "run_as user `nosuchuser` does not exist on g1"
    } else {
        "needs a guardian running as root"
    };
    assert!(
        err.as_deref().is_some_and(|e| e.contains(expected)),
        "{err:?}"
    );
    let (st, _, err, _) = ended(&db, intr, limit).await;
    assert_eq!(st, "interrupted", "{err:?}");
    // Bytes that are not UTF-8 survive, replaced and marked.
    assert_eq!(ended(&db, bytes, limit).await.0, "successful");
    let (text, tags): (String, Vec<String>) = sqlx::query_as(
        "SELECT text, tags FROM sisyphus.run_logs WHERE run_id = $1 AND stream = 'stdout'",
    )
    .bind(bytes)
    .fetch_one(&db.pool)
    .await
    .expect("line");
    assert_eq!(text, "\u{fffd}\u{fffd} abc");
    assert_eq!(tags, vec!["stdout".to_string(), "non-utf8".to_string()]);
    // The guardian keeps working after all of that.
    let again = db
        .client
        .run_now(&JobRef::new("G", "ok"))
        .await
        .expect("run")[0]
        .0;
    assert_eq!(ended(&db, again, limit).await.0, "successful");
    // Host, pid and times are recorded.
    let (host, pid, started, finished): (Option<String>, Option<i32>, bool, bool) = sqlx::query_as(
        "SELECT host, pid, started_at IS NOT NULL, finished_at >= started_at FROM sisyphus.runs WHERE id = $1",
    )
    .bind(ok)
    .fetch_one(&db.pool)
    .await
    .expect("row");
    assert_eq!(host.as_deref(), Some("g1"));
    assert!(pid.is_some_and(|p| p > 0) && started && finished);
}

#[tokio::test]
async fn the_environment_names_the_run_and_hides_the_guardians_secrets() {
    let db = TestDb::new().await;
    let _g = Daemon::guardian(&db.url, "g1", &[]);
    let def = JobDefinition {
        env: Some([("MYVAR".to_string(), "x y".into())].into()),
        userdata: Some(serde_json::json!({"k": 1})),
        ..job("env", &["sh", "-c", "echo \"$SISYPHUS_RUN_ID|$SISYPHUS_JOB|$SISYPHUS_ATTEMPT|$SISYPHUS_USERDATA|$MYVAR|${SISYPHUS_DATABASE_URL:-hidden}\""])
    };
    let run = run_now(&db, def).await;
    let (_, summary, _, _) = ended(&db, run, Duration::from_secs(15)).await;
    assert_eq!(
        summary,
        Some(format!("{run}|G/env|1|{{\"k\":1}}|x y|hidden"))
    );
}

#[tokio::test]
async fn failed_runs_are_retried_with_backoff() {
    let db = TestDb::new().await;
    let _g = Daemon::guardian(&db.url, "g1", &[]);
    let def = JobDefinition {
        retries: Some(2),
        retry_backoff: Some(Text::from("1s")),
        ..job("flaky", &["false"])
    };
    run_now(&db, def).await;
    let runs: Vec<Attempt> =
        wait_for("three failed attempts", Duration::from_secs(20), || async {
            let rows: Vec<Attempt> = sqlx::query_as(
                "SELECT attempt, status::text, trigger::text, scheduled_for, finished_at FROM sisyphus.runs ORDER BY attempt",
            )
            .fetch_all(&db.pool)
            .await
            .ok()?;
            (rows.len() == 3 && rows.iter().all(|r| r.1 == "failed")).then_some(rows)
        })
        .await;
    assert_eq!(runs.iter().map(|r| r.0).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(
        runs.iter().map(|r| r.2.as_str()).collect::<Vec<_>>(),
        vec!["manual", "retry", "retry"]
    );
    let gap = |i: usize| (runs[i].3 - runs[i - 1].4.expect("finished")).num_milliseconds();
    assert!(
        (1000..1500).contains(&gap(1)),
        "first retry after {} ms",
        gap(1)
    );
    assert!(
        (2000..2500).contains(&gap(2)),
        "second retry after {} ms",
        gap(2)
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(db.count("runs").await, 3, "no attempt beyond retries");
}

#[tokio::test]
async fn maxtime_kills_the_whole_process_group() {
    let db = TestDb::new().await;
    let _g = Daemon::guardian(&db.url, "g1", &[]);
    let dir = std::env::temp_dir().join(format!("sisyphus-maxtime-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let gpid_file = dir.join("grandchild.pid");
    let script = format!(
        "sh -c 'trap \"\" TERM; echo $$ > {}; exec sleep 600' & sleep 600",
        gpid_file.display()
    );
    let def = JobDefinition {
        shell: Some(true),
        maxtime: Some(Text::from("2s")),
        ..JobDefinition::default()
    };
    let def = JobDefinition {
        project: Some("G".into()),
        name: Some("slow".into()),
        command: Some(sisyphus_client::spec::Command::Line(script)),
        ..def
    };
    let run = run_now(&db, def).await;
    let pgid = running_pid(&db.pool, run).await;
    assert!(
        live_group_members(pgid).len() >= 2,
        "the group has its processes while running"
    );
    let grandchild: i32 = wait_for("the grandchild's pid", Duration::from_secs(5), || async {
        std::fs::read_to_string(&gpid_file)
            .ok()?
            .trim()
            .parse()
            .ok()
    })
    .await;
    assert_eq!(
        proc_state(grandchild).map(|s| s != 'Z'),
        Some(true),
        "the grandchild runs"
    );
    let (st, _, err, _) = ended(&db, run, Duration::from_secs(15)).await;
    assert_eq!(st, "timeout", "{err:?}");
    let took: f64 = sqlx::query_scalar("SELECT extract(epoch FROM finished_at - started_at)::float8 FROM sisyphus.runs WHERE id = $1")
        .bind(run)
        .fetch_one(&db.pool)
        .await
        .expect("duration");
    println!("maxtime 2s + grace 1s: ended after {took:.2} s");
    assert!(took <= 2.0 + 1.0 + 1.0, "took {took} s");
    assert_eq!(
        live_group_members(pgid),
        Vec::<i32>::new(),
        "processes of the group survived"
    );
    assert!(
        proc_state(grandchild).is_none_or(|s| s == 'Z'),
        "the SIGTERM-ignoring grandchild survived"
    );
}

#[tokio::test]
async fn a_terminate_right_after_a_resume_is_not_lost() {
    // The resume's bookkeeping used to clear whatever request was waiting, so a terminate that
    // arrived between the SIGCONT and that update was silently dropped.
    let db = TestDb::new().await;
    let _g = Daemon::guardian(&db.url, "g1", &[]);
    db.client
        .apply(&[job("sleeper", &["sleep", "600"])], false)
        .await
        .expect("apply");
    for _ in 0..20 {
        let (run, pid) = start_sleeper(&db).await;
        control(&db, "suspend", run).await;
        poll_fast("state T", Duration::from_secs(2), || {
            proc_state(pid) == Some('T')
        })
        .await;
        wait_for("status suspended", Duration::from_secs(2), || async {
            (status(&db.pool, run).await == "suspended").then_some(())
        })
        .await;
        control(&db, "resume", run).await;
        poll_fast("state not T", Duration::from_secs(2), || {
            proc_state(pid).is_some_and(|s| s != 'T')
        })
        .await;
        control(&db, "terminate", run).await;
        poll_fast(
            "the terminated process to go",
            Duration::from_secs(3),
            || process_gone(pid),
        )
        .await;
    }
}

#[tokio::test]
async fn terminate_suspend_and_resume_reach_the_process_within_a_second() {
    let db = TestDb::new().await;
    let _g = Daemon::guardian(&db.url, "g1", &[]);
    db.client
        .apply(
            &[JobDefinition {
                concurrency: Some(5),
                maxtime: Some(Text::from("3s")),
                ..job("sleeper", &["sleep", "600"])
            }],
            false,
        )
        .await
        .expect("apply");
    let mut suspend_ms = Vec::new();
    let mut resume_ms = Vec::new();
    let mut terminate_ms = Vec::new();
    for _ in 0..3 {
        let (run, pid) = start_sleeper(&db).await;
        let t = Instant::now();
        control(&db, "suspend", run).await;
        poll_fast("state T", Duration::from_secs(2), || {
            proc_state(pid) == Some('T')
        })
        .await;
        suspend_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        wait_for("status suspended", Duration::from_secs(2), || async {
            (status(&db.pool, run).await == "suspended").then_some(())
        })
        .await;
        // Suspended longer than maxtime (3 s): its clock is paused, so it must not time out.
        tokio::time::sleep(Duration::from_millis(3500)).await;
        assert_eq!(
            status(&db.pool, run).await,
            "suspended",
            "a suspended run's maxtime clock must stop"
        );
        let t = Instant::now();
        control(&db, "resume", run).await;
        poll_fast("state not T", Duration::from_secs(2), || {
            proc_state(pid).is_some_and(|s| s != 'T')
        })
        .await;
        resume_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        wait_for("status running", Duration::from_secs(2), || async {
            (status(&db.pool, run).await == "running").then_some(())
        })
        .await;
        let t = Instant::now();
        control(&db, "terminate", run).await;
        poll_fast("the process to end", Duration::from_secs(2), || {
            proc_state(pid).is_none_or(|s| s == 'Z')
        })
        .await;
        terminate_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(
            ended(&db, run, Duration::from_secs(5)).await.0,
            "terminated"
        );
    }
    println!("suspend latency ms: {suspend_ms:.1?}\nresume latency ms: {resume_ms:.1?}\nterminate latency ms: {terminate_ms:.1?}");
    for ms in suspend_ms.iter().chain(&resume_ms).chain(&terminate_ms) {
        assert!(*ms < 1000.0, "a control request took {ms} ms");
    }
    // Control of a pending run cancels it; of a finished run is refused.
    let out = db.sisyctl(&["kill", "999999"]);
    assert_eq!(out.status.code(), Some(1));
    let last: i64 = sqlx::query_scalar("SELECT max(id) FROM sisyphus.runs")
        .fetch_one(&db.pool)
        .await
        .expect("max");
    let out = db.sisyctl(&["suspend", &last.to_string()]);
    assert!(
        crate::harness::stderr(&out).contains("cannot suspend run")
            && crate::harness::stderr(&out).contains("it is terminated")
    );
}

#[tokio::test]
async fn two_gigabytes_of_output_keep_the_guardian_small() {
    let db = TestDb::new().await;
    let g = Daemon::guardian(&db.url, "g1", &["--max-log-lines", "10000"]);
    let script =
        "yes \"$(head -c 1000 /dev/zero | tr '\\0' x)\" | head -c 2000000000; echo; echo done";
    let def = JobDefinition {
        project: Some("G".into()),
        name: Some("chatty".into()),
        shell: Some(true),
        command: Some(sisyphus_client::spec::Command::Line(script.into())),
        ..JobDefinition::default()
    };
    let started = Instant::now();
    let run = run_now(&db, def).await;
    let (st, summary, err, _) = ended(&db, run, Duration::from_secs(240)).await;
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(st, "successful", "{err:?}");
    assert_eq!(
        summary.as_deref(),
        Some("done"),
        "the summary is the last stdout line, even past the cap"
    );
    let status_file =
        std::fs::read_to_string(format!("/proc/{}/status", g.pid())).expect("guardian status");
    let peak_kb: u64 = status_file
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .expect("VmHWM");
    println!(
        "2 GB of output in {secs:.1} s ({:.0} MB/s); guardian peak RSS {} MB",
        2000.0 / secs,
        peak_kb / 1024
    );
    assert!(peak_kb < 100 * 1024, "guardian peak RSS {peak_kb} kB");
    let stored = db.count(&format!("run_logs WHERE run_id = {run}")).await;
    assert!(stored <= 10_003, "{stored} lines stored");
    let marker = db
        .count(&format!(
            "run_logs WHERE run_id = {run} AND 'truncated' = ANY (tags)"
        ))
        .await;
    let sisyphus_lines: Vec<(i32, Vec<String>, String)> = sqlx::query_as("SELECT seq, tags, left(text, 80) FROM sisyphus.run_logs WHERE run_id = $1 AND stream = 'sisyphus' ORDER BY seq").bind(run).fetch_all(&db.pool).await.expect("lines");
    assert_eq!(marker, 1, "one truncation marker: {sisyphus_lines:?}");
}

#[tokio::test]
async fn local_log_files_and_links_follow_ll_sisyphus() {
    let db = TestDb::new().await;
    let g = Daemon::guardian(&db.url, "g1", &[]);
    let dir = g.dir.join("logs").join("G").join("files");
    let kinds: [(&str, &[&str], &str); 4] = [
        (
            "successful",
            &["sh", "-c", "echo hello"],
            "last_successful.sisyphuslog",
        ),
        (
            "failed",
            &["sh", "-c", "echo no; exit 1"],
            "last_failed.sisyphuslog",
        ),
        ("timeout", &["sleep", "30"], "last_timeout.sisyphuslog"),
        ("uneventful", &["true"], ""),
    ];
    let mut files = Vec::new();
    for (expected, argv, link) in kinds {
        let def = JobDefinition {
            maxtime: Some(Text::from("1s")),
            ..job("files", argv)
        };
        let run = run_now(&db, def).await;
        assert_eq!(ended(&db, run, Duration::from_secs(15)).await.0, expected);
        let current = std::fs::read_link(dir.join("current.sisyphuslog")).expect("current link");
        if link.is_empty() {
            assert!(
                !dir.join(&current).exists(),
                "an uneventful run's file is deleted; current points at its name"
            );
        } else {
            assert_eq!(
                std::fs::read_link(dir.join(link)).expect(link),
                current,
                "{link}"
            );
            files.push(dir.join(&current));
        }
    }
    // Terminated counts as interrupted.
    let run = run_now(&db, job("files", &["sleep", "30"])).await;
    running_pid(&db.pool, run).await;
    control(&db, "terminate", run).await;
    ended(&db, run, Duration::from_secs(10)).await;
    assert!(dir.join("last_interrupted.sisyphuslog").exists());
    // The line format: [time]=[t+elapsed] :: host pid :: {tag}{tag} >> text
    let text = std::fs::read_to_string(&files[0]).expect("log file");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    let pattern = |line: &str, tags: &str, body: &str| {
        let (head, rest) = line.split_once("]=[t+").expect("time");
        assert!(
            head.starts_with('[') && head.len() == 27,
            "time stamp: {head}"
        );
        let (elapsed, rest) = rest.split_once("] :: ").expect("elapsed");
        assert!(
            elapsed.starts_with("0:00:0") && elapsed.len() == 14,
            "elapsed: {elapsed}"
        );
        assert_eq!(rest, format!("g1 {} :: {tags} >> {body}", g.pid()));
    };
    pattern(lines[1], "{stdout}", "hello");
    pattern(lines[2], "{sisyphus}{result}{ok}", "successful: hello");
    assert!(lines[0].contains("{sisyphus}{init} >> G/files run"));
}

#[tokio::test]
async fn old_log_files_are_compressed_and_removed() {
    use sisyphus_client::spec::{Compression, LogSettings};
    let day = Duration::from_secs(86_400);
    for (mode, magic) in [
        (Compression::Gzip, &b"\x1f\x8b"[..]),
        (Compression::Bzip2, b"BZh"),
        (Compression::Xz, b"\xfd7zXZ\x00"),
    ] {
        let dir = std::env::temp_dir().join(format!(
            "sisyphus-retention-{}-{}",
            std::process::id(),
            mode.as_str()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let now = std::time::SystemTime::now();
        for (name, age_days) in [
            ("a.sisyphuslog", 1u32),
            ("b.sisyphuslog", 5),
            ("c.sisyphuslog", 40),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, "x".repeat(5000)).expect("write");
            let f = std::fs::File::options()
                .write(true)
                .open(&path)
                .expect("open");
            f.set_modified(now - day * age_days).expect("mtime");
        }
        let settings = LogSettings {
            keep: Some(day * 30),
            compress_after: Some(day * 2),
            compression: mode,
        };
        sisyphus_logfile::apply_retention(&dir, &settings, now);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .expect("dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let compressed = format!("b.sisyphuslog.{}", mode.extension());
        assert_eq!(
            names,
            vec!["a.sisyphuslog".to_string(), compressed.clone()],
            "{mode:?}"
        );
        let bytes = std::fs::read(dir.join(&compressed)).expect("read");
        assert!(bytes.starts_with(magic), "{mode:?} magic");
        assert!(bytes.len() < 5000);
    }
}

#[tokio::test]
async fn sigterm_drains_then_interrupts() {
    let db = TestDb::new().await;
    let mut g = Daemon::guardian(&db.url, "g1", &[]);
    let short = run_now(&db, job("short", &["sh", "-c", "sleep 1; echo finished"])).await;
    let long = run_now(&db, job("long", &["sleep", "600"])).await;
    running_pid(&db.pool, short).await;
    running_pid(&db.pool, long).await;
    let t = Instant::now();
    let exit = g.terminate();
    assert!(exit.success(), "guardian exit: {exit:?}");
    println!(
        "guardian drained and stopped in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(
        status(&db.pool, short).await,
        "successful",
        "a run inside the drain time finishes"
    );
    assert_eq!(
        status(&db.pool, long).await,
        "interrupted",
        "a run past the drain time is interrupted"
    );
}

#[tokio::test]
async fn a_drained_host_takes_no_new_runs() {
    let db = TestDb::new().await;
    let _g = Daemon::guardian(&db.url, "g1", &["--pools", "batch,web"]);
    wait_for("registration", Duration::from_secs(10), || async {
        (db.count("hosts").await == 1).then_some(())
    })
    .await;
    let out = db.sisyctl(&["drain", "g1"]);
    assert!(out.status.success(), "{}", crate::harness::stderr(&out));
    let run = run_now(&db, job("later", &["true"])).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(status(&db.pool, run).await, "pending");
    let out = db.sisyctl(&["hosts", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v[0]["name"], "g1");
    assert_eq!(v[0]["draining"], true);
    assert_eq!(v[0]["pools"], serde_json::json!(["batch", "web"]));
    assert!(db.sisyctl(&["drain", "g1", "--undo"]).status.success());
    assert_eq!(
        ended(&db, run, Duration::from_secs(10)).await.0,
        "uneventful"
    );
    let out = db.sisyctl(&["drain", "nohost"]);
    assert!(crate::harness::stderr(&out).contains("host nohost is not registered"));
}

#[tokio::test]
async fn run_as_switches_to_an_allowed_user_and_refuses_root_unless_allowed() {
    let db = TestDb::new().await;
    let _g = Daemon::guardian(&db.url, "g1", &["--allow-users", "nobody"]);
    let as_nobody = run_now(
        &db,
        JobDefinition {
            run_as: Some("nobody".into()),
            ..job("whoami", &["id", "-un"])
        },
    )
    .await;
    let as_root = run_now(
        &db,
        JobDefinition {
            run_as: Some("root".into()),
            ..job("root", &["id", "-un"])
        },
    )
    .await;
    let not_allowed = run_now(
        &db,
        JobDefinition {
            run_as: Some("daemon".into()),
            ..job("daemon", &["id", "-un"])
        },
    )
    .await;
    let limit = Duration::from_secs(15);
    if nix::unistd::Uid::effective().is_root() {
        let (st, summary, err, _) = ended(&db, as_nobody, limit).await;
        assert_eq!(
            (st.as_str(), summary.as_deref()),
            ("successful", Some("nobody")),
            "{err:?}"
        );
        let (st, _, err, _) = ended(&db, as_root, limit).await;
        assert_eq!(st, "failed");
        assert_eq!(err.as_deref(), Some("running as root is not allowed on g1"));
        let (_, _, err, _) = ended(&db, not_allowed, limit).await;
        assert_eq!(
            err.as_deref(),
            Some("user `daemon` is not among g1's allowed users")
        );
    } else {
        let (st, _, err, _) = ended(&db, as_nobody, limit).await;
        assert_eq!(st, "failed");
        assert!(err.is_some_and(|e| e.contains("needs a guardian running as root")));
    }
}

#[tokio::test]
async fn sisyctl_logs_follows_a_live_run_and_filters_by_tag() {
    let db = TestDb::new().await;
    let _g = Daemon::guardian(&db.url, "g1", &[]);
    let run = run_now(
        &db,
        job(
            "talk",
            &[
                "sh",
                "-c",
                "for i in 1 2 3 4 5; do echo out $i; echo err $i >&2; sleep 0.3; done",
            ],
        ),
    )
    .await;
    running_pid(&db.pool, run).await;
    let id = run.to_string();
    // --follow returns only when the run has ended, with every line.
    let out = db.sisyctl(&["logs", &id, "--follow"]);
    let text = crate::harness::stdout(&out);
    assert!(out.status.success(), "{}", crate::harness::stderr(&out));
    for i in 1..=5 {
        assert!(text.contains(&format!("{{stdout}} >> out {i}")), "{text}");
        assert!(text.contains(&format!("{{stderr}} >> err {i}")), "{text}");
    }
    assert!(
        text.contains("{sisyphus}{result}{ok} >> successful: out 5"),
        "{text}"
    );
    let out = db.sisyctl(&["logs", &id, "--tag", "stderr"]);
    let text = crate::harness::stdout(&out);
    assert_eq!(text.lines().count(), 5, "{text}");
    assert!(
        text.lines().all(|l| l.contains("{stderr} >> err")),
        "{text}"
    );
    let out = db.sisyctl(&["logs", "424242"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(crate::harness::stderr(&out).contains("run 424242 does not exist"));
}

/// CPU seconds (user + system) a process has used.
fn cpu_seconds(pid: i32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("stat")
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 =
        fields[11].parse::<f64>().expect("utime") + fields[12].parse::<f64>().expect("stime");
    ticks / 100.0
}

#[tokio::test]
async fn a_blocked_backlog_neither_starves_other_jobs_nor_spins_the_guardian() {
    let db = TestDb::new().await;
    let g = Daemon::guardian(&db.url, "g1", &["--capacity", "4"]);
    db.client
        .apply(
            &[job("backlog", &["sleep", "1"]), job("other", &["true"])],
            false,
        )
        .await
        .expect("apply");
    // 30 due runs of a concurrency-1 job, then one run of another job behind them.
    sqlx::query(
        "INSERT INTO sisyphus.runs (job_id, slot, scheduled_for, trigger)
         SELECT j.id, now() - make_interval(secs => i), now() - make_interval(secs => 60 - i), 'manual'
           FROM sisyphus.jobs j, generate_series(1, 30) i WHERE j.name = 'backlog'",
    )
    .execute(&db.pool)
    .await
    .expect("backlog");
    sqlx::query("SELECT pg_notify('sisyphus_runs', '')")
        .execute(&db.pool)
        .await
        .expect("notify");
    let other = db
        .client
        .run_now(&JobRef::new("G", "other"))
        .await
        .expect("run")[0]
        .0;
    let started = Instant::now();
    assert_eq!(
        ended(&db, other, Duration::from_secs(10)).await.0,
        "uneventful"
    );
    let waited = started.elapsed();
    println!(
        "another job's run behind a blocked 30-run backlog finished after {:.0} ms",
        waited.as_secs_f64() * 1000.0
    );
    assert!(waited < Duration::from_secs(2), "starved for {waited:?}");
    // While the backlog runs one at a time, the guardian sleeps between events.
    let before = cpu_seconds(g.pid());
    tokio::time::sleep(Duration::from_secs(4)).await;
    let used = cpu_seconds(g.pid()) - before;
    let done = db.count("runs WHERE status = 'uneventful'").await;
    println!("guardian CPU over 4 s with a blocked backlog: {used:.2} s; {done} runs done");
    assert!(
        used < 0.5,
        "the guardian used {used} s of CPU in 4 s: busy polling"
    );
    // A slot freed by each run's end wakes the claim at once: the backlog runs back to back.
    assert!(done >= 4, "only {done} runs in ~5 s");
}

/// A run that starts and ends within one recorder batch (a quick run under load) still gets its
/// pid recorded. Under the test's single-threaded runtime the recorder task runs only once both
/// messages wait, so they always share a batch.
#[tokio::test]
async fn a_pid_and_an_outcome_in_one_batch_are_both_recorded() {
    use sisyphus_guardian::outcome::Outcome;
    use sisyphus_guardian::recorder::Recorder;
    use sisyphus_guardian::spool::Spool;
    let db = TestDb::new().await;
    let run = crate::harness::run_now(&db, JobDefinition::new("G", "quick", ["true"])).await;
    sqlx::query(
        "UPDATE sisyphus.runs SET status = 'running', host = 'h', started_at = now(),
                lease_expires_at = now() + interval '1 minute' WHERE id = $1",
    )
    .bind(run)
    .execute(&db.pool)
    .await
    .expect("claim by hand");
    let spool = Spool::open(&crate::harness::temp_dir("recorder-spool")).expect("spool");
    let guardian = db.service_pool("guardian", "h").await;
    let (recorder, recording) = Recorder::new(guardian, spool, std::sync::Arc::default());
    let task = tokio::spawn(recording);
    recorder.started(sisyphus_client::RunId(run), 4242).await;
    recorder
        .finished(Outcome {
            run: sisyphus_client::RunId(run),
            status: sisyphus_client::RunStatus::Successful,
            exit_code: Some(0),
            signal: None,
            summary: Some("quick".into()),
            error: None,
            finished_at: chrono::Utc::now(),
        })
        .await;
    drop(recorder);
    task.await.expect("the recorder ends");
    let (status, pid): (String, Option<i32>) =
        sqlx::query_as("SELECT status::text, pid FROM sisyphus.runs WHERE id = $1")
            .bind(run)
            .fetch_one(&db.pool)
            .await
            .expect("run");
    assert_eq!((status.as_str(), pid), ("successful", Some(4242)));
}
