//! Witness files: what the jobs' processes themselves saw, independent of what the database
//! says. Each run appends `start`, a `tick` every step and `end` lines with its run id and the
//! time; appends of one short line are atomic, so runs on different hosts can share a file.
//! A run killed with SIGKILL simply stops ticking, so its interval ends at its last tick.

use std::collections::BTreeMap;
use std::path::Path;

/// A job's shell command: witness lines around `steps` sleeps of `step` seconds, then
/// `done <run>` on stdout (the log line the tests look for in `run_logs`).
pub fn script(witness: &Path, steps: u32, step: &str) -> String {
    let w = witness.display();
    format!(
        "w={w}; r=$SISYPHUS_RUN_ID; echo \"start $r $(date +%s.%N)\" >> $w; \
         i=0; while [ $i -lt {steps} ]; do sleep {step}; echo \"tick $r $(date +%s.%N)\" >> $w; \
         i=$((i+1)); done; echo \"end $r $(date +%s.%N)\" >> $w; echo \"done $r\""
    )
}

/// What one run's process was seen doing.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub from: f64,
    pub to: f64,
    pub starts: usize,
    pub ended: bool,
}

/// The runs a witness file saw, by run id.
pub fn read(witness: &Path) -> BTreeMap<i64, Seen> {
    let text = std::fs::read_to_string(witness).unwrap_or_default();
    let mut runs: BTreeMap<i64, Seen> = BTreeMap::new();
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(kind), Some(run), Some(t)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let (Ok(run), Ok(t)) = (run.parse::<i64>(), t.parse::<f64>()) else {
            continue;
        };
        let seen = runs.entry(run).or_insert(Seen {
            from: t,
            to: t,
            starts: 0,
            ended: false,
        });
        seen.from = seen.from.min(t);
        seen.to = seen.to.max(t);
        match kind {
            "start" => seen.starts += 1,
            "end" => seen.ended = true,
            _ => {}
        }
    }
    runs
}

/// How many runs started while `limit` others were already inside their interval.
pub fn excess_starts<'a>(runs: impl IntoIterator<Item = &'a Seen>, limit: usize) -> usize {
    let mut events: Vec<(f64, i32)> = Vec::new();
    for s in runs {
        events.push((s.from, 1));
        // A run killed right after its `start` line has a zero-length interval: its end must
        // still sort after its own start.
        events.push((s.to.max(s.from + 1e-6), -1));
    }
    // At equal times an end comes before a start: touching intervals do not overlap.
    events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut inside, mut excess) = (0usize, 0);
    for (_, delta) in events {
        if delta > 0 {
            if inside >= limit {
                excess += 1;
            }
            inside += 1;
        } else {
            inside = inside.saturating_sub(1);
        }
    }
    excess
}

/// The most runs inside their intervals at once.
pub fn most_at_once<'a>(runs: impl IntoIterator<Item = &'a Seen>) -> usize {
    let runs: Vec<&Seen> = runs.into_iter().collect();
    (0..=runs.len())
        .find(|&limit| excess_starts(runs.iter().copied(), limit) == 0)
        .unwrap_or(runs.len())
}

/// A run killed right after its `start` line (a zero-length interval) ends before the next run
/// starts; a real overlap is still found.
pub fn a_run_killed_right_after_starting_is_no_overlap() {
    let seen = |from: f64, to: f64| Seen {
        from,
        to,
        starts: 1,
        ended: false,
    };
    let runs = [seen(1.0, 1.0), seen(2.0, 3.0), seen(4.0, 5.0)];
    assert_eq!(excess_starts(runs.iter(), 1), 0);
    let runs = [seen(1.0, 1.0), seen(2.0, 3.0), seen(2.5, 5.0)];
    assert_eq!(excess_starts(runs.iter(), 1), 1);
    assert_eq!(most_at_once(runs.iter()), 2);
}
