//! A `redis-server` without persistence: restarted, it comes back empty, like a lost one.

use super::service::Service;
use super::{free_port, Host, Sandbox};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

pub struct RedisServer {
    service: Service,
}

fn answers_ping(address: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_millis(500)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut answer = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut answer).is_ok()
        && &answer == b"+PONG\r\n"
}

impl RedisServer {
    /// Starts the server `name` on its own host (see `Sandbox::host`).
    pub fn start(sandbox: &Sandbox, name: &str) -> std::io::Result<RedisServer> {
        RedisServer::start_on(sandbox, &sandbox.host(name)?, name)
    }

    /// Starts the server `name` on `host`.
    pub fn start_on(sandbox: &Sandbox, host: &Host, name: &str) -> std::io::Result<RedisServer> {
        let dir = sandbox.subdir(name)?;
        let port = free_port()?;
        let args = vec![
            "--port".into(),
            port.to_string(),
            "--bind".into(),
            host.ip.to_string(),
            // Clients come from other hosts, which protected mode would refuse.
            "--protected-mode".into(),
            "no".into(),
            "--save".into(),
            String::new(),
            "--appendonly".into(),
            "no".into(),
            "--dir".into(),
            dir.display().to_string(),
            // Tests make a Redis slow with DEBUG SLEEP.
            "--enable-debug-command".into(),
            "local".into(),
        ];
        let launch = sandbox.launch_on(host, name, "redis-server", args, &dir);
        let service = Service::start(
            launch,
            port,
            "redis-server",
            answers_ping,
            Duration::from_secs(10),
        )?;
        Ok(RedisServer { service })
    }

    /// A new client connection, as a test reads and writes the server directly.
    /// (`address()` is what the queue's server list holds: `<host>:<port>`.)
    pub fn connection(&self) -> redis::RedisResult<redis::Connection> {
        redis::Client::open(format!("redis://{}/", self.addr()))?.get_connection()
    }

    /// The members of the set `key`, sorted. Panics when the server cannot be read.
    pub fn members(&self, key: &str) -> Vec<String> {
        let mut items: Vec<String> = self
            .connection()
            .and_then(|mut conn| redis::cmd("SMEMBERS").arg(key).query(&mut conn))
            .unwrap_or_else(|err| panic!("SMEMBERS {key} on {}: {err}", self.address()));
        items.sort();
        items
    }

    /// Adds `items` to the set `key`. Panics when the server cannot be written.
    pub fn add(&self, key: &str, items: &[String]) {
        let added: redis::RedisResult<i64> = self
            .connection()
            .and_then(|mut conn| redis::cmd("SADD").arg(key).arg(items).query(&mut conn));
        if let Err(err) = added {
            panic!("SADD {key} on {}: {err}", self.address());
        }
    }
}

impl std::ops::Deref for RedisServer {
    type Target = Service;
    fn deref(&self) -> &Service {
        &self.service
    }
}

impl std::ops::DerefMut for RedisServer {
    fn deref_mut(&mut self) -> &mut Service {
        &mut self.service
    }
}
