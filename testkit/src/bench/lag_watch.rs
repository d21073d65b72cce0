//! Watching acknowledged uploads from outside until both nodes of their shard hold them:
//! the lag the open-loop benchmark compares with the replicators' own histogram.
//!
//! A WebDAV node is watched through the kernel: nginx writes a body to a temporary file and
//! moves it into place whole, and inotify reports the move on the rate's directory the
//! moment it happens (`Inotify`), at no cost per upload beyond reading the event. A real
//! node keeps its files inside data files; its index is a Redis of its own with one key
//! per file, asked every 5 ms for the files still missing there in one pipelined round
//! trip, then every tenth of their age once they are 100 ms old (`Polled`).

use super::load::Acked;
use crate::LocalCluster;
use std::collections::{BTreeMap, HashMap};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

/// How often the missing files are looked for, or the events read...
const LOOK_EVERY: Duration = Duration::from_millis(5);
/// ...and until what age a real node is asked that often (then every tenth of the age,
/// well inside a lag bucket, which doubles above 100 ms).
const LOOK_OFTEN_UNTIL: Duration = Duration::from_millis(100);
/// How long an upload may wait for its second copy before it counts as never seen.
pub const WAIT_LIMIT: Duration = Duration::from_secs(120);

/// What the watcher saw: each upload's lag, sorted, in microseconds, and how many uploads
/// were never seen on both nodes.
#[derive(Default)]
pub struct Watched {
    pub lags_us: Vec<u64>,
    pub never_seen: usize,
}

/// The nodes of a seed-example shard: shard `s` is on nodes `s` and `s + 3`.
fn shard_nodes(shard: &str) -> Option<[usize; 2]> {
    let s: usize = shard.parse().ok()?;
    (1..=3).contains(&s).then_some([s, s + 3])
}

/// How the nodes of the seed example are watched.
pub enum Watcher {
    Inotify(Inotify),
    Polled(BTreeMap<usize, redis::Connection>),
}

impl Watcher {
    /// Ready for uploads under `/<prefix>/`, before the first is sent.
    pub fn for_prefix(cluster: &LocalCluster, prefix: &str) -> Result<Watcher, String> {
        if cluster.node(1).files_dir().is_some() {
            return Inotify::watch(cluster, prefix).map(Watcher::Inotify);
        }
        let mut indexes = BTreeMap::new();
        for node in 1..=6 {
            let redis = cluster
                .node(node)
                .index_redis()
                .ok_or("a node with neither files nor an index")?;
            let conn = redis
                .connection()
                .map_err(|err| format!("node {node}'s index: {err}"))?;
            indexes.insert(node, conn);
        }
        Ok(Watcher::Polled(indexes))
    }

    /// Watches until the acknowledgements end and every upload was seen on both nodes
    /// (or waited `WAIT_LIMIT`).
    pub fn run(self, acks: Receiver<Acked>) -> Watched {
        match self {
            Watcher::Inotify(inotify) => inotify.run(acks),
            Watcher::Polled(indexes) => polled(indexes, acks),
        }
    }
}

/// One inotify instance watching the rate's directory on every WebDAV node.
pub struct Inotify {
    fd: OwnedFd,
    /// Watch descriptor -> node.
    nodes: HashMap<i32, usize>,
}

impl Inotify {
    fn watch(cluster: &LocalCluster, prefix: &str) -> Result<Inotify, String> {
        // SAFETY: a new descriptor, owned from here on.
        let raw = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if raw < 0 {
            return Err(format!("inotify: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: `raw` is a descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut nodes = HashMap::new();
        for node in 1..=6 {
            let dir = cluster
                .node(node)
                .files_dir()
                .ok_or("a real node among WebDAV nodes")?
                .join(prefix);
            std::fs::create_dir_all(&dir).map_err(|err| format!("{}: {err}", dir.display()))?;
            let path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
                .map_err(|_| "a directory name with a NUL")?;
            let mask = libc::IN_MOVED_TO | libc::IN_CLOSE_WRITE;
            // SAFETY: an open inotify descriptor and a NUL-terminated path.
            let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), path.as_ptr(), mask) };
            if wd < 0 {
                return Err(format!(
                    "{}: {}",
                    dir.display(),
                    std::io::Error::last_os_error()
                ));
            }
            nodes.insert(wd, node);
        }
        Ok(Inotify { fd, nodes })
    }

    /// Files that appeared since the last call, as (node, file name), waiting up to
    /// `LOOK_EVERY` for the first.
    fn arrivals(&self, buffer: &mut [u8]) -> Vec<(usize, String)> {
        let mut poll = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd of our descriptor.
        unsafe { libc::poll(&mut poll, 1, LOOK_EVERY.as_millis() as libc::c_int) };
        let mut arrived = Vec::new();
        loop {
            // SAFETY: reads into our buffer, at most its length.
            let n = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    buffer.as_mut_ptr().cast(),
                    buffer.len(),
                )
            };
            if n <= 0 {
                return arrived;
            }
            // Each event: wd (i32), mask, cookie, len (u32), then `len` bytes of name.
            let mut at = 0;
            while at + 16 <= n as usize {
                let word = |i: usize| {
                    let bytes = [
                        buffer[at + i],
                        buffer[at + i + 1],
                        buffer[at + i + 2],
                        buffer[at + i + 3],
                    ];
                    u32::from_ne_bytes(bytes)
                };
                let (wd, len) = (word(0) as i32, word(12) as usize);
                let name = &buffer[at + 16..(at + 16 + len).min(n as usize)];
                let name = name.split(|b| *b == 0).next().unwrap_or_default();
                if let Some(node) = self.nodes.get(&wd) {
                    arrived.push((*node, String::from_utf8_lossy(name).into_owned()));
                }
                at += 16 + len;
            }
        }
    }

    fn run(self, acks: Receiver<Acked>) -> Watched {
        let mut buffer = vec![0u8; 64 * 1024];
        let mut watched = Watched::default();
        // When the first node got each file not yet whole, and the acknowledged uploads
        // waiting for their nodes. Only what an event or an acknowledgement touches is
        // looked at: a backlog of thousands costs nothing per look.
        let mut first: HashMap<String, (usize, Instant)> = HashMap::new();
        let mut whole: HashMap<String, Instant> = HashMap::new();
        let mut pending: HashMap<String, Acked> = HashMap::new();
        let mut open = true;
        let mut last_sweep = Instant::now();
        let finish = |acked: &Acked, at: Instant, watched: &mut Watched| {
            // The copy may land before the client has the answer: no lag then.
            let lag = at.saturating_duration_since(acked.at);
            watched.lags_us.push(lag.as_micros() as u64);
        };
        while open || !pending.is_empty() {
            loop {
                match acks.try_recv() {
                    Ok(acked) if shard_nodes(&acked.shard).is_none() => watched.never_seen += 1,
                    Ok(acked) => {
                        let name = acked
                            .path
                            .rsplit('/')
                            .next()
                            .unwrap_or_default()
                            .to_string();
                        match whole.remove(&name) {
                            Some(at) => finish(&acked, at, &mut watched),
                            None => drop(pending.insert(name, acked)),
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        open = false;
                        break;
                    }
                }
            }
            let now = Instant::now();
            for (node, name) in self.arrivals(&mut buffer) {
                match first.get(&name) {
                    // A second node has it: the file is whole (seed-example shards have
                    // two nodes).
                    Some((other, _)) if *other != node => {
                        first.remove(&name);
                        match pending.remove(&name) {
                            Some(acked) => finish(&acked, now, &mut watched),
                            None => drop(whole.insert(name, now)),
                        }
                    }
                    Some(_) => {}
                    None => drop(first.insert(name, (node, now))),
                }
            }
            if now - last_sweep > Duration::from_secs(1) {
                last_sweep = now;
                let before = pending.len();
                pending.retain(|_, acked| now - acked.at <= WAIT_LIMIT);
                watched.never_seen += before - pending.len();
            }
        }
        watched.lags_us.sort_unstable();
        watched
    }
}

/// An acknowledged upload a real node is asked about: the nodes not yet seen holding it,
/// and when to ask next.
struct Pending {
    acked: Acked,
    missing: Vec<usize>,
    next: Instant,
}

/// Asks the real nodes' indexes for the missing files until none is missing.
fn polled(mut indexes: BTreeMap<usize, redis::Connection>, acks: Receiver<Acked>) -> Watched {
    let mut pending: Vec<Pending> = Vec::new();
    let mut watched = Watched::default();
    let mut open = true;
    while open || !pending.is_empty() {
        let round = Instant::now();
        loop {
            match acks.try_recv() {
                Ok(acked) => match shard_nodes(&acked.shard) {
                    Some(nodes) => pending.push(Pending {
                        acked,
                        missing: nodes.to_vec(),
                        next: round,
                    }),
                    None => watched.never_seen += 1,
                },
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        for (node, conn) in indexes.iter_mut() {
            let asked: Vec<usize> = (0..pending.len())
                .filter(|i| pending[*i].next <= round && pending[*i].missing.contains(node))
                .collect();
            if asked.is_empty() {
                continue;
            }
            let mut pipe = redis::pipe();
            for i in &asked {
                pipe.cmd("EXISTS")
                    .arg(pending[*i].acked.path.trim_start_matches('/'));
            }
            let held = pipe.query::<Vec<bool>>(conn).unwrap_or_default();
            for (i, held) in asked.iter().zip(held) {
                if held {
                    pending[*i].missing.retain(|n| n != node);
                }
            }
        }
        let now = Instant::now();
        pending.retain_mut(|upload| {
            let age = now - upload.acked.at;
            if upload.missing.is_empty() {
                watched.lags_us.push(age.as_micros() as u64);
                return false;
            }
            if age > WAIT_LIMIT {
                watched.never_seen += 1;
                return false;
            }
            if upload.next <= round {
                let wait = age
                    .checked_sub(LOOK_OFTEN_UNTIL)
                    .map_or(LOOK_EVERY, |_| age / 10);
                upload.next = now + wait;
            }
            true
        });
        std::thread::sleep(LOOK_EVERY.saturating_sub(round.elapsed()));
    }
    watched.lags_us.sort_unstable();
    watched
}
