//! The faults of a private network: links that drop packets (all of them, one direction,
//! a random share, or what passes a rate), hosts that stop, and links that add delay.
//!
//! Drops are nftables rules in the lab's bridge, on every path a packet can take through
//! it (host to host is `forward`; to and from the lab itself, `input` and `output`). A
//! dropped packet is simply gone: no reset, no ICMP, exactly what a sender sees of a
//! silent peer. (Dropping in the sender's own `output` hook would not be silent: the
//! kernel tells the sending socket, and `connect` fails at once with EPERM.) Delay has no
//! kernel support here (no netem), so `slow` puts a relay on the path (see `relay`).

use super::namespace::{processes_in, Holder};
use super::relay::Relay;
use super::{run_with_input, Host, Network};
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const TABLE: &str = "bridge backpack-lab";
const CHAINS: [&str; 3] = ["forward", "input", "output"];

pub(super) struct Faults {
    lab: Arc<Holder>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Processes stopped by `freeze`, by host name.
    frozen: Vec<(String, Vec<u32>)>,
    relays: Vec<Relay>,
    /// Hosts whose segment size `throttle` lowered.
    segmented: Vec<Host>,
}

/// The largest segment TCP hands the host's link (64 KiB is the kernel's default).
fn set_segment_size(host: &Host, bytes: u32) -> io::Result<()> {
    match host.net_holder() {
        Some(net) => super::ip_batch(net, &format!("link set eth0 gso_max_size {bytes}\n")),
        None => Ok(()),
    }
}

/// An nftables match for packets from `from` to `to`.
fn from_to(from: &Host, to: &Host) -> String {
    format!("ip saddr {} ip daddr {}", from.ip, to.ip)
}

fn on_network(hosts: &[&Host]) -> io::Result<()> {
    match hosts.iter().find(|h| h.is_loopback()) {
        Some(_) => Err(io::Error::other(
            "network faults need hosts of a private network, not loopback",
        )),
        None => Ok(()),
    }
}

impl Faults {
    pub fn new(lab: Arc<Holder>) -> io::Result<Faults> {
        let mut script = format!("add table {TABLE}\n");
        for chain in CHAINS {
            script.push_str(&format!(
                "add chain {TABLE} {chain} {{ type filter hook {chain} priority 0; }}\n"
            ));
        }
        run_with_input("nft", &["-f", "-"], &lab, &script)?;
        Ok(Faults {
            lab,
            state: Mutex::new(State::default()),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds each of `rules` (a match and a verdict) to every path through the bridge.
    fn add(&self, rules: &[String]) -> io::Result<()> {
        let mut script = String::new();
        for rule in rules {
            for chain in CHAINS {
                script.push_str(&format!("add rule {TABLE} {chain} {rule}\n"));
            }
        }
        run_with_input("nft", &["-f", "-"], &self.lab, &script)
    }

    pub fn heal(&self) {
        let mut state = self.state();
        let _ = run_with_input(
            "nft",
            &["-f", "-"],
            &self.lab,
            &format!("flush table {TABLE}\n"),
        );
        for (_, pids) in state.frozen.drain(..) {
            signal_all(&pids, libc::SIGCONT);
        }
        state.relays.clear();
        for host in state.segmented.drain(..) {
            let _ = set_segment_size(&host, 65536);
        }
    }
}

/// The burst a throttled link allows beyond one second's worth.
pub fn throttle_burst(bytes_per_s: u64) -> u64 {
    (bytes_per_s / 8).max(16 * 1024)
}

fn signal_all(pids: &[u32], signal: libc::c_int) {
    for pid in pids {
        // SAFETY: kill(2) with plain integers.
        unsafe {
            libc::kill(*pid as libc::pid_t, signal);
        }
    }
}

impl Network {
    /// Drops every packet between `a` and `b`, both ways: connections hang, nothing is
    /// refused.
    pub fn cut(&self, a: &Host, b: &Host) -> io::Result<()> {
        on_network(&[a, b])?;
        self.faults.add(&[
            format!("{} drop", from_to(a, b)),
            format!("{} drop", from_to(b, a)),
        ])
    }

    /// Drops every packet from `from` to `to`; the other direction still passes (a
    /// request arrives, its answer never does).
    pub fn cut_one_way(&self, from: &Host, to: &Host) -> io::Result<()> {
        on_network(&[from, to])?;
        self.faults.add(&[format!("{} drop", from_to(from, to))])
    }

    /// Drops every packet `host` sends, to anyone: requests reach it, its answers (and
    /// its handshakes) never leave.
    pub fn mute(&self, host: &Host) -> io::Result<()> {
        on_network(&[host])?;
        self.faults.add(&[format!("ip saddr {} drop", host.ip)])
    }

    /// Drops every packet to and from `host`: the lab and every other host lose it.
    pub fn isolate(&self, host: &Host) -> io::Result<()> {
        on_network(&[host])?;
        self.faults.add(&[
            format!("ip saddr {} drop", host.ip),
            format!("ip daddr {} drop", host.ip),
        ])
    }

    /// Drops the share `rate` (0 to 1) of packets between `a` and `b`, at random, each
    /// way.
    pub fn lossy(&self, a: &Host, b: &Host, rate: f64) -> io::Result<()> {
        on_network(&[a, b])?;
        let share = (rate.clamp(0.0, 1.0) * 10_000.0).round() as u32;
        let rule = |m: String| format!("{m} numgen random mod 10000 < {share} drop");
        self.faults.add(&[rule(from_to(a, b)), rule(from_to(b, a))])
    }

    /// Lets at most `bytes_per_s` through between `a` and `b`, each way, and drops the
    /// rest: a slow link that works (TCP slows down to fit it). Like any policer, it
    /// first lets through what its bucket holds: one second's worth and `burst`
    /// (`throttle_burst`).
    pub fn throttle(&self, a: &Host, b: &Host, bytes_per_s: u64) -> io::Result<()> {
        on_network(&[a, b])?;
        // The limit counts each packet's bytes; TCP hands veth links segments of up to
        // 64 KiB (GSO), which a byte limit meters too coarsely. One segment per packet
        // on both hosts while throttled.
        for host in [a, b] {
            set_segment_size(host, 1500)?;
        }
        let burst = throttle_burst(bytes_per_s);
        let rule = |m: String| {
            format!("{m} limit rate over {bytes_per_s} bytes/second burst {burst} bytes drop")
        };
        self.faults.state().segmented.extend([a.clone(), b.clone()]);
        self.faults.add(&[rule(from_to(a, b)), rule(from_to(b, a))])
    }

    /// Adds `delay` each way to every TCP connection between `a` and `b` made from now
    /// on (connections already open keep their pace): a relay on each host takes them
    /// over.
    pub fn slow(&self, a: &Host, b: &Host, delay: Duration) -> io::Result<()> {
        on_network(&[a, b])?;
        let there = Relay::start(a, b, delay)?;
        let back = Relay::start(b, a, delay)?;
        self.faults.state().relays.extend([there, back]);
        Ok(())
    }

    /// Stops (SIGSTOP) every process on `host`: its kernel still answers ARP and takes
    /// connections into its backlog, but nothing is read or answered.
    pub fn freeze(&self, host: &Host) -> io::Result<()> {
        on_network(&[host])?;
        let inode = host
            .net_inode()
            .ok_or_else(|| io::Error::other("the host's namespace is gone"))?;
        let holder = host.net_holder().map(Holder::pid);
        let pids: Vec<u32> = processes_in(inode)
            .into_iter()
            .filter(|pid| Some(*pid) != holder)
            .collect();
        signal_all(&pids, libc::SIGSTOP);
        self.faults.state().frozen.push((host.name.clone(), pids));
        Ok(())
    }

    /// Continues (SIGCONT) what `freeze` stopped on `host`.
    pub fn thaw(&self, host: &Host) {
        let mut state = self.faults.state();
        state.frozen.retain(|(name, pids)| {
            let here = *name == host.name;
            if here {
                signal_all(pids, libc::SIGCONT);
            }
            !here
        });
    }

    /// Ends every fault: drops and limits removed, hosts thawed, relays stopped (the
    /// connections they carry go on, without delay).
    pub fn heal(&self) {
        self.faults.heal();
    }
}
