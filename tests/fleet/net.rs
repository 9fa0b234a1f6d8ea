//! Test hosts: each guardian lives in its own network namespace, joined to the machine by a
//! veth pair (`10.77.N.2` inside, `10.77.N.1` on the machine's side, where PostgreSQL listens).
//! Cutting the machine's end of the pair partitions the host: its packets go nowhere, exactly
//! as when a cable or a switch fails.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// The next subnet number; a fresh one per host so that a half-torn-down earlier host never
/// collides with a new one.
static NEXT: AtomicU32 = AtomicU32::new(1);

/// Why the fleet tests cannot run here, if they cannot.
pub fn unavailable() -> Option<String> {
    if !nix::unistd::Uid::effective().is_root() {
        return Some("needs root (network namespaces and veth pairs)".into());
    }
    let probe = format!("sisyprobe{}", std::process::id());
    match Command::new("ip").args(["netns", "add", &probe]).output() {
        Ok(o) if o.status.success() => {
            let _ = Command::new("ip")
                .args(["netns", "delete", &probe])
                .output();
            None
        }
        Ok(o) => Some(format!(
            "`ip netns add` failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("`ip` (iproute2) cannot be run: {e}")),
    }
}

/// One test host: a network namespace with a link to the machine.
pub struct Host {
    pub name: String,
    namespace: String,
    link: String,
    /// The machine's address as this host sees it (where PostgreSQL listens).
    pub gateway: String,
    /// Programs enter the network namespace alone, keeping the machine's mounts (see
    /// [`Host::keeping_mounts`]).
    keep_mounts: bool,
}

impl Host {
    /// Creates the namespace and its link.
    pub fn new(name: &str) -> Host {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        assert!(n < 250, "out of test subnets");
        let tag = format!("{}{n}", std::process::id() % 100_000);
        let host = Host {
            name: name.to_string(),
            namespace: format!("sisy{tag}"),
            link: format!("sv{tag}m"),
            gateway: format!("10.77.{n}.1"),
            keep_mounts: false,
        };
        let inside = format!("sv{tag}h");
        let ns = host.namespace.as_str();
        ip(&["netns", "add", ns]);
        ip(&[
            "link", "add", &host.link, "type", "veth", "peer", "name", &inside,
        ]);
        ip(&["link", "set", &inside, "netns", ns]);
        ip(&["addr", "add", &format!("10.77.{n}.1/24"), "dev", &host.link]);
        ip(&["link", "set", &host.link, "up"]);
        ip(&[
            "-n",
            ns,
            "addr",
            "add",
            &format!("10.77.{n}.2/24"),
            "dev",
            &inside,
        ]);
        ip(&["-n", ns, "link", "set", &inside, "up"]);
        ip(&["-n", ns, "link", "set", "lo", "up"]);
        host
    }

    /// Cuts the host off: its link goes down on the machine's side.
    pub fn cut(&self) {
        ip(&["link", "set", &self.link, "down"]);
    }

    /// Restores the link.
    pub fn heal(&self) {
        ip(&["link", "set", &self.link, "up"]);
    }

    /// The same host whose programs enter its network namespace alone (`nsenter --net`):
    /// `ip netns exec` also gives them a mount namespace with a fresh /sys, where the machine's
    /// cgroup v2 mount is gone, so a guardian started that way cannot give runs cgroups.
    pub fn keeping_mounts(mut self) -> Host {
        self.keep_mounts = true;
        self
    }

    /// A command that runs `program` inside this host's namespace.
    pub fn command(&self, program: &Path) -> Command {
        if self.keep_mounts {
            let mut cmd = Command::new("nsenter");
            cmd.arg(format!("--net=/run/netns/{}", self.namespace))
                .arg("--")
                .arg(program);
            return cmd;
        }
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.namespace]).arg(program);
        cmd
    }

    /// A database URL as seen from inside this host.
    pub fn database_url(&self, port: u16, database: &str) -> String {
        format!("postgres://postgres@{}:{port}/{database}", self.gateway)
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        // Deleting the namespace destroys the pair's inner end, and with it the outer one.
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.namespace])
            .output();
        let _ = Command::new("ip")
            .args(["link", "delete", &self.link])
            .output();
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}
