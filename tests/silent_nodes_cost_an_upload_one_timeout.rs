//! Nodes that go quiet, on hosts of a private network, under an open-loop load of 100
//! uploads a second (64 KiB, one in ten 1 MiB) through two coordinators, with two
//! replicators and six real Backpack nodes: a node blackholed, a node whose answers are
//! dropped, a link that flaps, a frozen host, a throttled link. In each, nothing
//! acknowledged is lost; no upload waits for the silent node longer than a node timeout
//! and a second before it is retried elsewhere; the queue drains within 15 s of the heal;
//! the coordinators give back the memory, node connections and spool files they held.
//! Each prints its row of the table in docs/failures.md.

mod common;

use backpack_testkit::scenario::Rig;
use backpack_testkit::NodeKind;
use common::network::{self, heal, one_at_a_time, Row, NODE_TIMEOUT};
use std::time::{Duration, Instant};

const FAULT_FOR: Duration = Duration::from_secs(20);

fn host_of_node(rig: &Rig, id: usize) -> backpack_testkit::Host {
    rig.cluster.node(id).host.clone()
}

/// The checks every scenario of this file makes; `bound` is the longest an upload to a
/// touched shard may take during the fault.
fn assert_row(row: &Row, bound: Duration) {
    row.print_and_check();
    assert!(
        row.touched.max <= bound,
        "an upload to a touched shard took {:?}, over {bound:?}",
        row.touched.max
    );
}

#[test]
fn a_blackholed_node_costs_its_uploads_one_timeout() {
    let _one = one_at_a_time();
    let row = network::run(
        "node-blackholed",
        NodeKind::Backpack,
        &["2"],
        FAULT_FOR,
        |rig| {
            let node = host_of_node(rig, 2);
            rig.cluster
                .network()
                .expect("network")
                .isolate(&node)
                .expect("isolate");
        },
        heal,
    );
    assert_row(&row, NODE_TIMEOUT + Duration::from_secs(1));
    assert!(
        row.others.p99 <= (row.before.p99 * 2).max(Duration::from_millis(50)),
        "other shards' p99 {:?} against {:?} before the fault",
        row.others.p99,
        row.before.p99
    );
}

#[test]
fn a_node_whose_answers_are_dropped_costs_its_uploads_one_timeout() {
    let _one = one_at_a_time();
    let row = network::run(
        "node-answers-dropped",
        NodeKind::Backpack,
        &["2"],
        FAULT_FOR,
        |rig| {
            let node = host_of_node(rig, 2);
            rig.cluster
                .network()
                .expect("network")
                .mute(&node)
                .expect("mute");
        },
        heal,
    );
    assert_row(&row, NODE_TIMEOUT + Duration::from_secs(1));
}

#[test]
fn a_flapping_link_costs_its_uploads_one_timeout() {
    let _one = one_at_a_time();
    let row = network::run(
        "coordinator-node-link-flapping",
        NodeKind::Backpack,
        &["2"],
        FAULT_FOR,
        |rig| {
            // Cut and healed every 2 s for the whole fault: this closure flaps the link.
            let node = host_of_node(rig, 2);
            let coordinator = rig.coordinators[0].host.clone();
            let network = rig.cluster.network().expect("network");
            let started = Instant::now();
            while started.elapsed() + Duration::from_secs(2) <= FAULT_FOR {
                network.cut(&coordinator, &node).expect("cut");
                std::thread::sleep(Duration::from_secs(2));
                network.heal();
                std::thread::sleep(Duration::from_secs(2));
            }
        },
        heal,
    );
    assert_row(&row, NODE_TIMEOUT + Duration::from_secs(1));
}

#[test]
fn a_frozen_node_host_costs_its_uploads_one_timeout() {
    let _one = one_at_a_time();
    let row = network::run(
        "node-host-frozen",
        NodeKind::Backpack,
        &["2"],
        FAULT_FOR,
        |rig| {
            let node = host_of_node(rig, 2);
            rig.cluster
                .network()
                .expect("network")
                .freeze(&node)
                .expect("freeze");
        },
        heal,
    );
    assert_row(&row, NODE_TIMEOUT + Duration::from_secs(1));
}

#[test]
fn a_throttled_node_keeps_storing() {
    let _one = one_at_a_time();
    let row = network::run(
        "node-link-throttled",
        NodeKind::Backpack,
        &["2"],
        FAULT_FOR,
        |rig| {
            let node = host_of_node(rig, 2);
            let network = rig.cluster.network().expect("network");
            for coordinator in &rig.coordinators {
                network
                    .throttle(&coordinator.host, &node, 1 << 20)
                    .expect("throttle");
            }
        },
        heal,
    );
    // Slow but working: nothing failed, and nothing waited out a timeout.
    assert_row(&row, Duration::from_secs(30));
    let outcome = &row.report.outcome;
    assert_eq!(
        outcome.failed_5xx + outcome.failed_connection,
        0,
        "{}",
        row.text()
    );
}
