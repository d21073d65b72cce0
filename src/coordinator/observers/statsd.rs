//! statsd, as the old coordinator sent it: prefix `backpack-coordinator.<hostname>`; per
//! upload a counter and a timing `add_photo.ok` or `add_photo.error`; every interval,
//! gauges per shard (`<id>.rw|ro.current_size|capacity_size|available_size`) and for the
//! cluster (`total_size`, `used_size`, `queue_length`, `total_shards`, `available_space`).
//!
//! UDP from a non-blocking socket: a dead or slow statsd never slows an upload (a datagram
//! that cannot be sent at once is dropped).

use crate::cluster::snapshot::Snapshot;
use crate::hostname::hostname;
use crate::transport::peer::resolve;
use std::net::{SocketAddr, UdpSocket};

pub struct Statsd {
    socket: UdpSocket,
    target: SocketAddr,
    prefix: String,
}

impl Statsd {
    /// `host[:port]`, port 8125 by default.
    pub fn new(address: &str) -> Result<Statsd, String> {
        let (host, port) = address
            .rsplit_once(':')
            .and_then(|(host, port)| Some((host, port.parse::<u16>().ok()?)))
            .unwrap_or((address, 8125));
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let target = resolve(host, port)
            .ok_or_else(|| format!("cannot resolve the statsd address {address:?}"))?;
        let bind = if target.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        };
        let socket =
            UdpSocket::bind(bind).map_err(|err| format!("cannot open a UDP socket: {err}"))?;
        socket
            .set_nonblocking(true)
            .map_err(|err| err.to_string())?;
        Ok(Statsd {
            socket,
            target,
            prefix: format!("backpack-coordinator.{}", hostname()),
        })
    }

    fn send(&self, lines: &[String]) {
        // Several metrics per datagram, one per line, as statsd accepts.
        let _ = self
            .socket
            .send_to(lines.join("\n").as_bytes(), self.target);
    }

    pub fn upload(&self, ok: bool, millis: f64) {
        let name = format!(
            "{}.add_photo.{}",
            self.prefix,
            if ok { "ok" } else { "error" }
        );
        self.send(&[
            format!("{name}:1|c"),
            format!("{name}:{}|ms", millis.round() as u64),
        ]);
    }

    /// The periodic gauges.
    pub fn gauges(&self, snapshot: &Snapshot, queue_length: Option<u64>) {
        let p = &self.prefix;
        let mut lines = Vec::new();
        for shard in &snapshot.shards {
            let Some(size) = shard.size else { continue };
            let mode = if shard.is_writable() { "rw" } else { "ro" };
            let id = &shard.id;
            lines.push(format!("{p}.{id}.{mode}.current_size:{}|g", size.current));
            lines.push(format!("{p}.{id}.{mode}.capacity_size:{}|g", size.capacity));
            lines.push(format!("{p}.{id}.{mode}.available_size:{}|g", size.free()));
        }
        let totals = snapshot.totals();
        lines.push(format!("{p}.total_size:{}|g", totals.capacity));
        lines.push(format!("{p}.used_size:{}|g", totals.used));
        if let Some(length) = queue_length {
            lines.push(format!("{p}.queue_length:{length}|g"));
        }
        lines.push(format!("{p}.total_shards:{}|g", snapshot.shards.len()));
        lines.push(format!("{p}.available_space:{}|g", totals.available));
        // Keep datagrams small: a few lines each.
        for chunk in lines.chunks(8) {
            self.send(chunk);
        }
    }
}
