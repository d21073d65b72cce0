//! The observer of writes: what the nodes themselves say they stored, and when. A file
//! that two PUTs write at the same time is what item locks exist to prevent (two
//! replicators copying one item at once); a node's log of finished PUTs shows it.

use crate::{LocalCluster, LoggedPut};
use std::collections::BTreeMap;

/// What the nodes' logs say about the scenario's writes.
#[derive(Debug, Default)]
pub struct Writes {
    /// Files stored, one per node and path with a successful PUT.
    pub files: usize,
    /// Files that more than one successful PUT wrote on the same node.
    pub written_twice: usize,
    /// Pairs of successful PUTs of one file on one node whose times overlap, in words.
    pub at_once: Vec<String>,
    /// PUTs that ended without storing anything (cut short, refused).
    pub unfinished: usize,
}

/// Reads every node's log of PUTs. An error when a node keeps no log (a real node).
pub fn observe(cluster: &LocalCluster) -> Result<Writes, String> {
    let mut writes = Writes::default();
    for (i, node) in cluster.nodes.iter().enumerate() {
        let puts = node
            .puts()
            .ok_or_else(|| format!("node {} keeps no log of its writes", i + 1))?;
        let mut by_path: BTreeMap<String, Vec<LoggedPut>> = BTreeMap::new();
        for put in puts {
            if put.path == "/stats" {
                continue;
            }
            if !(200..300).contains(&put.status) {
                writes.unfinished += 1;
                continue;
            }
            by_path.entry(put.path.clone()).or_default().push(put);
        }
        writes.files += by_path.len();
        for (path, mut puts) in by_path {
            if puts.len() < 2 {
                continue;
            }
            writes.written_twice += 1;
            puts.sort_by(|a, b| a.start.total_cmp(&b.start));
            let pairs = (0..puts.len()).flat_map(|a| (a + 1..puts.len()).map(move |b| (a, b)));
            for (a, b) in pairs {
                let (first, second) = (&puts[a], &puts[b]);
                if second.start < first.end {
                    writes.at_once.push(format!(
                        "node {} {path}: {:.3}-{:.3} and {:.3}-{:.3}",
                        i + 1,
                        first.start,
                        first.end,
                        second.start,
                        second.end
                    ));
                }
            }
        }
    }
    Ok(writes)
}
