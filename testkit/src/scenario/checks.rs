//! The invariants a cluster keeps through any fault, checked after the queue has drained:
//! every acknowledged upload is byte-identical on every node of its shard and through the
//! front; nothing is left queued; nothing sits in the dead set unexplained; the shard
//! sizes cover what was acknowledged. Each check returns what it found wrong, in words.

use super::load::Ack;
use crate::cluster::LocalCluster;
use crate::front::NginxFront;
use backpack::zk_state::ZkState;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// Waits until the queue set is empty on every Redis server; when it was, or an error
/// after `limit`.
pub fn wait_drained(cluster: &LocalCluster, limit: Duration) -> Result<Instant, String> {
    let started = Instant::now();
    loop {
        if cluster.queue_is_empty() {
            return Ok(Instant::now());
        }
        if started.elapsed() > limit {
            let left: Vec<usize> = (0..cluster.redis.len())
                .map(|server| cluster.queue_items(server).len())
                .collect();
            return Err(format!(
                "the queue did not drain in {limit:?}: {left:?} left"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Shard id -> its node ids, as shards-map says now.
fn shard_nodes(cluster: &LocalCluster) -> Result<BTreeMap<String, Vec<usize>>, String> {
    let state = ZkState::open(
        &cluster.zk_by_address(),
        &cluster.root,
        Duration::from_secs(10),
    )
    .map_err(|e| format!("reading shards-map: {e}"))?;
    let shards = state
        .shards()
        .map_err(|e| format!("reading shards-map: {e}"))?;
    shards
        .into_iter()
        .map(|(id, entry)| {
            let nodes = entry
                .nodes
                .iter()
                .map(|n| n.parse::<usize>().map_err(|_| format!("node id {n}")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((id, nodes))
        })
        .collect()
}

/// The acknowledged uploads whose copy on some node of their shard is missing or
/// different: `path on node N`, one entry per bad copy.
pub fn missing_copies(cluster: &LocalCluster, acks: &[Ack]) -> Result<Vec<String>, String> {
    let shards = shard_nodes(cluster)?;
    let mut bad = Vec::new();
    for ack in acks {
        let Some(nodes) = shards.get(&ack.shard) else {
            bad.push(format!(
                "{}: shard {} is not in shards-map",
                ack.path, ack.shard
            ));
            continue;
        };
        let expected = ack.body();
        for &node in nodes {
            if cluster.node(node).file(&ack.path).as_ref() != Some(&expected) {
                bad.push(format!("{} on node {node}", ack.path));
            }
        }
    }
    Ok(bad)
}

/// The acknowledged uploads the front does not serve byte for byte as `/<shard>:<path>`.
pub fn unreadable_through_front(front: &NginxFront, acks: &[Ack]) -> Vec<String> {
    let agent = super::load::agent();
    let mut bad = Vec::new();
    for ack in acks {
        let url = front.url(&format!("/{}:{}", ack.shard, ack.path));
        let read = agent
            .get(&url)
            .call()
            .map_err(|e| e.to_string())
            .and_then(|r| {
                let status = r.status().as_u16();
                let body = r
                    .into_body()
                    .with_config()
                    .limit(64 << 20)
                    .read_to_vec()
                    .map_err(|e| e.to_string())?;
                Ok((status, body))
            });
        match read {
            Ok((200, body)) if body == ack.body() => {}
            Ok((200, body)) => bad.push(format!("{url}: {} bytes differ", body.len())),
            Ok((status, _)) => bad.push(format!("{url}: {status}")),
            Err(err) => bad.push(format!("{url}: {err}")),
        }
    }
    bad
}

/// Items left in the queue set, and dead items that `explained` does not account for.
pub fn unexplained_items(cluster: &LocalCluster, explained: &dyn Fn(&str) -> bool) -> Vec<String> {
    let mut found = BTreeSet::new();
    for server in 0..cluster.redis.len() {
        for item in cluster.queue_items(server) {
            found.insert(format!("queued on Redis {server}: {item}"));
        }
        for item in cluster.dead_items(server) {
            if !explained(&item) {
                found.insert(format!("dead on Redis {server}: {item}"));
            }
        }
    }
    found.into_iter().collect()
}

/// Shards whose size node shows fewer bytes than were acknowledged for them, less
/// `slack` (bytes a shard may be short, for a known reason).
pub fn short_sizes(
    cluster: &LocalCluster,
    acks: &[Ack],
    slack: &HashMap<String, u64>,
) -> Result<Vec<String>, String> {
    let now = sizes(cluster)?;
    let mut short = Vec::new();
    for (shard, bytes) in acked_bytes(acks) {
        let current = now.get(&shard).copied().unwrap_or(0);
        let allowed = slack.get(&shard).copied().unwrap_or(0);
        if current + allowed < bytes {
            short.push(format!(
                "shard {shard}: size {current} < acknowledged {bytes} (allowed {allowed})"
            ));
        }
    }
    Ok(short)
}

/// The bytes acknowledged per shard.
fn acked_bytes(acks: &[Ack]) -> BTreeMap<String, u64> {
    let mut acked = BTreeMap::new();
    for ack in acks {
        *acked.entry(ack.shard.clone()).or_default() += ack.bytes;
    }
    acked
}

/// Every shard's size node now (`current`), by shard id; shards without one are left out.
pub fn sizes(cluster: &LocalCluster) -> Result<BTreeMap<String, u64>, String> {
    let state = ZkState::open(
        &cluster.zk_by_address(),
        &cluster.root,
        Duration::from_secs(10),
    )
    .map_err(|e| format!("reading sizes: {e}"))?;
    let shards = state.shards().map_err(|e| format!("reading shards: {e}"))?;
    let mut sizes = BTreeMap::new();
    for id in shards.keys() {
        if let Some(size) = state
            .shard_size(id)
            .map_err(|e| format!("shard {id}'s size: {e}"))?
        {
            sizes.insert(id.clone(), size.current);
        }
    }
    Ok(sizes)
}

/// Waits up to `limit` for every shard's size node to be its size `before` plus the bytes
/// acknowledged for it, exactly (no coordinator killed: each flushes what it counted);
/// the shards that differ at the end, in words.
pub fn sizes_differ(
    cluster: &LocalCluster,
    before: &BTreeMap<String, u64>,
    acks: &[Ack],
    limit: Duration,
) -> Vec<String> {
    let mut expected = before.clone();
    for (shard, bytes) in acked_bytes(acks) {
        *expected.entry(shard).or_default() += bytes;
    }
    let deadline = Instant::now() + limit;
    loop {
        let differ: Vec<String> = match sizes(cluster) {
            Ok(now) => expected
                .iter()
                .filter(|(id, bytes)| now.get(*id).copied().unwrap_or(0) != **bytes)
                .map(|(id, bytes)| {
                    format!("shard {id}: size {:?}, acknowledged {bytes}", now.get(id))
                })
                .collect(),
            Err(err) => vec![err],
        };
        if differ.is_empty() || Instant::now() >= deadline {
            return differ;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}
