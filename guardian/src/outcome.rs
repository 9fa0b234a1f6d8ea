//! How a run ended: the [`Outcome`] the guardian records, how it is decided ([`classify`]: the
//! exit status, why the guardian ended the run itself, and what a job written with the SDK
//! reported), and [`write_outcomes`], the one way outcomes are written — by the recorder and by
//! spool replay alike.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::Duration;

use chrono::{DateTime, Utc};
use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};
use sisyphus_db::guardian::{finish_many, Finish};
use sisyphus_db::PgConnection;
use sisyphus_model::{RunId, RunStatus};
use sisyphus_protocol::text::clean_opt;

/// How a run ended, as the guardian records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub run: RunId,
    pub status: RunStatus,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub summary: Option<String>,
    pub error: Option<String>,
    pub finished_at: DateTime<Utc>,
}

impl Outcome {
    /// A run that could not start: `failed`, with the reason as its error.
    pub(crate) fn not_started(run: RunId, error: String) -> Outcome {
        Outcome {
            run,
            status: RunStatus::Failed,
            exit_code: None,
            signal: None,
            summary: None,
            error: Some(error),
            finished_at: Utc::now(),
        }
    }

    /// A run that control ended while it waited for its resource locks.
    pub(crate) fn ended_before_start(run: RunId, status: RunStatus) -> Outcome {
        Outcome {
            run,
            status,
            exit_code: None,
            signal: None,
            summary: None,
            error: Some("ended while waiting for resource locks".into()),
            finished_at: Utc::now(),
        }
    }

    /// What `Executor::Noop` records at once: `uneventful`, exit code 0.
    pub(crate) fn noop(run: RunId) -> Outcome {
        Outcome {
            run,
            status: RunStatus::Uneventful,
            exit_code: Some(0),
            signal: None,
            summary: None,
            error: None,
            finished_at: Utc::now(),
        }
    }
}

/// Why the guardian ended a run itself (the first reason wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    Timeout,
    Terminated,
    Interrupted,
    Fenced,
}

/// What a run's output showed, as far as its outcome is concerned.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    /// The child wrote anything on stdout or stderr.
    pub any_output: bool,
    /// The last non-blank stdout line (a success's summary), cut to 1000 bytes.
    pub last_stdout: Option<String>,
    /// The last non-blank stderr line (a failure's error), cut to 1000 bytes.
    pub last_stderr: Option<String>,
    /// What a job written with the SDK reported as its result.
    pub sdk_result: Option<(sisyphus_protocol::Status, Option<String>)>,
    /// For an `ll.sisyphus` job: what its log lines showed (`llsisyphus`).
    pub ll_sisyphus: Option<LlSisyphusSeen>,
}

/// What an `ll.sisyphus` job's output showed, for its outcome.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct LlSisyphusSeen {
    /// It printed any line in ll.sisyphus' format.
    pub any_line: bool,
    /// What its result line said (`llsisyphus::result_of`).
    pub result: Option<(sisyphus_protocol::Status, Option<String>)>,
}

/// The run's outcome from how it ended (`exit`), why the guardian ended it (`reason`) and what
/// its output showed.
pub(crate) fn classify(
    run: RunId,
    exit: Option<ExitStatus>,
    reason: Option<Reason>,
    maxtime: Option<Duration>,
    seen: &Seen,
) -> Outcome {
    let code = exit.and_then(|e| e.code());
    let signal = exit.and_then(|e| e.signal());
    let (status, error) = match (reason, code, signal) {
        (Some(Reason::Timeout), _, _) => (
            RunStatus::Timeout,
            Some(format!(
                "ran longer than maxtime {}",
                format_maxtime(maxtime)
            )),
        ),
        (Some(Reason::Terminated), _, _) => (
            RunStatus::Terminated,
            Some("terminated on request".to_string()),
        ),
        (Some(Reason::Interrupted), _, _) => (
            RunStatus::Interrupted,
            Some("interrupted: the guardian shut down".to_string()),
        ),
        (Some(Reason::Fenced), _, _) => (
            RunStatus::Lost,
            Some("killed by its guardian, which could not renew its lease".to_string()),
        ),
        (None, Some(0), _) if seen.any_output => (RunStatus::Successful, None),
        (None, Some(0), _) => (RunStatus::Uneventful, None),
        (None, Some(c), _) => (
            RunStatus::Failed,
            Some(match &seen.last_stderr {
                Some(line) => format!("exit code {c}: {line}"),
                None => format!("exit code {c}"),
            }),
        ),
        (None, None, Some(s)) if s == Signal::SIGINT as i32 => (
            RunStatus::Interrupted,
            Some("interrupted (SIGINT)".to_string()),
        ),
        (None, None, Some(s)) => (
            RunStatus::Failed,
            Some(format!("killed by signal {s} ({})", signal_name(s))),
        ),
        (None, None, None) => (
            RunStatus::Failed,
            Some("ended without an exit status".to_string()),
        ),
    };
    let mut summary = if status == RunStatus::Successful {
        seen.last_stdout.clone()
    } else {
        None
    };
    // A job written with the SDK says itself how it went; its exit status still counts when it
    // failed, was killed or timed out.
    let (mut status, mut error) = (status, error);
    if let (None, Some((reported, text))) = (reason, &seen.sdk_result) {
        if code == Some(0) || *reported == sisyphus_protocol::Status::Failed {
            status = RunStatus::from(*reported);
            (summary, error) = match status {
                RunStatus::Successful => (text.clone(), None),
                RunStatus::Uneventful => (None, None),
                _ => (None, text.clone().or(error)),
            };
        }
    }
    // An ll.sisyphus job's result line says how it went, whatever its exit status: its parent
    // process exits 0 after a failed or timed-out worker, and without a fork an exception may
    // end the process with 1 after the result line was written.
    if let (None, Some(ll)) = (reason, &seen.ll_sisyphus) {
        (status, summary, error) = ll_sisyphus(ll, code, (status, summary, error));
    }
    Outcome {
        run,
        status,
        exit_code: code,
        signal,
        summary,
        error,
        finished_at: Utc::now(),
    }
}

/// An ll.sisyphus job's outcome from its result line; without one, a normal exit is uneventful
/// when it printed no ll.sisyphus line (ll.sisyphus prints nothing for a run that logged only
/// delayed lines and returned None; anything else it printed was the job's own `print`), and
/// failed when it did (ll.sisyphus ends every run it logged for with a result line: a worker
/// killed by a signal ends without one, which ll.sisyphus itself would call uneventful).
fn ll_sisyphus(
    ll: &LlSisyphusSeen,
    code: Option<i32>,
    otherwise: (RunStatus, Option<String>, Option<String>),
) -> (RunStatus, Option<String>, Option<String>) {
    match (&ll.result, code) {
        (Some((reported, text)), _) => {
            let status = RunStatus::from(*reported);
            match status {
                RunStatus::Successful => (status, text.clone(), None),
                RunStatus::Uneventful => (status, None, None),
                _ => (status, None, text.clone().or(otherwise.2)),
            }
        }
        (None, Some(0)) if ll.any_line => (
            RunStatus::Failed,
            None,
            Some(
                "ll.sisyphus logged lines but no result line: the run did not end as ll.sisyphus \
                 ends its runs (was its worker process killed?)"
                    .to_string(),
            ),
        ),
        (None, Some(0)) => (RunStatus::Uneventful, None, None),
        (None, _) => otherwise,
    }
}

/// A maxtime as the run's log and error say it (`-` for none).
pub(crate) fn format_maxtime(d: Option<Duration>) -> String {
    d.map_or_else(
        || "-".to_string(),
        sisyphus_model::schedule::format_duration,
    )
}

fn signal_name(s: i32) -> &'static str {
    Signal::try_from(s).map(|s| s.as_str()).unwrap_or("?")
}

/// Records outcomes in one statement (compare-and-set each, retries as `finish_run` does). An
/// outcome whose run had already ended otherwise (e.g. the scheduler declared it lost) changes
/// nothing and is logged. The one way outcomes are written: by the recorder and by spool replay.
pub async fn write_outcomes(
    conn: &mut PgConnection,
    outcomes: &[Outcome],
) -> sisyphus_db::Result<()> {
    if outcomes.is_empty() {
        return Ok(());
    }
    // Summaries and errors come from the child's output: storable text only (as lines are).
    let mut o = outcomes.to_vec();
    for x in &mut o {
        clean_opt(&mut x.summary);
        clean_opt(&mut x.error);
    }
    let finishes: Vec<Finish<'_>> = o.iter().map(Outcome::finish).collect();
    for (run, recorded) in finish_many(conn, &finishes).await? {
        if !recorded {
            tracing::warn!(
                run = run.0,
                "outcome not recorded: the run had already ended otherwise"
            );
        }
    }
    Ok(())
}

impl Outcome {
    /// The outcome as the database layer records it.
    fn finish(&self) -> Finish<'_> {
        Finish {
            run: self.run,
            status: self.status,
            exit_code: self.exit_code,
            signal: self.signal,
            summary: self.summary.as_deref(),
            error: self.error.as_deref(),
            finished_at: self.finished_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sisyphus_protocol::Status;

    fn exited(code: i32) -> Option<ExitStatus> {
        Some(ExitStatus::from_raw(code << 8))
    }

    fn killed(signal: Signal) -> Option<ExitStatus> {
        Some(ExitStatus::from_raw(signal as i32))
    }

    fn seen(stdout: Option<&str>, stderr: Option<&str>) -> Seen {
        Seen {
            any_output: stdout.is_some() || stderr.is_some(),
            last_stdout: stdout.map(String::from),
            last_stderr: stderr.map(String::from),
            sdk_result: None,
            ll_sisyphus: None,
        }
    }

    fn of(exit: Option<ExitStatus>, reason: Option<Reason>, seen: &Seen) -> Outcome {
        classify(RunId(1), exit, reason, Some(Duration::from_secs(60)), seen)
    }

    #[test]
    fn exit_zero_is_successful_with_output_and_uneventful_without() {
        let o = of(exited(0), None, &seen(Some("done"), None));
        assert_eq!(o.status, RunStatus::Successful);
        assert_eq!(o.summary.as_deref(), Some("done"));
        let o = of(exited(0), None, &Seen::default());
        assert_eq!(
            (o.status, o.summary, o.error),
            (RunStatus::Uneventful, None, None)
        );
    }

    #[test]
    fn a_failure_says_its_exit_code_and_last_stderr_line() {
        let o = of(exited(3), None, &seen(Some("out"), Some("boom")));
        assert_eq!(o.status, RunStatus::Failed);
        assert_eq!(o.exit_code, Some(3));
        assert_eq!(o.error.as_deref(), Some("exit code 3: boom"));
        assert_eq!(o.summary, None);
    }

    #[test]
    fn signals_fail_the_run_except_sigint() {
        let o = of(killed(Signal::SIGKILL), None, &Seen::default());
        assert_eq!(o.status, RunStatus::Failed);
        assert_eq!(o.error.as_deref(), Some("killed by signal 9 (SIGKILL)"));
        let o = of(killed(Signal::SIGINT), None, &Seen::default());
        assert_eq!(o.status, RunStatus::Interrupted);
    }

    #[test]
    fn the_guardians_reason_wins_over_the_exit_status() {
        let cases = [
            (
                Reason::Timeout,
                RunStatus::Timeout,
                "ran longer than maxtime 1m",
            ),
            (
                Reason::Terminated,
                RunStatus::Terminated,
                "terminated on request",
            ),
            (
                Reason::Interrupted,
                RunStatus::Interrupted,
                "interrupted: the guardian shut down",
            ),
            (
                Reason::Fenced,
                RunStatus::Lost,
                "killed by its guardian, which could not renew its lease",
            ),
        ];
        for (reason, status, error) in cases {
            let o = of(exited(0), Some(reason), &seen(Some("done"), None));
            assert_eq!(o.status, status);
            assert_eq!(o.error.as_deref(), Some(error));
        }
    }

    #[test]
    fn an_sdk_result_counts_unless_the_exit_status_says_worse() {
        let mut s = seen(Some("last line"), None);
        s.sdk_result = Some((Status::Uneventful, Some("nothing new".into())));
        let o = of(exited(0), None, &s);
        assert_eq!((o.status, o.summary), (RunStatus::Uneventful, None));
        s.sdk_result = Some((Status::Successful, Some("42 rows".into())));
        let o = of(exited(0), None, &s);
        assert_eq!(o.summary.as_deref(), Some("42 rows"));
        // Reported success, but the process failed: the exit status counts.
        let o = of(exited(1), None, &s);
        assert_eq!(o.status, RunStatus::Failed);
        s.sdk_result = Some((Status::Failed, Some("no input".into())));
        let o = of(exited(1), None, &s);
        assert_eq!(
            (o.status, o.error.as_deref()),
            (RunStatus::Failed, Some("no input"))
        );
        // The guardian ended it: the SDK's word does not count.
        let o = of(exited(0), Some(Reason::Terminated), &s);
        assert_eq!(o.status, RunStatus::Terminated);
    }

    fn ll(any_line: bool, result: Option<(Status, Option<&str>)>) -> Seen {
        Seen {
            ll_sisyphus: Some(LlSisyphusSeen {
                any_line,
                result: result.map(|(s, t)| (s, t.map(String::from))),
            }),
            ..seen(Some("last line"), Some("a traceback's last line"))
        }
    }

    #[test]
    fn an_ll_sisyphus_result_line_decides_whatever_the_exit_status() {
        let s = ll(true, Some((Status::Successful, Some("cached 3 pages"))));
        let o = of(exited(0), None, &s);
        assert_eq!(
            (o.status, o.summary.as_deref(), o.error),
            (RunStatus::Successful, Some("cached 3 pages"), None)
        );
        // Its forking parent exits 0 after a failed worker.
        let s = ll(
            true,
            Some((Status::Failed, Some("failed with ValueError: x"))),
        );
        let o = of(exited(0), None, &s);
        assert_eq!(
            (o.status, o.summary, o.error.as_deref()),
            (RunStatus::Failed, None, Some("failed with ValueError: x"))
        );
        // Without a fork, a timeout raises after the result line: exit 1.
        let s = ll(true, Some((Status::Timeout, Some("Terminated: timed out"))));
        let o = of(exited(1), None, &s);
        assert_eq!(
            (o.status, o.error.as_deref()),
            (RunStatus::Timeout, Some("Terminated: timed out"))
        );
        // A KeyboardInterrupt ends the process by SIGINT after its result line.
        let s = ll(
            true,
            Some((Status::Interrupted, Some("failed with KeyboardInterrupt"))),
        );
        let o = of(killed(Signal::SIGINT), None, &s);
        assert_eq!(o.status, RunStatus::Interrupted);
        let s = ll(true, Some((Status::Uneventful, None)));
        let o = of(exited(0), None, &s);
        assert_eq!((o.status, o.summary), (RunStatus::Uneventful, None));
        // The guardian's own reason still wins.
        let o = of(exited(0), Some(Reason::Timeout), &s);
        assert_eq!(o.status, RunStatus::Timeout);
    }

    #[test]
    fn without_a_result_line_an_ll_sisyphus_run_is_uneventful_only_if_it_logged_nothing() {
        // Nothing printed in ll.sisyphus' format (at most the job's own prints): uneventful.
        let o = of(exited(0), None, &ll(false, None));
        assert_eq!((o.status, o.summary), (RunStatus::Uneventful, None));
        // Lines but no result line: the run did not end as ll.sisyphus ends them.
        let o = of(exited(0), None, &ll(true, None));
        assert_eq!(o.status, RunStatus::Failed);
        assert!(o.error.is_some_and(|e| e.contains("no result line")));
        // A crash before ll.sisyphus could say anything: the exit status and stderr.
        let o = of(exited(1), None, &ll(false, None));
        assert_eq!(
            (o.status, o.error.as_deref()),
            (
                RunStatus::Failed,
                Some("exit code 1: a traceback's last line")
            )
        );
    }
}
