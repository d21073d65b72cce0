//! A server on a loopback port that is ready when a check says so: started, stopped,
//! and restarted on the same port with the same data. ZooKeeper, Redis and the nginx
//! nodes are all one of these (`Deref` gives them its methods).

use super::process::{wait_until, Launch, ServerProcess};
use std::time::Duration;

pub struct Service {
    pub port: u16,
    process: ServerProcess,
    what: &'static str,
    ready: fn(u16) -> bool,
    patience: Duration,
}

impl Service {
    /// Starts `launch` and waits up to `patience` until `ready(port)`.
    pub fn start(
        launch: Launch,
        port: u16,
        what: &'static str,
        ready: fn(u16) -> bool,
        patience: Duration,
    ) -> std::io::Result<Service> {
        let process = ServerProcess::start(launch)?;
        let service = Service {
            port,
            process,
            what,
            ready,
            patience,
        };
        service.wait_ready()?;
        Ok(service)
    }

    fn wait_ready(&self) -> std::io::Result<()> {
        let (ready, port) = (self.ready, self.port);
        wait_until(self.what, self.patience, || ready(port))
    }

    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// Starts it again on the same port with the same data.
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.process.restart()?;
        self.wait_ready()
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    pub fn process(&mut self) -> &mut ServerProcess {
        &mut self.process
    }
}
