//! A server on a port of its host that is ready when a check says so: started, stopped,
//! and restarted on the same port with the same data. ZooKeeper, Redis and the nginx
//! nodes are all one of these (`Deref` gives them its methods).

use super::process::{wait_until, Launch, ServerProcess};
use super::Host;
use std::net::SocketAddr;
use std::time::Duration;

pub struct Service {
    pub port: u16,
    /// Where it runs.
    pub host: Host,
    process: ServerProcess,
    what: &'static str,
    ready: fn(SocketAddr) -> bool,
    patience: Duration,
}

impl Service {
    /// Starts `launch` and waits up to `patience` until `ready(port)`.
    pub fn start(
        launch: Launch,
        port: u16,
        what: &'static str,
        ready: fn(SocketAddr) -> bool,
        patience: Duration,
    ) -> std::io::Result<Service> {
        let service = Service::spawn(launch, port, what, ready, patience)?;
        service.wait_ready()?;
        Ok(service)
    }

    /// Starts it without waiting until it is ready (servers that wait for each other,
    /// like the members of a ZooKeeper ensemble, start together).
    pub fn spawn(
        launch: Launch,
        port: u16,
        what: &'static str,
        ready: fn(SocketAddr) -> bool,
        patience: Duration,
    ) -> std::io::Result<Service> {
        let host = launch.host.clone();
        let process = ServerProcess::start(launch)?;
        Ok(Service {
            port,
            host,
            process,
            what,
            ready,
            patience,
        })
    }

    /// Waits until its readiness check passes.
    pub fn wait_ready(&self) -> std::io::Result<()> {
        let (ready, address) = (self.ready, self.addr());
        wait_until(self.what, self.patience, || ready(address)).map_err(|err| {
            let log = self.process.log_tail(10);
            std::io::Error::new(
                err.kind(),
                format!("{err} at {address}; its log ends:\n{log}"),
            )
        })
    }

    /// Where the test process reaches it.
    pub fn addr(&self) -> SocketAddr {
        self.host.socket(self.port)
    }

    /// `<host name>:<port>`, as the cluster's state and the daemons' flags name it.
    pub fn address(&self) -> String {
        self.host.address(self.port)
    }

    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// Starts it again on the same port with the same data.
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.process.restart()?;
        self.wait_ready()
    }

    /// Starts it again without waiting until it is ready.
    pub fn respawn(&mut self) -> std::io::Result<()> {
        self.process.restart()
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    pub fn process(&mut self) -> &mut ServerProcess {
        &mut self.process
    }
}
