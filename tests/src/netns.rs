//! A network namespace with two veth links to the host, for real network cuts: one link
//! carries the namespace's traffic to etcd, the other its clients' traffic, so taking the
//! first down cuts a server off from etcd while clients still reach it. Made with Debian's
//! iproute2 (`ip netns`, `ip link`), needs root, removed on drop.
//!
//! Addresses: link `e` (etcd) is `10.<n>.1.1` (host) ↔ `10.<n>.1.2` (namespace), link `c`
//! (clients) is `10.<n>.2.1` ↔ `10.<n>.2.2`, with `n` from the process id so concurrent
//! test processes do not meet.

use std::process::Command;

/// A namespace and its two links.
#[derive(Debug)]
pub struct NetNs {
    /// The namespace's name (for `ip netns exec`).
    pub name: String,
    n: u32,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {args:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl NetNs {
    /// Creates the namespace and both links, up.
    ///
    /// # Errors
    /// What `ip` said (not root, no iproute2).
    pub fn create() -> Result<NetNs, String> {
        let n = 20 + std::process::id() % 200;
        let ns = NetNs {
            name: format!("sl{n}"),
            n,
        };
        // Leftovers of an earlier process with the same id.
        let _ = ip(&["netns", "del", &ns.name]);
        let _ = ip(&["link", "del", &ns.host_if("e")]);
        let _ = ip(&["link", "del", &ns.host_if("c")]);
        ip(&["netns", "add", &ns.name])?;
        ip(&["-n", &ns.name, "link", "set", "lo", "up"])?;
        for (link, octet) in [("e", 1), ("c", 2)] {
            let host_if = ns.host_if(link);
            let ns_if = format!("{link}{n}n");
            ip(&[
                "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if,
            ])?;
            ip(&["link", "set", &ns_if, "netns", &ns.name])?;
            ip(&[
                "addr",
                "add",
                &format!("10.{n}.{octet}.1/24"),
                "dev",
                &host_if,
            ])?;
            ip(&["link", "set", &host_if, "up"])?;
            ip(&[
                "-n",
                &ns.name,
                "addr",
                "add",
                &format!("10.{n}.{octet}.2/24"),
                "dev",
                &ns_if,
            ])?;
            ip(&["-n", &ns.name, "link", "set", &ns_if, "up"])?;
        }
        Ok(ns)
    }

    fn host_if(&self, link: &str) -> String {
        format!("{link}{}h", self.n)
    }

    /// The host's address on the etcd link (etcd listens here).
    pub fn etcd_host(&self) -> String {
        format!("10.{}.1.1", self.n)
    }

    /// The namespace's address on the clients' link (its server listens here).
    pub fn client_host(&self) -> String {
        format!("10.{}.2.2", self.n)
    }

    /// Takes the etcd link down (`up = false`) or up again: a real cut, not a mock.
    ///
    /// # Errors
    /// What `ip` said.
    pub fn etcd_link(&self, up: bool) -> Result<(), String> {
        ip(&[
            "link",
            "set",
            &self.host_if("e"),
            if up { "up" } else { "down" },
        ])
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.host_if("e")]);
        let _ = ip(&["link", "del", &self.host_if("c")]);
        let _ = ip(&["netns", "del", &self.name]);
    }
}
