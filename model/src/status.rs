//! The one place a run's status meets the other words for how a run ended: the status a job
//! reports over the job protocol ([`sisyphus_protocol::Status`]) and the ending its local log file
//! records ([`sisyphus_logfile::Ending`]). Notifications carry the [`RunStatus`] itself.

use sisyphus_logfile::Ending;
use sisyphus_protocol::Status;

use crate::run::RunStatus;

/// The run status a job's own report (SDK `result`) stands for.
impl From<Status> for RunStatus {
    fn from(status: Status) -> RunStatus {
        match status {
            Status::Successful => RunStatus::Successful,
            Status::Uneventful => RunStatus::Uneventful,
            Status::Failed => RunStatus::Failed,
            Status::Interrupted => RunStatus::Interrupted,
            Status::Timeout => RunStatus::Timeout,
        }
    }
}

/// Which `last_*` link a run's local log file gets. ll.sisyphus has no `lost` or `terminated`:
/// they count as failed and interrupted; runs that never ran get no link.
impl From<RunStatus> for Ending {
    fn from(status: RunStatus) -> Ending {
        match status {
            RunStatus::Successful => Ending::Successful,
            RunStatus::Uneventful => Ending::Uneventful,
            RunStatus::Failed | RunStatus::Lost => Ending::Failed,
            RunStatus::Interrupted | RunStatus::Terminated => Ending::Interrupted,
            RunStatus::Timeout => Ending::Timeout,
            RunStatus::Pending
            | RunStatus::Running
            | RunStatus::Suspended
            | RunStatus::Missed
            | RunStatus::Cancelled
            | RunStatus::Skipped => Ending::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reported_status_keeps_its_label() {
        for s in [
            Status::Successful,
            Status::Uneventful,
            Status::Failed,
            Status::Interrupted,
            Status::Timeout,
        ] {
            assert_eq!(RunStatus::from(s).as_str(), s.as_str());
        }
    }

    #[test]
    fn only_runs_that_ran_get_a_log_link() {
        for s in RunStatus::ALL {
            let linked = Ending::from(*s).link().is_some();
            let ran_to_an_end = s.is_final()
                && !matches!(
                    s,
                    RunStatus::Missed
                        | RunStatus::Cancelled
                        | RunStatus::Skipped
                        | RunStatus::Uneventful
                );
            assert_eq!(linked, ran_to_an_end, "{s}");
        }
    }
}
