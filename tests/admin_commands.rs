//! Admin commands on state the old tools left, on the queue's Redis, and from an installed
//! copy: print-stats, set-queue, dump-shards, `--help` for every command.

mod common;

use backpack::zk::NodeKind;
use backpack_testkit::{RedisServer, Sandbox};
use common::*;

#[test]
fn reads_the_old_tools_exact_state() {
    let (zk, root) = (zookeeper(), fresh_root("old-state"));
    let s = session();
    s.create_path(&root).unwrap();
    let old = [
        (
            "queue",
            r#"{"key":"backpack-queue","servers":[{"host":"127.0.0.1","port":"23001"}]}"#,
        ),
        (
            "servers-map",
            r#"{"1":{"host":"127.0.0.1","port":null},"2":{"host":"one","port":"24002"},"10":{"host":"127.0.0.1","port":24001}}"#,
        ),
        (
            "shards-map",
            r#"{"1":{"nodes":["10","2"]},"7":{"read_only":true,"nodes":["1"],"note":"kept"}}"#,
        ),
        ("shard-size-1", r#"{"capacity":1610612736,"current":null}"#),
        (
            "shard-size-7",
            r#"{"capacity":1073741824,"current":536870912}"#,
        ),
    ];
    for (name, bytes) in old {
        s.create(
            &format!("{root}/{name}"),
            bytes.as_bytes().to_vec(),
            NodeKind::Persistent,
        )
        .unwrap();
    }
    let dump = ok(DUMP, &[&zk, &root]);
    let parsed: serde_json::Value = serde_json::from_str(&dump).expect("dump-shards prints JSON");
    assert_eq!(parsed["1"]["enabled"], true);
    assert_eq!(parsed["7"]["enabled"], false);
    assert_eq!(parsed["1"]["nodes"]["10"]["port"], 24001);
    assert_eq!(parsed["7"]["nodes"]["1"]["port"], serde_json::Value::Null);
    assert!(
        dump.starts_with("{\n    \"1\": {\n        \"enabled\": true,"),
        "{dump}"
    );

    let stats = stdout(&run(STATS, &[&zk, &root]));
    assert!(stats.contains("1 [10, 2]: 0b / 1.5gb (0%) rw"), "{stats}");
    assert!(
        stats.contains("7 [1]: 512mb / 1gb (50%) r [##########..........]"),
        "{stats}"
    );
    assert!(stats.contains("Overall: 512mb / 2.5gb (20%)"), "{stats}");

    // A rewrite touches only what it changes: null and numeric ports and unknown keys stay.
    ok(ADD_SERVER, &[&zk, &root, "3", "http://127.0.0.1:24003"]);
    assert_eq!(
        node(&s, &format!("{root}/servers-map")).unwrap(),
        r#"{"1":{"host":"127.0.0.1","port":null},"2":{"host":"one","port":"24002"},"3":{"host":"127.0.0.1","port":"24003"},"10":{"host":"127.0.0.1","port":24001}}"#
    );
    ok(ENABLE, &[&zk, &root, "7"]);
    assert_eq!(
        node(&s, &format!("{root}/shards-map")).unwrap(),
        r#"{"1":{"nodes":["10","2"]},"7":{"nodes":["1"],"note":"kept"}}"#
    );
}

#[test]
fn print_stats_reads_the_queue_length_from_redis() {
    let sandbox = Sandbox::new("stats-redis").unwrap();
    let mut first = RedisServer::start(&sandbox, "redis-1").unwrap();
    let second = RedisServer::start(&sandbox, "redis-2").unwrap();
    let (zk, root) = (zookeeper(), fresh_root("stats-redis"));
    init(
        &zk,
        &root,
        &format!("{},{}", first.address(), second.address()),
    );
    let client = redis::Client::open(format!("redis://{}/", second.address())).unwrap();
    let mut conn = client.get_connection().unwrap();
    for item in ["a", "b", "c"] {
        let _: i64 = redis::cmd("SADD")
            .arg("backpack-queue")
            .arg(item)
            .query(&mut conn)
            .unwrap();
    }
    // The first server answers first: its copy of the queue is empty.
    assert!(ok(STATS, &[&zk, &root]).contains("Replication queue: 0 items\n"));
    first.stop();
    assert!(ok(STATS, &[&zk, &root]).contains("Replication queue: 3 items\n"));
    drop(second);
    let output = run(STATS, &[&zk, &root, "--redis-timeout", "1"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).contains("Replication queue: unknown"));
    assert!(
        stderr(&output).contains("no Redis server of the queue answered"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn set_queue_replaces_key_and_servers() {
    let (zk, root) = (zookeeper(), fresh_root("set-queue"));
    init(&zk, &root, "127.0.0.1:13001");
    let said = ok(
        SET_QUEUE,
        &[&zk, &root, "other", "127.0.0.1:14001,localhost:14002"],
    );
    assert_eq!(
        said,
        format!("{root}/queue: key other, Redis 127.0.0.1:14001, localhost:14002\n")
    );
    assert_eq!(
        node(&session(), &format!("{root}/queue")).unwrap(),
        r#"{"key":"other","servers":[{"host":"127.0.0.1","port":"14001"},{"host":"localhost","port":"14002"}]}"#
    );
    let err = fails(
        SET_QUEUE,
        &[&zk, &fresh_root("set-queue-missing"), "q", "127.0.0.1:1"],
        1,
    );
    assert!(err.contains("is the cluster initialized?"), "{err}");
}

#[test]
fn every_command_has_help() {
    for (name, _) in backpack::cli::COMMANDS {
        let output = run(name, &["--help"]);
        assert!(output.status.success(), "{name}");
        assert!(
            stdout(&output).starts_with(&format!("Usage: {name} ")),
            "{}",
            stdout(&output)
        );
    }
}

#[test]
fn scripts_work_from_an_installed_copy() {
    let (zk, root) = (zookeeper(), fresh_root("installed"));
    init(&zk, &root, "127.0.0.1:13001");
    // An install as `cargo install --root /opt/backpack-coordinator` lays it out: the
    // scripts and the binary side by side in bin/.
    let opt = std::env::temp_dir().join(format!("backpack-opt-{}", std::process::id()));
    let bin = opt.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_backpack"), bin.join("backpack")).unwrap();
    let status = std::process::Command::new("cp")
        .args(["-P", "-r"])
        .arg(repo_dir().join("bin").join("."))
        .arg(&bin)
        .status()
        .unwrap();
    assert!(status.success());
    let output = std::process::Command::new(bin.join("backpack-coordinator-add-server"))
        .args([&zk, &root, "4", "http://127.0.0.1:10004"])
        .env_remove("BACKPACK_BIN")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&opt);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "server 4 added: 127.0.0.1:10004\n");
}
