//! The test kit's ZooKeeper ensembles: three or five servers that elect a leader, elect
//! again when it dies, take a restarted server back as a follower, and keep serving with
//! a minority cut off (while the cut-off servers stop serving).

use backpack::zk::{NodeKind, ZkSession};
use backpack_testkit::{Sandbox, ZooKeeper};
use std::time::{Duration, Instant};

/// Waits up to `limit` for `done`; how long it took.
fn within(limit: Duration, what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    started.elapsed()
}

#[test]
fn an_ensemble_of_three_elects_again_when_its_leader_dies() {
    let sandbox = Sandbox::new("zk-three").expect("sandbox");
    let mut zookeeper = ZooKeeper::start_ensemble(&sandbox, 3).expect("three servers");
    let leader = zookeeper.leader().expect("a leader");
    let session = ZkSession::connect(
        &zookeeper.connect_string_by_address(),
        Duration::from_secs(10),
    )
    .expect("connect to the ensemble");
    assert!(session
        .create("/written", b"before".to_vec(), NodeKind::Persistent)
        .expect("create"));

    zookeeper.servers[leader].process().kill();
    let elected = within(Duration::from_secs(20), "a new leader", || {
        zookeeper.leader().is_some_and(|now| now != leader)
    });
    println!("a new leader {elected:?} after the old one was killed");
    let (data, _) = session
        .get("/written")
        .expect("read")
        .expect("the node is there");
    assert_eq!(data, b"before");

    zookeeper.servers[leader]
        .restart()
        .expect("restart the old leader");
    assert_eq!(zookeeper.mode(leader).as_deref(), Some("follower"));
}

#[test]
fn an_ensemble_of_five_on_hosts_serves_with_two_servers_cut_off() {
    let sandbox = Sandbox::with_network("zk-five").expect("network");
    let zookeeper = ZooKeeper::start_ensemble(&sandbox, 5).expect("five servers");
    assert_eq!(zookeeper.connect_string().split(',').count(), 5);
    let leader = zookeeper.leader().expect("a leader");
    let cut: Vec<usize> = (0..5).filter(|i| *i != leader).take(2).collect();
    let network = sandbox.network().expect("network");
    // Cut from the other servers only: the lab still asks every one of them its mode.
    for i in &cut {
        for j in (0..5).filter(|j| j != i) {
            let (a, b) = (&zookeeper.servers[*i].host, &zookeeper.servers[j].host);
            network.cut(a, b).expect("cut");
        }
    }
    // The majority goes on: a client of theirs writes.
    let majority: Vec<String> = (0..5)
        .filter(|i| !cut.contains(i))
        .map(|i| zookeeper.servers[i].addr().to_string())
        .collect();
    let session =
        ZkSession::connect(&majority.join(","), Duration::from_secs(10)).expect("connect");
    assert!(session
        .create("/majority", Vec::new(), NodeKind::Persistent)
        .expect("create"));
    assert!(zookeeper.leader().is_some());
    // The cut-off pair lost the leader: after syncLimit x tickTime they stop serving.
    let stopped = within(
        Duration::from_secs(15),
        "the cut-off servers stop serving",
        || cut.iter().all(|i| zookeeper.mode(*i).is_none()),
    );
    println!("the cut-off servers stopped serving {stopped:?} after the cut");
    network.heal();
    // Healed, every server serves again.
    let rejoined = within(Duration::from_secs(30), "all five serving", || {
        (0..5).all(|i| zookeeper.mode(i).is_some())
    });
    println!("all five serve {rejoined:?} after the heal");
}
