//! The seed example as production runs it: every server on a host of its own in a private
//! network, named by host name in ZooKeeper and in the daemons' flags; six real Backpack
//! nodes, two Redis servers, a ZooKeeper ensemble of three, two coordinators, two
//! replicators and the front. And the scenario runner on it, with a ZooKeeper server cut
//! off under load.

mod common;

use backpack::zk_state::ZkState;
use backpack_testkit::scenario::{self, checks, upload_n, Plan, Rig, PHOTOS};
use backpack_testkit::NodeKind;
use common::cluster::bin;
use std::time::{Duration, Instant};

fn rig(label: &str) -> Rig {
    let started = Instant::now();
    let rig = Rig::seed_example_on_hosts(
        bin(),
        label,
        NodeKind::Backpack,
        &["--quiet", "--zk-session-timeout", "4s"],
        &["--quiet", "--zk-session-timeout", "4s"],
    )
    .expect("start the seed example on hosts");
    println!(
        "the seed example on hosts started in {:?}",
        started.elapsed()
    );
    rig
}

#[test]
fn a_hundred_uploads_on_hosts_are_read_back_through_the_front() {
    let mut rig = rig("hosts-seed");
    let cluster = &rig.cluster;
    let network = cluster.network().expect("the cluster runs on hosts");

    // Every server has a host of its own; the state and the flags hold names.
    let names: Vec<String> = network.hosts().iter().map(|h| h.name.clone()).collect();
    for expected in [
        "zookeeper-1",
        "zookeeper-2",
        "zookeeper-3",
        "redis-1",
        "redis-2",
        "node-1",
        "node-6",
        "coordinator-a",
        "coordinator-b",
        "replicator-a",
        "replicator-b",
        "front",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "no host {expected}: {names:?}"
        );
    }
    assert_eq!(
        cluster.zk().split(',').count(),
        3,
        "the connect string lists the ensemble: {}",
        cluster.zk()
    );
    assert!(cluster.zk().starts_with("zookeeper-1:"), "{}", cluster.zk());
    let state = ZkState::open(
        &cluster.zk_by_address(),
        &cluster.root,
        Duration::from_secs(10),
    )
    .expect("open the state");
    let servers = state.servers().expect("servers-map");
    assert!(
        servers.values().all(|node| node.host.starts_with("node-")),
        "servers-map holds names: {servers:?}"
    );
    let leaders: Vec<usize> = (0..3)
        .filter(|i| cluster.zookeeper.mode(*i).as_deref() == Some("leader"))
        .collect();
    assert_eq!(leaders.len(), 1, "one leader in the ensemble");

    let targets = rig.targets();
    let mut acks = upload_n(&targets[0], 50, "hosts-a", PHOTOS);
    acks.extend(upload_n(&targets[1], 50, "hosts-b", PHOTOS));
    checks::wait_drained(&rig.cluster, Duration::from_secs(60)).expect("the queue drains");
    let missing = checks::missing_copies(&rig.cluster, &acks).expect("check copies");
    assert!(missing.is_empty(), "copies missing: {missing:?}");
    let unreadable = checks::unreadable_through_front(&rig.front, &acks);
    assert!(
        unreadable.is_empty(),
        "not served by the front: {unreadable:?}"
    );
    assert!(rig.not_running().is_empty(), "{:?}", rig.not_running());
}

#[test]
fn a_zookeeper_server_cut_off_under_load_loses_nothing() {
    let mut rig = rig("hosts-zk-cut");
    let leader = rig.cluster.zookeeper.leader().expect("a leader");
    let host = rig.cluster.zookeeper.servers[leader].host.clone();
    let plan = Plan::closed_loop(
        "zookeeper-leader-isolated",
        Duration::from_secs(6),
        Duration::from_secs(12),
    );
    let report = scenario::run(
        &mut rig,
        &plan,
        |rig| {
            let network = rig.cluster.network().expect("network");
            network.isolate(&host).expect("isolate the leader");
        },
        |rig| rig.cluster.network().expect("network").heal(),
    );
    println!("{}\n{}", scenario::TABLE_HEADER, report.row());
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.lost, 0);
    assert!(report.outcome.acks.len() > 50, "{}", report.row());
    // The two that were left elected a leader between them.
    let now = rig
        .cluster
        .zookeeper
        .leader()
        .expect("a leader after the heal");
    println!(
        "leader before: zookeeper-{}, after: zookeeper-{}",
        leader + 1,
        now + 1
    );
}
