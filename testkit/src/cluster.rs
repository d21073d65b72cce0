//! A whole local cluster: ZooKeeper, Redis servers, nodes (real or stand-in), the cluster
//! state made with the project's own admin commands, and coordinators.

use super::process::{wait_until, ServerProcess};
use super::{free_port, ClusterNode, Host, NginxFront, NodeKind, RedisServer, Sandbox, ZooKeeper};
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const QUEUE_KEY: &str = "backpack-queue";

pub struct LocalCluster {
    /// The `backpack` binary the admin commands and coordinators run from.
    pub bin: PathBuf,
    pub root: String,
    pub zookeeper: ZooKeeper,
    pub redis: Vec<RedisServer>,
    /// Node `i + 1` is `nodes[i]`.
    pub nodes: Vec<ClusterNode>,
    // Dropped last: servers above stop before their directory goes.
    pub sandbox: Sandbox,
}

fn other_error(message: String) -> io::Error {
    io::Error::other(message)
}

impl LocalCluster {
    /// Starts ZooKeeper, `redis` Redis servers and `nodes` WebDAV nodes, and runs init and
    /// add-server for every node (ids 1, 2, ...). No shards yet.
    pub fn start(bin: &Path, label: &str, redis: usize, nodes: usize) -> io::Result<LocalCluster> {
        LocalCluster::start_with(bin, label, redis, nodes, NodeKind::WebDav)
    }

    /// The seed example: two Redis, six nodes of `kind`, shards 1, 2 and 3 on nodes
    /// (1, 4), (2, 5) and (3, 6), 100 GB each, enabled.
    pub fn seed_example(bin: &Path, label: &str, kind: NodeKind) -> io::Result<LocalCluster> {
        LocalCluster::seed_example_in(Sandbox::new(label)?, 1, bin, kind)
    }

    /// The seed example on hosts of a private network, as production runs it: every
    /// server on a host of its own, and a ZooKeeper ensemble of three.
    pub fn seed_example_on_hosts(
        bin: &Path,
        label: &str,
        kind: NodeKind,
    ) -> io::Result<LocalCluster> {
        LocalCluster::seed_example_in(Sandbox::with_network(label)?, 3, bin, kind)
    }

    fn seed_example_in(
        sandbox: Sandbox,
        zookeepers: usize,
        bin: &Path,
        kind: NodeKind,
    ) -> io::Result<LocalCluster> {
        let cluster = LocalCluster::start_in(sandbox, zookeepers, bin, 2, 6, kind)?;
        for (id, nodes) in [("1", [1, 4]), ("2", [2, 5]), ("3", [3, 6])] {
            cluster.add_enabled_shard(id, &nodes, "100gb")?;
        }
        Ok(cluster)
    }

    /// Like `start`, with nodes of `kind`.
    pub fn start_with(
        bin: &Path,
        label: &str,
        redis: usize,
        nodes: usize,
        kind: NodeKind,
    ) -> io::Result<LocalCluster> {
        LocalCluster::start_in(Sandbox::new(label)?, 1, bin, redis, nodes, kind)
    }

    /// Like `start_with`, in `sandbox` (on loopback or on hosts), with a ZooKeeper
    /// ensemble of `zookeepers` servers.
    pub fn start_in(
        sandbox: Sandbox,
        zookeepers: usize,
        bin: &Path,
        redis: usize,
        nodes: usize,
        kind: NodeKind,
    ) -> io::Result<LocalCluster> {
        let zookeeper = ZooKeeper::start_ensemble(&sandbox, zookeepers)?;
        let redis = (1..=redis)
            .map(|i| RedisServer::start(&sandbox, &format!("redis-{i}")))
            .collect::<io::Result<Vec<_>>>()?;
        let nodes = (1..=nodes)
            .map(|i| ClusterNode::start(&sandbox, &format!("node-{i}"), kind))
            .collect::<io::Result<Vec<_>>>()?;
        let cluster = LocalCluster {
            bin: bin.to_path_buf(),
            root: "/backpack".to_string(),
            zookeeper,
            redis,
            nodes,
            sandbox,
        };
        let redis_list: Vec<String> = cluster.redis.iter().map(|r| r.address()).collect();
        cluster.admin(
            "backpack-coordinator-init",
            &[QUEUE_KEY, &redis_list.join(",")],
        )?;
        for (i, node) in cluster.nodes.iter().enumerate() {
            cluster.admin(
                "backpack-coordinator-add-server",
                &[&(i + 1).to_string(), &node.url()],
            )?;
        }
        Ok(cluster)
    }

    /// The connect string the daemons and admin commands get (host names on hosts).
    pub fn zk(&self) -> String {
        self.zookeeper.connect_string()
    }

    /// The connect string for a ZooKeeper client in the test process itself (addresses:
    /// the test does not see a network's host names).
    pub fn zk_by_address(&self) -> String {
        self.zookeeper.connect_string_by_address()
    }

    /// The private network its servers run in, when they run on hosts.
    pub fn network(&self) -> Option<&crate::Network> {
        self.sandbox.network()
    }

    /// Runs an admin command with the cluster's ZooKeeper and root before `args`;
    /// returns its stdout, or its stderr as the error.
    pub fn admin(&self, command: &str, args: &[&str]) -> io::Result<String> {
        let output = self
            .sandbox
            .lab()
            .command(&self.bin)?
            .arg0(command)
            .arg(self.zk())
            .arg(&self.root)
            .args(args)
            .output()?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(other_error(format!(
                "{command} {args:?}: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )))
        }
    }

    /// Adds shard `id` on the given node ids with `size`, and enables it.
    pub fn add_enabled_shard(&self, id: &str, nodes: &[usize], size: &str) -> io::Result<()> {
        let list: Vec<String> = nodes.iter().map(usize::to_string).collect();
        self.admin(
            "backpack-coordinator-add-shard",
            &[id, &list.join(","), size],
        )?;
        self.admin("backpack-coordinator-enable-shard", &[id])?;
        Ok(())
    }

    /// Marks shards writable (`enable-shard`) or read-only (`disable-shard`).
    pub fn set_writable(&self, shards: &[&str], writable: bool) -> io::Result<()> {
        let command = match writable {
            true => "backpack-coordinator-enable-shard",
            false => "backpack-coordinator-disable-shard",
        };
        for shard in shards {
            self.admin(command, &[shard])?;
        }
        Ok(())
    }

    /// The node with id `id` (1-based).
    pub fn node(&self, id: usize) -> &ClusterNode {
        &self.nodes[id - 1]
    }

    pub fn node_mut(&mut self, id: usize) -> &mut ClusterNode {
        &mut self.nodes[id - 1]
    }

    /// Starts a coordinator on a free port with extra flags.
    pub fn start_coordinator(&self, name: &str, flags: &[&str]) -> io::Result<CoordinatorProcess> {
        self.start_coordinator_from(&self.bin, name, flags)
    }

    /// The same with another build of `backpack` (to compare two builds on one cluster).
    pub fn start_coordinator_from(
        &self,
        bin: &Path,
        name: &str,
        flags: &[&str],
    ) -> io::Result<CoordinatorProcess> {
        let port = free_port()?;
        let host = self.sandbox.host(name)?;
        let dir = self.sandbox.subdir(name)?;
        let mut args = vec![
            self.zk(),
            self.root.clone(),
            host.ip.to_string(),
            port.to_string(),
            "--spool-dir".to_string(),
            dir.display().to_string(),
        ];
        args.extend(flags.iter().map(|s| s.to_string()));
        let mut launch =
            self.sandbox
                .launch_on(&host, name, &bin.display().to_string(), args, &dir);
        launch.arg0 = Some("backpack-coordinator".to_string());
        let process = ServerProcess::start(launch)?;
        let mut coordinator = CoordinatorProcess {
            port,
            host,
            dir,
            process,
        };
        coordinator.wait_ready(0)?;
        Ok(coordinator)
    }

    /// Starts `backpack-replicator <zk> <root> args...`, logging to `<name>/log`.
    pub fn start_replicator(&self, name: &str, args: &[&str]) -> io::Result<ServerProcess> {
        self.start_replicator_from(&self.bin, &self.zk(), name, args)
    }

    /// The same with another build of `backpack` and another connect string.
    pub fn start_replicator_from(
        &self,
        bin: &Path,
        zk: &str,
        name: &str,
        args: &[&str],
    ) -> io::Result<ServerProcess> {
        let dir = self.sandbox.subdir(name)?;
        let mut all = vec![zk.to_string(), self.root.clone()];
        all.extend(args.iter().map(|s| s.to_string()));
        let host = self.sandbox.host(name)?;
        let mut launch = self
            .sandbox
            .launch_on(&host, name, &bin.display().to_string(), all, &dir);
        launch.arg0 = Some("backpack-replicator".to_string());
        ServerProcess::start(launch)
    }
}

impl LocalCluster {
    /// The read front `bp-nginx-gen` writes for the cluster as it is now, served by nginx
    /// on a free port (of its own host, when the cluster runs on hosts).
    pub fn start_front(&self, name: &str) -> io::Result<NginxFront> {
        let port = free_port()?;
        let host = self.sandbox.host(name)?;
        let output = host
            .command(&self.bin)?
            .arg0("bp-nginx-gen")
            .args([&self.zk(), &self.root, "--listen"])
            .arg(host.socket(port).to_string())
            .output()?;
        if !output.status.success() {
            return Err(other_error(format!(
                "bp-nginx-gen: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        let config = self.sandbox.path().join(format!("{name}.conf"));
        std::fs::write(&config, &output.stdout)?;
        NginxFront::start(&self.sandbox, name, &config, port)
    }
}

pub struct CoordinatorProcess {
    pub port: u16,
    pub host: Host,
    /// Holds its log and its spool files.
    pub dir: PathBuf,
    pub process: ServerProcess,
}

impl CoordinatorProcess {
    /// Lines of its log (which restarts append to) that say it listens on its port.
    fn times_listening(&self) -> usize {
        let said = format!("listening on {} ", self.host.socket(self.port));
        self.log()
            .lines()
            .filter(|line| line.contains(&said))
            .count()
    }

    /// Waits until it listens; fails at once, with its log, if it exits.
    ///
    /// Ready means a new line of its own log says it listens on the port, after the
    /// `before` such lines of earlier runs: something else answering on the port would
    /// pass a mere connection test.
    fn wait_ready(&mut self, before: usize) -> io::Result<()> {
        let mut exited = false;
        let ready = wait_until("backpack-coordinator", Duration::from_secs(20), || {
            exited = !self.process.is_running();
            exited || self.times_listening() > before
        });
        if exited || ready.is_err() {
            let log = self.log();
            return Err(other_error(format!(
                "backpack-coordinator did not start: {}",
                log.trim()
            )));
        }
        Ok(())
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.host.socket(self.port))
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.process.log()).unwrap_or_default()
    }

    pub fn restart(&mut self) -> io::Result<()> {
        let before = self.times_listening();
        self.process.restart()?;
        self.wait_ready(before)
    }
}
