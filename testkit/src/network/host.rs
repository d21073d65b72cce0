//! A host: where a server runs, by name and address. Either this machine's loopback, or a
//! host of a private network (see `Network`), with a network namespace of its own and the
//! network's `/etc/hosts`.

use super::namespace::{enter_net, place_command, Holder};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::sync::Arc;

/// The namespaces a host's processes run in.
pub(super) struct Place {
    pub net: Arc<Holder>,
    pub mount: Arc<Holder>,
}

#[derive(Clone)]
pub struct Host {
    /// What the cluster's state and configs call it: a name in the network's
    /// `/etc/hosts`, or `127.0.0.1` on loopback.
    pub name: String,
    /// Where the test process reaches it, and what its servers bind.
    pub ip: Ipv4Addr,
    place: Option<Arc<Place>>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name, self.ip)
    }
}

impl PartialEq for Host {
    fn eq(&self, other: &Host) -> bool {
        self.ip == other.ip && self.name == other.name
    }
}

impl Host {
    /// This machine's loopback, where every server runs unless a test asks for hosts.
    pub fn loopback() -> Host {
        Host {
            name: "127.0.0.1".to_string(),
            ip: Ipv4Addr::LOCALHOST,
            place: None,
        }
    }

    pub(super) fn on_network(name: &str, ip: Ipv4Addr, place: Place) -> Host {
        Host {
            name: name.to_string(),
            ip,
            place: Some(Arc::new(place)),
        }
    }

    pub fn is_loopback(&self) -> bool {
        self.place.is_none()
    }

    /// `<name>:<port>`, as the cluster's state and the daemons' flags name a server.
    pub fn address(&self, port: u16) -> String {
        format!("{}:{port}", self.name)
    }

    /// `http://<name>:<port>`, as add-server takes a node.
    pub fn url(&self, port: u16) -> String {
        format!("http://{}:{port}", self.name)
    }

    /// Where the test process connects to a server of this host.
    pub fn socket(&self, port: u16) -> SocketAddr {
        SocketAddr::from((self.ip, port))
    }

    /// A command that runs on this host: in its network, seeing the network's host names.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> io::Result<Command> {
        let mut command = Command::new(program);
        if let Some(place) = &self.place {
            place_command(&mut command, place.net.fd(), Some(place.mount.fd()))?;
        }
        Ok(command)
    }

    /// Runs `work` on a new thread that lives in this host's network: sockets it opens
    /// are this host's.
    pub fn spawn_thread<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> io::Result<std::thread::JoinHandle<io::Result<T>>> {
        let place = self.place.clone();
        Ok(std::thread::spawn(move || {
            if let Some(place) = &place {
                enter_net(place.net.fd())?;
            }
            Ok(work())
        }))
    }

    /// The inode of its network namespace (None on loopback).
    pub fn net_inode(&self) -> Option<u64> {
        self.place.as_ref().and_then(|p| p.net.inode().ok())
    }

    pub(super) fn net_holder(&self) -> Option<&Holder> {
        self.place.as_ref().map(|p| &*p.net)
    }
}
