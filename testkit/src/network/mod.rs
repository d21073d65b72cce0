//! A private network for one test: hosts with addresses of their own on a bridge, and the
//! faults a real network has (see `faults`).
//!
//! The network lives in namespaces this process makes (see `namespace`); nothing touches
//! the machine's own network. The lab is a network namespace holding a bridge,
//! `198.18.0.1/24` on it: the test's own thread moves into it when the network is made,
//! so the test reaches every host by address, and its admin commands and clients run
//! there. Each host is a network namespace with one veth link to the bridge and one
//! address, `198.18.0.2` and up, from a range set aside for benchmarks and never routed
//! outside. Every process on a host also sees the network's own `/etc/hosts` (a mount
//! namespace shared by all hosts), so daemons are configured with host names, as in
//! production.

mod faults;
mod host;
pub mod namespace;
mod relay;

pub use faults::throttle_burst;
pub use host::Host;

use faults::Faults;
use host::Place;
use namespace::{current_net, enter_net, place_command, Fresh, Holder};
use std::fs::File;
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::thread::ThreadId;

/// The network's first three octets; the lab is `.1`, hosts `.2` to `.254`.
const PREFIX: [u8; 3] = [198, 18, 0];

pub struct Network {
    hosts_file: PathBuf,
    lab: Host,
    lab_net: Arc<Holder>,
    mount: Arc<Holder>,
    hosts: std::sync::Mutex<Vec<Host>>,
    faults: Faults,
    /// The thread that moved into the lab, and the namespace it came from.
    home: Option<(ThreadId, File)>,
}

/// Runs `ip -batch -` with `script` in the network namespace `net`.
fn ip_batch(net: &Holder, script: &str) -> io::Result<()> {
    run_with_input("ip", &["-batch", "-"], net, script)
}

/// Runs `program args` in the network namespace `net` with `input` on stdin; its stderr
/// is the error when it fails.
fn run_with_input(program: &str, args: &[&str], net: &Holder, input: &str) -> io::Result<()> {
    let mut command = std::process::Command::new(program);
    command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    place_command(&mut command, net.fd(), None)?;
    let mut child = command
        .spawn()
        .map_err(|err| io::Error::new(err.kind(), format!("cannot run {program}: {err}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input.as_bytes())?;
    }
    let output = child.wait_with_output()?;
    if output.status.success() {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "{program} {}: {}\n{input}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    )))
}

impl Network {
    /// Makes the network, with its files in `dir`, and moves the calling thread into the
    /// lab. The thread moves back when the network is dropped; the network's holders die
    /// with this thread, so it must outlive every use of the network.
    pub fn new(dir: &Path) -> io::Result<Network> {
        let hosts_file = dir.join("hosts");
        let lab_ip = Ipv4Addr::new(PREFIX[0], PREFIX[1], PREFIX[2], 1);
        std::fs::write(&hosts_file, format!("127.0.0.1 localhost\n{lab_ip} lab\n"))?;
        let lab_net = Arc::new(Holder::start(Fresh::Net)?);
        let mount = Arc::new(Holder::start(Fresh::MountWithHosts(hosts_file.clone()))?);
        ip_batch(
            &lab_net,
            &format!(
                "link set lo up\nlink add br0 type bridge\naddr add {lab_ip}/24 dev br0\n\
                 link set br0 up\n"
            ),
        )?;
        let faults = Faults::new(lab_net.clone())?;
        let lab = Host::on_network(
            "lab",
            lab_ip,
            Place {
                net: lab_net.clone(),
                mount: mount.clone(),
            },
        );
        let home = current_net()?;
        enter_net(lab_net.fd())?;
        Ok(Network {
            hosts_file,
            lab,
            lab_net,
            mount,
            hosts: std::sync::Mutex::new(Vec::new()),
            faults,
            home: Some((std::thread::current().id(), home)),
        })
    }

    /// The test's own host, on the bridge: where admin commands and clients run.
    pub fn lab(&self) -> &Host {
        &self.lab
    }

    /// The host named `name`, made (with the next free address) if there is none yet.
    pub fn host(&self, name: &str) -> io::Result<Host> {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(host) = hosts.iter().find(|h| h.name == name) {
            return Ok(host.clone());
        }
        let last = u8::try_from(hosts.len() + 2)
            .ok()
            .filter(|n| *n < 255)
            .ok_or_else(|| io::Error::other("a network holds at most 253 hosts"))?;
        let ip = Ipv4Addr::new(PREFIX[0], PREFIX[1], PREFIX[2], last);
        let net = Arc::new(Holder::start(Fresh::Net)?);
        let link = format!("h{last}");
        ip_batch(
            &self.lab_net,
            &format!(
                "link add {link} type veth peer name eth0 netns {pid}\n\
                 link set {link} master br0 up\n",
                pid = net.pid()
            ),
        )?;
        ip_batch(
            &net,
            &format!("link set lo up\naddr add {ip}/24 dev eth0\nlink set eth0 up\n"),
        )?;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.hosts_file)?;
        writeln!(file, "{ip} {name}")?;
        let host = Host::on_network(
            name,
            ip,
            Place {
                net,
                mount: self.mount.clone(),
            },
        );
        hosts.push(host.clone());
        Ok(host)
    }

    /// Every host made so far, the lab not included.
    pub fn hosts(&self) -> Vec<Host> {
        self.hosts.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The inodes of every namespace of the network: the lab's, each host's, and the
    /// mount namespace's (to check that they are gone).
    pub fn namespace_inodes(&self) -> io::Result<Vec<u64>> {
        let mut inodes = vec![self.lab_net.inode()?, self.mount.inode()?];
        for host in self.hosts() {
            inodes.extend(host.net_inode());
        }
        Ok(inodes)
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        self.faults.heal();
        if let Some((thread, home)) = self.home.take() {
            if thread == std::thread::current().id() {
                use std::os::fd::AsRawFd;
                let _ = enter_net(home.as_raw_fd());
            }
        }
    }
}
