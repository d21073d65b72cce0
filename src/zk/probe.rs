//! Whether a ZooKeeper server answers at all, asked cheaply and often.

use super::runtime;
use crate::state::endpoint::parse_endpoint_list;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Asks the servers of a connect string whether any takes a TCP connection: a SYN each,
/// so a process cut off from the ensemble can ask often, and open a session as soon as
/// the network heals instead of waiting out a session attempt on servers that drop every
/// packet. Each connection attempt lives `PROBE_PATIENCE`, past the call that made it: a
/// server far away that answers late still counts, at the next call.
#[derive(Default)]
pub struct ServerProbe {
    accepted: Arc<AtomicBool>,
}

/// How long one probe's connection attempt waits for its server.
const PROBE_PATIENCE: Duration = Duration::from_secs(3);

impl ServerProbe {
    /// True when a server took a connection since the last call that said so, or takes
    /// one within `wait`.
    pub fn any_accepts(&self, servers: &str, wait: Duration) -> bool {
        if self.accepted.swap(false, Ordering::AcqRel) {
            return true;
        }
        let hosts = servers.split('/').next().unwrap_or("");
        let (Ok(endpoints), Ok(runtime)) = (parse_endpoint_list(hosts), runtime()) else {
            return false;
        };
        for endpoint in endpoints {
            let accepted = Arc::clone(&self.accepted);
            runtime.spawn(async move {
                let address = (endpoint.host.as_str(), endpoint.port);
                let connect = tokio::net::TcpStream::connect(address);
                if let Ok(Ok(_)) = tokio::time::timeout(PROBE_PATIENCE, connect).await {
                    accepted.store(true, Ordering::Release);
                }
            });
        }
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if self.accepted.swap(false, Ordering::AcqRel) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }
}
