//! A standalone ZooKeeper from Debian's `zookeeper` package.

use super::service::Service;
use super::{free_port, Sandbox};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const CLASSPATH: &str = "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar";

pub struct ZooKeeperServer {
    service: Service,
}

/// Sends a four-letter command and returns the answer ("ruok" -> "imok").
fn four_letter(port: u16, command: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    stream.write_all(command.as_bytes()).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    Some(answer)
}

fn answers_ruok(port: u16) -> bool {
    four_letter(port, "ruok").as_deref() == Some("imok")
}

impl ZooKeeperServer {
    /// Starts ZooKeeper on a free loopback port and waits until it answers `ruok`.
    pub fn start(sandbox: &Sandbox) -> std::io::Result<ZooKeeperServer> {
        let dir = sandbox.subdir("zookeeper")?;
        let port = free_port()?;
        // A short tick allows short session timeouts (2 ticks minimum) in expiry tests.
        // The admin server is off: it would take port 8080 and clash with a second instance.
        // Connections per client address are not limited (the default is 60): every
        // process here comes from 127.0.0.1, a hundred coordinators in `bp-bench scale`.
        let config = format!(
            "tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir={data}\nclientPort={port}\n\
             clientPortAddress=127.0.0.1\nadmin.enableServer=false\n\
             4lw.commands.whitelist=ruok,srvr,stat\nminSessionTimeout=1000\nmaxSessionTimeout=30000\nmaxClientCnxns=0\n",
            data = dir.join("data").display()
        );
        let config_path = dir.join("zoo.cfg");
        std::fs::write(&config_path, config)?;
        let args = [
            "-Xmx256m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-Dzookeeper.root.logger=INFO,CONSOLE",
            "-Dzookeeper.console.threshold=WARN",
            "-cp",
            CLASSPATH,
            "org.apache.zookeeper.server.ZooKeeperServerMain",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([config_path.display().to_string()])
        .collect();
        let launch = sandbox.launch("zookeeper", "java", args, &dir);
        let service = Service::start(
            launch,
            port,
            "ZooKeeper",
            answers_ruok,
            Duration::from_secs(30),
        )?;
        Ok(ZooKeeperServer { service })
    }

    /// The server's process id, while it runs (for CPU accounting).
    pub fn pid(&self) -> Option<u32> {
        self.service.pid()
    }

    /// The connect string, `127.0.0.1:<port>`.
    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
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
