//! ZooKeeper from Debian's `zookeeper` package: one standalone server, or an ensemble of
//! three or five, each server on its own host when the sandbox has a network.

use super::service::Service;
use super::{free_port, Sandbox};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const CLASSPATH: &str = "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar";

/// One server of the ensemble (`Deref` gives it `Service`'s stop, restart, kill...).
pub struct ZooKeeperServer {
    /// Its `myid`, 1 and up.
    pub id: usize,
    /// Its data directory (`myid`, snapshots, the transaction log).
    pub data: std::path::PathBuf,
    service: Service,
}

/// The ensemble: a single standalone server, or several that elect a leader.
pub struct ZooKeeper {
    pub servers: Vec<ZooKeeperServer>,
}

/// Sends a four-letter command and returns the answer ("ruok" -> "imok").
fn four_letter(address: SocketAddr, command: &str) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    stream.write_all(command.as_bytes()).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    Some(answer)
}

/// What `srvr` says the server's role is: `standalone`, `leader` or `follower`; None
/// while it does not serve (no quorum, or not up).
fn mode(address: SocketAddr) -> Option<String> {
    let answer = four_letter(address, "srvr")?;
    let line = answer.lines().find_map(|l| l.strip_prefix("Mode: "))?;
    Some(line.trim().to_string())
}

fn serves(address: SocketAddr) -> bool {
    mode(address).is_some()
}

/// The config every server of an ensemble shares: timing, limits, the members.
fn common_config(members: &[String]) -> String {
    // A short tick allows short session timeouts (2 ticks minimum) in expiry tests.
    // The admin server is off: it would take port 8080 and clash with a second instance.
    // Connections per client address are not limited (the default is 60): every
    // process here comes from 127.0.0.1, a hundred coordinators in `bp-bench scale`.
    let mut config = "tickTime=500\ninitLimit=10\nsyncLimit=5\nadmin.enableServer=false\n\
                      4lw.commands.whitelist=ruok,srvr,stat\nminSessionTimeout=1000\n\
                      maxSessionTimeout=30000\nmaxClientCnxns=0\n"
        .to_string();
    if members.len() > 1 {
        for (i, member) in members.iter().enumerate() {
            config.push_str(&format!("server.{}={member}\n", i + 1));
        }
    }
    config
}

impl ZooKeeper {
    /// One standalone server, named `zookeeper`.
    pub fn start(sandbox: &Sandbox) -> io::Result<ZooKeeper> {
        ZooKeeper::start_ensemble(sandbox, 1)
    }

    /// `size` servers (`zookeeper-1`, ...), each on its own host, started together;
    /// returns once every one serves (the ensemble has a leader).
    pub fn start_ensemble(sandbox: &Sandbox, size: usize) -> io::Result<ZooKeeper> {
        let names: Vec<String> = match size {
            1 => vec!["zookeeper".to_string()],
            _ => (1..=size).map(|i| format!("zookeeper-{i}")).collect(),
        };
        let mut places = Vec::new();
        let mut members = Vec::new();
        for name in &names {
            let host = sandbox.host(name)?;
            let (peer, election) = (free_port()?, free_port()?);
            members.push(format!("{}:{peer}:{election}", host.name));
            places.push((name, host, free_port()?));
        }
        let common = common_config(&members);
        let mut servers = Vec::new();
        for (i, (name, host, port)) in places.into_iter().enumerate() {
            let dir = sandbox.subdir(name)?;
            let data = dir.join("data");
            std::fs::create_dir_all(&data)?;
            std::fs::write(data.join("myid"), format!("{}\n", i + 1))?;
            let config = format!(
                "{common}dataDir={}\nclientPort={port}\nclientPortAddress={}\n",
                data.display(),
                host.ip
            );
            let config_path = dir.join("zoo.cfg");
            std::fs::write(&config_path, config)?;
            let main = match size {
                1 => "org.apache.zookeeper.server.ZooKeeperServerMain",
                _ => "org.apache.zookeeper.server.quorum.QuorumPeerMain",
            };
            let args = [
                "-Xmx256m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-Dzookeeper.root.logger=INFO,CONSOLE",
                "-Dzookeeper.console.threshold=WARN",
                "-cp",
                CLASSPATH,
                main,
            ]
            .iter()
            .map(|s| s.to_string())
            .chain([config_path.display().to_string()])
            .collect();
            let launch = sandbox.launch_on(&host, name, "java", args, &dir);
            let service =
                Service::spawn(launch, port, "ZooKeeper", serves, Duration::from_secs(60))?;
            servers.push(ZooKeeperServer {
                id: i + 1,
                data,
                service,
            });
        }
        for server in &servers {
            server.wait_ready()?;
        }
        Ok(ZooKeeper { servers })
    }

    /// The connect string: every server, `<host>:<port>,...`.
    pub fn connect_string(&self) -> String {
        let all: Vec<String> = self.servers.iter().map(|s| s.address()).collect();
        all.join(",")
    }

    /// The same by address, `<ip>:<port>,...`: for clients in the test process itself,
    /// which does not see a network's host names.
    pub fn connect_string_by_address(&self) -> String {
        let all: Vec<String> = self.servers.iter().map(|s| s.addr().to_string()).collect();
        all.join(",")
    }

    /// The first server's process id, while it runs (for CPU accounting).
    pub fn pid(&self) -> Option<u32> {
        self.servers.first().and_then(|s| s.pid())
    }

    /// Stops every server: ZooKeeper is down.
    pub fn stop(&mut self) {
        for server in &mut self.servers {
            server.stop();
        }
    }

    /// Starts every server again with its data, and waits until all of them serve.
    pub fn restart(&mut self) -> io::Result<()> {
        for server in &mut self.servers {
            server.respawn()?;
        }
        self.servers.iter().try_for_each(|s| s.wait_ready())
    }

    /// The index in `servers` of the one that leads (a standalone server leads itself);
    /// None while no server says so.
    pub fn leader(&self) -> Option<usize> {
        self.servers
            .iter()
            .position(|s| matches!(mode(s.addr()).as_deref(), Some("leader" | "standalone")))
    }

    /// The index of a server that says a client from `ip` is connected to it (its `stat`
    /// lists its clients), None when none does.
    pub fn serving(&self, ip: std::net::Ipv4Addr) -> Option<usize> {
        let client = format!("/{ip}:");
        self.servers.iter().position(|s| {
            four_letter(s.addr(), "stat").is_some_and(|answer| answer.contains(&client))
        })
    }

    /// What server `index` says its role is (`leader`, `follower`, `standalone`), None
    /// while it does not serve.
    pub fn mode(&self, index: usize) -> Option<String> {
        mode(self.servers.get(index)?.addr())
    }
}

impl std::ops::Deref for ZooKeeperServer {
    type Target = Service;
    fn deref(&self) -> &Service {
        &self.service
    }
}

impl std::ops::DerefMut for ZooKeeperServer {
    fn deref_mut(&mut self) -> &mut Service {
        &mut self.service
    }
}
