//! The remote actions on a run: what `sisyctl terminate|suspend|resume`, the SQL functions of the
//! same names and the guardian's control loop agree on. Stored in `runs.requested`.

use std::fmt;
use std::str::FromStr;

/// A remote control action on a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlAction {
    Terminate,
    Suspend,
    Resume,
}

impl ControlAction {
    /// Every action, in the order of the check on `runs.requested`.
    pub const ALL: [ControlAction; 3] = [
        ControlAction::Terminate,
        ControlAction::Suspend,
        ControlAction::Resume,
    ];

    /// As stored in `runs.requested`.
    pub fn as_str(self) -> &'static str {
        match self {
            ControlAction::Terminate => "terminate",
            ControlAction::Suspend => "suspend",
            ControlAction::Resume => "resume",
        }
    }
}

impl fmt::Display for ControlAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ControlAction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ControlAction::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not a control action (terminate, suspend, resume)"))
    }
}

impl TryFrom<String> for ControlAction {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_reads_back_from_its_label() {
        for a in ControlAction::ALL {
            assert_eq!(a.as_str().parse::<ControlAction>(), Ok(a));
        }
        let Err(err) = "kill".parse::<ControlAction>() else {
            panic!("`kill` parsed as an action")
        };
        assert!(err.contains("`kill`"), "{err}");
    }
}
