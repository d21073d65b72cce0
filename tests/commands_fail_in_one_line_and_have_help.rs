//! The commands are scriptable: every error is one line with a non-zero exit and writes
//! nothing, an unreachable ZooKeeper fails within the timeout, timeouts are durations,
//! every command has `--help`, and the scripts work from an installed copy.

mod common;

use backpack::zk::NodeKind;
use common::admin::*;
use std::time::{Duration, Instant};

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
    let err = fails(INIT, &[&zk, &root, "q", "127.0.0.1"], 2);
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

    let err = fails(ADD_SHARD, &[&zk, &root, "1", "1", "10 parsecs"], 2);
    assert!(err.contains(r#"invalid size "10 parsecs""#), "{err}");
    let err = fails(ADD_SHARD, &[&zk, &root, "1", "1,7", "10gb"], 1);
    assert!(err.contains("unknown node 7"), "{err}");
    let err = fails(ADD_SHARD, &[&zk, &root, "1", "1,1", "10gb"], 2);
    assert!(err.contains("listed twice"), "{err}");
    let err = fails(ADD_SHARD, &[&zk, &root, "a:b", "1", "10gb"], 2);
    assert!(err.contains("invalid shard id"), "{err}");
    let err = fails(ADD_SHARD, &[&zk, &root, "1", "1", "0"], 2);
    assert!(err.contains("capacity 0 can never take an upload"), "{err}");
    assert_eq!(s.get(&shards).unwrap(), before);
    assert_eq!(s.get(&format!("{root}/shard-size-1")).unwrap(), None);

    for (url, why) in [
        ("ftp://127.0.0.1:1", "is not http"),
        ("127.0.0.1:1", "does not start with http://"),
        ("http://evil;}:1", "not a host name"),
        ("http://127.0.0.1:99999", "not a TCP port"),
    ] {
        let err = fails(ADD_SERVER, &[&zk, &root, "2", url], 2);
        assert!(err.contains(why), "{url}: {err}");
    }
    let err = fails(ENABLE, &[&zk, &root, "9"], 1);
    assert!(err.contains("shard 9 does not exist"), "{err}");
    let err = fails(DUMP, &[&zk, "backpack"], 2);
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
    let err = fails(DUMP, &["no such host:2181", "/backpack"], 2);
    assert!(err.contains("invalid ZooKeeper connect string"), "{err}");
    // A name that does not resolve is said at once, not after the timeout.
    let started = Instant::now();
    let err = fails(DUMP, &["no-such-host.invalid:2181", "/backpack"], 1);
    assert!(err.contains("no host name of it resolves"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
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

/// Exit 2 for arguments that do not parse, in every command, before it connects to
/// anything (the ZooKeeper given is unreachable: reaching for it would exit 1 after the
/// timeout); `--version` everywhere.
#[test]
fn arguments_that_do_not_parse_exit_2_in_every_command() {
    let nowhere = format!("127.0.0.1:{}", backpack_testkit::free_port().unwrap());
    let zk = nowhere.as_str();
    let cases: &[(&str, &[&str])] = &[
        ("backpack-coordinator", &[zk, "/b", "127.0.0.1", "port"]),
        (
            "backpack-coordinator",
            &[zk, "/b", "127.0.0.1", "1", "--max-body", "100xb"],
        ),
        (
            "backpack-coordinator",
            &[zk, "/b", "127.0.0.1", "1", "--sync-copies", "0"],
        ),
        ("backpack-replicator", &[zk, "/b", "--listen", "12090"]),
        ("backpack-replicator", &[zk, "/b", "0"]),
        ("backpack-replicator", &[zk, "/b", "--retry-pause", "soon"]),
        (
            "backpack-replicator-push",
            &[zk, "/b", "127.0.0.1:1", "q", "1", "2", "no-slash"],
        ),
        ("backpack-replicator-dead", &[zk, "/b", "resurrect"]),
        (INIT, &[zk, "/b", "q", "not a server"]),
        (SET_QUEUE, &[zk, "/b", "a key", "127.0.0.1:1"]),
        (ADD_SERVER, &[zk, "/b", "1", "ftp://x"]),
        (ADD_SHARD, &[zk, "/b", "1", "1", "100xb"]),
        (ADD_SHARD, &[zk, "/b", "1", "1", "0"]),
        (ADD_SHARD, &[zk, "/b", "1", "1,", "1gb"]),
        (ENABLE, &[zk, "b", "1"]),
        (DISABLE, &[zk, "/b/../c", "1"]),
        (DUMP, &["host-without-port", "/b"]),
        (REMOVE_SHARD, &[zk, "b", "1"]),
        (REMOVE_SERVER, &[zk, "/b/./c", "1"]),
        (STATS, &[zk, "/b", "--redis-timeout", "-1s"]),
        (
            "backpack-coordinator-set-node-index",
            &[zk, "/b", "1", "two:ports:here"],
        ),
        (
            "backpack-coordinator-check-shard",
            &[zk, "/b", "1", "--rate", "0"],
        ),
        (
            "backpack-coordinator-check-cluster",
            &[zk, "/b", "--timeout", "x"],
        ),
        ("bp-nginx-gen", &[zk, "/b", "--connect-timeout", "x"]),
        (
            "backpack-coordinator-sign-upload",
            &["--keys", "k", "--key-id", "k1", "--key", "/a", "--ttl", "x"],
        ),
    ];
    let mut commands_covered = std::collections::BTreeSet::new();
    for (command, args) in cases {
        fails(command, args, 2);
        commands_covered.insert(*command);
        // An unknown flag, everywhere.
        let mut unknown = args.to_vec();
        unknown.push("--no-such-flag");
        fails(command, &unknown, 2);
    }
    for (name, _) in backpack::cli::COMMANDS {
        assert!(commands_covered.contains(name), "{name} has no case");
        let output = run(name, &["--version"]);
        assert!(output.status.success(), "{name} --version");
        let said = stdout(&output);
        assert!(
            said.starts_with(&format!("{name} {} (git ", env!("CARGO_PKG_VERSION"))),
            "{said}"
        );
    }
    let err = fails(ADD_SHARD, &[zk, "/b", "1", "1", "-5gb"], 2);
    assert!(err.contains("cannot be negative"), "{err}");
}

/// A shard on exactly the nodes of another is added, with a warning: most often a typo.
#[test]
fn add_shard_warns_when_another_shard_has_the_same_nodes() {
    let (zk, root) = (zookeeper(), fresh_root("twin"));
    init(&zk, &root, "127.0.0.1:13001");
    for (id, url) in [
        ("1", "http://127.0.0.1:10001"),
        ("4", "http://127.0.0.1:10004"),
    ] {
        ok(ADD_SERVER, &[&zk, &root, id, url]);
    }
    let first = run(ADD_SHARD, &[&zk, &root, "1", "1,4", "1gb"]);
    assert!(
        first.status.success() && stderr(&first).is_empty(),
        "{}",
        stderr(&first)
    );
    let twin = run(ADD_SHARD, &[&zk, &root, "7", "4,1", "1gb"]);
    assert!(twin.status.success(), "{}", stderr(&twin));
    assert!(
        stderr(&twin).contains("warning: shard 1 has the same nodes (1, 4)"),
        "{}",
        stderr(&twin)
    );
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
