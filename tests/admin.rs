//! The admin commands against a real ZooKeeper: the bytes they leave are the old tools'.

mod common;

use backpack::zk::NodeKind;
use common::*;
use std::time::{Duration, Instant};

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
fn errors_are_one_line_and_write_nothing() {
    let (zk, root) = (zookeeper(), fresh_root("errors"));
    // Not initialized yet.
    let err = fails(ADD_SERVER, &[&zk, &root, "1", "http://127.0.0.1:1"], 1);
    assert!(
        err.contains(&format!(
            "{root}/servers-map does not exist: is the cluster initialized?"
        )),
        "{err}"
    );
    let err = fails(INIT, &[&zk, &root, "q", "127.0.0.1"], 1);
    assert!(err.contains("invalid Redis server list"), "{err}");
    assert_eq!(
        session().get(&format!("{root}/queue")).unwrap(),
        None,
        "nothing half-written"
    );

    init(&zk, &root, "127.0.0.1:13001");
    ok(ADD_SERVER, &[&zk, &root, "1", "http://127.0.0.1:10001"]);
    let s = session();
    let shards = format!("{root}/shards-map");
    let before = s.get(&shards).unwrap();

    let err = fails(ADD_SHARD, &[&zk, &root, "1", "1", "10 parsecs"], 1);
    assert!(err.contains(r#"invalid size "10 parsecs""#), "{err}");
    let err = fails(ADD_SHARD, &[&zk, &root, "1", "1,7", "10gb"], 1);
    assert!(err.contains("unknown node 7"), "{err}");
    let err = fails(ADD_SHARD, &[&zk, &root, "1", "1,1", "10gb"], 1);
    assert!(err.contains("listed twice"), "{err}");
    let err = fails(ADD_SHARD, &[&zk, &root, "a:b", "1", "10gb"], 1);
    assert!(err.contains("invalid shard id"), "{err}");
    assert_eq!(s.get(&shards).unwrap(), before);
    assert_eq!(s.get(&format!("{root}/shard-size-1")).unwrap(), None);

    for (url, why) in [
        ("ftp://127.0.0.1:1", "is not http"),
        ("127.0.0.1:1", "does not start with http://"),
        ("http://evil;}:1", "not a host name"),
        ("http://127.0.0.1:99999", "not a TCP port"),
    ] {
        let err = fails(ADD_SERVER, &[&zk, &root, "2", url], 1);
        assert!(err.contains(why), "{url}: {err}");
    }
    let err = fails(ENABLE, &[&zk, &root, "9"], 1);
    assert!(err.contains("shard 9 does not exist"), "{err}");
    let err = fails(DUMP, &[&zk, "backpack"], 1);
    assert!(err.contains("invalid ZooKeeper root"), "{err}");
    let err = fails(ADD_SHARD, &[&zk, &root, "1"], 2);
    assert!(
        err.contains("Required positional arguments not provided"),
        "{err}"
    );
    let err = fails(DUMP, &[&zk, &root, "--zk-timeout", "soon"], 2);
    assert!(
        err.contains("zk_timeout") || err.contains("zk-timeout"),
        "{err}"
    );

    // A node that holds garbage is named.
    s.create(
        &format!("{root}/shard-size-x"),
        b"not json".to_vec(),
        NodeKind::Persistent,
    )
    .unwrap();
    let map = format!("{root}/shards-map");
    let (_, v) = s.get(&map).unwrap().unwrap();
    assert!(s
        .set(&map, br#"{"x":{"nodes":["1"]}}"#.to_vec(), v)
        .unwrap());
    let err = fails(STATS, &[&zk, &root], 1);
    assert!(
        err.contains(&format!("{root}/shard-size-x holds invalid data")),
        "{err}"
    );
}

#[test]
fn unreachable_zookeeper_fails_within_the_timeout() {
    let port = backpack_testkit::free_port().unwrap();
    let zk = format!("127.0.0.1:{port}");
    let started = Instant::now();
    let err = fails(DUMP, &[&zk, "/backpack", "--zk-timeout", "2"], 1);
    let took = started.elapsed();
    assert!(
        err.contains(&format!("cannot reach ZooKeeper at {zk} within 2s")),
        "{err}"
    );
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(5),
        "{took:?}"
    );
    let err = fails(DUMP, &["no such host:2181", "/backpack"], 1);
    assert!(err.contains("invalid ZooKeeper connect string"), "{err}");
}

/// Every command that talks to ZooKeeper takes its timeout as a duration: `1500ms`, `2s`,
/// or a bare number of seconds as before.
#[test]
fn zk_timeouts_are_durations_and_a_bare_number_is_seconds() {
    let (zk, root) = (zookeeper(), fresh_root("durations"));
    init(&zk, &root, "127.0.0.1:23001");
    let dumped = ok(DUMP, &[&zk, &root, "--zk-timeout", "5"]);
    assert_eq!(ok(DUMP, &[&zk, &root, "--zk-timeout", "5s"]), dumped);

    let unreachable = format!("127.0.0.1:{}", backpack_testkit::free_port().unwrap());
    let commands: [(&str, &[&str]); 10] = [
        (INIT, &["q", "127.0.0.1:1"]),
        (SET_QUEUE, &["q", "127.0.0.1:1"]),
        (ADD_SERVER, &["1", "http://127.0.0.1:1"]),
        (ADD_SHARD, &["1", "1", "1gb"]),
        (ENABLE, &["1"]),
        (DISABLE, &["1"]),
        (DUMP, &[]),
        (STATS, &[]),
        ("backpack-coordinator-set-node-index", &["1", "127.0.0.1:1"]),
        ("backpack-replicator-dead", &["list"]),
    ];
    for (command, own) in commands {
        for (timeout, said) in [("300ms", "0.3s"), ("1", "1s")] {
            let mut args = vec![unreachable.as_str(), "/backpack"];
            args.extend_from_slice(own);
            args.extend_from_slice(&["--zk-timeout", timeout]);
            let err = fails(command, &args, 1);
            assert!(
                err.contains(&format!(
                    "cannot reach ZooKeeper at {unreachable} within {said}"
                )),
                "{command} --zk-timeout {timeout}: {err}"
            );
        }
    }
    let err = fails(
        "backpack-coordinator-check-shard",
        &[&unreachable, "/backpack", "1", "--timeout", "300ms"],
        1,
    );
    assert!(err.contains("within 0.3s"), "{err}");
}
