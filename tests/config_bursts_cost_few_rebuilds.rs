//! A burst of configuration changes, on a real ZooKeeper, costs a coordinator a few
//! snapshot rebuilds and ends in the exact final state.

mod common;

use backpack::zk::ZkSession;
use backpack_testkit::LocalCluster;
use common::cluster::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const SHARDS: usize = 10;

/// The shards `/metrics` shows as writable, and the snapshots built so far.
fn writable_and_snapshots(url: &str) -> (BTreeSet<String>, f64) {
    let samples = scrape_metrics(url);
    let writable = (1..=SHARDS)
        .map(|id| id.to_string())
        .filter(|id| {
            samples.get(&format!(
                "backpack_coordinator_shard_writable{{shard={id}}}"
            )) == Some(&1.0)
        })
        .collect();
    let snapshots = samples["backpack_coordinator_configuration_snapshots_total"];
    (writable, snapshots)
}

#[test]
fn a_burst_of_a_thousand_changes_costs_a_few_rebuilds_and_ends_exact() {
    let cluster = LocalCluster::start(bin(), "burst", 1, 2).unwrap();
    for id in 1..=SHARDS {
        cluster
            .add_enabled_shard(&id.to_string(), &[1, 2], "1gb")
            .unwrap();
    }
    let coordinator = coordinator(&cluster, &["--quiet"]);
    let url = coordinator.url("");
    let (writable, before) = writable_and_snapshots(&url);
    assert_eq!(writable.len(), SHARDS);

    // 1,000 versions of the shards-map, each disabling or enabling one shard, written as
    // fast as ZooKeeper takes them (pipelined, 50 at a time, each on the last version).
    let zk = ZkSession::connect(&cluster.zk(), Duration::from_secs(5)).unwrap();
    let path = format!("{}/shards-map", cluster.root);
    let (bytes, mut version) = zk.get(&path).unwrap().expect("shards-map");
    let mut map: Value = serde_json::from_slice(&bytes).unwrap();
    let started = Instant::now();
    for chunk in (0..1000).collect::<Vec<usize>>().chunks(50) {
        let mut writes = Vec::new();
        for i in chunk {
            // Shard k is toggled by changes k-1, k-1+7, ...: odd counts end disabled.
            let shard = &mut map[(i % 7 + 1).to_string()];
            let disabled = shard.get("read_only").is_some();
            let fields = shard.as_object_mut().unwrap();
            if disabled {
                fields.remove("read_only");
            } else {
                fields.insert("read_only".into(), Value::Bool(true));
            }
            writes.push((path.clone(), map.to_string().into_bytes(), version));
            version += 1;
        }
        for outcome in zk.set_many(&writes).unwrap() {
            assert!(outcome.unwrap(), "a change of the burst was refused");
        }
    }
    let burst = started.elapsed();
    // 1000 = 7 x 142 + 6: shards 1-6 toggled 143 times (odd: disabled), shard 7 142 times.
    let expected: BTreeSet<String> = (7..=SHARDS).map(|id| id.to_string()).collect();

    let deadline = Instant::now() + Duration::from_secs(5);
    let (writable, after) = loop {
        let (writable, snapshots) = writable_and_snapshots(&url);
        if writable == expected || Instant::now() > deadline {
            break (writable, snapshots);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let rebuilds = after - before;
    eprintln!("1000 changes in {burst:?}: {rebuilds} snapshot rebuilds");
    assert_eq!(writable, expected, "{}", coordinator.log());
    assert!(rebuilds <= 10.0, "{rebuilds} rebuilds for one burst");
    // Uploads see the final state too.
    let agent = client();
    for i in 0..30 {
        let (status, answer) = put(&agent, &format!("{url}/after-burst/{i}"), b"x");
        assert_eq!(status, 200, "{answer}");
        assert!(expected.contains(&shard_of(&answer)), "{answer}");
    }
    // The log says counts, never a thousand ids.
    let log = coordinator.log();
    assert!(log.lines().all(|line| line.len() < 400), "{log}");
    assert!(
        log.contains(&format!("{SHARDS} shards, 4 writable")),
        "{log}"
    );
}
