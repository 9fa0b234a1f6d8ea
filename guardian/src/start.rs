//! Starting a claimed run: the user it runs as, its command line and environment (with its
//! secrets resolved on this host, `secrets`), the job protocol pipe, its cgroup with the job's
//! limits — then the process (`process::spawn`).
//! [`Processes`] is what the supervisor signals afterwards: the process group, and the cgroup
//! where the host has one (which also holds what left the group with `setsid`).

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::User;
use tokio::time::Instant;

use sisyphus_model::params;
use sisyphus_model::spec::{JobFormat, LL_SISYPHUS_FLAGS};

use crate::cgroup::{Cgroups, RunCgroup};
use crate::llsisyphus::Zone;
use crate::process::{self, Child, Launch};
use crate::secrets::Mask;
use crate::supervisor::{Claimed, Context};

/// A started process with the read end of its protocol pipe.
pub(crate) struct Started {
    pub child: Child,
    pub protocol: OwnedFd,
    pub procs: Processes,
    /// Said in the run's log once it started (limits that could not be applied).
    pub notes: Vec<String>,
    /// The run's secret values, to be masked in its output and outcome.
    pub mask: Mask,
    /// The zone the job writes local times in (its `TZ`), for an `ll.sisyphus` job's lines.
    pub zone: Zone,
}

/// Builds the launch and starts the process; the error is the run's (`failed`).
pub(crate) fn start(run: &Claimed, ctx: &Context) -> Result<Started, String> {
    let user = ctx.users.resolve(run.run_as.as_deref(), &ctx.host)?;
    let argv = command_line(run)?;
    let (env, mask) = environment(run, ctx, user.as_ref())?;
    let zone = Zone::of(
        env.get("TZ").map(String::as_str),
        ctx.base_env.get("TZ").map(String::as_str),
    );
    let (protocol, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| format!("cannot create the job protocol pipe: {e}"))?;
    // The cgroup last, so that no error above leaves one behind.
    let (cgroup, procs_file) = match &ctx.cgroups {
        Some(cgroups) => create_cgroup(cgroups, run)?,
        None => (None, None),
    };
    let notes = apply_limits(run, ctx.cgroups.as_ref(), cgroup.as_ref(), &ctx.host);
    let launch = Launch {
        argv,
        env,
        workdir: run.workdir.clone(),
        user,
        protocol: Some(write_end.as_raw_fd()),
        cgroup: procs_file.as_ref().map(|f| f.as_raw_fd()),
        how: ctx.spawn,
    };
    let spawned = process::spawn(&launch).map_err(|e| e.0);
    // Only the child writes; our copy would keep the pipe open past its end.
    drop(write_end);
    drop(procs_file);
    match spawned {
        Ok(child) => Ok(Started {
            procs: Processes {
                pid: child.id(),
                cgroup,
            },
            child,
            protocol,
            notes,
            mask,
            zone,
        }),
        Err(e) => {
            if let Some(cg) = cgroup {
                cg.remove();
            }
            Err(e)
        }
    }
}

/// The command, through `/bin/sh -c` for shell jobs; an `ll.sisyphus` job's with the flags that
/// make it log to stdout and write no log file (`LL_SISYPHUS_FLAGS`) appended.
fn command_line(run: &Claimed) -> Result<Vec<String>, String> {
    match (run.shell, run.format) {
        (true, JobFormat::LlSisyphus) => Err(
            "format `ll.sisyphus` needs the command as an argv (its flags are appended to it), \
             but the job is a line of shell"
                .to_string(),
        ),
        (true, _) => {
            let mut a = vec!["/bin/sh".to_string(), "-c".to_string()];
            a.extend(run.command.iter().cloned());
            Ok(a)
        }
        (false, JobFormat::LlSisyphus) => {
            let mut a = run.command.clone();
            a.extend(LL_SISYPHUS_FLAGS.iter().map(|f| f.to_string()));
            Ok(a)
        }
        (false, JobFormat::Sisyphus) => Ok(run.command.clone()),
    }
}

/// The job's clean environment (`process::job_environment`) with its secrets resolved, and the
/// run's own variables; and the mask of the secrets' values. A secret that cannot be had fails
/// the run, named with why (never its value).
fn environment(
    run: &Claimed,
    ctx: &Context,
    user: Option<&User>,
) -> Result<(BTreeMap<String, String>, Mask), String> {
    let (job_env, mask) = ctx.secrets.resolve_env(&run.env).map_err(|errors| {
        errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    let mut env = process::job_environment(&ctx.base_env, user, &job_env);
    env.insert("SISYPHUS_RUN_ID".into(), run.id.to_string());
    env.insert(
        "SISYPHUS_JOB".into(),
        format!("{}/{}", run.project, run.name),
    );
    env.insert("SISYPHUS_ATTEMPT".into(), run.attempt.to_string());
    env.insert("SISYPHUS_USERDATA".into(), run.userdata.to_string());
    if !run.params.is_empty() {
        // Each parameter as its own variable, and all of them as one JSON object.
        for (name, value) in &run.params {
            env.insert(params::env_name(name), value.clone());
        }
        let all = serde_json::to_string(&run.params).unwrap_or_else(|_| "{}".to_string());
        env.insert("SISYPHUS_PARAMS".into(), all);
    }
    env.insert(
        sisyphus_protocol::FD_ENV.into(),
        process::PROTOCOL_FD.to_string(),
    );
    Ok((env, mask))
}

/// The run's cgroup and its `cgroup.procs`, open for the child to move itself in.
fn create_cgroup(
    cgroups: &Cgroups,
    run: &Claimed,
) -> Result<(Option<RunCgroup>, Option<OwnedFd>), String> {
    let cg = cgroups
        .create(run.id.0)
        .map_err(|e| format!("cannot create the run's cgroup: {e}"))?;
    match cg.procs_file() {
        Ok(file) => Ok((Some(cg), Some(file))),
        Err(e) => {
            cg.remove();
            Err(format!("cannot open the run's cgroup: {e}"))
        }
    }
}

/// Sets the run's `memory_max` and `cpu_weight` on its cgroup, before the process starts; returns
/// what could not be applied, for the run's log (the run goes on without it, as under systemd).
fn apply_limits(
    run: &Claimed,
    cgroups: Option<&Cgroups>,
    cgroup: Option<&RunCgroup>,
    host: &str,
) -> Vec<String> {
    let limits = [
        (
            "memory_max",
            "memory",
            "memory.max",
            run.memory_max.map(|b| b.to_string()),
        ),
        (
            "cpu_weight",
            "cpu",
            "cpu.weight",
            run.cpu_weight.map(|w| w.to_string()),
        ),
    ];
    let mut notes = Vec::new();
    for (key, controller, file, value) in limits {
        let Some(value) = value else { continue };
        let applied = match (cgroups, cgroup) {
            (Some(cgs), Some(cg)) if cgs.has_controller(controller) => cg
                .limit(file, &value)
                .map_err(|e| format!("{key} = {value} not applied: writing {file}: {e}")),
            (Some(_), Some(_)) => Err(format!(
                "{key} = {value} not applied: the {controller} controller is not delegated to {host}'s cgroup"
            )),
            _ => Err(format!(
                "{key} = {value} not applied: {host} holds runs by process groups (no writable cgroup v2)"
            )),
        };
        if let Err(note) = applied {
            notes.push(note);
        }
    }
    notes
}

/// The processes of one run: its process group, and its cgroup where the host has them (which
/// also holds what left the group with `setsid`).
pub(crate) struct Processes {
    pub pid: u32,
    cgroup: Option<RunCgroup>,
}

impl Processes {
    /// SIGTERM to all of them (and a thaw, so that stopped processes can act on it).
    pub fn terminate(&self) {
        process::signal_group(self.pid, Signal::SIGTERM);
        if let Some(cg) = &self.cgroup {
            cg.signal(Signal::SIGTERM);
            let _ = cg.freeze(false);
        }
        process::signal_group(self.pid, Signal::SIGCONT);
    }

    /// SIGKILL to all of them.
    pub fn kill(&self) {
        process::signal_group(self.pid, Signal::SIGKILL);
        if let Some(cg) = &self.cgroup {
            cg.kill();
        }
    }

    /// SIGSTOP to the group (what ll.sisyphus' users know: the processes show as stopped, and
    /// get SIGCONT on resume), and a freeze of the cgroup, which also holds what left the group.
    pub async fn suspend(&self) {
        process::signal_group(self.pid, Signal::SIGSTOP);
        if let Some(cg) = &self.cgroup {
            // A signal acts when its process next runs: freezing at once would freeze the group
            // before it stops, and the stop would wait until the thaw. So the group stops first
            // (up to 100 ms), then everything in the cgroup is frozen.
            let deadline = Instant::now() + Duration::from_millis(100);
            while !self.group_stopped(cg) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            if let Err(e) = cg.freeze(true) {
                tracing::warn!("cannot freeze a run's cgroup: {e}");
            }
        }
    }

    /// Whether every process of the run's group in the cgroup shows as stopped.
    fn group_stopped(&self, cg: &RunCgroup) -> bool {
        cg.pids().into_iter().all(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // After the command name: state, ppid, pgrp.
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest.split_whitespace().take(3).collect())
                .unwrap_or_default();
            match fields.as_slice() {
                [state, _, pgrp] => {
                    pgrp != &self.pid.to_string() || matches!(*state, "T" | "t" | "Z")
                }
                _ => true,
            }
        })
    }

    /// A thaw of the cgroup and SIGCONT to the group.
    pub fn resume(&self) {
        if let Some(cg) = &self.cgroup {
            if let Err(e) = cg.freeze(false) {
                tracing::warn!("cannot thaw a run's cgroup: {e}");
            }
        }
        process::signal_group(self.pid, Signal::SIGCONT);
    }

    /// After the main process ended: kills what it left behind and says how many (None when the
    /// host has no cgroups to count them in; then the group is killed all the same).
    pub fn kill_leftovers(&self) -> Option<usize> {
        process::signal_group(self.pid, Signal::SIGKILL);
        let cg = self.cgroup.as_ref()?;
        let left = cg.pids().len();
        if left > 0 {
            cg.kill();
        }
        Some(left)
    }

    /// Removes the run's cgroup, once the run is over.
    pub async fn remove_cgroup(self) {
        if let Some(cgroup) = self.cgroup {
            let _ = tokio::task::spawn_blocking(move || cgroup.remove()).await;
        }
    }
}
