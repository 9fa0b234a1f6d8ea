//! The claim path of migration 0020 (issue 17: per-job scans that skip rows other guardians
//! hold, a shared per-job lock only where no claims in flight can reach the limit, outcomes as a
//! set) keeps concurrency limits exact fleet-wide: four guardians race for the runs of one job of
//! concurrency 3, and the runs' own witness lines say how many ran at once.

use std::path::Path;
use std::time::Duration;

use sisyphus_client::spec::Command;
use sisyphus_client::{JobDefinition, JobRef};

use crate::harness::{temp_dir, wait_for, Daemon, TestDb};

/// Runs of the job.
const RUNS: usize = 45;
/// Its concurrency.
const LIMIT: usize = 3;

/// (starts beyond `limit` while `limit` runs were inside their `start`…`end` lines, most at
/// once, runs that started more than once) from a witness file of `start <t> <run>` and
/// `end <t> <run>` lines.
fn witnessed(witness: &Path, limit: usize) -> (usize, usize, usize) {
    let text = std::fs::read_to_string(witness).unwrap_or_default();
    let mut events: Vec<(f64, i32)> = Vec::new();
    let mut starts: std::collections::BTreeMap<String, usize> = Default::default();
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(kind), Some(t), Some(run)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let Ok(t) = t.parse::<f64>() else { continue };
        if kind == "start" {
            *starts.entry(run.to_string()).or_default() += 1;
        }
        events.push((t, if kind == "start" { 1 } else { -1 }));
    }
    // At equal times an end comes before a start: touching intervals do not overlap.
    events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut inside, mut most, mut excess) = (0usize, 0usize, 0usize);
    for (_, step) in events {
        if step > 0 {
            if inside >= limit {
                excess += 1;
            }
            inside += 1;
            most = most.max(inside);
        } else {
            inside = inside.saturating_sub(1);
        }
    }
    let twice = starts.values().filter(|n| **n > 1).count();
    (excess, most, twice)
}

#[tokio::test]
async fn four_guardians_racing_for_a_job_of_concurrency_3_never_run_4() {
    let db = TestDb::new().await;
    let w = temp_dir("claims").join("w");
    let script = format!(
        "echo \"start $(date +%s.%N) $SISYPHUS_RUN_ID\" >> {w}; sleep 0.15; \
         echo \"end $(date +%s.%N) $SISYPHUS_RUN_ID\" >> {w}",
        w = w.display()
    );
    db.client
        .apply(
            &[JobDefinition {
                shell: Some(true),
                command: Some(Command::Line(script)),
                concurrency: Some(LIMIT as i64),
                ttl: Some("1h".into()),
                ..JobDefinition::new("C", "racer", Vec::<String>::new())
            }],
            false,
        )
        .await
        .expect("apply");
    // The whole backlog first, then the guardians all at once: every claim races.
    for _ in 0..RUNS {
        db.client
            .run_now(&JobRef::new("C", "racer"))
            .await
            .expect("run now");
    }
    let _g: Vec<Daemon> = (1..=4)
        .map(|i| Daemon::guardian(&db.url, &format!("g{i}"), &["--capacity", "8"]))
        .collect();
    // A run that prints nothing ends `uneventful`.
    let hosts: i64 = wait_for("every run to end", Duration::from_secs(90), || async {
        let (done, hosts): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE status = 'uneventful'), count(DISTINCT host) \
               FROM sisyphus.runs",
        )
        .fetch_one(&db.pool)
        .await
        .expect("count runs");
        (done == RUNS as i64).then_some(hosts)
    })
    .await;
    let (excess, most, twice) = witnessed(&w, LIMIT);
    println!("{RUNS} runs on {hosts} guardians: at most {most} at once, {excess} starts over the limit, {twice} started twice");
    assert_eq!(excess, 0, "starts beyond concurrency {LIMIT}");
    assert!(most <= LIMIT);
    assert_eq!(twice, 0, "runs started more than once");
    assert!(
        hosts >= 2,
        "the runs should be spread over the racing guardians"
    );
    // Every outcome recorded once: as many successful runs as starts witnessed.
    let text = std::fs::read_to_string(&w).unwrap_or_default();
    assert_eq!(
        text.lines().filter(|l| l.starts_with("start ")).count(),
        RUNS
    );
}
