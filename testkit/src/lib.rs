//! Test and benchmark tooling for backpack-rs, kept out of the production crate: real
//! servers on loopback for tests, benchmarks and demos (ZooKeeper, Redis, real Backpack
//! nodes, and nginx WebDAV nodes standing in for them where speed matters), and `bench`,
//! the `bp-bench` load generator and benchmark matrix.
//!
//! Everything a run starts lives in one `Sandbox` directory (configs, data, logs, group
//! ids) under `$TMPDIR/backpack-testkit/`. Servers stop when their handle is dropped, when
//! their owner dies (see `process`), and at the latest when the next sandbox is made and
//! finds them orphaned.

mod backpack_node;
pub mod bench;
mod cluster;
mod delay_proxy;
mod failing_node;
mod front;
mod loopback_server;
pub mod measure;
pub mod metrics;
pub mod network;
mod nginx;
mod nginx_proxy;
mod node;
pub mod process;
mod queue;
mod redis;
pub mod scenario;
mod service;
mod zookeeper;

pub use backpack_node::BackpackNode;
pub use cluster::{CoordinatorProcess, LocalCluster, QUEUE_KEY};
pub use delay_proxy::DelayProxy;
pub use failing_node::FailingNode;
pub use front::{nginx_test, NginxFront};
pub use network::{Host, Network};
pub use nginx::{LoggedPut, WebDavNode};
pub use nginx_proxy::NginxProxy;
pub use node::{ClusterNode, NodeKind};
pub use process::{Launch, ServerProcess};
pub use redis::RedisServer;
pub use service::Service;
pub use zookeeper::{ZooKeeper, ZooKeeperServer};

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

fn base_dir() -> PathBuf {
    std::env::temp_dir().join("backpack-testkit")
}

/// A directory that holds everything one run started, and where its servers run: on
/// loopback, or each on a host of its own in a private network. Removed on drop.
pub struct Sandbox {
    dir: PathBuf,
    // Dropped after the directory goes; the servers using it are gone by then.
    network: Option<Network>,
}

impl Sandbox {
    pub fn new(label: &str) -> std::io::Result<Sandbox> {
        static SEQUENCE: AtomicU32 = AtomicU32::new(0);
        reap_orphans();
        let n = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let dir = base_dir().join(format!("{}-{n}-{label}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir)?;
        Ok(Sandbox { dir, network: None })
    }

    /// A sandbox whose servers each run on a host of their own, named after the server,
    /// in a private network (see `network`). The calling thread moves into the network
    /// until the sandbox is dropped, and must live as long as the sandbox.
    pub fn with_network(label: &str) -> std::io::Result<Sandbox> {
        let mut sandbox = Sandbox::new(label)?;
        sandbox.network = Some(Network::new(&sandbox.dir)?);
        Ok(sandbox)
    }

    /// The private network, when the servers run on hosts.
    pub fn network(&self) -> Option<&Network> {
        self.network.as_ref()
    }

    /// Where the server `name` runs: loopback, or its own host of the network (made on
    /// first use; a name asked for twice is the same host, so servers can share one).
    pub fn host(&self, name: &str) -> std::io::Result<Host> {
        match &self.network {
            None => Ok(Host::loopback()),
            Some(network) => network.host(name),
        }
    }

    /// Where the test itself, its clients and the admin commands run: loopback, or the
    /// network's lab.
    pub fn lab(&self) -> Host {
        match &self.network {
            None => Host::loopback(),
            Some(network) => network.lab().clone(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// A fresh subdirectory for one server.
    pub fn subdir(&self, name: &str) -> std::io::Result<PathBuf> {
        let dir = self.dir.join(name);
        fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// What `Launch` needs to start a server named `name` in `dir`, in the lab.
    pub fn launch(&self, name: &str, program: &str, args: Vec<String>, dir: &Path) -> Launch {
        self.launch_on(&self.lab(), name, program, args, dir)
    }

    /// The same on `host`.
    pub fn launch_on(
        &self,
        host: &Host,
        name: &str,
        program: &str,
        args: Vec<String>,
        dir: &Path,
    ) -> Launch {
        Launch {
            host: host.clone(),
            name: name.to_string(),
            program: program.to_string(),
            args,
            log: dir.join(format!("{name}.log")),
            pid_dir: self.dir.clone(),
            arg0: None,
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Kills the servers of sandboxes whose owning process is gone, and removes those
/// sandboxes. Sandboxes are named `<owner pid>-...`.
fn reap_orphans() {
    let Ok(entries) = fs::read_dir(base_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let owner = name
            .split('-')
            .next()
            .and_then(|pid| pid.parse::<u32>().ok());
        match owner {
            Some(pid) if pid == std::process::id() || process::is_alive(pid) => continue,
            _ => {}
        }
        if let Ok(files) = fs::read_dir(entry.path()) {
            for file in files.flatten() {
                if file.path().extension().is_some_and(|e| e == "pgid") {
                    // "<pgid> <start time>": only that very process's group is killed,
                    // never one that got the same number later.
                    let text = fs::read_to_string(file.path()).unwrap_or_default();
                    let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().ok());
                    if let (Some(Some(pgid)), Some(Some(started))) = (fields.next(), fields.next())
                    {
                        if let Ok(pgid) = u32::try_from(pgid) {
                            if process::is_same_process(pgid, started) {
                                process::signal_group(pgid, libc::SIGKILL);
                            }
                        }
                    }
                }
            }
        }
        let _ = fs::remove_dir_all(entry.path());
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on right now, and that this process has
/// not handed out before.
///
/// Two traps make "bind port 0 and let go" unsafe for tests that start servers in
/// parallel. The kernel may hand the same free port to two callers before either server
/// binds it; the second server then fails, and a readiness probe finds the first one
/// listening there and takes it for its own. And port 0 draws from the ephemeral range,
/// where outgoing connections take their local ports: a client socket can sit on the port
/// before the server binds it. So ports come from below the ephemeral range, each once.
pub fn free_port() -> std::io::Result<u16> {
    use rand::Rng;
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let ephemeral_start = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (low, high) = (
        ephemeral_start.saturating_sub(20000).max(1024),
        ephemeral_start.saturating_sub(1),
    );
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = rand::rng();
    for _ in 0..if low < high { 1000 } else { 0 } {
        let port = rng.random_range(low..=high);
        if handed_out.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed_out.push(port);
            return Ok(port);
        }
    }
    // Everything tried was taken: fall back to the kernel's choice.
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    handed_out.push(port);
    Ok(port)
}

/// True when something accepts connections on 127.0.0.1:`port`.
pub fn is_listening(port: u16) -> bool {
    is_listening_at(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
}

/// True when something accepts connections at `address`.
pub fn is_listening_at(address: std::net::SocketAddr) -> bool {
    std::net::TcpStream::connect_timeout(&address, std::time::Duration::from_millis(200)).is_ok()
}
