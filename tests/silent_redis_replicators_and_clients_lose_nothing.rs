//! The other peers that go quiet, on hosts of a private network, under the same open-loop
//! load as the node scenarios: a Redis server of the queue blackholed, a replicator cut
//! from one node of a shard while it copies, a client whose link goes silent mid-body.
//! Nothing acknowledged is lost, the queue drains within 15 s of the heal, and the
//! coordinators give back what they held.

mod common;

use backpack_testkit::scenario::levels;
use backpack_testkit::NodeKind;
use common::network::{self, heal, one_at_a_time};
use std::io::Write;
use std::time::Duration;

const FAULT_FOR: Duration = Duration::from_secs(20);

/// The daemons' default `--redis-timeout`.
const REDIS_TIMEOUT: Duration = Duration::from_secs(1);

#[test]
fn a_blackholed_redis_server_holds_no_upload() {
    let _one = one_at_a_time();
    let row = network::run(
        "redis-blackholed",
        NodeKind::WebDav,
        &["1", "2", "3"],
        FAULT_FOR,
        |rig| {
            let redis = rig.cluster.redis[0].host.clone();
            rig.cluster
                .network()
                .expect("network")
                .isolate(&redis)
                .expect("isolate");
        },
        heal,
    );
    row.print_and_check();
    let outcome = &row.report.outcome;
    assert_eq!(
        outcome.failed_5xx + outcome.failed_connection,
        0,
        "{}",
        row.text()
    );
    assert!(
        row.touched.p99 < REDIS_TIMEOUT + Duration::from_millis(100),
        "p99 {:?} with a silent Redis",
        row.touched.p99
    );
}

#[test]
fn a_replicator_cut_from_a_node_mid_copy_leaves_its_items_to_finish() {
    let _one = one_at_a_time();
    let row = network::run(
        "replicator-cut-from-a-node",
        NodeKind::Backpack,
        &["2"],
        FAULT_FOR,
        |rig| {
            let replicator = rig.cluster.sandbox.host("replicator-a").expect("host");
            let node = rig.cluster.node(5).host.clone();
            let network = rig.cluster.network().expect("network");
            network.cut(&replicator, &node).expect("cut");
        },
        heal,
    );
    row.print_and_check();
}

#[test]
fn a_client_gone_silent_mid_body_leaves_nothing_held() {
    let _one = one_at_a_time();
    let row = network::run(
        "client-silent-mid-body",
        NodeKind::WebDav,
        &[],
        FAULT_FOR,
        |rig| {
            // A client on a host of its own starts a 4 MiB upload, sends 1 MiB of it, and
            // its link goes silent: the coordinator holds a spool file for it until
            // its body timeout (30 s by default) ends the upload.
            let client = rig.cluster.sandbox.host("client").expect("client host");
            let coordinator = rig.coordinators[0].host.socket(rig.coordinators[0].port);
            let sending = client
                .spawn_thread(move || {
                    let mut stream = std::net::TcpStream::connect(coordinator)?;
                    let head = "PUT /silent/client.bin HTTP/1.1\r\nHost: c\r\nContent-Length: 4194304\r\n\r\n";
                    stream.write_all(head.as_bytes())?;
                    stream.write_all(&vec![7u8; 1 << 20])?;
                    // Held open, silent, until long after the test's checks.
                    std::thread::sleep(Duration::from_secs(120));
                    Ok::<_, std::io::Error>(())
                })
                .expect("client thread");
            std::thread::sleep(Duration::from_secs(1));
            assert!(!sending.is_finished(), "the client's upload ended early");
            let network = rig.cluster.network().expect("network");
            network.isolate(&client).expect("isolate the client");
            let held = levels::holdings(&rig.coordinators[0], &[]);
            assert!(
                held.spool_files >= 1,
                "the silent upload holds a spool file: {held:?}"
            );
        },
        heal,
    );
    // The coordinator gave the spool file back (`print_and_check` checks it).
    row.print_and_check();
}
