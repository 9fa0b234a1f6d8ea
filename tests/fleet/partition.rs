//! A guardian's link is cut while it runs a concurrency-1 job: it must kill its child before
//! its lease ends (self-fencing), the run becomes `lost`, the retry runs on the other host, the
//! witness shows no overlap; once the link is back the guardian rejoins and runs work again.

use std::time::Duration;

use sisyphus_client::spec::Command as JobCommand;
use sisyphus_client::{JobDefinition, JobRef};

use crate::net::Host;
use crate::{now, temp_dir, wait_for, witness, Daemon, Fleet};

const LEASE: f64 = 3.0;

pub async fn a_cut_guardian_fences_and_rejoins(fleet: &mut Fleet) {
    let db = fleet.database().await;
    let dir = temp_dir("partition");
    let witness_file = dir.join("solo.witness");
    let solo = JobDefinition {
        shell: Some(true),
        command: Some(JobCommand::Line(witness::script(&witness_file, 40, "0.2"))),
        retries: Some(1),
        retry_backoff: Some("0s".into()),
        ..JobDefinition::new("P", "solo", ["unused"])
    };
    let after = JobDefinition {
        shell: Some(true),
        command: Some(JobCommand::Line("echo rejoined on $(hostname)".into())),
        ..JobDefinition::new("P", "after", ["unused"])
    };
    db.client.apply(&[solo, after], false).await.expect("apply");
    let (a, b) = (Host::new("a"), Host::new("b"));
    let flags = ["--lease", "3s", "--heartbeat", "500ms", "--grace", "1s"];
    let _scheduler = Daemon::scheduler(&db, "s", &dir);
    let _ga = Daemon::guardian(&a, fleet.port(), &db, &dir, &flags);
    let run = db
        .client
        .run_now(&JobRef::new("P", "solo"))
        .await
        .expect("run")[0]
        .0;
    wait_for("the run to start on a", Duration::from_secs(20), || async {
        let host: Option<String> = sqlx::query_scalar(
            "SELECT host FROM sisyphus.runs WHERE id = $1 AND status = 'running'",
        )
        .bind(run)
        .fetch_optional(&db.pool)
        .await
        .ok()
        .flatten()
        .flatten();
        (host.as_deref() == Some("a")).then_some(())
    })
    .await;
    let _gb = Daemon::guardian(&b, fleet.port(), &db, &dir, &flags);
    tokio::time::sleep(Duration::from_secs(1)).await;

    a.cut();
    let cut_at = now();
    let lost_at: f64 = wait_for("the run to be lost", Duration::from_secs(20), || async {
        sqlx::query_scalar(
            "SELECT extract(epoch FROM finished_at)::float8 FROM sisyphus.runs \
              WHERE id = $1 AND status = 'lost'",
        )
        .bind(run)
        .fetch_optional(&db.pool)
        .await
        .ok()
        .flatten()
    })
    .await;
    let retry: i64 = wait_for(
        "the retry to start on b",
        Duration::from_secs(20),
        || async {
            sqlx::query_scalar(
                "SELECT r.id FROM sisyphus.runs o JOIN sisyphus.runs r \
                 ON r.job_id = o.job_id AND r.slot = o.slot AND r.attempt = o.attempt + 1 \
              WHERE o.id = $1 AND r.host = 'b' AND r.status IN ('running', 'successful')",
            )
            .bind(run)
            .fetch_optional(&db.pool)
            .await
            .ok()
            .flatten()
        },
    )
    .await;
    a.heal();
    let healed_at = now();

    // The retry finishes; the witness tells what the processes did.
    wait_for("the retry to finish", Duration::from_secs(30), || async {
        let st: String = sqlx::query_scalar("SELECT status::text FROM sisyphus.runs WHERE id = $1")
            .bind(retry)
            .fetch_one(&db.pool)
            .await
            .ok()?;
        (st != "running" && st != "pending").then_some(())
    })
    .await;
    let seen = witness::read(&witness_file);
    let first = seen.get(&run).expect("the first run was witnessed");
    let second = seen.get(&retry).expect("the retry was witnessed");
    let overlaps = witness::excess_starts(seen.values(), 1);
    println!(
        "partition: run {run} on a last seen {:.2} s after the cut (lease {LEASE} s), recorded lost \
         {:.2} s after the cut; retry {retry} on b started {:.2} s after the first was last seen; \
         overlaps {overlaps}",
        first.to - cut_at,
        lost_at - cut_at,
        second.from - first.to
    );
    assert!(
        !first.ended,
        "the partitioned run was not killed: {first:?}"
    );
    assert!(
        first.to < cut_at + LEASE,
        "the partitioned guardian's child was still running {:.2} s after the cut, past its lease",
        first.to - cut_at
    );
    assert_eq!(
        overlaps, 0,
        "runs of a concurrency-1 job overlapped: {seen:?}"
    );
    assert!(second.ended, "the retry did not complete: {second:?}");

    // Rejoin: with b drained, the next run can only go to a.
    db.client.drain("b", true).await.expect("drain b");
    wait_for("a to beat again", Duration::from_secs(20), || async {
        let beat: Option<f64> = sqlx::query_scalar(
            "SELECT extract(epoch FROM last_heartbeat)::float8 FROM sisyphus.hosts WHERE name = 'a'",
        )
        .fetch_optional(&db.pool)
        .await
        .ok()
        .flatten();
        beat.is_some_and(|t| t > healed_at).then_some(())
    })
    .await;
    let next = db
        .client
        .run_now(&JobRef::new("P", "after"))
        .await
        .expect("run")[0]
        .0;
    let (host, status): (Option<String>, String) = wait_for(
        "a run on the rejoined host",
        Duration::from_secs(20),
        || async {
            let row: (Option<String>, String) =
                sqlx::query_as("SELECT host, status::text FROM sisyphus.runs WHERE id = $1")
                    .bind(next)
                    .fetch_one(&db.pool)
                    .await
                    .ok()?;
            (row.1 != "pending" && row.1 != "running").then_some(row)
        },
    )
    .await;
    let first_status: String =
        sqlx::query_scalar("SELECT status::text FROM sisyphus.runs WHERE id = $1")
            .bind(run)
            .fetch_one(&db.pool)
            .await
            .expect("status");
    println!(
        "partition: after healing, a ran run {next}: {status}; the cut run stays {first_status}"
    );
    assert_eq!(
        (host.as_deref(), status.as_str()),
        (Some("a"), "successful")
    );
    assert_eq!(
        first_status, "lost",
        "a's late report overwrote the lost run"
    );
}
