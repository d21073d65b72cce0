//! The cluster a scenario runs on: the seed example (ZooKeeper, two Redis, six nodes in
//! three shards), two coordinators, two replicators, and the read front `bp-nginx-gen`
//! writes for it.

use crate::cluster::{CoordinatorProcess, LocalCluster};
use crate::front::NginxFront;
use crate::node::NodeKind;
use crate::process::ServerProcess;
use std::io;
use std::path::Path;

pub struct Rig {
    pub coordinators: Vec<CoordinatorProcess>,
    pub replicators: Vec<ServerProcess>,
    pub front: NginxFront,
    // Dropped last: its servers stop after the daemons that use them.
    pub cluster: LocalCluster,
}

impl Rig {
    /// The seed example on nodes of `kind`, with coordinators `coordinator-a` and
    /// `coordinator-b` run with `coordinator_flags`, and replicators `replicator-a` and
    /// `replicator-b` run with `replicator_flags`.
    pub fn seed_example(
        bin: &Path,
        label: &str,
        kind: NodeKind,
        coordinator_flags: &[&str],
        replicator_flags: &[&str],
    ) -> io::Result<Rig> {
        let cluster = LocalCluster::seed_example(bin, label, kind)?;
        Rig::around(cluster, coordinator_flags, replicator_flags)
    }

    /// The same on hosts of a private network (see `LocalCluster::seed_example_on_hosts`):
    /// every server, coordinator, replicator and the front on a host of its own.
    pub fn seed_example_on_hosts(
        bin: &Path,
        label: &str,
        kind: NodeKind,
        coordinator_flags: &[&str],
        replicator_flags: &[&str],
    ) -> io::Result<Rig> {
        let cluster = LocalCluster::seed_example_on_hosts(bin, label, kind)?;
        Rig::around(cluster, coordinator_flags, replicator_flags)
    }

    /// Two coordinators, two replicators and the front around `cluster`.
    pub fn around(
        cluster: LocalCluster,
        coordinator_flags: &[&str],
        replicator_flags: &[&str],
    ) -> io::Result<Rig> {
        let coordinators = ["coordinator-a", "coordinator-b"]
            .iter()
            .map(|name| cluster.start_coordinator(name, coordinator_flags))
            .collect::<io::Result<Vec<_>>>()?;
        let replicators = ["replicator-a", "replicator-b"]
            .iter()
            .map(|name| cluster.start_replicator(name, replicator_flags))
            .collect::<io::Result<Vec<_>>>()?;
        let front = cluster.start_front("front")?;
        Ok(Rig {
            coordinators,
            replicators,
            front,
            cluster,
        })
    }

    /// The coordinators' base URLs, the targets of a load.
    pub fn targets(&self) -> Vec<String> {
        self.coordinators.iter().map(|c| c.url("")).collect()
    }

    /// The daemons that are not running, with the end of their logs.
    pub fn not_running(&mut self) -> Vec<String> {
        let mut down = Vec::new();
        for (i, c) in self.coordinators.iter_mut().enumerate() {
            if !c.process.is_running() {
                let tail = c.process.log_tail(10);
                down.push(format!("coordinator {i} is not running:\n{tail}"));
            }
        }
        for (i, r) in self.replicators.iter_mut().enumerate() {
            if !r.is_running() {
                down.push(format!(
                    "replicator {i} is not running:\n{}",
                    r.log_tail(10)
                ));
            }
        }
        down
    }
}
