//! Nodes that failed recently are tried last for a while (`--node-cooldown`), so a dead
//! node does not cost a connect timeout on every upload. They are still tried when every
//! other node of the shard failed too: a cooled-down node is a last hope, not excluded.

use parking_lot::Mutex;
use rand::seq::SliceRandom;
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub struct NodeHealth {
    cooldown: Duration,
    failed_until: Mutex<HashMap<String, Instant>>,
}

impl NodeHealth {
    pub fn new(cooldown: Duration) -> NodeHealth {
        NodeHealth {
            cooldown,
            failed_until: Mutex::new(HashMap::new()),
        }
    }

    /// The node ids in the order to try them: random, recently failed ones last.
    pub fn order(&self, nodes: &[String]) -> Vec<String> {
        let mut order = nodes.to_vec();
        order.shuffle(&mut rand::rng());
        let now = Instant::now();
        let failed = self.failed_until.lock();
        order.sort_by_key(|id| failed.get(id).is_some_and(|until| *until > now));
        order
    }

    pub fn failed(&self, id: &str) {
        self.failed_until
            .lock()
            .insert(id.to_string(), Instant::now() + self.cooldown);
    }

    pub fn succeeded(&self, id: &str) {
        let mut failed = self.failed_until.lock();
        if !failed.is_empty() {
            failed.remove(id);
        }
    }
}
