//! Which users runs may run as on this host (`--allow-users`, `--allow-root`): the host's policy,
//! checked when a run with `run_as` starts. Spawning itself (`process`) knows nothing of it.

use nix::unistd::{Uid, User};

/// Which users runs may run as on this host.
#[derive(Debug, Clone, Default)]
pub struct UserPolicy {
    pub allowed: Vec<String>,
    pub allow_root: bool,
}

impl UserPolicy {
    /// The user to switch to, or why not.
    pub fn resolve(&self, run_as: Option<&str>, host: &str) -> Result<Option<User>, String> {
        let Some(name) = run_as else { return Ok(None) };
        if !Uid::effective().is_root() {
            return Err(format!(
                "run_as `{name}` needs a guardian running as root; {host}'s is not"
            ));
        }
        if name == "root" && !self.allow_root {
            return Err(format!("running as root is not allowed on {host}"));
        }
        if name != "root" && !self.allowed.iter().any(|u| u == name) {
            return Err(format!("user `{name}` is not among {host}'s allowed users"));
        }
        match User::from_name(name) {
            Ok(Some(user)) => Ok(Some(user)),
            _ => Err(format!("run_as user `{name}` does not exist on {host}")),
        }
    }
}
