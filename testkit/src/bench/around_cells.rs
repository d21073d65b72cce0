//! What the matrix does around its cells: one large upload, direct and through the
//! coordinator (a body far larger than memory should hold), and the cleaning after a
//! cell, so that the next one meets the nodes as the first did.

use super::turns::write_back;
use crate::{LocalCluster, QUEUE_KEY};
use std::io::Read;
use std::time::{Duration, Instant};

/// Makes `left` bytes without holding them.
struct Pattern {
    left: u64,
}

impl Read for Pattern {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize;
        buf[..n].fill(b'p');
        self.left -= n as u64;
        Ok(n)
    }
}

/// One upload of `size` bytes; its time.
pub fn one_upload(url: &str, size: u64) -> Result<Duration, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let started = Instant::now();
    let answer = agent
        .put(url)
        .header("Content-Length", size.to_string())
        .send(ureq::SendBody::from_owned_reader(Pattern { left: size }))
        .map_err(|err| err.to_string())?;
    let status = answer.status().as_u16();
    if !(200..300).contains(&status) {
        return Err(format!("HTTP {status}"));
    }
    Ok(started.elapsed())
}

/// Removes what a cell stored, so a run never fills the disk, and empties the queue;
/// then has the disk write back, so the next cell does not pay for this one's writes.
pub fn clean(cluster: &LocalCluster) {
    for node in &cluster.nodes {
        let Some(files) = node.files_dir() else {
            continue;
        };
        if let Ok(entries) = std::fs::read_dir(files) {
            for entry in entries.flatten() {
                let _ = std::fs::remove_dir_all(entry.path())
                    .or_else(|_| std::fs::remove_file(entry.path()));
            }
        }
    }
    empty_queue(cluster);
    write_back();
}

/// Empties the queue and its lag records on every Redis server. The matrix runs no
/// replicator, so without this the queue would hold every upload of the run: a set and a
/// sorted set of millions of items, each insert dearer than the last, which no cluster
/// whose replicators keep pace ever holds. Done before every turn, outside its time.
pub fn empty_queue(cluster: &LocalCluster) {
    let records = backpack::replication_queue::records_key(QUEUE_KEY);
    for redis in &cluster.redis {
        if let Ok(mut conn) = redis::Client::open(format!("redis://{}/", redis.address()))
            .and_then(|c| c.get_connection())
        {
            let _: redis::RedisResult<()> = redis::cmd("DEL")
                .arg(QUEUE_KEY)
                .arg(&records)
                .query(&mut conn);
        }
    }
}
