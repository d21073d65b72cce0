//! This machine's host name: statsd's metric prefix and the replicator's lock token
//! (`hostname:pid`) carry it, as the old tools' did.

/// The kernel's host name, or `localhost` when it cannot be read.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|_| "localhost".to_string())
}
