//! Nodes that failed recently are tried last for a while (`--node-cooldown`), so a dead
//! node does not cost a connect timeout on every upload. They are still tried when every
//! other node of the shard failed too: a cooled-down node is a last hope, not excluded.
//! The rule itself is `transport::peer`'s, as for Redis servers.

use crate::transport::peer::{try_order, Cooldown};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::Duration;

pub struct NodeHealth {
    period: Duration,
    nodes: Mutex<HashMap<String, Cooldown>>,
}

impl NodeHealth {
    pub fn new(period: Duration) -> NodeHealth {
        NodeHealth {
            period,
            nodes: Mutex::new(HashMap::new()),
        }
    }

    /// The node ids in the order to try them: random, recently failed ones last.
    pub fn order(&self, nodes: &[String]) -> Vec<String> {
        let cooling = self.nodes.lock();
        try_order(nodes.to_vec(), |id| {
            cooling.get(id).is_some_and(Cooldown::is_cooling)
        })
    }

    pub fn failed(&self, id: &str) {
        self.nodes
            .lock()
            .entry(id.to_string())
            .or_default()
            .record(false, self.period);
    }

    pub fn succeeded(&self, id: &str) {
        let mut nodes = self.nodes.lock();
        if !nodes.is_empty() {
            nodes.remove(id);
        }
    }
}
