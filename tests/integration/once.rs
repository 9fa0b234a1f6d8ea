//! The one-shot guardian (`sisyphus guardian --once`, issue 19): a real process claims what is due
//! for its host, supervises it to its end, records it and exits — 0 when every claimed run is
//! recorded, at once when nothing is due, 1 with the reason when an outcome is not recorded as it
//! ended, 75 while another guardian serves its name — with the usual leases, so a crashed one's
//! runs become `lost`.

use std::time::{Duration, Instant};

use sisyphus_client::spec::Command as JobCommand;
use sisyphus_client::JobDefinition;

use crate::harness::{ended, process_gone, run_now, running_pid, status, wait_for, Daemon, TestDb};

/// Waits for the daemon to exit by itself; its exit status.
async fn exit_within(d: &mut Daemon, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = d.child.try_wait().expect("try_wait") {
            return s;
        }
        assert!(
            start.elapsed() < limit,
            "the one-shot guardian still runs after {limit:?}:\n{}",
            d.log_text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn shell(project: &str, name: &str, line: &str) -> JobDefinition {
    JobDefinition {
        shell: Some(true),
        command: Some(JobCommand::Line(line.into())),
        ..JobDefinition::new(project, name, ["unused"])
    }
}

#[tokio::test]
async fn a_one_shot_guardian_runs_what_is_due_records_it_and_exits() {
    let db = TestDb::new().await;
    let first = run_now(&db, shell("O", "a", "echo from a")).await;
    let second = run_now(&db, shell("O", "b", "sleep 1; echo from b")).await;
    let mut g = Daemon::guardian(&db.url, "g1", &["--once"]);
    let code = exit_within(&mut g, Duration::from_secs(30)).await;
    assert!(code.success(), "{code}: {}", g.log_text());
    for (run, said) in [(first, "from a"), (second, "from b")] {
        let (status, summary, _, _) = ended(&db, run, Duration::from_secs(1)).await;
        assert_eq!(
            (status.as_str(), summary.as_deref()),
            ("successful", Some(said))
        );
    }
    let log = g.log_text();
    assert!(
        log.contains(&format!("run {first} successful"))
            && log.contains(&format!("run {second} successful")),
        "{log}"
    );
    // It gave its name back: the host is free for the next one at once.
    let instance: Option<String> =
        sqlx::query_scalar("SELECT instance FROM sisyphus.hosts WHERE name = 'g1'")
            .fetch_one(&db.pool)
            .await
            .expect("host");
    assert_eq!(instance, None);

    // Nothing due: the next one exits at once, successfully.
    let started = Instant::now();
    let mut again = Daemon::guardian(&db.url, "g1", &["--once"]);
    let code = exit_within(&mut again, Duration::from_secs(10)).await;
    let took = started.elapsed();
    assert!(code.success(), "{code}: {}", again.log_text());
    assert!(
        again.log_text().contains("nothing due"),
        "{}",
        again.log_text()
    );
    println!("--once with nothing due: exit 0 after {took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(db.count("runs").await, 2);
}

#[tokio::test]
async fn a_one_shot_guardian_exits_nonzero_when_an_outcome_is_not_recorded_as_it_ended() {
    let db = TestDb::new().await;
    let run = run_now(&db, shell("O", "slow", "sleep 2; echo done")).await;
    let mut g = Daemon::guardian(&db.url, "g1", &["--once"]);
    running_pid(&db.pool, run).await;
    // Someone ends the run in the database meanwhile: the guardian's outcome cannot be recorded.
    sqlx::query(
        "UPDATE sisyphus.runs SET status = 'lost', finished_at = now(), error = 'by hand' WHERE id = $1",
    )
    .bind(run)
    .execute(&db.pool)
    .await
    .expect("end the run by hand");
    let code = exit_within(&mut g, Duration::from_secs(30)).await;
    assert_eq!(code.code(), Some(1), "{}", g.log_text());
    let log = g.log_text();
    assert!(
        log.contains(&format!(
            "run {run} ended successful but is recorded as lost"
        )),
        "{log}"
    );
    assert_eq!(status(&db.pool, run).await, "lost");
}

#[tokio::test]
async fn a_crashed_one_shot_guardians_run_becomes_lost() {
    let db = TestDb::new().await;
    let _s = Daemon::scheduler(&db.url);
    let run = run_now(&db, shell("O", "long", "sleep 30")).await;
    let mut g = Daemon::guardian(&db.url, "g1", &["--once"]);
    let pid = running_pid(&db.pool, run).await;
    let killed = Instant::now();
    g.kill9();
    wait_for(
        "the run's process to die with its guardian",
        Duration::from_secs(3),
        || async { process_gone(pid).then_some(()) },
    )
    .await;
    let after = wait_for("the run to be lost", Duration::from_secs(20), || async {
        (status(&db.pool, run).await == "lost").then(|| killed.elapsed())
    })
    .await;
    println!("kill -9 of a one-shot guardian: run lost after {after:?} (lease 4 s)");
}

#[tokio::test]
async fn a_one_shot_guardian_leaves_a_host_another_guardian_serves_with_75() {
    let db = TestDb::new().await;
    let _daemon = Daemon::guardian(&db.url, "g1", &[]);
    wait_for(
        "the daemon to register",
        Duration::from_secs(10),
        || async {
            (db.count("hosts WHERE name = 'g1' AND instance IS NOT NULL")
                .await
                == 1)
                .then_some(())
        },
    )
    .await;
    let mut g = Daemon::guardian(&db.url, "g1", &["--once"]);
    let code = exit_within(&mut g, Duration::from_secs(10)).await;
    assert_eq!(code.code(), Some(75), "{}", g.log_text());
    assert!(
        g.log_text().contains("already registered as host `g1`"),
        "{}",
        g.log_text()
    );
}
