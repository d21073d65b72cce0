//! Replication lag, measured in the product: every item the coordinator queues gets a
//! record of when (on the Redis server's clock), beside the queue and unseen by the old
//! tools; the replicator turns it into its lag histogram when it removes the item; the
//! console shows the oldest queued item's age; items old tools queue are of unknown age,
//! never guessed; records an old replicator leaves behind are swept, so the record set
//! empties with the queue; a backlog is copied oldest first; a Redis server that refuses
//! scripts still takes every upload.

mod common;

use backpack::replication_queue::Item;
use backpack_testkit::scenario::{BodySizes, PHOTOS};
use backpack_testkit::QUEUE_KEY;
use common::cluster::*;
use std::time::{Duration, Instant};

/// The queue's row of Redis server `server` in the coordinator's `/status.json`.
fn queue_row(agent: &ureq::Agent, url: &str, server: usize) -> serde_json::Value {
    get_json(agent, url)["queue"][server].clone()
}

#[test]
fn records_follow_the_queue_and_an_old_replicator_leaves_none_behind() {
    let cluster = example_cluster("lag-records-old-replicator");
    let coordinator = coordinator(&cluster, &["--quiet"]);
    let before = cluster.redis_clock_ms(0);
    let acks = upload_n(&coordinator.url(""), 40, "lagged", PHOTOS);
    let after = cluster.redis_clock_ms(0);
    for server in 0..2 {
        let queued = cluster.queue_items(server);
        assert_eq!(
            queued.len(),
            40,
            "every upload is queued on server {server}"
        );
        // The queue holds items the old tools read, as before.
        for item in &queued {
            let parsed = Item::parse(item).expect("an old-format item");
            assert!(acks.iter().any(|ack| ack.path == parsed.path), "{item}");
        }
        let records = cluster.lag_records(server);
        let recorded: Vec<&String> = records.iter().map(|(item, _)| item).collect();
        assert_eq!(
            recorded,
            queued.iter().collect::<Vec<_>>(),
            "one record an item"
        );
        if server == 0 {
            for (item, at) in &records {
                assert!(
                    (before..=after).contains(at),
                    "{item} recorded at {at}, not while it was uploaded ({before}..{after})"
                );
            }
        }
    }

    // Two items an old coordinator queued: in the queue, without a record.
    let old_items: Vec<String> = cluster.queue_items(0)[..2]
        .iter()
        .map(|item| item.replace("\"path\":\"/", "\"path\":\"/old-tools/"))
        .collect();
    cluster.push_items(&old_items);
    std::thread::sleep(Duration::from_millis(1500));
    let agent = client();
    let status = coordinator.url("/status.json");
    let row = queue_row(&agent, &status, 0);
    assert_eq!(row["length"], 42, "{row}");
    assert_eq!(row["unrecorded_items"], 2, "{row}");
    let oldest = row["oldest_queued_seconds"]
        .as_f64()
        .expect("an oldest age");
    assert!((1.4..30.0).contains(&oldest), "oldest {oldest} s: {row}");
    let page = agent
        .get(&coordinator.url("/"))
        .call()
        .expect("the console")
        .into_body()
        .read_to_string()
        .expect("a page");
    assert!(page.contains("oldest item") && page.contains("unknown age"));

    // An old replicator copies and removes the items, and knows nothing of records.
    for server in 0..2 {
        let queued = cluster.queue_items(server);
        cluster.redis_command(server, redis::cmd("SREM").arg(QUEUE_KEY).arg(&queued));
    }
    wait_for(
        "the records of the items the old replicator removed are swept",
        Duration::from_secs(30),
        || (0..2).all(|server| cluster.lag_records(server).is_empty()),
    );
    let row = queue_row(&agent, &status, 1);
    assert_eq!(row["length"], 0, "{row}");
    assert_eq!(
        row["oldest_queued_seconds"],
        serde_json::Value::Null,
        "{row}"
    );
}

#[test]
fn the_replicator_measures_each_items_lag_and_counts_unrecorded_ones_apart() {
    lag_is_measured("lag-histogram", false);
}

/// The scripts are called by their hash; a server that forgot them (`SCRIPT FLUSH`, as
/// after a restart) is sent them whole again, and records and lags are as before.
#[test]
fn a_redis_that_forgot_the_scripts_is_sent_them_again() {
    lag_is_measured("lag-histogram-flushed-scripts", true);
}

fn lag_is_measured(name: &str, flush_scripts: bool) {
    let cluster = example_cluster(name);
    let coordinator = coordinator(&cluster, &["--quiet"]);
    let started = Instant::now();
    let flush = || {
        if flush_scripts {
            for server in 0..2 {
                cluster.redis_command(server, redis::cmd("SCRIPT").arg("FLUSH"));
            }
        }
    };
    upload_n(&coordinator.url(""), 15, "waiting", PHOTOS);
    flush();
    upload_n(&coordinator.url(""), 15, "waiting-more", PHOTOS);
    flush();
    // Five of them as if an old coordinator had queued them: no record anywhere.
    let unrecorded: Vec<String> = cluster.queue_items(0)[..5].to_vec();
    for server in 0..2 {
        cluster.redis_command(
            server,
            redis::cmd("ZREM")
                .arg(format!("{QUEUE_KEY}-queued"))
                .arg(&unrecorded),
        );
    }
    // Nobody copies for two seconds: every recorded lag is at least that.
    std::thread::sleep(Duration::from_secs(2));
    let waited = started.elapsed().as_secs_f64();
    let listen = format!(
        "127.0.0.1:{}",
        backpack_testkit::free_port().expect("a port")
    );
    let replicator = replicator(&cluster, "replicator", &["--listen", &listen]);
    wait_until_drained(&cluster, Duration::from_secs(30), &[&replicator]);
    let samples = scrape_metrics(&format!("http://{listen}"));
    let sample = |name: &str| samples.get(name).copied().unwrap_or(-1.0);
    assert_eq!(sample("backpack_replicator_lag_seconds_count"), 25.0);
    assert_eq!(sample("backpack_replicator_lag_unrecorded_total"), 5.0);
    let mean = sample("backpack_replicator_lag_seconds_sum") / 25.0;
    let lived = started.elapsed().as_secs_f64();
    assert!(
        (2.0..lived).contains(&mean),
        "mean lag {mean:.2} s: items waited at least 2 s (of {waited:.2}) and at most {lived:.2} s"
    );
    // Fine buckets below 100 ms: the 10 ms one is there, and empty; so is the 1.6 s one.
    assert_eq!(
        sample("backpack_replicator_lag_seconds_bucket{le=0.01}"),
        0.0
    );
    assert_eq!(
        sample("backpack_replicator_lag_seconds_bucket{le=1.6}"),
        0.0
    );
    for server in 0..2 {
        assert!(
            cluster.lag_records(server).is_empty(),
            "records go with their items"
        );
    }
}

/// A backlog drains oldest first, so that no item waits much longer than the backlog
/// lasts (items picked at random wait an exponential time: some many times as long). One
/// copy at a time and rounds of four make the order of the copies the order the replicator
/// took the items in; the taken marks go with the items.
#[test]
fn a_backlog_is_copied_oldest_first() {
    let cluster = example_cluster("lag-oldest-first");
    let coordinator = coordinator(&cluster, &["--quiet"]);
    const FILES: usize = 60;
    for i in 0..FILES {
        let label = format!("backlog/{i}");
        upload_n(
            &coordinator.url(""),
            1,
            &label,
            BodySizes::LogUniform(500, 4500),
        );
        // Records are in ms: each upload its own.
        std::thread::sleep(Duration::from_millis(2));
    }
    let replicator = replicator(&cluster, "replicator", &["1", "--batch", "4"]);
    wait_until_drained(&cluster, Duration::from_secs(30), &[&replicator]);
    let log = log_of(&replicator);
    let order: Vec<usize> = log
        .lines()
        .filter(|line| line.ends_with(": ok"))
        .filter_map(|line| {
            line.split("copy /backlog/")
                .nth(1)?
                .split('/')
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert_eq!(order.len(), FILES, "one copy each: {log}");
    for (copied, &uploaded) in order.iter().enumerate() {
        assert!(
            copied.abs_diff(uploaded) < 4,
            "upload {uploaded} was copied {copied}th: {order:?}"
        );
    }
    for server in 0..2 {
        let taken = cluster.redis_command(
            server,
            redis::cmd("ZCARD").arg(format!("{QUEUE_KEY}-taken")),
        );
        assert_eq!(
            taken,
            redis::Value::Int(0),
            "taken marks left on server {server}"
        );
    }
}

/// Two replicators on one backlog, queued on two Redis servers: each item is copied once,
/// and a worker is seldom handed items another has just copied (which would cost it a
/// round of ZooKeeper work for nothing and a pause).
#[test]
fn two_replicators_share_a_backlog_without_picking_each_others_items() {
    let cluster = example_cluster("lag-two-replicators");
    let coordinator = coordinator(&cluster, &["--quiet"]);
    const FILES: usize = 240;
    let acks = upload_n(
        &coordinator.url(""),
        FILES,
        "shared",
        BodySizes::LogUniform(500, 4500),
    );
    let listens: Vec<String> = (0..2)
        .map(|_| {
            format!(
                "127.0.0.1:{}",
                backpack_testkit::free_port().expect("a port")
            )
        })
        .collect();
    let replicators: Vec<_> = listens
        .iter()
        .enumerate()
        .map(|(i, listen)| {
            let name = format!("replicator-{i}");
            replicator(&cluster, &name, &["--batch", "4", "--listen", listen])
        })
        .collect();
    let logs: Vec<_> = replicators.iter().collect();
    wait_until_drained(&cluster, Duration::from_secs(60), &logs);
    assert_replicated(&cluster, &acks);
    let (mut copies, mut copied_elsewhere) = (0.0, 0.0);
    for listen in &listens {
        let metrics = scrape_metrics(&format!("http://{listen}"));
        copies += metrics["backpack_replicator_copies_total"];
        copied_elsewhere += metrics["backpack_replicator_copied_elsewhere_total"];
    }
    assert_eq!(copies, FILES as f64, "one copy an item");
    assert!(
        copied_elsewhere <= (FILES / 10) as f64,
        "{copied_elsewhere} items were locked after another replicator had copied them"
    );
}

#[test]
fn a_redis_that_refuses_scripts_still_takes_every_upload() {
    let cluster = example_cluster("lag-no-scripts");
    // The operator denies scripts on the second server (as on a Redis older than 3.2).
    cluster.redis_command(
        1,
        redis::cmd("ACL")
            .arg("SETUSER")
            .arg("default")
            .arg("-eval")
            .arg("-evalsha"),
    );
    let coordinator = coordinator(&cluster, &["--quiet"]);
    let acks = upload_n(&coordinator.url(""), 20, "scriptless", PHOTOS);
    assert_eq!(acks.len(), 20);
    assert_eq!(cluster.queue_items(0), cluster.queue_items(1));
    assert_eq!(cluster.queue_items(1).len(), 20);
    assert_eq!(cluster.lag_records(0).len(), 20);
    assert!(cluster.lag_records(1).is_empty());
    let row = queue_row(&client(), &coordinator.url("/status.json"), 1);
    assert_eq!(row["unrecorded_items"], 20, "{row}");
    let replicator = replicator(&cluster, "replicator", &[]);
    wait_until_drained(&cluster, Duration::from_secs(30), &[&replicator]);
    assert_replicated(&cluster, &acks);
    assert!(cluster.lag_records(0).is_empty());
}
