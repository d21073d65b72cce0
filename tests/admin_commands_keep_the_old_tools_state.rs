//! The admin commands against a real ZooKeeper keep the cluster's state as the old tools
//! do: the bytes they leave are the old tools', they read what the old tools left, and
//! print-stats and set-queue work on the queue's Redis servers. A shard or a server added
//! by mistake is removed without a trace beyond its entry.

mod common;

use backpack::zk::NodeKind;
use backpack_testkit::{RedisServer, Sandbox};
use common::admin::*;

#[test]
fn walkthrough_leaves_the_old_tools_bytes() {
    let (zk, root) = (zookeeper(), fresh_root("walkthrough"));
    let said = init(&zk, &root, "127.0.0.1:13001,127.0.0.1:13002");
    assert_eq!(
        said,
        format!("{root}/queue: initialized\n{root}/servers-map: initialized\n{root}/shards-map: initialized\n")
    );
    for id in 1..=6 {
        let url = format!("http://127.0.0.1:{}", 10000 + id);
        let said = ok(ADD_SERVER, &[&zk, &root, &id.to_string(), &url]);
        assert_eq!(
            said,
            format!("server {id} added: 127.0.0.1:{}\n", 10000 + id)
        );
    }
    ok(ADD_SHARD, &[&zk, &root, "1", "1,4", "100gb"]);
    ok(ADD_SHARD, &[&zk, &root, "2", "2,5", "100gb"]);
    ok(ADD_SHARD, &[&zk, &root, "3", "3,6", "100gb"]);
    assert_eq!(ok(ENABLE, &[&zk, &root, "1"]), "shard 1 enabled\n");

    let s = session();
    assert_eq!(
        node(&s, &format!("{root}/queue")).unwrap(),
        r#"{"key":"backpack-queue","servers":[{"host":"127.0.0.1","port":"13001"},{"host":"127.0.0.1","port":"13002"}]}"#
    );
    let servers: Vec<String> = (1..=6)
        .map(|id| format!(r#""{id}":{{"host":"127.0.0.1","port":"{}"}}"#, 10000 + id))
        .collect();
    assert_eq!(
        node(&s, &format!("{root}/servers-map")).unwrap(),
        format!("{{{}}}", servers.join(","))
    );
    assert_eq!(
        node(&s, &format!("{root}/shards-map")).unwrap(),
        r#"{"1":{"nodes":["1","4"]},"2":{"read_only":true,"nodes":["2","5"]},"3":{"read_only":true,"nodes":["3","6"]}}"#
    );
    for shard in 1..=3 {
        assert_eq!(
            node(&s, &format!("{root}/shard-size-{shard}")).unwrap(),
            r#"{"capacity":107374182400,"current":0}"#
        );
    }
    let stats = run(STATS, &[&zk, &root]);
    let lines = stdout(&stats);
    assert!(
        lines.starts_with(
            "1 [1, 4]: 0b / 100gb (0%) rw [....................]\n2 [2, 5]: 0b / 100gb (0%) r "
        ),
        "{lines}"
    );
    assert!(lines.contains("Overall: 0b / 300gb (0%)\n"), "{lines}");
}

#[test]
fn golden_bytes_steps() {
    let (zk, root) = (zookeeper(), fresh_root("golden"));
    init(&zk, &root, "127.0.0.1:23001,127.0.0.1:23002");
    ok(ADD_SERVER, &[&zk, &root, "10", "http://127.0.0.1:24001"]);
    ok(ADD_SERVER, &[&zk, &root, "2", "http://one:24002"]);
    ok(ADD_SERVER, &[&zk, &root, "1", "http://127.0.0.1/"]);
    let s = session();
    let servers = format!("{root}/servers-map");
    let shards = format!("{root}/shards-map");
    let size = format!("{root}/shard-size-1");
    assert_eq!(
        node(&s, &servers).unwrap(),
        r#"{"1":{"host":"127.0.0.1","port":null},"2":{"host":"one","port":"24002"},"10":{"host":"127.0.0.1","port":"24001"}}"#
    );
    ok(ADD_SHARD, &[&zk, &root, "1", "10,2", "1.5gb"]);
    assert_eq!(
        node(&s, &shards).unwrap(),
        r#"{"1":{"read_only":true,"nodes":["10","2"]}}"#
    );
    assert_eq!(
        node(&s, &size).unwrap(),
        r#"{"capacity":1610612736,"current":0}"#
    );
    ok(ENABLE, &[&zk, &root, "1"]);
    assert_eq!(node(&s, &shards).unwrap(), r#"{"1":{"nodes":["10","2"]}}"#);
    ok(DISABLE, &[&zk, &root, "1"]);
    assert_eq!(
        node(&s, &shards).unwrap(),
        r#"{"1":{"nodes":["10","2"],"read_only":true}}"#
    );
    ok(ENABLE, &[&zk, &root, "1"]);
    let size_version = version(&s, &size);
    let said = ok(ADD_SHARD, &[&zk, &root, "1", "2,10", "5gb"]);
    assert!(said.contains("now has nodes 2, 10"), "{said}");
    assert!(said.contains("is kept: 0b of 1.5gb used"), "{said}");
    assert_eq!(node(&s, &shards).unwrap(), r#"{"1":{"nodes":["2","10"]}}"#);
    assert_eq!(
        node(&s, &size).unwrap(),
        r#"{"capacity":1610612736,"current":0}"#
    );
    assert_eq!(
        version(&s, &size),
        size_version,
        "the size node was not written"
    );

    // Re-adding a server moves it in place.
    assert_eq!(
        ok(ADD_SERVER, &[&zk, &root, "2", "http://two:24012"]),
        "server 2 updated: two:24012\n"
    );
    assert!(node(&s, &servers)
        .unwrap()
        .contains(r#""2":{"host":"two","port":"24012"},"10""#));
    let stats = stdout(&run(STATS, &[&zk, &root]));
    assert!(
        stats.starts_with("1 [2, 10]: 0b / 1.5gb (0%) rw"),
        "{stats}"
    );
    assert!(stats.contains("Overall: 0b / 1.5gb (0%)"), "{stats}");
}

#[test]
fn init_twice_changes_nothing() {
    let (zk, root) = (zookeeper(), fresh_root("init-twice"));
    init(&zk, &root, "127.0.0.1:13001");
    ok(ADD_SERVER, &[&zk, &root, "1", "http://127.0.0.1:10001"]);
    let s = session();
    let names = ["queue", "servers-map", "shards-map"];
    let before: Vec<_> = names
        .iter()
        .map(|n| s.get(&format!("{root}/{n}")).unwrap())
        .collect();
    let said = ok(INIT, &[&zk, &root, "other-queue", "127.0.0.1:9"]);
    for n in names {
        assert!(
            said.contains(&format!("{root}/{n}: already initialized\n")),
            "{said}"
        );
    }
    let after: Vec<_> = names
        .iter()
        .map(|n| s.get(&format!("{root}/{n}")).unwrap())
        .collect();
    assert_eq!(before, after, "bytes and versions unchanged");
}

#[test]
fn init_creates_a_nested_root() {
    let (zk, root) = (zookeeper(), format!("{}/deep/er", fresh_root("nested")));
    init(&zk, &root, "127.0.0.1:13001");
    assert_eq!(
        node(&session(), &format!("{root}/shards-map")).unwrap(),
        "{}"
    );
}

#[test]
fn concurrent_add_server_loses_nothing() {
    let (zk, root) = (zookeeper(), fresh_root("concurrent"));
    init(&zk, &root, "127.0.0.1:13001");
    let threads: Vec<_> = (1..=8)
        .map(|id| {
            let (zk, root) = (zk.clone(), root.clone());
            std::thread::spawn(move || {
                ok(
                    ADD_SERVER,
                    &[
                        &zk,
                        &root,
                        &id.to_string(),
                        &format!("http://127.0.0.1:{}", 20000 + id),
                    ],
                )
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("add-server thread");
    }
    let map: serde_json::Value =
        serde_json::from_str(&node(&session(), &format!("{root}/servers-map")).unwrap()).unwrap();
    let map = map.as_object().unwrap();
    assert_eq!(map.len(), 8, "{map:?}");
    for id in 1..=8 {
        assert_eq!(map[&id.to_string()]["port"], format!("{}", 20000 + id));
    }
}

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
    second.add("backpack-queue", &["a".into(), "b".into(), "c".into()]);
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

/// A shard added by mistake (on the nodes of another) and a server nothing uses are
/// removed, leaving the maps byte for byte as they were before; what would lose data is
/// refused unless forced.
#[test]
fn remove_shard_and_remove_server_undo_a_mistake() {
    let (zk, root) = (zookeeper(), fresh_root("remove"));
    init(&zk, &root, "127.0.0.1:13001");
    for (id, port) in [("1", "10001"), ("4", "10004")] {
        ok(
            ADD_SERVER,
            &[&zk, &root, id, &format!("http://127.0.0.1:{port}")],
        );
    }
    ok(ADD_SHARD, &[&zk, &root, "1", "1,4", "1gb"]);
    ok(ENABLE, &[&zk, &root, "1"]);
    let s = session();
    let (shards_map, servers_map) = (format!("{root}/shards-map"), format!("{root}/servers-map"));
    let (shards_before, servers_before) = (node(&s, &shards_map), node(&s, &servers_map));

    // The mistakes: shard 4 on shard 1's nodes, and a server 9 nothing uses.
    ok(ADD_SHARD, &[&zk, &root, "4", "1,4", "1gb"]);
    ok(ADD_SERVER, &[&zk, &root, "9", "http://127.0.0.1:10009"]);
    let err = fails(REMOVE_SERVER, &[&zk, &root, "4"], 1);
    assert!(err.contains("server 4 is a node of shard 1, 4"), "{err}");
    ok(ENABLE, &[&zk, &root, "4"]);
    let err = fails(REMOVE_SHARD, &[&zk, &root, "4"], 1);
    assert!(err.contains("shard 4 is writable"), "{err}");
    ok(DISABLE, &[&zk, &root, "4"]);
    let size_4 = format!("{root}/shard-size-4");
    let (_, v) = s.get(&size_4).unwrap().unwrap();
    assert!(s
        .set(&size_4, br#"{"capacity":5,"current":5}"#.to_vec(), v)
        .unwrap());
    let err = fails(REMOVE_SHARD, &[&zk, &root, "4"], 1);
    assert!(err.contains("shard 4 holds 5b"), "{err}");
    // Full and disabled: print-stats keeps the old tools' column and says `full` only
    // for an enabled shard.
    ok(ENABLE, &[&zk, &root, "4"]);
    // (No Redis answers for this cluster: the shard lines come before the queue's.)
    let stats = stdout(&run(STATS, &[&zk, &root]));
    assert!(
        stats.contains("4 [1, 4]: 5b / 5b (100%) rw [####################] full"),
        "{stats}"
    );
    ok(DISABLE, &[&zk, &root, "4"]);

    let said = ok(REMOVE_SHARD, &[&zk, &root, "4", "--force"]);
    assert!(said.contains("shard 4 removed"), "{said}");
    assert_eq!(node(&s, &shards_map), shards_before, "shards-map as before");
    assert_eq!(node(&s, &size_4), None, "its size node is gone");
    let said = ok(REMOVE_SERVER, &[&zk, &root, "9"]);
    assert!(said.contains("server 9 removed"), "{said}");
    assert_eq!(
        node(&s, &servers_map),
        servers_before,
        "servers-map as before"
    );
    let err = fails(REMOVE_SHARD, &[&zk, &root, "4"], 1);
    assert!(err.contains("shard 4 does not exist"), "{err}");
    let err = fails(REMOVE_SERVER, &[&zk, &root, "9"], 1);
    assert!(err.contains("server 9 does not exist"), "{err}");
}
