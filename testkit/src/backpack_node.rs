//! A real Backpack node: Topface's Backpack 0.5.5, the node users run, on this machine's
//! Node.js, with its own Redis and a registered data file.
//!
//! `bin/backpack-install-deps` installs it (npm package `backpack@0.5.5` and this
//! project's compatibility layer, `tests/backpack-node/`) into
//! `$BACKPACK_RS_CACHE/backpack-0.5.5` (default `~/.cache/backpack-rs`), with launchers
//! under the node's own command names in `bin/`. Without that install a node cannot start,
//! and the error says what to run: tests that need a real node fail, they never skip.

use super::process::Launch;
use super::service::Service;
use super::{free_port, is_listening_at, Host, RedisServer, Sandbox};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct BackpackNode {
    /// The node's data directory: `data_<n>` files and their `.meta` recovery logs.
    pub data: PathBuf,
    /// The node's own Redis (its index); without persistence.
    pub redis: RedisServer,
    service: Service,
}

/// Where `bin/backpack-install-deps` put Backpack 0.5.5 and its launchers.
pub fn install_dir() -> PathBuf {
    let cache = match std::env::var_os("BACKPACK_RS_CACHE") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
            .join(".cache/backpack-rs"),
    };
    cache.join("backpack-0.5.5")
}

/// The launcher of one of the node's commands (`backpack`, `backpack-add`, ...), or an
/// error that says how to install it.
pub fn launcher(command: &str) -> io::Result<PathBuf> {
    let dir = install_dir();
    let path = dir.join("bin").join(command);
    if dir.join("installed").is_file() && path.is_file() {
        return Ok(path);
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!(
            "the real Backpack node (backpack@0.5.5) is not installed in {}: run \
             bin/backpack-install-deps (it needs Node.js, npm and a C compiler: \
             apt-get install nodejs npm libnode-dev gcc)",
            dir.display()
        ),
    ))
}

/// Registers a new data file in `data` (`backpack-add`): without one every PUT is 500.
fn register_data_file(data: &Path, redis: &RedisServer) -> io::Result<()> {
    std::fs::create_dir_all(data)?;
    let output = redis
        .host
        .command(launcher("backpack-add")?)?
        .arg(data)
        .args([redis.host.ip.to_string(), redis.port.to_string()])
        .output()?;
    let said = String::from_utf8_lossy(&output.stdout);
    if output.status.success() && said.contains("Successfully registered file") {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "backpack-add failed: {} {}",
        said.trim(),
        String::from_utf8_lossy(&output.stderr).trim()
    )))
}

impl BackpackNode {
    /// Starts a node named `name` with a fresh Redis and one registered data file, both
    /// on the node's host (see `Sandbox::host`).
    pub fn start(sandbox: &Sandbox, name: &str) -> io::Result<BackpackNode> {
        let launcher = launcher("backpack")?;
        let host: Host = sandbox.host(name)?;
        let dir = sandbox.subdir(name)?;
        let data = dir.join("data");
        let redis = RedisServer::start_on(sandbox, &host, &format!("{name}-redis"))?;
        register_data_file(&data, &redis)?;
        let port = free_port()?;
        let args = vec![
            data.display().to_string(),
            host.ip.to_string(),
            port.to_string(),
            host.ip.to_string(),
            redis.port.to_string(),
        ];
        let launch: Launch =
            sandbox.launch_on(&host, name, &launcher.display().to_string(), args, &dir);
        // The node listens only once it has loaded its data files from Redis.
        let service = Service::start(
            launch,
            port,
            "Backpack node",
            is_listening_at,
            Duration::from_secs(20),
        )?;
        Ok(BackpackNode {
            data,
            redis,
            service,
        })
    }

    /// `http://<host>:<port>`, as add-server takes it.
    pub fn url(&self) -> String {
        self.host.url(self.port)
    }

    /// The stored bytes of `path` (`/hi.txt`, sent as it stands: the node keys files by
    /// the raw request target), None when the node answers 404. Panics on anything else,
    /// which no test expects from a healthy node.
    pub fn file(&self, path: &str) -> Option<Vec<u8>> {
        match get(self.addr(), path) {
            Ok((200, body)) => Some(body),
            Ok((404, _)) => None,
            Ok((status, _)) => panic!("node {} answered {status} to GET {path}", self.url()),
            Err(err) => panic!("node {} unreachable for GET {path}: {err}", self.url()),
        }
    }

    /// The node loses its disk and comes back empty on the same port: data files and index
    /// gone, a new data file registered (what an operator does after replacing a disk).
    pub fn wipe(&mut self) -> io::Result<()> {
        self.service.stop();
        // Its Redis keeps nothing on disk: restarted, it is empty.
        self.redis.restart()?;
        std::fs::remove_dir_all(&self.data)?;
        register_data_file(&self.data, &self.redis)?;
        self.service.restart()
    }
}

/// `GET path` with a connection of its own; the status and the body.
fn get(address: SocketAddr, path: &str) -> io::Result<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(10))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let malformed = || io::Error::new(io::ErrorKind::InvalidData, "malformed HTTP answer");
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(malformed)?;
    let head = String::from_utf8_lossy(&answer[..end]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(malformed)?;
    Ok((status, answer[end + 4..].to_vec()))
}

impl std::ops::Deref for BackpackNode {
    type Target = Service;
    fn deref(&self) -> &Service {
        &self.service
    }
}

impl std::ops::DerefMut for BackpackNode {
    fn deref_mut(&mut self) -> &mut Service {
        &mut self.service
    }
}
